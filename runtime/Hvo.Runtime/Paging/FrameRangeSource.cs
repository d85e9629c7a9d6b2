using System;
using System.Collections.Generic;

namespace Hvo.Paging;

/// <summary>
/// Table frames handed out from one range of frames, lowest first, with freed frames reused.
/// Enough for a page table standing on its own (tests, benchmarks); the simulated machine hands
/// out table frames from its own allocators instead.
/// </summary>
public sealed class FrameRangeSource : ITableFrameSource
{
    private readonly Dictionary<int, Stack<ulong>> _freed = new();
    private readonly Func<int, int>? _tableOrder;
    private readonly ulong _end;
    private ulong _next;

    /// <param name="firstPfn">The first frame handed out.</param>
    /// <param name="frameCount">Frames in the range.</param>
    /// <param name="tableOrder">log2 of the frames a table of a level takes (<see cref="IPagingArch.TableOrder"/>); one frame each when null.</param>
    public FrameRangeSource(ulong firstPfn, ulong frameCount, Func<int, int>? tableOrder = null)
    {
        _next = firstPfn;
        _end = checked(firstPfn + frameCount);
        _tableOrder = tableOrder;
    }

    /// <summary>When set, the allocation with this 1-based number (counting every allocation this source was asked for) fails.</summary>
    public int? FailAllocationNumber { get; set; }

    public int Allocations { get; private set; }

    public int Frees { get; private set; }

    public int InUse { get; private set; }

    public bool TryAllocate(int level, out ulong pfn)
    {
        Allocations++;
        if (FailAllocationNumber is int fail && Allocations == fail)
        {
            pfn = 0;
            return false;
        }

        int order = _tableOrder?.Invoke(level) ?? 0;
        ulong size = 1UL << order, start = (_next + size - 1) & ~(size - 1); // aligned to the table's size
        if (_freed.TryGetValue(order, out Stack<ulong>? freed) && freed.Count > 0)
        {
            pfn = freed.Pop();
        }
        else if (start < _end && _end - start >= size)
        {
            pfn = start;
            _next = start + size;
        }
        else
        {
            pfn = 0;
            return false;
        }

        InUse++;
        return true;
    }

    public void Free(int level, ulong pfn)
    {
        if (InUse == 0)
        {
            throw new InvalidOperationException($"table frame 0x{pfn:x} freed but none is in use");
        }

        Frees++;
        InUse--;
        int order = _tableOrder?.Invoke(level) ?? 0;
        if (!_freed.TryGetValue(order, out Stack<ulong>? freed))
        {
            _freed[order] = freed = new Stack<ulong>();
        }

        freed.Push(pfn);
    }
}
