using System;

namespace Hvo.Memory;

/// <summary>
/// Memory hotplug's side of the page allocator (mm/memory_hotplug.c, mm/page_isolation.c): onlining
/// a range into a zone, isolating a range so that nothing more is allocated from it, taking an
/// isolated range out, or putting it back. The memory block it is about, and the order of the
/// steps, are the caller's (<c>MemoryHotplug</c>).
/// </summary>
public sealed partial class PageAllocator
{
    private Zone?[]? _blockZones;    // the zone of each max-order block onlined since boot (page_zone after hotplug)
    private ulong _isolatedStart;
    private ulong _isolatedEnd;      // [start, end): the range start_isolate_page_range isolated, empty if none
    private long _isolatedFree;      // free frames in it, kept off the free lists
    private int _userMinFreeKbytes = -1;

    /// <summary>
    /// The index of the zone <paramref name="pfn"/> is in (page_zonenum): the zone its memory block
    /// was last onlined into, else the boot layout's; memory above the boot memory never onlined
    /// counts as ZONE_NORMAL.
    /// </summary>
    /// <remarks>Without the allocator's lock: a struct page's reader asks it for every page, and a
    /// block's zone only changes while the block is offline, when nobody reads its struct pages.</remarks>
    public int ZoneIndexOf(ulong pfn)
    {
        CheckBlock(pfn, 0);
        if (System.Threading.Volatile.Read(ref _blockZones) is { } onlined && System.Threading.Volatile.Read(ref onlined[pfn >> MaxOrder]) is { } zone)
        {
            return zone.Index;
        }

        if (pfn >= Layout.EndPfn)
        {
            return _bootZoneEnds.Length; // the last zone
        }

        // Layout.ZoneOf over the limits taken from the layout once (behind every struct page produced).
        ulong[] ends = _bootZoneEnds;
        int z = 0;
        while (z < ends.Length && pfn >= ends[z])
        {
            z++;
        }

        return z;
    }

    /// <summary>
    /// online_pages for [<paramref name="start"/>, <paramref name="end"/>) of an offline memory
    /// block, into <paramref name="zone"/>: move_pfn_range_to_zone grows the zone's span over the
    /// whole range; the first <paramref name="selfHosted"/> frames hold the range's own struct pages
    /// (memory_hotplug.memmap_on_memory) and only count as present; the rest go from
    /// <see cref="FrameOwner.Offline"/> to the free lists, to their tails as undo_isolate_page_range
    /// leaves freshly onlined pages, and count as present and managed. Then
    /// init_per_zone_wmark_min: min_free_kbytes, the watermarks and the lowmem reserves follow the
    /// new size.
    /// </summary>
    public void OnlinePages(Zone zone, ulong start, ulong selfHosted, ulong end)
    {
        ArgumentNullException.ThrowIfNull(zone);
        CheckHotplugRange(start, end);
        ulong first = start + selfHosted;
        lock (_lock)
        {
            Owners.Transfer(first, end - first, FrameOwner.Offline, FrameOwner.Free);
            _blockZones ??= new Zone?[(Owners.EndPfn >> MaxOrder) + 1];
            for (ulong b = start >> MaxOrder; b < ((end - 1) >> MaxOrder) + 1; b++)
            {
                _blockZones[b] = zone;
            }

            if (zone.SpannedPages == 0 || start < zone.StartPfn)
            {
                zone.StartPfn = zone.SpannedPages == 0 ? start : Math.Min(start, zone.StartPfn);
            }

            zone.EndPfn = Math.Max(zone.EndPfn, end);
            zone.PresentPages += (long)(end - start);
            zone.ManagedPages += (long)(end - first);
            FreeBootRange(zone, first, end);
            InitPerZoneWmarkMinAgain();
        }
    }

    /// <summary>
    /// start_isolate_page_range for memory offlining: refused (false, with the first such frame in
    /// <paramref name="unmovable"/>) when the range holds a frame that can be neither migrated nor
    /// freed (has_unmovable_pages: anything the kernel allocated or memblock reserved; huge page data,
    /// movable pages of a registered owner such as shmem, and free frames are fine). Otherwise every
    /// free block of the range leaves the free lists, and
    /// until <see cref="UndoIsolate"/> or <see cref="OfflineIsolatedPages"/> whatever is freed into
    /// the range stays off them too, so that no allocation can take it back. One range at a time.
    /// </summary>
    public bool TryIsolate(ulong start, ulong end, out ulong unmovable)
    {
        CheckHotplugRange(start, end);
        lock (_lock)
        {
            if (_isolatedEnd > _isolatedStart)
            {
                throw new InvalidOperationException($"frames 0x{_isolatedStart:x}-0x{_isolatedEnd:x} are isolated already: one offline at a time");
            }

            for (unmovable = start; unmovable < end; unmovable++)
            {
                if (Owners[unmovable] is not (FrameOwner.Free or FrameOwner.HugePage) && !IsMovable(unmovable))
                {
                    return false;
                }
            }

            DrainAllPagesLocked(); // offline_pages: drain_all_pages, so the range's free pages are all on the buddy lists
            Zone zone = ZoneOf(start);
            for (ulong p = start; p < end;)
            {
                if (!FreeBlockAt(zone, p, out ulong head, out int order))
                {
                    p++;
                    continue;
                }

                zone.Area(order).Remove(head);
                zone.FreePages -= 1L << order;
                _isolatedFree += 1L << order;
                p = head + (1UL << order);
            }

            (_isolatedStart, _isolatedEnd) = (start, end);
            return true;
        }
    }

