using System.Collections.Generic;

namespace Hvo.Memory;

/// <summary>
/// One zone of one node (struct zone): its frames, its free lists, and the counters and
/// watermarks /proc/zoneinfo shows. The page allocator changes it under its lock; readers see
/// each counter atomically, and <see cref="PageAllocator.ZoneInfo"/> reads them all at one time.
/// </summary>
public sealed class Zone
{
    private readonly FreeArea[] _areas;
    private readonly long[] _lowmemReserve;

    internal Zone(int node, int index, string name, ulong startPfn, ulong endPfn, int maxOrder, int zones)
    {
        Node = node;
        Index = index;
        Name = name;
        StartPfn = startPfn;
        EndPfn = endPfn;
        _lowmemReserve = new long[zones];
        _areas = new FreeArea[maxOrder + 1];
        for (int order = 0; order <= maxOrder; order++)
        {
            _areas[order] = new FreeArea(startPfn, endPfn, order);
        }
    }

    /// <summary>The node (zone_to_nid).</summary>
    public int Node { get; }

    /// <summary>The zone's index among its node's zones, lowest first (zone_idx).</summary>
    public int Index { get; }

    public string Name { get; }

    /// <summary>First frame (zone_start_pfn).</summary>
    public ulong StartPfn { get; }

    /// <summary>One past the last frame (zone_end_pfn).</summary>
    public ulong EndPfn { get; }

    /// <summary>Frames from start to end (spanned_pages).</summary>
    public long SpannedPages => (long)(EndPfn - StartPfn);

    /// <summary>Frames that exist (present_pages): the spanned ones, as the simulated memory has no holes.</summary>
    public long PresentPages => SpannedPages;

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

    internal FreeArea Area(int order) => _areas[order];

    internal void SetLowmemReserve(int highestZone, long pages) => _lowmemReserve[highestZone] = pages;

    internal bool Contains(ulong pfn, ulong frames) => pfn >= StartPfn && pfn < EndPfn && EndPfn - pfn >= frames;
}
