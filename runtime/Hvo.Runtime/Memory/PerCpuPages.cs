using System;
using System.Collections.Generic;

namespace Hvo.Memory;

/// <summary>
/// One zone's per-CPU page lists on one CPU (struct per_cpu_pages): order-0 pages taken from or
/// on their way back to the buddy lists, one list per migrate type that has free lists
/// (MIGRATE_PCPTYPES), with the count of pages on them, the high mark that makes a free give
/// pages back, and the batch moved at a time. docs/ARCHITECTURE.md §5.
/// </summary>
public sealed class PerCpuPages
{
    internal PerCpuPages(int cpu) => Cpu = cpu;

    public int Cpu { get; }

    /// <summary>Pages on the lists (pcp->count).</summary>
    public int Count { get; internal set; }

    /// <summary>pcp->high: a free that brings the count to this gives a batch back to the buddy lists.</summary>
    public int High { get; internal set; }

    /// <summary>pcp->batch: the pages an empty list takes from the buddy lists at once.</summary>
    public int Batch { get; internal set; }

    /// <summary>pcp->free_factor: doubles the pages a free gives back while frees follow frees.</summary>
    internal int FreeFactor { get; set; }

    internal PcpList[] Lists { get; } = [new(), new(), new()];
}

/// <summary>
/// A pcp list: frees add to its head and allocations take from the head (the cache-hot end);
/// rmqueue_bulk appends to its tail and free_pcppages_bulk takes from the tail. The pages sit in a
/// <see cref="BlockQueue"/>, runs of evenly spaced pfns, since HVO frees a huge page's vmemmap
/// frames one after another in ascending order: a list that grows to pcp->high (millions of pages
/// on a machine of tens of TiB) stays a few runs, each end pushed and popped in O(1), the order of
/// the pages exactly that of one entry per page. docs/ARCHITECTURE.md §5.
/// </summary>
internal sealed class PcpList
{
    private readonly BlockQueue _pages = new();

    /// <summary>Pages on the list.</summary>
    public int Count => _pages.Count;

    /// <summary>Runs the pages are held in (for tests: consecutive frees share one).</summary>
    internal int Runs => _pages.Runs;

    /// <summary>The pages from the head, none taken (for tests).</summary>
    internal IEnumerable<ulong> Pages() => _pages.Entries();

    public void AddHead(ulong pfn) => _pages.PushFront(pfn);

    public void AddTail(ulong pfn) => _pages.PushBack(pfn);

    public ulong TakeHead() => _pages.TryPopFront(out ulong pfn) ? pfn : throw new InvalidOperationException("the pcp list is empty");

    /// <summary>The run at the list's head, none taken: its length, <paramref name="first"/> and the step between its pages in the order <see cref="TakeHead"/> gives them.</summary>
    public int PeekHeadRun(out ulong first, out long step) => _pages.PeekFrontRun(out first, out step);

    /// <summary>The first <paramref name="n"/> pages of the head run taken at once, as <paramref name="n"/> <see cref="TakeHead"/> calls would.</summary>
    public void DropHead(int n) => _pages.DropFront(n);

    public ulong TakeTail() => _pages.PopBack();

    /// <summary>
    /// Up to <paramref name="max"/> pages from the tail at once, all of one run: the pages
    /// <paramref name="last"/>, last - step, ... in the order <see cref="TakeTail"/> would give them.
    /// </summary>
    public int TakeTailRun(int max, out ulong last, out long step) => _pages.PopBackRun(max, out last, out step);
}
