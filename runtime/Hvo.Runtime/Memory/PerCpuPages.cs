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
/// rmqueue_bulk appends to its tail and free_pcppages_bulk takes from the tail. The pages are held
/// as runs of consecutive pfns (first, length, step +1 or -1, in head-to-tail order), since HVO
/// frees a huge page's vmemmap frames one after another in ascending order: a list that grows to
/// pcp->high (millions of pages on a machine of tens of TiB) stays a few runs. The runs sit in a ring
/// whose size is a power of two, so each end is pushed and popped with a mask, in O(1). The order
/// of the pages is exactly that of one entry per page. docs/ARCHITECTURE.md §5.
/// </summary>
internal sealed class PcpList
{
    private Run[] _runs = new Run[16];
    private int _head;
    private int _runCount;

    /// <summary>Pages on the list.</summary>
    public int Count { get; private set; }

    /// <summary>Runs the pages are held in (for tests: consecutive frees share one).</summary>
    internal int Runs => _runCount;

    public void AddHead(ulong pfn)
    {
        Count++;
        if (_runCount > 0)
        {
            ref Run run = ref _runs[_head];
            if (run.Length == 1 && (pfn == run.First + 1 || pfn == run.First - 1))
            {
                run.Step = (long)(run.First - pfn); // pfn then First, head to tail
            }

            if (run.Length > 1 || run.Step != 0)
            {
                if (pfn == run.First - (ulong)run.Step)
                {
                    run.First = pfn;
                    run.Length++;
                    return;
                }
            }
        }

        Grow();
        _head = (_head - 1) & (_runs.Length - 1);
        _runs[_head] = new Run { First = pfn, Length = 1 };
        _runCount++;
    }

    public void AddTail(ulong pfn)
    {
        Count++;
        if (_runCount > 0)
        {
            ref Run run = ref _runs[(_head + _runCount - 1) & (_runs.Length - 1)];
            if (run.Length == 1 && (pfn == run.First + 1 || pfn == run.First - 1))
            {
                run.Step = (long)(pfn - run.First); // First then pfn, head to tail
            }

            if ((run.Length > 1 || run.Step != 0) && pfn == run.Last + (ulong)run.Step)
            {
                run.Length++;
                return;
            }
        }

        Grow();
        _runs[(_head + _runCount) & (_runs.Length - 1)] = new Run { First = pfn, Length = 1 };
        _runCount++;
    }

    public ulong TakeHead()
    {
        ref Run run = ref _runs[_head];
        ulong pfn = run.First;
        Count--;
        if (--run.Length == 0)
        {
            _head = (_head + 1) & (_runs.Length - 1);
            _runCount--;
        }
        else
        {
            run.First += (ulong)run.Step;
        }

        return pfn;
    }

    public ulong TakeTail()
    {
        ref Run run = ref _runs[(_head + _runCount - 1) & (_runs.Length - 1)];
        ulong pfn = run.Last;
        Count--;
        if (--run.Length == 0)
        {
            _runCount--;
        }

        return pfn;
    }

    /// <summary>
    /// Up to <paramref name="max"/> pages from the tail at once, all of one run: the pages
    /// <paramref name="last"/>, last - step, ... in the order <see cref="TakeTail"/> would give them.
    /// </summary>
    public int TakeTailRun(int max, out ulong last, out long step)
    {
        ref Run run = ref _runs[(_head + _runCount - 1) & (_runs.Length - 1)];
        (last, step) = (run.Last, run.Step);
        int n = Math.Min(max, run.Length);
        Count -= n;
        run.Length -= n;
        if (run.Length == 0)
        {
            _runCount--;
        }

        return n;
    }

    private void Grow()
    {
        if (_runCount < _runs.Length)
        {
            return;
        }

        var bigger = new Run[_runs.Length * 2];
        for (int i = 0; i < _runCount; i++)
        {
            bigger[i] = _runs[(_head + i) & (_runs.Length - 1)];
        }

        (_runs, _head) = (bigger, 0);
    }

    // Pages First, First + Step, ..., Last from head to tail; Step is 0 until a run has a direction
    // (one page, never extended), and a run keeps its direction once it has one.
    private struct Run
    {
        public ulong First;
        public long Step;
        public int Length;

        public readonly ulong Last => First + (ulong)(Step * (Length - 1));
    }
}
