using System;
using System.Collections.Generic;

namespace Hvo.Memory;

/// <summary>
/// A pageblock's mobility (enum migratetype, in the kernel's order): which free list its free
/// blocks go to, and what kind of allocation it is kept for. MIGRATE_HIGHATOMIC and MIGRATE_CMA
/// are not modelled; MIGRATE_ISOLATE is the page allocator's isolation of a range (memory offline).
/// </summary>
public enum MigrateType : byte
{
    /// <summary>MIGRATE_UNMOVABLE: kernel allocations (GFP_KERNEL): page tables, vmemmap.</summary>
    Unmovable,

    /// <summary>MIGRATE_MOVABLE: what can be migrated (__GFP_MOVABLE): user and shmem pages, hugetlb pages; every pageblock at boot (memmap_init_range).</summary>
    Movable,

    /// <summary>MIGRATE_RECLAIMABLE: __GFP_RECLAIMABLE (slab caches that shrink).</summary>
    Reclaimable,

    /// <summary>MIGRATE_ISOLATE: kept off the free lists while a range is taken out (memory offline).</summary>
    Isolate,
}

/// <summary>
/// One zone's free blocks of one order (struct free_area): a free list per migrate type
/// (free_list[MIGRATE_PCPTYPES]). A free block lies on exactly one list: the one
/// <see cref="Add(ulong, bool)"/> picks by its pageblock's type, or the one a caller names (expand,
/// move_to_free_list).
/// </summary>
internal sealed class FreeAreaSet
{
    /// <summary>The types with a free list (MIGRATE_PCPTYPES).</summary>
    public const int ListTypes = 3;

    // The movable list exists from the start; the others only once a block goes on them, so a
    // machine whose memory stays movable pays for one list per order, whatever its size.
    private readonly FreeArea?[] _lists = new FreeArea?[ListTypes];
    private readonly Func<ulong, MigrateType> _typeOf;
    private readonly ulong _start;
    private readonly ulong _end;

    public FreeAreaSet(ulong start, ulong end, int order, Func<ulong, MigrateType> typeOf)
    {
        Order = order;
        _typeOf = typeOf;
        _start = start;
        _end = end;
        _lists[(int)MigrateType.Movable] = new FreeArea(start, end, order);
    }

    public int Order { get; }

    /// <summary>Free blocks of this order on every list (nr_free).</summary>
    public long Count => CountOf(MigrateType.Unmovable) + CountOf(MigrateType.Movable) + CountOf(MigrateType.Reclaimable);

    /// <summary>Free blocks of this order on <paramref name="type"/>'s list.</summary>
    public long CountOf(MigrateType type) => _lists[ListIndex(type)]?.Count ?? 0;

    /// <summary>Whether the block at <paramref name="pfn"/> is free at this order, on any list (page_is_buddy).</summary>
    public bool IsFree(ulong pfn) => _lists[1]!.IsFree(pfn) || _lists[0]?.IsFree(pfn) == true || _lists[2]?.IsFree(pfn) == true;

    /// <summary>The list the free block at <paramref name="pfn"/> is on.</summary>
    public MigrateType ListOf(ulong pfn) =>
        _lists[1]!.IsFree(pfn) ? MigrateType.Movable : _lists[0]?.IsFree(pfn) == true ? MigrateType.Unmovable : MigrateType.Reclaimable;

    /// <summary>A freed block to the list of its pageblock's type (__free_one_page with get_pfnblock_migratetype).</summary>
    public void Add(ulong pfn, bool toTail) => Add(pfn, toTail, _typeOf(pfn));

    /// <summary>A free block to <paramref name="type"/>'s list (expand, move_to_free_list).</summary>
    public void Add(ulong pfn, bool toTail, MigrateType type) => (_lists[ListIndex(type)] ??= new FreeArea(_start, _end, Order)).Add(pfn, toTail);

    /// <summary>memblock_free_all's max-order runs: every pageblock is MIGRATE_MOVABLE at boot.</summary>
    public void AddRun(ulong start, ulong end) => _lists[(int)MigrateType.Movable]!.AddRun(start, end);

    /// <summary>
    /// If the block at <paramref name="pfn"/> is free at this order, take it off its list: <see cref="IsFree"/>
    /// then <see cref="Remove"/>, the lists tried in <see cref="ListOf"/>'s order.
    /// </summary>
    public bool TryRemove(ulong pfn) => _lists[1]!.TryRemove(pfn) || _lists[0]?.TryRemove(pfn) == true || _lists[2]?.TryRemove(pfn) == true;

    /// <summary>Take a free block off whichever list holds it (del_page_from_free_list).</summary>
    public void Remove(ulong pfn) => _lists[(int)ListOf(pfn)]!.Remove(pfn);

    /// <summary>The head of <paramref name="type"/>'s list (get_page_from_free_area), if any.</summary>
    public bool TryTake(MigrateType type, out ulong pfn)
    {
        if (_lists[ListIndex(type)] is { } list)
        {
            return list.TryTake(out pfn);
        }

        pfn = 0;
        return false;
    }

    /// <summary>The free blocks on <paramref name="type"/>'s list, head first, none taken (for tests).</summary>
    internal List<ulong> Blocks(MigrateType type) => _lists[ListIndex(type)]?.Blocks() ?? [];

    private static int ListIndex(MigrateType type) => type == MigrateType.Isolate ? (int)MigrateType.Movable : (int)type;
}
