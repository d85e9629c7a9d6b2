using System;
using System.Collections.Generic;
using System.Numerics;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// The boot allocator (memblock): before the page allocator exists, memory is handed out as
/// contiguous ranges that are marked reserved (memblock.reserved) and recorded in the frame owner
/// table. Everything it did not reserve becomes the page allocator's when
/// <see cref="PageAllocator"/> is created from it (memblock_free_all); after that it hands out
/// nothing more.
/// </summary>
public sealed class BootAllocator
{
    // memblock.reserved: sorted, disjoint, adjacent regions merged.
    private readonly List<(ulong Start, ulong End)> _reserved = [];
    private readonly ulong[] _reservedPerNode;
    private readonly Lock _lock = new();
    private bool _released;

    public BootAllocator(MachineLayout layout, FrameOwnerTable owners)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentNullException.ThrowIfNull(owners);
        if (owners.Frames < layout.Frames || owners.FirstPfn != layout.FirstPfn)
        {
            throw new ArgumentException($"the owner table has {owners.Frames} frames from 0x{owners.FirstPfn:x}, the layout {layout.Frames} from 0x{layout.FirstPfn:x}: the table holds the layout's frames first", nameof(owners));
        }

        Layout = layout;
        Owners = owners;
        _reservedPerNode = new ulong[layout.Nodes];

