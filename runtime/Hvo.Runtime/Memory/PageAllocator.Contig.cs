using System;
using System.Numerics;

namespace Hvo.Memory;

/// <summary>Gigantic pages: ranges larger than any buddy block (alloc_contig_pages, free_contig_range).</summary>
public sealed partial class PageAllocator
{
    /// <summary>
    /// alloc_contig_pages: <paramref name="frames"/> (a power of two) free frames aligned to
    /// their size, inside one zone, on the zonelist of <see cref="TryAllocPages"/> (the node's
    /// zones highest first, then other nodes unless <see cref="Gfp.ThisNode"/>), each zone scanned
    /// from its start in steps of the size. The range may be larger than a max-order block: the
    /// free blocks it covers leave their lists and the parts of them outside it go back.
    /// Fault injection is asked first, at order log2(frames), so a gigantic huge page can be
    /// failed like any other (the kernel's fail_page_alloc does not see this path). No watermark
    /// is checked: alloc_contig_range isolates the range first, and isolated free pages are taken
    /// without one. A range whose busy frames are all movable pages (<see cref="RegisterMovable"/>)
    /// is taken after moving them elsewhere (alloc_contig_range's migration); any other busy frame
    /// makes a candidate fail. Afterwards the
    /// frames are plain order-0 pages, freed with <see cref="FreeContigRange"/> (all or part).
    /// </summary>
    public bool TryAllocContigPages(int nid, ulong frames, Gfp gfp, AllocSite site, FrameOwner owner, out ulong pfn)
    {
        CheckNode(nid);
        CheckOwner(owner);
        if (frames == 0 || !BitOperations.IsPow2(frames) || frames > Layout.Frames)
        {
            throw new ArgumentOutOfRangeException(nameof(frames), frames, "a contiguous allocation is a power of two of frames within the machine");
        }

        int order = BitOperations.Log2(frames);
        lock (_lock)
        {
            if (InjectFailure(site, order, gfp))
            {
                return Fail(gfp, out pfn);
            }

            DrainAllPagesLocked(); // alloc_contig_range: drain_all_pages, so no free page hides on a per-CPU list
            foreach (Zone zone in Zonelist(nid, gfp))
            {
                if (TryFindContig(zone, frames, out pfn))
                {
                    TakeRange(zone, pfn, pfn + frames);
                    SetPageblockRange(pfn, frames, MigrateType.Movable); // undo_isolate_page_range(..., MIGRATE_MOVABLE)
                    Owners.Transfer(pfn, frames, FrameOwner.Free, owner);
                    return true;
                }
            }

            return Fail(gfp, out pfn);
        }
    }

    /// <summary>
    /// free_contig_range: give back [<paramref name="pfn"/>, +<paramref name="frames"/>), frames
    /// <paramref name="owner"/> holds as order-0 pages (from <see cref="TryAllocContigPages"/>, from
    /// a split block, or made managed by <see cref="AdjustManagedPageCount"/>), merging as they go.
    /// Refused if any frame is someone else's, still reserved by memblock, or part of a live
    /// higher-order allocation.
    /// </summary>
    public void FreeContigRange(ulong pfn, ulong frames, FrameOwner owner)
    {
        CheckOwner(owner);
        CheckRange(pfn, frames);
        if (frames > 1 && !PrepareFree(pfn, frames, owner))
        {
            return; // a gigantic compound page goes back in one free (__free_pages_ok), checked as one
        }

        ulong end = pfn + frames;
        lock (_lock)
        {
            if (LiveBlockOrderIn(pfn, end) is var order and > 0)
            {
                throw new InvalidOperationException(
                    $"free_contig_range(0x{pfn:x}, {frames}): the range holds an order-{order} allocation; free it with FreePages or split_page it first");
            }

            if (_unmanaged.Any(pfn, end))
            {
                throw new InvalidOperationException(
                    $"free_contig_range(0x{pfn:x}, {frames}): the range holds frames memblock reserved; free them with FreeReservedPage");
            }

            Owners.Transfer(pfn, frames, owner, FrameOwner.Free);
            for (ulong p = pfn; p < end;)
            {
                Zone zone = ZoneOf(p);
                ulong runEnd = RunEnd(zone, p, end);
                FreeRange(zone, p, runEnd);
                p = runEnd;
            }
        }
    }

    // The first size-aligned range of the zone whose frames are all free or movable (moved out of
    // the way once it is found); a candidate that meets another busy frame is abandoned for the next
    // aligned one past that frame, one whose pages cannot all move for the next one.
    private bool TryFindContig(Zone zone, ulong frames, out ulong pfn)
    {
        pfn = (zone.StartPfn + frames - 1) & ~(frames - 1);
        if (!zone.IsPopulated || (zone.FreePages < (long)frames && _movable.Count == 0))
        {
            return false;
        }

        while (pfn >= zone.StartPfn && pfn < zone.EndPfn && zone.EndPfn - pfn >= frames)
        {
            ulong p = pfn;
            ulong end = pfn + frames;
            bool movable = false;
            while (p < end)
            {
                if (FreeBlockAt(zone, p, out ulong head, out int order))
                {
                    p = head + (1UL << order);
                }
                else if (IsMovable(p))
                {
                    (movable, p) = (true, p + 1);
                }
                else
                {
                    break;
                }
            }

            if (p >= end && (!movable || MigrateRange(zone, pfn, end)))
            {
                return true;
            }

            pfn = p >= end ? end : (p + frames) & ~(frames - 1);
        }

        return false;
    }

    // The free block holding pfn, if pfn is free; larger blocks are likelier in a free range.
    private bool FreeBlockAt(Zone zone, ulong pfn, out ulong head, out int order)
    {
        for (order = MaxOrder; order >= 0; order--)
        {
            head = pfn & ~((1UL << order) - 1);
            if (zone.Area(order).IsFree(head))
            {
                return true;
            }
        }

        head = pfn;
        return false;
    }

    // Take every free block that [start, end) covers off its list; the parts of a block outside
    // the range go back (the caller checked every frame of the range is free).
    private void TakeRange(Zone zone, ulong start, ulong end)
    {
        for (ulong p = start; p < end;)
        {
            if (!FreeBlockAt(zone, p, out ulong head, out int order))
            {
                throw new InvalidOperationException($"frame 0x{p:x} is not free");
            }

            ulong blockEnd = head + (1UL << order);
            zone.Area(order).Remove(head);
            zone.FreePages -= 1L << order;
            FreeRange(zone, head, Math.Max(head, start));
            FreeRange(zone, Math.Min(blockEnd, end), blockEnd);
            p = blockEnd;
        }
    }
}
