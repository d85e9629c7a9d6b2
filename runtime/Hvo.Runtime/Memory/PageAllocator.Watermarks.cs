using System;

namespace Hvo.Memory;

/// <summary>
/// Watermarks and lowmem reserves: where an allocation fails before free memory reaches zero
/// (docs/ARCHITECTURE.md §7.3), as mm/page_alloc.c sets them up.
/// </summary>
public sealed partial class PageAllocator
{
    private int _minFreeKbytes;

    /// <summary>
    /// vm.min_free_kbytes. At creation, init_per_zone_wmark_min sets it to
    /// int_sqrt(lowmem_kbytes * 16) clamped to [128, 262144], lowmem being every zone's managed
    /// pages but ZONE_MOVABLE's; setting it recomputes every zone's watermarks (setup_per_zone_wmarks), as a write to
    /// the sysctl does, and the value stays the user's (user_min_free_kbytes). Later changes of managed pages (free_reserved_page) move no watermark, as
    /// in the kernel; onlining or offlining a memory block runs init_per_zone_wmark_min again.
    /// </summary>
    public int MinFreeKbytes
    {
        get
        {
            lock (_lock)
            {
                return _minFreeKbytes;
            }
        }

        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            lock (_lock)
            {
                _minFreeKbytes = value;
                _userMinFreeKbytes = value;
                SetupPerZoneWmarks();
            }
        }
    }

    /// <summary>sysctl_lowmem_reserve_ratio of a zone: 256 for DMA and DMA32, 32 for Normal, none otherwise.</summary>
    public static int LowmemReserveRatio(string zoneName) => zoneName switch
    {
        "DMA" or "DMA32" => 256,
        "Normal" => 32,
        _ => 0,
    };

    private void InitPerZoneWmarkMin()
    {
        ulong lowmemKbytes = (ulong)LowmemPages() << (Layout.PageShift - 10);
        _minFreeKbytes = (int)Math.Clamp(IntSqrt(lowmemKbytes * 16), 128UL, 262144UL);
        SetupPerZoneWmarks();
    }

    // __setup_per_zone_wmarks: min_free_kbytes split across the zones but ZONE_MOVABLE by managed
    // share (ZONE_MOVABLE's min is its managed pages / 1024, clamped to [SWAP_CLUSTER_MAX, 128]);
    // low and high a quarter of the share, or watermark_scale_factor of the zone, above min.
    private void SetupPerZoneWmarks()
    {
        long pagesMin = _minFreeKbytes >> (Layout.PageShift - 10);
        long lowmemPages = LowmemPages();
        foreach (Zone zone in Zones)
        {
            long min = lowmemPages == 0 ? 0 : (long)((UInt128)(ulong)pagesMin * (ulong)zone.ManagedPages / (ulong)lowmemPages);
            long managed = zone.ManagedPages;
            long step = Math.Max(min >> 2, (managed / 10000 * _watermarkScaleFactor) + (managed % 10000 * _watermarkScaleFactor / 10000));
            zone.MinWatermark = zone.Index == MovableZone ? Math.Clamp(managed / 1024, 32, 128) : min;
            min = zone.MinWatermark;
            zone.LowWatermark = min + step;
            zone.HighWatermark = min + (2 * step);
        }

        ZonePcpUpdate(); // setup_per_zone_wmarks: the pagesets' high follows the low watermark
    }

    // setup_per_zone_lowmem_reserve: zone i keeps back (managed pages of zones i+1..j) / ratio[i]
    // from a request whose highest zone is j; none when its ratio or its managed pages are zero.
    private void SetupPerZoneLowmemReserve()
    {
        foreach (Zone[] zones in _zones)
        {
            for (int i = 0; i < zones.Length - 1; i++)
            {
                int ratio = LowmemReserveRatio(zones[i].Name);
                bool clear = ratio == 0 || zones[i].ManagedPages == 0;
                long upper = 0;
                for (int j = i + 1; j < zones.Length; j++)
                {
                    upper += zones[j].ManagedPages;
                    zones[i].SetLowmemReserve(j, clear ? 0 : upper / ratio);
                }
            }
        }
    }

    // Managed pages of the zones but ZONE_MOVABLE (and highmem, which no spec has).
    private long LowmemPages()
    {
        long pages = 0;
        foreach (Zone zone in Zones)
        {
            if (zone.Index != MovableZone)
            {
                pages += zone.ManagedPages;
            }
        }

        return pages;
    }

    // int_sqrt: the floor of the square root.
    private static ulong IntSqrt(ulong x)
    {
        ulong r = (ulong)Math.Sqrt(x);
        while (r * r > x)
        {
            r--;
        }

        while ((r + 1) * (r + 1) <= x)
        {
            r++;
        }

        return r;
    }
}
