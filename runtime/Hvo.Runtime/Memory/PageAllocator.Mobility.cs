using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Hvo.Memory;

/// <summary>
/// Grouping pages by mobility: every pageblock has a migrate type, each free list one type, an
/// allocation takes from its own type's lists first and otherwise falls back to another type's,
/// stealing the pageblock where the kernel would (__rmqueue_fallback, steal_suitable_fallback).
/// docs/ARCHITECTURE.md §5.
/// </summary>
public sealed partial class PageAllocator
{
    // Pageblocks whose type is not MIGRATE_MOVABLE, by pfn >> PageblockOrder: every pageblock is
    // movable at boot (memmap_init_range), and most stay so, whatever the machine's size.
    private readonly Dictionary<ulong, MigrateType> _pageblockTypes = [];

    // The pageblock PageblockType answered for last, and its type (under the lock, as every use of the types).
    private ulong _lastPageblock = ulong.MaxValue;
    private MigrateType _lastPageblockType = MigrateType.Movable;

    /// <summary>
    /// pageblock_order: the huge page order of a PMD (HPAGE_PMD_ORDER: PAGE_SHIFT - 3 with 8-byte
    /// entries), at most the highest buddy order (9 for 4 KiB pages, 11 for 16 KiB, 13 for 64 KiB).
    /// </summary>
    public int PageblockOrder => Math.Min(Layout.PageShift - 3, MaxOrder);

    /// <summary>Frames in a pageblock (pageblock_nr_pages).</summary>
    public ulong PageblockFrames => 1UL << PageblockOrder;

    /// <summary>fallbacks[]: the types an allocation of each type may take from, in order.</summary>
    private static readonly MigrateType[][] Fallbacks =
    [
        [MigrateType.Reclaimable, MigrateType.Movable], // MIGRATE_UNMOVABLE
        [MigrateType.Reclaimable, MigrateType.Unmovable], // MIGRATE_MOVABLE
        [MigrateType.Unmovable, MigrateType.Movable], // MIGRATE_RECLAIMABLE
    ];

    /// <summary>get_pageblock_migratetype.</summary>
    public MigrateType PageblockMigrateType(ulong pfn)
    {
        lock (_lock)
        {
            return PageblockType(pfn);
        }
    }

    /// <summary>Pageblocks of each type on a zone (/proc/pagetypeinfo's block counts).</summary>
    public long PageblocksOf(Zone zone, MigrateType type)
    {
        ArgumentNullException.ThrowIfNull(zone);
        lock (_lock)
        {
            long n = 0;
            ulong first = zone.StartPfn >> PageblockOrder, end = (zone.EndPfn + PageblockFrames - 1) >> PageblockOrder;
            if (type != MigrateType.Movable)
            {
                foreach ((ulong block, MigrateType t) in _pageblockTypes)
                {
                    n += t == type && block >= first && block < end ? 1 : 0;
                }

                return n;
            }

            long others = 0;
            foreach ((ulong block, _) in _pageblockTypes)
            {
                others += block >= first && block < end ? 1 : 0;
            }

            return zone.IsPopulated ? (long)(end - first) - others : 0;
        }
    }

    /// <summary>
    /// /proc/pagetypeinfo: the pageblock order, the free blocks of each order on each type's list
    /// per zone, then the pageblocks of each type per zone.
    /// </summary>
    public string PageTypeInfo()
    {
        MigrateType[] types = [MigrateType.Unmovable, MigrateType.Movable, MigrateType.Reclaimable];
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"Page block order: {PageblockOrder}\nPages per block:  {PageblockFrames}\n\n");
        text.Append(CultureInfo.InvariantCulture, $"{"Free pages count per migrate type at order",-43} ");
        for (int order = 0; order <= MaxOrder; order++)
        {
            text.Append(CultureInfo.InvariantCulture, $"{order,6} ");
        }

        text.Append('\n');
        lock (_lock)
        {
            foreach (Zone zone in _populated)
            {
                foreach (MigrateType type in types)
                {
                    text.Append(CultureInfo.InvariantCulture, $"Node {zone.Node,4}, zone {zone.Name,8}, type {TypeName(type),12} ");
                    for (int order = 0; order <= MaxOrder; order++)
                    {
                        text.Append(CultureInfo.InvariantCulture, $"{zone.FreeBlocks(order, type),6} ");
                    }

                    text.Append('\n');
                }
            }
        }

