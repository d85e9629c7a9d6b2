using System;
using System.Collections.Generic;

namespace Hvo.Memory;

/// <summary>
/// One zone of one node (struct zone): its frames, its free lists, and the counters and
/// watermarks /proc/zoneinfo shows. The page allocator changes it under its lock; readers see
/// each counter atomically, and <see cref="PageAllocator.ZoneInfo"/> reads them all at one time.
/// </summary>
/// <remarks>
/// Memory hotplug moves a zone's span (resize_zone_range when a block is onlined into it,
/// shrink_zone_span when one at either end goes offline) and its present pages; its free lists
/// cover the frames it may ever hold (<c>capacityStart</c> to <c>capacityEnd</c>: its boot span,
/// or for ZONE_NORMAL and ZONE_MOVABLE everything from the node's start up that hotplug can give it).
/// </remarks>
public sealed class Zone
{
    private readonly FreeAreaSet[] _areas;
    private readonly long[] _lowmemReserve;

    internal Zone(int node, int index, string name, ulong startPfn, ulong endPfn, int maxOrder, int zones, ulong capacityStart, ulong capacityEnd, Func<ulong, MigrateType>? pageblockType = null)
    {
        Node = node;
        Index = index;
        Name = name;
        StartPfn = startPfn;
        EndPfn = endPfn;
        PresentPages = (long)(endPfn - startPfn);
        CapacityStart = capacityStart;
        CapacityEnd = capacityEnd;
        _lowmemReserve = new long[zones];
        _areas = new FreeAreaSet[maxOrder + 1];
        pageblockType ??= static _ => MigrateType.Movable;
        for (int order = 0; order <= maxOrder; order++)
        {
            _areas[order] = new FreeAreaSet(capacityStart, capacityEnd, order, pageblockType);
        }
    }

    /// <summary>The node (zone_to_nid).</summary>
    public int Node { get; }

    /// <summary>The zone's index among its node's zones, lowest first (zone_idx).</summary>
    public int Index { get; }

    public string Name { get; }

    /// <summary>First frame (zone_start_pfn); 0 while the zone spans nothing.</summary>
    public ulong StartPfn { get; internal set; }

    /// <summary>One past the last frame (zone_end_pfn).</summary>
    public ulong EndPfn { get; internal set; }

    /// <summary>Frames from start to end (spanned_pages).</summary>
    public long SpannedPages => (long)(EndPfn - StartPfn);

    /// <summary>
    /// Frames that exist in the zone (present_pages): at boot the spanned ones less the firmware's
    /// holes (<see cref="MachineLayout.Holes"/>), then what memory blocks onlined into it and offlined
    /// from it add and take.
    /// </summary>
    public long PresentPages { get; internal set; }

    /// <summary>The frames the zone's free lists can hold: [<see cref="CapacityStart"/>, <see cref="CapacityEnd"/>).</summary>
    internal ulong CapacityStart { get; }

    internal ulong CapacityEnd { get; }

    /// <summary>Frames the page allocator manages (managed_pages): present less what memblock kept, plus what free_reserved_page gave since.</summary>
    public long ManagedPages { get; internal set; }

    /// <summary>Frames in the free lists (NR_FREE_PAGES).</summary>
    public long FreePages { get; internal set; }

    /// <summary>WMARK_MIN, in pages.</summary>
    public long MinWatermark { get; internal set; }

    /// <summary>WMARK_LOW, in pages.</summary>
    public long LowWatermark { get; internal set; }

    /// <summary>WMARK_HIGH, in pages.</summary>
    public long HighWatermark { get; internal set; }

    /// <summary>
    /// lowmem_reserve[]: pages this zone keeps back from a request whose highest allowed zone is
    /// the index (the "protection" of /proc/zoneinfo).
    /// </summary>
    public IReadOnlyList<long> LowmemReserve => _lowmemReserve;

    /// <summary>Whether the zone has any frame (populated_zone).</summary>
    public bool IsPopulated => PresentPages > 0;

    /// <summary>Free blocks of <paramref name="order"/> (free_area[order].nr_free).</summary>
    public long FreeBlocks(int order) => _areas[order].Count;

    public override string ToString() => $"Node {Node}, zone {Name}";

    internal int FreeAreaCount => _areas.Length;

    internal FreeAreaSet Area(int order) => _areas[order];

    /// <summary>Free blocks of <paramref name="order"/> on <paramref name="type"/>'s list (/proc/pagetypeinfo).</summary>
    public long FreeBlocks(int order, MigrateType type) => _areas[order].CountOf(type);

    /// <summary>The zone's per-CPU page lists, one per CPU (zone->per_cpu_pageset); none before setup_per_cpu_pageset.</summary>
    internal PerCpuPages[] Pagesets { get; set; } = [];

    internal void SetLowmemReserve(int highestZone, long pages) => _lowmemReserve[highestZone] = pages;

    /// <summary>lowmem_reserve[<paramref name="highestZone"/>], read without the interface call of <see cref="LowmemReserve"/> (every allocation's watermark check).</summary>
    internal long LowmemReserveFor(int highestZone) => _lowmemReserve[highestZone];
}
