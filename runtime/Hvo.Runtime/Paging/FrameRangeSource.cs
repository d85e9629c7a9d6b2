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
    private readonly Stack<ulong> _freed = new();
    private readonly ulong _end;
    private ulong _next;

    public FrameRangeSource(ulong firstPfn, ulong frameCount)
    {
        _next = firstPfn;
        _end = checked(firstPfn + frameCount);
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

        if (_freed.Count > 0)
        {
            pfn = _freed.Pop();
        }
        else if (_next < _end)
        {
            pfn = _next++;
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
        _freed.Push(pfn);
    }
}
