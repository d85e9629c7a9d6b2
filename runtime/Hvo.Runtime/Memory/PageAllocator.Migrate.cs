using System;
using System.Collections.Generic;
using System.Linq;

namespace Hvo.Memory;

/// <summary>An owner of movable pages (a mapping with migratepage): told when one of its frames moves to another.</summary>
public interface IMovablePages
{
    /// <summary>The page at <paramref name="from"/> now lives at <paramref name="to"/> (migrate_folio copied it).</summary>
    void Migrate(ulong from, ulong to);
}

/// <summary>
/// Page migration for alloc_contig_range: a gigantic allocation may take a range whose busy frames
/// are all movable order-0 pages of an owner that registered itself (<see cref="RegisterMovable"/>:
/// shmem). The range is isolated (its free blocks off the lists, so no replacement lands in it),
/// each movable page gets a new page outside it (alloc_migration_target: the page's node first, at
/// the min watermark) and moves there; a range with an unmovable page is passed over, and one whose
/// pages cannot all move is given back as it was apart from the pages that moved. Memory offline
/// moves the movable pages of the block it isolated the same way. docs/ARCHITECTURE.md §5.
/// </summary>
public sealed partial class PageAllocator
{
    private readonly Dictionary<FrameOwner, IMovablePages> _movable = [];

    /// <summary>Frames owned by <paramref name="owner"/> are movable: a contiguous allocation may move them out of its way.</summary>
    public void RegisterMovable(FrameOwner owner, IMovablePages pages)
    {
        System.ArgumentNullException.ThrowIfNull(pages);
        CheckOwner(owner);
        lock (_lock)
        {
            _movable[owner] = pages;
        }
    }

    /// <summary>Pages moved out of the way of contiguous allocations and memory offline (pgmigrate_success).</summary>
    public long PagesMigrated { get; private set; }

    // A busy frame alloc_contig_range could migrate: an order-0 page of a registered owner.
    private bool IsMovable(ulong pfn) => _movable.Count > 0 && _movable.ContainsKey(Owners[pfn]) && BlockAround(pfn, out _) == 0;

    // Move every movable page of [start, end) elsewhere, leaving the range all free on the lists;
    // false (the range as it was, less the pages that moved) when a page cannot get a new home or
    // memory offline holds an isolation.
    private bool MigrateRange(Zone zone, ulong start, ulong end)
    {
        if (_isolatedEnd > _isolatedStart || end - start < 1UL << MaxOrder)
        {
            return false; // memory offline holds the isolation; a range below a max-order block is not a gigantic page's
        }

        for (ulong p = start; p < end;)
        {
            if (FreeBlockAt(zone, p, out ulong head, out int order))
            {
                zone.Area(order).Remove(head);
                zone.FreePages -= 1L << order;
                _isolatedFree += 1L << order;
                p = head + (1UL << order);
                continue;
            }

            p++;
        }

        (_isolatedStart, _isolatedEnd) = (start, end);
        bool moved = MigrateIsolatedPagesLocked(zone, otherNodes: false);
        UndoIsolateLocked(); // undo_isolate_page_range: the free frames back on the lists, for the caller to take
        return moved;
    }

    /// <summary>
    /// Memory offline's do_migrate_range over the range <see cref="TryIsolate"/> isolated: every
    /// movable page there moves to a new home outside it, on another node with memory where there is
    /// one (the node mask without the page's node), and its frame, free now, stays isolated. False
    /// when a page can get no new home (what moved stays moved).
    /// </summary>
    public bool MigrateIsolatedPages()
    {
        lock (_lock)
        {
            if (_isolatedEnd <= _isolatedStart)
            {
                throw new InvalidOperationException("no range is isolated: isolate it first");
            }

            return MigrateIsolatedPagesLocked(ZoneOf(_isolatedStart), otherNodes: true);
        }
    }

    // Each page of a registered owner in the isolated range, in address order, to a page outside it
    // (the range's free blocks are off the lists), until one cannot get a home. otherNodes: only
    // nodes other than the range's when another has memory (do_migrate_range's node_clear).
    private bool MigrateIsolatedPagesLocked(Zone zone, bool otherNodes)
    {
        int skipNode = otherNodes && _zones.Any(z => z[0].Node != zone.Node && z.Any(x => x.IsPopulated)) ? zone.Node : -1;
        for (ulong p = _isolatedStart; p < _isolatedEnd; p++)
        {
            FrameOwner owner = Owners[p];
            if (!_movable.TryGetValue(owner, out IMovablePages? pages))
            {
                continue; // free, or huge page data (the caller's business)
            }

            if (!AllocMigrationTarget(zone.Node, skipNode, owner, out ulong target))
            {
                return false;
            }

            pages.Migrate(p, target);
            Owners.Transfer(p, 1, owner, FrameOwner.Free);
            FreeOneBlock(zone, p, 0); // isolated: counted, kept off the lists
            PagesMigrated++;
        }

        return true;
    }

    // alloc_migration_target: a movable order-0 page on the zonelist of the page's node, leaving
    // out node skipNode (none when -1).
    private bool AllocMigrationTarget(int nid, int skipNode, FrameOwner owner, out ulong pfn)
    {
        int highest = HighestZone(Gfp.Movable);
        foreach (Zone zone in Zonelist(nid, Gfp.Movable))
        {
            if (zone.IsPopulated && zone.Node != skipNode && ZoneWatermarkOk(zone, 0, zone.MinWatermark, highest) && Rmqueue(zone, 0, MigrateType.Movable, out pfn))
            {
                Commit(zone, pfn, 0, Gfp.Movable, owner);
                return true;
            }
        }

        pfn = 0;
        return false;
    }
}
