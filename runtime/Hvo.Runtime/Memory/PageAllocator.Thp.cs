using System;

namespace Hvo.Memory;

/// <summary>/sys/kernel/mm/transparent_hugepage/enabled: always, madvise or never.</summary>
public enum ThpMode
{
    /// <summary>TRANSPARENT_HUGEPAGE_ALWAYS: the Kconfig default.</summary>
    Always,

    /// <summary>TRANSPARENT_HUGEPAGE_MADVISE (what Debian and Ubuntu build).</summary>
    Madvise,

    /// <summary>never: khugepaged does not run.</summary>
    Never,
}

/// <summary>
/// Transparent huge pages as they touch the page allocator: while THP is enabled (always or
/// madvise, hugepage_flags_enabled) khugepaged raises min_free_kbytes to what it recommends
/// (set_recommended_min_free_kbytes, mm/khugepaged.c), when it starts and whenever memory hotplug
/// recomputes the watermarks (khugepaged_min_free_kbytes_update). docs/ARCHITECTURE.md §5.
/// </summary>
public sealed partial class PageAllocator
{
    private ThpMode _thp = ThpMode.Never;
    private int _watermarkScaleFactor = 10;

    /// <summary>vm.watermark_scale_factor: the low-high gap in 1/10000 of a zone's managed pages; 1 to 3000 (the sysctl's range), setting it recomputes the watermarks.</summary>
    public int WatermarkScaleFactor
    {
        get
        {
            lock (_lock)
            {
                return _watermarkScaleFactor;
            }
        }

        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 3000);
            lock (_lock)
            {
                _watermarkScaleFactor = value;
                SetupPerZoneWmarks();
            }
        }
    }

    /// <summary>
    /// The THP mode (transparent_hugepage=, the sysfs file). Enabling it starts khugepaged, which
    /// raises min_free_kbytes to its recommendation (start_stop_khugepaged); "never" stops it and
    /// leaves min_free_kbytes where it is. Returns the kernel's notice when it raised a value the
    /// user had set, else null.
    /// </summary>
    public string? SetTransparentHugepages(ThpMode mode)
    {
        lock (_lock)
        {
            _thp = mode;
            return mode == ThpMode.Never ? null : SetRecommendedMinFreeKbytes();
        }
    }

    /// <summary>The THP mode.</summary>
    public ThpMode TransparentHugepages
    {
        get
        {
            lock (_lock)
            {
                return _thp;
            }
        }
    }

    /// <summary>
    /// set_recommended_min_free_kbytes: two pageblocks free per populated zone up to ZONE_NORMAL,
    /// plus MIGRATE_PCPTYPES² pageblocks per zone for the fallbacks, at most 5% of the free buffer
    /// pages; min_free_kbytes rises to it (never falls), then the watermarks follow.
    /// </summary>
    private string? SetRecommendedMinFreeKbytes()
    {
        const int MigratePcpTypes = 3;
        int zones = 0;
        long bufferPages = 0;
        foreach (Zone zone in Zones)
        {
            if (zone.Index != MovableZone)
            {
                zones += zone.IsPopulated ? 1 : 0;
                bufferPages += Math.Max(0, zone.ManagedPages - zone.HighWatermark);
            }
        }

        long pageblock = (long)PageblockFrames;
        long recommended = (pageblock * zones * 2) + (pageblock * zones * MigratePcpTypes * MigratePcpTypes);
        recommended = Math.Min(recommended, bufferPages / 20) << (Layout.PageShift - 10);
        string? notice = null;
        if (recommended > _minFreeKbytes)
        {
            if (_userMinFreeKbytes >= 0)
            {
                notice = $"khugepaged: raising min_free_kbytes from {_minFreeKbytes} to {recommended} to help transparent hugepage allocations";
            }

            _minFreeKbytes = (int)recommended;
        }

        SetupPerZoneWmarks();
        return notice;
    }
}