    /// <summary>test_pages_isolated: every frame of the isolated range is free.</summary>
    public bool IsolatedRangeIsFree
    {
        get
        {
            lock (_lock)
            {
                return _isolatedEnd > _isolatedStart && _isolatedFree == (long)(_isolatedEnd - _isolatedStart);
            }
        }
    }

    /// <summary>undo_isolate_page_range: the isolated range's free frames go back to the free lists, merging.</summary>
    public void UndoIsolate()
    {
        lock (_lock)
        {
            UndoIsolateLocked();
        }
    }

    private void UndoIsolateLocked()
    {
        (ulong start, ulong end) = (_isolatedStart, _isolatedEnd);
        (_isolatedStart, _isolatedEnd, _isolatedFree) = (0, 0, 0);
        Zone zone = ZoneOf(start);
        for (ulong p = start; p < end;)
        {
            if (Owners[p] != FrameOwner.Free)
            {
                p++;
                continue;
            }

            ulong run = p;
            while (run < end && Owners[run] == FrameOwner.Free)
            {
                run++;
            }

            FreeRange(zone, p, run);
            p = run;
        }
    }

    /// <summary>
    /// The end of offline_pages, once <see cref="IsolatedRangeIsFree"/>: __offline_isolated_pages
    /// takes the frames out (they become <see cref="FrameOwner.Offline"/>), managed pages drop by
    /// them, present pages by them and the <paramref name="selfHosted"/> struct page frames before
    /// them, the zone's span shrinks if the block was at either end of it (shrink_zone_span), and
    /// init_per_zone_wmark_min runs again.
    /// </summary>
    public void OfflineIsolatedPages(ulong selfHosted)
    {
        lock (_lock)
        {
            (ulong first, ulong end) = (_isolatedStart, _isolatedEnd);
            if (end <= first || _isolatedFree != (long)(end - first))
            {
                throw new InvalidOperationException($"frames 0x{first:x}-0x{end:x} are not isolated and free: undo the isolation instead");
            }

            Zone zone = ZoneOf(first);
            ulong start = first - selfHosted;
            (_isolatedStart, _isolatedEnd, _isolatedFree) = (0, 0, 0);
            Owners.Transfer(first, end - first, FrameOwner.Free, FrameOwner.Offline);
            zone.ManagedPages -= (long)(end - first);
            zone.PresentPages -= (long)(end - start);
            ShrinkZoneSpan(zone, start, end);
            InitPerZoneWmarkMinAgain();
        }
    }

    // shrink_zone_span: a range at the start (or end) of the zone moves the start (end) to the
    // next (previous) frame still online in the zone; one in the middle leaves a hole.
    private void ShrinkZoneSpan(Zone zone, ulong start, ulong end)
    {
        ulong step = MaxOrderFrames;
        if (zone.StartPfn == start)
        {
            ulong p = end;
            while (p < zone.EndPfn && !OnlineIn(zone, p))
            {
                p += step;
            }

            (zone.StartPfn, zone.EndPfn) = p < zone.EndPfn ? (p, zone.EndPfn) : (0UL, 0UL);
        }
        else if (zone.EndPfn == end)
        {
            ulong p = start;
            while (p > zone.StartPfn && !OnlineIn(zone, p - step))
            {
                p -= step;
            }

            (zone.StartPfn, zone.EndPfn) = p > zone.StartPfn ? (zone.StartPfn, p) : (0UL, 0UL);
        }
    }

    private ulong MaxOrderFrames => 1UL << MaxOrder;

    // A frame of the zone that is online (present in it: not offline, not absent).
    private bool OnlineIn(Zone zone, ulong pfn) =>
        ZoneOf(pfn) == zone && Owners[pfn] is not (FrameOwner.Offline or FrameOwner.Absent);

    private bool IsIsolated(ulong pfn) => pfn >= _isolatedStart && pfn < _isolatedEnd;

    // One past the last frame from pfn (below end) in the same zone: zones are ranges at boot, but
    // memory blocks onlined later put a zone's frames anywhere, in max-order blocks.
    private ulong RunEnd(Zone zone, ulong pfn, ulong end)
    {
        if (_blockZones is null)
        {
            return Math.Min(end, zone.EndPfn);
        }

        ulong p = (pfn | (MaxOrderFrames - 1)) + 1;
        while (p < end && ZoneOf(p) == zone)
        {
            p += MaxOrderFrames;
        }

        return Math.Min(p, end);
    }

    // init_per_zone_wmark_min after a block came or went: min_free_kbytes from the free buffer pages
    // (nr_free_buffer_pages: managed above the high watermark in the zones up to ZONE_NORMAL) unless
    // the user's value is larger, then the watermarks and the lowmem reserves.
    private void InitPerZoneWmarkMinAgain()
    {
        long bufferPages = 0;
        foreach (Zone zone in Zones)
        {
            if (zone.Index != MovableZone)
            {
                bufferPages += Math.Max(0, zone.ManagedPages - zone.HighWatermark);
            }
        }

        int computed = (int)Math.Min(int.MaxValue, IntSqrt(((ulong)bufferPages << (Layout.PageShift - 10)) * 16));
        if (computed > _userMinFreeKbytes)
        {
            _minFreeKbytes = Math.Clamp(computed, 128, 262144);
        }

        SetupPerZoneWmarks();
        SetupPerZoneLowmemReserve();
        if (_thp != ThpMode.Never)
        {
            SetRecommendedMinFreeKbytes(); // khugepaged_min_free_kbytes_update
        }
    }

    private void CheckHotplugRange(ulong start, ulong end)
    {
        if (end <= start)
        {
            throw new ArgumentException($"frames 0x{start:x}-0x{end:x} are not a range", nameof(start));
        }

        CheckRange(start, end - start);
    }
}
