using System;

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
/// rmqueue_bulk appends to its tail and free_pcppages_bulk takes from the tail. A ring of pfns
/// whose size is a power of two, so each end is pushed and popped with a mask, in O(1).
/// </summary>
internal sealed class PcpList
{
    private ulong[] _items = new ulong[16];
    private int _head;

    public int Count { get; private set; }

    public void AddHead(ulong pfn)
    {
        Grow();
        _head = (_head - 1) & (_items.Length - 1);
        _items[_head] = pfn;
        Count++;
    }

    public void AddTail(ulong pfn)
    {
        Grow();
        _items[(_head + Count) & (_items.Length - 1)] = pfn;
        Count++;
    }

    public ulong TakeHead()
    {
        ulong pfn = _items[_head];
        _head = (_head + 1) & (_items.Length - 1);
        Count--;
        return pfn;
    }

    public ulong TakeTail()
    {
        Count--;
        return _items[(_head + Count) & (_items.Length - 1)];
    }

    private void Grow()
    {
        if (Count < _items.Length)
        {
            return;
        }

        var bigger = new ulong[_items.Length * 2];
        for (int i = 0; i < Count; i++)
        {
            bigger[i] = _items[(_head + i) & (_items.Length - 1)];
        }

        (_items, _head) = (bigger, 0);
    }
}