        text.Append(CultureInfo.InvariantCulture, $"\n{"Number of blocks type ",-23}");
        foreach (MigrateType type in types)
        {
            text.Append(CultureInfo.InvariantCulture, $"{TypeName(type),12} ");
        }

        text.Append(CultureInfo.InvariantCulture, $"{"Isolate",12} \n");
        foreach (Zone zone in _populated)
        {
            text.Append(CultureInfo.InvariantCulture, $"Node {zone.Node}, zone {zone.Name,8} ");
            foreach (MigrateType type in types)
            {
                text.Append(CultureInfo.InvariantCulture, $"{PageblocksOf(zone, type),12} ");
            }

            text.Append(CultureInfo.InvariantCulture, $"{PageblocksOf(zone, MigrateType.Isolate),12} \n");
        }

        return text.ToString();
    }

    /// <summary>migratetype_names[].</summary>
    public static string TypeName(MigrateType type) => type switch
    {
        MigrateType.Unmovable => "Unmovable",
        MigrateType.Movable => "Movable",
        MigrateType.Reclaimable => "Reclaimable",
        _ => "Isolate",
    };

    /// <summary>gfp_migratetype: __GFP_MOVABLE allocations are movable, everything else here (GFP_KERNEL) unmovable.</summary>
    private static MigrateType GfpMigrateType(Gfp gfp) => (gfp & Gfp.Movable) != 0 ? MigrateType.Movable : MigrateType.Unmovable;

    private MigrateType PageblockType(ulong pfn)
    {
        ulong block = pfn >> PageblockOrder;
        if (block == _lastPageblock)
        {
            return _lastPageblockType; // frees in a row mostly land in one pageblock
        }

        MigrateType t = _pageblockTypes.TryGetValue(block, out MigrateType found) ? found : MigrateType.Movable;
        (_lastPageblock, _lastPageblockType) = (block, t);
        return t;
    }

    private void SetPageblockType(ulong pfn, MigrateType type)
    {
        if (pfn >> PageblockOrder == _lastPageblock)
        {
            _lastPageblockType = type;
        }

        if (type == MigrateType.Movable)
        {
            _pageblockTypes.Remove(pfn >> PageblockOrder);
        }
        else
        {
            _pageblockTypes[pfn >> PageblockOrder] = type;
        }
    }

    // set_pageblock_migratetype over every pageblock of [pfn, pfn + frames).
    private void SetPageblockRange(ulong pfn, ulong frames, MigrateType type)
    {
        for (ulong p = pfn & ~(PageblockFrames - 1); p < pfn + frames; p += PageblockFrames)
        {
            SetPageblockType(p, type);
        }
    }

    // The kernel's own allocations between memblock_free_all and a shell prompt (slab caches,
    // per-CPU pages, page tables) are not modelled, but where they leave free pages is: in
    // unmovable pageblocks beside other kernel memory, which later small kernel allocations fill
    // before they steal a clean block. In their place the pageblocks memblock left partly
    // reserved (the edges of the kernel image, the vmemmap, swiotlb, boot page tables) start
    // MIGRATE_UNMOVABLE; every other pageblock is MIGRATE_MOVABLE, as memmap_init_range makes it.
    private void MarkBootUnmovable(IReadOnlyList<(ulong Start, ulong End)> reserved)
    {
        foreach ((ulong start, ulong end) in reserved)
        {
            if (Layout.IsHole(start))
            {
                continue;
            }

            if ((start & (PageblockFrames - 1)) != 0)
            {
                SetPageblockType(start, MigrateType.Unmovable);
            }

            if ((end & (PageblockFrames - 1)) != 0 && end < Owners.EndPfn)
            {
                SetPageblockType(end, MigrateType.Unmovable);
            }
        }
    }

    // __rmqueue: the type's own lists, else steal from a fallback type and try again.
    private bool TryRmqueue(Zone zone, int order, MigrateType type, out ulong pfn)
    {
        while (!TryRmqueueSmallest(zone, order, type, out pfn))
        {
            if (!TryRmqueueFallback(zone, order, type))
            {
                return false;
            }
        }

        return true;
    }

    // __rmqueue_fallback: the largest block a fallback type can give with stealing (roughly the
    // pageblock with the most free pages), else the smallest block of any fallback type; its block
    // moves to the request's lists, with its pageblock where steal_suitable_fallback takes it.
    private bool TryRmqueueFallback(Zone zone, int order, MigrateType start)
    {
        for (int current = MaxOrder; current >= order; current--)
        {
            if (FindSuitableFallback(zone, current, start, onlyStealable: true, out bool canSteal) is { } fallback)
            {
                if (!canSteal && start == MigrateType.Movable && current > order)
                {
                    break; // a movable request that cannot steal splits the smallest block instead
                }

                return Steal(zone, current, fallback, start, canSteal);
            }
        }

        for (int current = order; current <= MaxOrder; current++)
        {
            if (FindSuitableFallback(zone, current, start, onlyStealable: false, out bool canSteal) is { } fallback)
            {
                return Steal(zone, current, fallback, start, canSteal);
            }
        }

        return false;
    }

    private bool Steal(Zone zone, int order, MigrateType fallback, MigrateType start, bool canSteal)
    {
        if (!zone.Area(order).TryTake(fallback, out ulong pfn))
        {
            return false;
        }

        StealSuitableFallback(zone, pfn, order, start, canSteal);
        return true;
    }

    // find_suitable_fallback: the first fallback type with a free block of this order.
    private MigrateType? FindSuitableFallback(Zone zone, int order, MigrateType start, bool onlyStealable, out bool canSteal)
    {
        canSteal = false;
        if ((uint)start >= FreeAreaSet.ListTypes || zone.FreeBlocks(order) == 0)
        {
            return null;
        }

        foreach (MigrateType fallback in Fallbacks[(int)start])
        {
            if (zone.FreeBlocks(order, fallback) == 0)
            {
                continue;
            }

            canSteal = CanStealFallback(order, start);
            if (!onlyStealable || canSteal)
            {
                return fallback;
            }
        }

        return null;
    }

    // can_steal_fallback: a pageblock or more, half of one, or an unmovable or reclaimable request.
    private bool CanStealFallback(int order, MigrateType start) =>
        order >= PageblockOrder || order >= PageblockOrder / 2 || start is MigrateType.Reclaimable or MigrateType.Unmovable;

    // steal_suitable_fallback for the free block [pfn, +2^order) just taken off a fallback list: a
    // block of a pageblock or more takes its pageblocks' type with it (change_pageblock_range);
    // otherwise, where stealing is allowed, every free block of the pageblock moves to the
    // request's lists (move_freepages_block) and the pageblock changes type when at least half of
    // it is free or alike; else only this block moves.
    private void StealSuitableFallback(Zone zone, ulong pfn, int order, MigrateType start, bool whole)
    {
        if (order >= PageblockOrder)
        {
            SetPageblockRange(pfn, 1UL << order, start);
            zone.Area(order).Add(pfn, toTail: false, start);
            return;
        }

        zone.Area(order).Add(pfn, toTail: false, start);
        if (!whole)
        {
            return;
        }

        MigrateType old = PageblockType(pfn);
        ulong block = pfn & ~(PageblockFrames - 1);
        (ulong free, ulong movable) = MoveFreePagesBlock(zone, block, start);
        ulong alike = start == MigrateType.Movable ? movable : old == MigrateType.Movable ? PageblockFrames - (free + movable) : 0;
        if (free + alike >= PageblockFrames / 2)
        {
            SetPageblockType(block, start);
        }
    }

    // move_freepages_block: every free block inside the pageblock to the type's lists; the free
    // frames it holds, and its busy ones that could move (PageLRU or __PageMovable: none of the
    // kernel memory Hvo allocates is).
    private (ulong Free, ulong Movable) MoveFreePagesBlock(Zone zone, ulong block, MigrateType type)
    {
        ulong free = 0;
        ulong end = Math.Min(block + PageblockFrames, zone.EndPfn);
        for (ulong p = Math.Max(block, zone.StartPfn); p < end;)
        {
            if (FreeBlockAt(zone, p, out ulong head, out int order) && head >= block && head + (1UL << order) <= block + PageblockFrames)
            {
                zone.Area(order).Remove(head);
                zone.Area(order).Add(head, toTail: false, type);
                free += 1UL << order;
                p = head + (1UL << order);
                continue;
            }

            p++;
        }

        return (free, 0);
    }
}