        // The firmware's holes are not memory (not in memblock.memory): nobody may have them, and
        // they are no node's reservation. Kept with the reserved regions so no allocation finds them.
        foreach ((ulong start, ulong end) in layout.Holes)
        {
            Owners.Transfer(start, end - start, FrameOwner.Free, FrameOwner.Absent);
            AddRegion(start, end, counted: false);
        }
    }

    public MachineLayout Layout { get; }

    public FrameOwnerTable Owners { get; }

    /// <summary>Frames reserved on node <paramref name="nid"/>.</summary>
    public ulong ReservedFrames(int nid)
    {
        _ = Layout.NodeStart(nid);
        lock (_lock)
        {
            return _reservedPerNode[nid];
        }
    }

    /// <summary>Frames reserved on every node.</summary>
    public ulong TotalReservedFrames
    {
        get
        {
            lock (_lock)
            {
                ulong total = 0;
                foreach (ulong frames in _reservedPerNode)
                {
                    total += frames;
                }

                return total;
            }
        }
    }

    /// <summary>The reserved regions, [start, end) in frames, lowest first (memblock.reserved; the firmware's holes are not memory, so not among them).</summary>
    public IReadOnlyList<(ulong Start, ulong End)> ReservedRegions
    {
        get
        {
            lock (_lock)
            {
                if (Layout.Holes.Count == 0)
                {
                    return [.. _reserved];
                }

                var regions = new List<(ulong Start, ulong End)>();
                foreach ((ulong start, ulong end) in _reserved)
                {
                    ulong at = start;
                    foreach ((ulong hs, ulong he) in Layout.Holes)
                    {
                        if (he <= at || hs >= end)
                        {
                            continue;
                        }

                        if (hs > at)
                        {
                            regions.Add((at, hs));
                        }

                        at = Math.Max(at, he);
                    }

                    if (at < end)
                    {
                        regions.Add((at, end));
                    }
                }

                return regions;
            }
        }
    }

    /// <summary>Whether memblock_free_all has run: the page allocator owns the rest.</summary>
    public bool Released
    {
        get
        {
            lock (_lock)
            {
                return _released;
            }
        }
    }

    /// <summary>
    /// memblock_reserve: keep [<paramref name="pfn"/>, +<paramref name="frames"/>) from the page
    /// allocator (firmware, the kernel image). The frames must still be free.
    /// </summary>
    public void Reserve(ulong pfn, ulong frames, FrameOwner owner = FrameOwner.Reserved)
    {
        CheckOwner(owner);
        if (frames == 0)
        {
            return;
        }

        lock (_lock)
        {
            CheckOpen();
            Owners.Transfer(pfn, frames, FrameOwner.Free, owner);
            AddRegion(pfn, pfn + frames);
        }
    }

    /// <summary>
    /// memblock_alloc_try_nid: the highest <paramref name="alignFrames"/>-aligned range of
    /// <paramref name="frames"/> free frames on node <paramref name="nid"/> (memblock allocates top
    /// down), given to <paramref name="owner"/>. Only with <paramref name="fallbackToOtherNodes"/>
    /// is another node tried when this one has no room (memblock_alloc_try_nid); without it, the
    /// node is exact (memblock_alloc_exact_nid_raw). False when no node has room.
    /// </summary>
    public bool TryAlloc(int nid, ulong frames, ulong alignFrames, FrameOwner owner, out ulong pfn, bool fallbackToOtherNodes = false) =>
        TryAllocBelow(nid, frames, alignFrames, owner, ulong.MaxValue, out pfn, fallbackToOtherNodes);

    /// <summary>
    /// memblock_alloc_range_nid with an upper limit: <see cref="TryAlloc"/> within frames below
    /// <paramref name="limitPfn"/> (memblock_alloc_low's ARCH_LOW_ADDRESS_LIMIT, crashkernel's
    /// CRASH_ADDR_LOW_MAX).
    /// </summary>
    public bool TryAllocBelow(int nid, ulong frames, ulong alignFrames, FrameOwner owner, ulong limitPfn, out ulong pfn, bool fallbackToOtherNodes = false)
    {
        CheckOwner(owner);
        _ = Layout.NodeStart(nid);
        if (frames == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(frames), "memblock allocations are at least one frame");
        }

        if (alignFrames == 0 || !BitOperations.IsPow2(alignFrames))
        {
            throw new ArgumentOutOfRangeException(nameof(alignFrames), alignFrames, "alignment must be a power of two");
        }

        lock (_lock)
        {
            CheckOpen();
            for (int i = 0; i < Layout.Nodes; i++)
            {
                int node = (nid + i) % Layout.Nodes;
                if (TryFindTopDown(node, frames, alignFrames, limitPfn, out pfn))
                {
                    Owners.Transfer(pfn, frames, FrameOwner.Free, owner);
                    AddRegion(pfn, pfn + frames);
                    return true;
                }

                if (!fallbackToOtherNodes)
                {
                    break;
                }
            }
        }

        pfn = 0;
        return false;
    }

    /// <summary>memblock_free_all: from now on the page allocator owns every frame not reserved.</summary>
    internal IReadOnlyList<(ulong Start, ulong End)> Release()
    {
        lock (_lock)
        {
            CheckOpen();
            _released = true;
            return [.. _reserved];
        }
    }

    // The gaps between reserved regions inside the node, highest first; the first that holds an
    // aligned range wins (memblock_find_in_range_node, top-down).
    private bool TryFindTopDown(int nid, ulong frames, ulong align, ulong limitPfn, out ulong pfn)
    {
        (ulong nodeStart, ulong nodeEnd) = Layout.NodeRange(nid);
        nodeEnd = Math.Min(nodeEnd, limitPfn);
        if (nodeEnd <= nodeStart)
        {
            pfn = 0;
            return false;
        }

        ulong gapEnd = nodeEnd;
        for (int i = FirstRegionAtOrAbove(nodeEnd) - 1; i >= 0 && gapEnd > nodeStart; i--)
        {
            (ulong start, ulong end) = _reserved[i];
            if (end < gapEnd && TryFit(Math.Max(end, nodeStart), gapEnd, frames, align, out pfn))
            {
                return true;
            }

            gapEnd = Math.Min(gapEnd, start);
        }

        return TryFit(nodeStart, gapEnd, frames, align, out pfn);
    }

    private static bool TryFit(ulong start, ulong end, ulong frames, ulong align, out ulong pfn)
    {
        pfn = end >= start + frames ? (end - frames) & ~(align - 1) : 0;
        return end >= start + frames && pfn >= start;
    }

    // Index of the first region starting at or above pfn.
    private int FirstRegionAtOrAbove(ulong pfn)
    {
        int lo = 0;
        int hi = _reserved.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_reserved[mid].Start < pfn)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    // The owner table already refused overlaps, so the new region only touches its neighbours.
    private void AddRegion(ulong start, ulong end, bool counted = true)
    {
        for (int nid = Layout.NodeOf(start); counted && nid < Layout.Nodes && Layout.NodeStart(nid) < end; nid++)
        {
            (ulong nodeStart, ulong nodeEnd) = Layout.NodeRange(nid);
            _reservedPerNode[nid] += Math.Min(end, nodeEnd) - Math.Max(start, nodeStart);
        }

        int i = FirstRegionAtOrAbove(start);
        if (i > 0 && _reserved[i - 1].End == start)
        {
            start = _reserved[i - 1].Start;
            _reserved.RemoveAt(--i);
        }

        if (i < _reserved.Count && _reserved[i].Start == end)
        {
            end = _reserved[i].End;
            _reserved.RemoveAt(i);
        }

        _reserved.Insert(i, (start, end));
    }

    private void CheckOpen()
    {
        if (_released)
        {
            throw new InvalidOperationException("memblock has handed its memory to the page allocator (memblock_free_all): allocate from the PageAllocator");
        }
    }

    private static void CheckOwner(FrameOwner owner)
    {
        if (owner == FrameOwner.Free)
        {
            throw new ArgumentException("a boot allocation needs an owner other than Free", nameof(owner));
        }
    }
}
