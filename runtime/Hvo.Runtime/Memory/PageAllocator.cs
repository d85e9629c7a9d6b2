using System;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Linq;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// The buddy allocator: per node, per zone, free lists of naturally aligned blocks of 2^0 to
/// 2^<see cref="MaxOrder"/> frames. It is created from the boot allocator (memblock_free_all),
/// takes every frame memblock did not reserve, and from then on serves alloc_pages_node,
/// __free_pages, split_page, alloc_contig_pages and free_reserved_page, keeping the frame owner
/// table in step so a double allocation or a free by the wrong owner throws.
/// </summary>
/// <remarks>
/// Host memory follows fragmentation, not machine size: free blocks are bits in sparse bitmaps
/// and entries in per-order queues (<see cref="FreeArea"/>), and allocated blocks above order 0
/// are a bit each, so that a free of part of one (without split_page) can be refused. Every public
/// member takes one lock (the kernel's zone-&gt;lock, here one for all zones), so concurrent callers
/// see one operation at a time.
/// </remarks>
public sealed partial class PageAllocator
{
    private readonly Zone[][] _zones;         // [node][zone index]
    private readonly Zone[] _populated;       // populated zones by ascending start pfn
    private readonly SparseBitmap[] _allocated; // per order >= 1: heads of live allocations of that order
    private readonly SparseBitmap[] _compound;  // per order >= 1: those allocated with __GFP_COMP
    private readonly long[] _live;              // per order >= 1: bits set in _allocated, so an order-0 free skips the orders with none
    private ulong _liveOrders;                  // bit o: _live[o] > 0
    private readonly SparseBitmap _unmanaged;   // PageReserved: frames memblock kept that never joined a zone
    private readonly Lock _lock; // the owner table's (see the constructor)
    private readonly ulong[] _bootZoneEnds; // Layout.ZoneLimits(z).End of every zone but the last, for ZoneIndexOf
    private bool _ownersHeld; // under _lock: an order-0 batch is under way, its transfers need not take the (same) lock again
    private long _allocCalls;
    private long _failedAllocations;
    private long _injectedFailures;
    private long _warnedFailures;

    /// <summary>
    /// memblock_free_all: every frame the boot allocator did not reserve goes to its zone's free
    /// lists as maximal naturally aligned blocks (__free_pages_core, to the tail so the lowest
    /// frames are handed out first); then the watermarks and lowmem reserves are set up.
    /// </summary>
    public PageAllocator(BootAllocator boot, FaultInjection? faults = null)
    {
        ArgumentNullException.ThrowIfNull(boot);
        Layout = boot.Layout;
        Owners = boot.Owners;
        // zone->lock is the owner table's lock: every allocation and free changes owners inside it,
        // so one lock taken once serves both (the owner table's other writers, memblock and
        // hotplug, take the same lock; a lock inside it is the same one, reentered).
        _lock = Owners.Sync;
        Faults = faults;
        _bootZoneEnds = [.. Enumerable.Range(0, Layout.Zones.Count - 1).Select(z => Layout.ZoneLimits(z).End)];
        MaxOrder = Layout.MaxOrder;

        IReadOnlyList<(ulong Start, ulong End)> reserved = boot.Release();
        // Indexed by pfn, up to the end of physical memory (hot-added memory lies above the boot
        // memory): the frames below the RAM (FirstPfn) cost a null chunk reference per 2^15.
        ulong physicalEnd = Owners.EndPfn;
        _unmanaged = new SparseBitmap(physicalEnd);
        foreach ((ulong start, ulong end) in reserved)
        {
            _unmanaged.SetRange(start, end);
        }

        _allocated = new SparseBitmap[MaxOrder + 1];
        _compound = new SparseBitmap[MaxOrder + 1];
        _live = new long[MaxOrder + 1];
        for (int order = 1; order <= MaxOrder; order++)
        {
            _allocated[order] = new SparseBitmap((physicalEnd >> order) + 1);
            _compound[order] = new SparseBitmap((physicalEnd >> order) + 1);
        }

        // Every node has the spec's zones and ZONE_MOVABLE, which only memory hotplug populates
        // (online_movable). ZONE_NORMAL and ZONE_MOVABLE may receive any memory block from the
        // node's start up (hot-added memory lies above the boot memory).
        MovableZone = Layout.Zones.Count;
        _zones = new Zone[Layout.Nodes][];
        var populated = new List<Zone>();
        var all = new List<Zone>();
        for (int nid = 0; nid < Layout.Nodes; nid++)
        {
            _zones[nid] = new Zone[Layout.Zones.Count + 1];
            ulong nodeStart = Layout.NodeStart(nid);
            ulong reach = physicalEnd > Layout.EndPfn ? physicalEnd : Layout.NodeEnd(nid);
            for (int z = 0; z <= Layout.Zones.Count; z++)
            {
                bool movable = z == MovableZone;
                (ulong start, ulong end) = movable ? (0UL, 0UL) : Layout.ZoneRange(nid, z);
                bool hotpluggable = z >= Layout.Zones.Count - 1;
                var zone = new Zone(nid, z, movable ? MovableZoneName : Layout.Zones[z].Name, start, end, MaxOrder, Layout.Zones.Count + 1,
                    movable ? nodeStart : hotpluggable ? Math.Min(nodeStart, start) : start, hotpluggable ? Math.Max(reach, end) : end, PageblockType);
                zone.ManagedPages = zone.PresentPages - (long)_unmanaged.Count(start, end);
                zone.PresentPages -= (long)Layout.HoleFrames(start, end); // the firmware's holes are spanned, not present
                _zones[nid][z] = zone;
                all.Add(zone);
                if (zone.IsPopulated)
                {
                    populated.Add(zone);
                }
            }
        }

        Zones = all;
        _populated = [.. populated];
        MarkBootUnmovable(reserved);

        long free = 0;
        int next = 0;
        foreach (Zone zone in _populated)
        {
            ulong pfn = zone.StartPfn;
            while (next > 0 && reserved[next - 1].End > pfn)
            {
                next--;
            }

            for (; next < reserved.Count && reserved[next].Start < zone.EndPfn; next++)
            {
                (ulong start, ulong end) = reserved[next];
                if (end <= pfn)
                {
                    continue;
                }

                FreeBootRange(zone, pfn, Math.Max(pfn, start));
                pfn = Math.Min(end, zone.EndPfn);
            }

            FreeBootRange(zone, pfn, zone.EndPfn);
            free += zone.FreePages;
        }

        if (free != Owners.Count(FrameOwner.Free))
        {
            throw new InvalidOperationException(
                $"memblock left {free} frames free but the owner table has {Owners.Count(FrameOwner.Free)}: frames changed owner outside the boot allocator");
        }

        InitPerZoneWmarkMin();
        SetupPerZoneLowmemReserve();
    }

    /// <summary>The zone's name in /proc/zoneinfo and valid_zones.</summary>
    public const string MovableZoneName = "Movable";

    /// <summary>The boot memory's layout (memory hot-added later lies above it, in <see cref="Owners"/>' frames).</summary>
    public MachineLayout Layout { get; }

    public FrameOwnerTable Owners { get; }

    /// <summary>ZONE_MOVABLE's index among a node's zones: after the spec's zones.</summary>
    public int MovableZone { get; }

    /// <summary>fail_page_alloc: consulted first by every allocation; null for none.</summary>
    public FaultInjection? Faults { get; set; }

    /// <summary>The highest order of a free block.</summary>
    public int MaxOrder { get; }

    /// <summary>Every zone of every node, node by node, lowest zone first (empty zones too).</summary>
    public IReadOnlyList<Zone> Zones { get; }

    /// <summary>Frames the allocator manages: MemTotal (totalram_pages).</summary>
    public long ManagedPages => Sum(-1, static z => z.ManagedPages);

    /// <summary>Frames in the free lists: MemFree (NR_FREE_PAGES). A method frees pages, hence the kernel's counter name.</summary>
    public long NrFreePages => Sum(-1, static z => z.FreePages);

    /// <summary>Calls to <see cref="TryAllocPages"/> and <see cref="TryAllocContigPages"/>.</summary>
    public long AllocCalls => Interlocked.Read(ref _allocCalls);

    /// <summary>Allocation calls that returned false, injected ones included.</summary>
    public long FailedAllocations => Interlocked.Read(ref _failedAllocations);

    /// <summary>Allocation calls failed by <see cref="Faults"/>.</summary>
    public long InjectedFailures => Interlocked.Read(ref _injectedFailures);

    /// <summary>Failed allocations without <see cref="Gfp.NoWarn"/>: the kernel would have logged "page allocation failure" (warn_alloc).</summary>
    public long WarnedFailures => Interlocked.Read(ref _warnedFailures);

    public Zone GetZone(int nid, int zone)
    {
        CheckNode(nid);
        if ((uint)zone > (uint)MovableZone)
        {
            throw new ArgumentOutOfRangeException(nameof(zone), zone, $"nodes have {MovableZone + 1} zones");
        }

        return _zones[nid][zone];
    }

    /// <summary>Managed frames of node <paramref name="nid"/>.</summary>
    public long NodeManagedPages(int nid)
    {
        CheckNode(nid);
        return Sum(nid, static z => z.ManagedPages);
    }

    /// <summary>Free frames of node <paramref name="nid"/>.</summary>
    public long NodeFreePages(int nid)
    {
        CheckNode(nid);
        return Sum(nid, static z => z.FreePages);
    }

    /// <summary>Free blocks of <paramref name="order"/> in every zone.</summary>
    public long FreeBlocks(int order)
    {
        CheckOrder(order);
        return Sum(-1, z => z.FreeBlocks(order));
    }

    /// <summary>
    /// alloc_pages_node: a naturally aligned block of 2^<paramref name="order"/> frames for
    /// <paramref name="owner"/>. Fault injection is asked first (should_fail_alloc_page; a failure
    /// it injects changes nothing but counters). Then the zonelist: the node's zones highest first,
    /// then, unless <see cref="Gfp.ThisNode"/>, the other nodes' (nid + 1, nid + 2, ..., wrapping,
    /// as build_zonelists orders equidistant nodes). A zone serves if it passes
    /// __zone_watermark_ok at its min watermark: with no kswapd or reclaim modelled, the min
    /// watermark of the slow path is where the kernel finally fails. The smallest free block of at
    /// least the order is split (expand), the unused halves going back to the heads of their lists.
    /// False when no zone can serve: the caller's -ENOMEM.
    /// </summary>
    public bool TryAllocPages(int nid, int order, Gfp gfp, AllocSite site, FrameOwner owner, out ulong pfn)
    {
        CheckNode(nid);
        CheckOrder(order);
        CheckOwner(owner);
        lock (_lock)
        {
            return TryAllocPagesLocked(nid, order, gfp, site, owner, out pfn);
        }
    }

    /// <summary>
    /// <paramref name="count"/> order-0 pages into <paramref name="pages"/>, one after the other, each
    /// exactly as <see cref="TryAllocPages"/> would give it (alloc_vmemmap_page_list's loop of
    /// alloc_pages_node), under one hold of the lock rather than one per page; stops at the first
    /// page that cannot be had, which counts as that call's failure would. Returns the pages added.
    /// </summary>
    public int TryAllocOrder0Pages(int nid, Gfp gfp, AllocSite site, FrameOwner owner, int count, List<ulong> pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        CheckNode(nid);
        CheckOwner(owner);
        using BatchHold hold = HoldForBatch();
        int highest = HighestZone(gfp); // the request's, the same for every page
        for (int i = 0; i < count;)
        {
            int taken = Order0Runs ? TakePcpHeadRun(nid, gfp, highest, owner, count - i, pages) : 0;
            if (taken > 0)
            {
                i += taken;
                continue;
            }

            if (!TryAllocPagesLocked(nid, 0, gfp, site, owner, highest, out ulong pfn))
            {
                return i;
            }

            pages.Add(pfn);
            i++;
        }

        return count;
    }

    // The body of alloc_pages_node, under the lock.
    private bool TryAllocPagesLocked(int nid, int order, Gfp gfp, AllocSite site, FrameOwner owner, out ulong pfn) =>
        TryAllocPagesLocked(nid, order, gfp, site, owner, HighestZone(gfp), out pfn);

    // The same, with the request's highest zone (gfp_zone) known.
    private bool TryAllocPagesLocked(int nid, int order, Gfp gfp, AllocSite site, FrameOwner owner, int highest, out ulong pfn)
    {
        if (InjectFailure(site, order, gfp))
        {
            return Fail(gfp, out pfn);
        }

        MigrateType type = GfpMigrateType(gfp);
        do
        {
            foreach (Zone zone in Zonelist(nid, gfp, highest))
            {
                if (zone.IsPopulated && ZoneWatermarkOk(zone, order, zone.MinWatermark, highest) && Rmqueue(zone, order, type, out pfn))
                {
                    Commit(zone, pfn, order, gfp, owner);
                    return true;
                }
            }
        }
        while (DrainsBeforeFailing(gfp) && DrainAllPagesLocked()); // __alloc_pages_direct_reclaim: drain the per-CPU lists and retry

        return Fail(gfp, out pfn);
    }

    /// <summary>
    /// Whether the slow path drains the per-CPU lists before a request fails (__alloc_pages_slowpath).
    /// The kernel drains them (drain_all_pages) only in __alloc_pages_direct_reclaim, and only after
    /// reclaim made progress; Hvo has nothing reclaimable (shmem without swap, no page cache), so a
    /// request that gives up rather than kill (__GFP_NORETRY: one round of direct reclaim; and
    /// __GFP_RETRY_MAYFAIL, which later kernels' alloc_vmemmap_page_list asks instead and which
    /// retries reclaim that makes no progress and fails the same way) fails with the pages on the
    /// lists unseen by the watermarks. Every other request would go on to the OOM killer, which is
    /// not modelled: draining and retrying once stands in for it (docs/ARCHITECTURE.md, "Per-CPU
    /// page lists").
    /// </summary>
    private static bool DrainsBeforeFailing(Gfp gfp) => (gfp & Gfp.NoRetry) == 0;

    /// <summary>should_fail_alloc_page, with the call counted whatever it decides.</summary>
    private bool InjectFailure(AllocSite site, int order, Gfp gfp)
    {
        _allocCalls++;
        if (Faults?.ShouldFail(site, order, gfp) != true)
        {
            return false;
        }

        _injectedFailures++;
        return true;
    }

    /// <summary>
    /// The zonelist of a request (build_zonelists): the node's zones from the highest the request
    /// allows down, then, without __GFP_THISNODE, the other nodes' in node order from the next one.
    /// </summary>
    private ZonelistWalk Zonelist(int nid, Gfp gfp) => Zonelist(nid, gfp, HighestZone(gfp));

    private ZonelistWalk Zonelist(int nid, Gfp gfp, int highest) =>
        new(_zones, nid, (gfp & Gfp.ThisNode) != 0 ? 1 : Layout.Nodes, highest);

    private struct ZonelistWalk(Zone[][] zones, int nid, int nodes, int highest)
    {
        private int _node = -1;
        private int _zone = -1;
        private Zone[] _nodeZones = [];

        public readonly ZonelistWalk GetEnumerator() => this;

        public readonly Zone Current => _nodeZones[_zone];

        public bool MoveNext()
        {
            if (_zone > 0)
            {
                _zone--;
                return true;
            }

            if (++_node >= nodes)
            {
                return false;
            }

            // (nid + _node) % zones.Length without a division, once per node rather than per zone.
            int n = nid + _node;
            while (n >= zones.Length)
            {
                n -= zones.Length;
            }

            _nodeZones = zones[n];
            _zone = highest;
            return true;
        }
    }

    /// <summary>
    /// __free_pages: give back the block of 2^<paramref name="order"/> frames at
    /// <paramref name="pfn"/> that <paramref name="owner"/> was given, merging it with free buddies
    /// up to <see cref="MaxOrder"/> (__free_one_page). Refused (throws, changing nothing): frames
    /// that are not all <paramref name="owner"/>'s (a double free, or the wrong owner); an order
    /// other than the allocation's; one page of a higher-order allocation that was not
    /// <see cref="SplitPage"/>-split; and a frame memblock reserved, which only
    /// <see cref="FreeReservedPage"/> may free.
    /// </summary>
    public void FreePages(ulong pfn, int order, FrameOwner owner)
    {
        CheckOrder(order);
        CheckOwner(owner);
        CheckBlock(pfn, order);
        if (order > 0 && !PrepareFree(pfn, 1UL << order, owner))
        {
            return;
        }

        lock (_lock)
        {
            FreePagesLocked(pfn, order, owner);
        }
    }

    /// <summary>
    /// The order-0 pages [<paramref name="pfn"/>, +<paramref name="count"/>) freed one after the
    /// other, each exactly as <see cref="FreePages"/> frees it (free_vmemmap_page_list's loop of
    /// __free_page), under one hold of the lock rather than one per page. A page refused throws, the
    /// pages before it freed.
    /// </summary>
    public void FreeOrder0Pages(ulong pfn, ulong count, FrameOwner owner)
    {
        CheckOwner(owner);
        CheckRange(pfn, count);
        using BatchHold hold = HoldForBatch();
        if (count > 1 && TryFreePcpRun(pfn, 1, count, owner))
        {
            return;
        }

        for (ulong end = pfn + count; pfn < end; pfn++)
        {
            FreePagesLocked(pfn, 0, owner);
        }
    }

    /// <summary>
    /// <see cref="FreeOrder0Pages(ulong, ulong, FrameOwner)"/> for pages in any order: each freed in
    /// turn, exactly as its own <see cref="FreePages"/> would (to the per-CPU list's head, so the
    /// order matters), under one hold of the lock (the owner table's too: they are one).
    /// </summary>
    public void FreeOrder0Pages(ReadOnlySpan<ulong> pfns, FrameOwner owner)
    {
        CheckOwner(owner);
        foreach (ulong pfn in pfns)
        {
            CheckRange(pfn, 1);
        }

        using BatchHold hold = HoldForBatch();
        for (int i = 0; i < pfns.Length;)
        {
            // The longest stretch from i whose pages step by one, up or down: one run for the per-CPU list.
            int n = 1;
            long step = pfns.Length - i > 1 ? (long)(pfns[i + 1] - pfns[i]) : 0;
            if (step is 1 or -1)
            {
                for (n = 2; i + n < pfns.Length && (long)(pfns[i + n] - pfns[i + n - 1]) == step; n++)
                {
                }
            }

            if (n == 1 || !TryFreePcpRun(pfns[i], step, (ulong)n, owner))
            {
                for (int end = i + n; i < end; i++)
                {
                    FreePagesLocked(pfns[i], 0, owner);
                }

                continue;
            }

            i += n;
        }
    }

    // An order-0 batch's hold: the allocator's lock, which is the owner table's, so each page's
    // owner transfer inside the batch need not enter it again (TransferOwners).
    private BatchHold HoldForBatch()
    {
        Lock.Scope held = _lock.EnterScope();
        bool outer = _ownersHeld; // a batch inside a batch (the lock is reentrant) leaves the outer one's flag as it found it
        _ownersHeld = true;
        return new BatchHold(this, held, outer);
    }

    private ref struct BatchHold
    {
        private readonly PageAllocator _pages;
        private readonly bool _outer;
        private Lock.Scope _held;

        public BatchHold(PageAllocator pages, Lock.Scope held, bool outer)
        {
            _pages = pages;
            _outer = outer;
            _held = held;
        }

        public void Dispose()
        {
            _pages._ownersHeld = _outer;
            _held.Dispose();
        }
    }

    // FrameOwnerTable.Transfer, with the table's lock unless a batch holds it already.
    private void TransferOwners(ulong pfn, ulong count, FrameOwner expected, FrameOwner owner)
    {
        if (_ownersHeld)
        {
            Owners.TransferHeld(pfn, count, expected, owner);
        }
        else
        {
            Owners.Transfer(pfn, count, expected, owner);
        }
    }

    // The body of __free_pages, under the lock, once the free-time checks of a compound page passed.
    private void FreePagesLocked(ulong pfn, int order, FrameOwner owner)
    {
        Zone zone = ZoneOf(pfn);
        if (order > 0 ? !_allocated[order].Get(pfn >> order) : BlockAround(pfn, out _) > 0)
        {
            throw new InvalidOperationException(DescribeBadFree(pfn, order));
        }

        if (_unmanaged.Get(pfn))
        {
            throw new InvalidOperationException(
                $"frame 0x{pfn:x} was reserved by memblock and never managed: free it with FreeReservedPage (free_reserved_page), not __free_pages");
        }

        TransferOwners(pfn, 1UL << order, owner, FrameOwner.Free);
        if (order > 0)
        {
            AddLive(order, _allocated[order].Clear(pfn >> order) ? -1 : 0);
            _compound[order].Clear(pfn >> order);
        }

        if (order > 0 || !FreeUnrefPage(zone, pfn))
        {
            FreeOneBlock(zone, pfn, order);
        }
    }

    /// <summary>
    /// split_page: the order-<paramref name="order"/> block at <paramref name="pfn"/> becomes
    /// 2^order pages of order 0, each to be freed on its own. Refused for a block that was not
    /// allocated at that order, and for a compound one (VM_BUG_ON_PAGE(PageCompound)).
    /// </summary>
    public void SplitPage(ulong pfn, int order)
    {
        CheckOrder(order);
        CheckBlock(pfn, order);
        if (order == 0)
        {
            return;
        }

        lock (_lock)
        {
            if (!_allocated[order].Get(pfn >> order))
            {
                throw new InvalidOperationException($"split_page: no order-{order} allocation starts at frame 0x{pfn:x}");
            }

            if (_compound[order].Get(pfn >> order))
            {
                throw new InvalidOperationException($"split_page: the order-{order} block at frame 0x{pfn:x} is a compound page (__GFP_COMP)");
            }

            AddLive(order, _allocated[order].Clear(pfn >> order) ? -1 : 0);
        }
    }

    /// <summary>
    /// free_reserved_page: a frame memblock reserved (a boot vmemmap page, say) joins its zone:
    /// ManagedPages rises by one, so MemTotal does (docs/ARCHITECTURE.md §7.3), and the frame is freed as
    /// order 0. Refused for a frame the page allocator already manages and for the wrong owner.
    /// </summary>
    public void FreeReservedPage(ulong pfn, FrameOwner owner)
    {
        CheckOwner(owner);
        CheckBlock(pfn, 0);
        lock (_lock)
        {
            FreeReservedPageLocked(pfn, owner);
        }
    }

    /// <summary>
    /// <see cref="FreeReservedPage"/> for each of the frames [<paramref name="pfn"/>, +<paramref name="count"/>),
    /// in order, under one hold of the lock, the owner table's too (free_vmemmap_page_list's
    /// free_bootmem_page calls for a run of boot vmemmap frames): each frame exactly as its own call
    /// would, per-CPU lists and their flushes included; a frame refused throws with the frames before it freed.
    /// </summary>
    public void FreeReservedPages(ulong pfn, ulong count, FrameOwner owner)
    {
        CheckOwner(owner);
        CheckRange(pfn, count);
        using BatchHold hold = HoldForBatch();
        ulong end = pfn + count;
        if (_unmanaged.Count(pfn, end) == count && Owners.TryTransferHeld(pfn, count, owner, FrameOwner.Free))
        {
            // Nothing to refuse: the run changes hands and leaves PageReserved at once
            // (the frees below read neither), then each frame is freed in order.
            _unmanaged.ClearRange(pfn, end);
            JoinZoneAndFree(pfn, end);
        }
        else
        {
            for (; pfn < end; pfn++)
            {
                FreeReservedPageLocked(pfn, owner);
            }
        }
    }

    // The body of free_reserved_page, under the lock.
    private void FreeReservedPageLocked(ulong pfn, FrameOwner owner)
    {
        if (!_unmanaged.Get(pfn))
        {
            throw new InvalidOperationException($"free_reserved_page: frame 0x{pfn:x} is managed by the page allocator; free it with FreePages");
        }

        TransferOwners(pfn, 1, owner, FrameOwner.Free);
        _unmanaged.Clear(pfn);
        JoinZoneAndFree(pfn);
    }

    // JoinZoneAndFree for each frame of [pfn, end), in order, a pageblock of a zone at a time
    // (FreeUnrefPages); page by page where there are no per-CPU lists or the run reaches the isolated range.
    private void JoinZoneAndFree(ulong pfn, ulong end)
    {
        while (pfn < end)
        {
            Zone zone = ZoneOf(pfn);
            ulong stop = Math.Min(RunEnd(zone, pfn, end), (pfn | (PageblockFrames - 1)) + 1);
            if (zone.Pagesets.Length == 0 || OverlapsIsolation(pfn, stop - pfn))
            {
                for (; pfn < stop; pfn++)
                {
                    JoinZoneAndFree(pfn);
                }

                continue;
            }

            zone.ManagedPages += (long)(stop - pfn);
            FreeUnrefPages(zone, pfn, stop);
            pfn = stop;
        }
    }

    // A reserved frame, its owner and PageReserved already given up, counts in its zone's managed
    // pages and is freed as order 0 (free_unref_page, or the buddy lists directly).
    private void JoinZoneAndFree(ulong pfn)
    {
        Zone zone = ZoneOf(pfn);
        zone.ManagedPages++;
        if (!FreeUnrefPage(zone, pfn))
        {
            FreeOneBlock(zone, pfn, 0);
        }
    }

    /// <summary>
    /// adjust_managed_page_count for frames memblock reserved that now join their zones without
    /// being freed: what gather_bootmem_prealloc does for gigantic pages allocated at boot, which
    /// count in MemTotal from then on and go back with <see cref="FreeContigRange"/>.
    /// </summary>
    public void AdjustManagedPageCount(ulong pfn, ulong frames, FrameOwner owner)
    {
        CheckOwner(owner);
        CheckRange(pfn, frames);
        lock (_lock)
        {
            if (_unmanaged.Count(pfn, pfn + frames) != frames)
            {
                throw new InvalidOperationException($"frames 0x{pfn:x}+{frames} are not all reserved by memblock");
            }

            Owners.Transfer(pfn, frames, owner, owner);
            _unmanaged.ClearRange(pfn, pfn + frames);
            for (ulong p = pfn, end = pfn + frames; p < end;)
            {
                Zone zone = ZoneOf(p);
                ulong runEnd = RunEnd(zone, p, end);
                zone.ManagedPages += (long)(runEnd - p);
                p = runEnd;
            }
        }
    }

    /// <summary>Whether memblock reserved <paramref name="pfn"/> and it never joined a zone (PageReserved).</summary>
    public bool IsReserved(ulong pfn)
    {
        CheckBlock(pfn, 0);
        lock (_lock)
        {
            return _unmanaged.Get(pfn);
        }
    }

    // __rmqueue_smallest + expand: the high halves go back to the heads of the type's lists.
    private static bool TryRmqueueSmallest(Zone zone, int order, MigrateType type, out ulong pfn)
    {
        for (int current = order; current < zone.FreeAreaCount; current++)
        {
            if (!zone.Area(current).TryTake(type, out pfn))
            {
                continue;
            }

            for (int high = current; high > order; high--)
            {
                zone.Area(high - 1).Add(pfn + (1UL << (high - 1)), toTail: false, type);
            }

            zone.FreePages -= 1L << order;
            return true;
        }

        pfn = 0;
        return false;
    }

    // __zone_watermark_ok: order-0 free pages above the mark plus the lowmem reserve for the
    // request's highest zone, then a free block big enough.
    private static bool ZoneWatermarkOk(Zone zone, int order, long mark, int highestZone)
    {
        long free = zone.FreePages - ((1L << order) - 1);
        if (free <= mark + zone.LowmemReserveFor(highestZone))
        {
            return false;
        }

        if (order == 0)
        {
            return true;
        }

        for (int o = order; o < zone.FreeAreaCount; o++)
        {
            if (zone.FreeBlocks(o) > 0)
            {
                return true;
            }
        }

        return false;
    }

    private void Commit(Zone zone, ulong pfn, int order, Gfp gfp, FrameOwner owner)
    {
        try
        {
            TransferOwners(pfn, 1UL << order, FrameOwner.Free, owner);
        }
        catch (InvalidOperationException)
        {
            FreeOneBlock(zone, pfn, order); // the free lists and the owner table disagree: put it back, then say so
            throw;
        }

        if (order > 0)
        {
            AddLive(order, _allocated[order].Set(pfn >> order) ? 1 : 0);
            if ((gfp & Gfp.Comp) != 0)
            {
                _compound[order].Set(pfn >> order);
            }
        }
    }

    private bool Fail(Gfp gfp, out ulong pfn)
    {
        _failedAllocations++;
        if ((gfp & Gfp.NoWarn) == 0)
        {
            _warnedFailures++;
        }

        pfn = 0;
        return false;
    }

    // __free_one_page: merge with free buddies of the same zone, then add to the head of the
    // list, or to the tail when the merged block's own buddy one order up is free
    // (buddy_merge_likely), so it stays free long enough to merge.
    private void FreeOneBlock(Zone zone, ulong pfn, int order)
    {
        if (IsIsolated(pfn))
        {
            _isolatedFree += 1L << order; // MIGRATE_ISOLATE: free, but kept off the lists and out of NR_FREE_PAGES
            return;
        }

        zone.FreePages += 1L << order;
        while (order < MaxOrder)
        {
            ulong buddy = pfn ^ (1UL << order);
            if (!zone.Area(order).TryRemove(buddy))
            {
                break;
            }

            pfn &= buddy;
            order++;
        }

        bool toTail = order < MaxOrder - 1 && zone.Area(order + 1).IsFree((pfn & ~(1UL << order)) ^ (1UL << (order + 1)));
        zone.Area(order).Add(pfn, toTail);
    }

    // __free_pages_core for one range memblock left free: maximal naturally aligned blocks, in
    // ascending order, each to the tail of its list; the max-order ones as one run.
    private void FreeBootRange(Zone zone, ulong start, ulong end)
    {
        while (start < end)
        {
            int order = LargestBlock(start, end);
            ulong next = order == MaxOrder ? start + ((end - start) & ~((1UL << MaxOrder) - 1)) : start + (1UL << order);
            if (order == MaxOrder)
            {
                zone.Area(order).AddRun(start, next);
            }
            else
            {
                zone.Area(order).Add(start, toTail: true);
            }

            zone.FreePages += (long)(next - start);
            start = next;
        }
    }

    // Frames given back in a range, e.g. by free_contig_range: maximal blocks, merging.
    private void FreeRange(Zone zone, ulong start, ulong end)
    {
        while (start < end)
        {
            int order = LargestBlock(start, end);
            FreeOneBlock(zone, start, order);
            start += 1UL << order;
        }
    }

    private int LargestBlock(ulong start, ulong end)
    {
        int order = Math.Min(MaxOrder, BitOperations.TrailingZeroCount(start));
        while (end - start < 1UL << order)
        {
            order--;
        }

        return order;
    }

    // _live[order] += delta, keeping _liveOrders (a bit per order with a live allocation) in step.
    private void AddLive(int order, int delta)
    {
        _live[order] += delta;
        _liveOrders = _live[order] > 0 ? _liveOrders | (1UL << order) : _liveOrders & ~(1UL << order);
    }

    // The order (> 0) of the live allocation whose block holds pfn, or 0 if none does: lowest order
    // first, only the orders that have one (behind every order-0 free).
    private int BlockAround(ulong pfn, out ulong head)
    {
        for (ulong orders = _liveOrders; orders != 0; orders &= orders - 1)
        {
            int order = BitOperations.TrailingZeroCount(orders);
            if (_allocated[order].Get(pfn >> order))
            {
                head = pfn & ~((1UL << order) - 1);
                return order;
            }
        }

        head = pfn;
        return 0;
    }

    // The lowest order (> 0) of a live allocation whose block holds a frame of [start, end), or 0 if
    // none does: only the orders with a live allocation are looked at.
    private int LiveBlockOrderIn(ulong start, ulong end)
    {
        for (ulong orders = _liveOrders; orders != 0; orders &= orders - 1)
        {
            int order = BitOperations.TrailingZeroCount(orders);
            if (_allocated[order].Any(start >> order, ((end - 1) >> order) + 1))
            {
                return order;
            }
        }

        return 0;
    }

    private string DescribeBadFree(ulong pfn, int order)
    {
        int around = BlockAround(pfn, out ulong head);
        return around > 0
            ? $"__free_pages(0x{pfn:x}, order {order}): the frame is part of the order-{around} block allocated at 0x{head:x}; free that block whole, or split_page it before freeing its pages one by one"
            : $"__free_pages(0x{pfn:x}, order {order}): no order-{order} allocation starts there";
    }

    // gfp_zone: DMA or DMA32 where asked and the spec has it, ZONE_MOVABLE for __GFP_MOVABLE, else ZONE_NORMAL.
    private int HighestZone(Gfp gfp)
    {
        string? name = (gfp & Gfp.Dma) != 0 ? "DMA" : (gfp & Gfp.Dma32) != 0 ? "DMA32" : null;
        for (int z = 0; name is not null && z < Layout.Zones.Count; z++)
        {
            if (Layout.Zones[z].Name == name)
            {
                return z;
            }
        }

        return name is null && (gfp & Gfp.Movable) != 0 ? MovableZone : Layout.Zones.Count - 1;
    }

    /// <summary>page_to_nid: the node of the zone holding <paramref name="pfn"/>.</summary>
    public int PfnToNid(ulong pfn)
    {
        CheckBlock(pfn, 0);
        lock (_lock)
        {
            return ZoneOf(pfn).Node;
        }
    }

    // page_zone: the zone a memory block was onlined into, else the boot layout's.
    private Zone ZoneOf(ulong pfn)
    {
        if (_blockZones is { } onlined && onlined[pfn >> MaxOrder] is { } zone)
        {
            return zone;
        }

        int lo = 0;
        int hi = _populated.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >>> 1;
            if (_populated[mid].StartPfn <= pfn)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return _populated[lo];
    }

    private long Sum(int nid, Func<Zone, long> counter)
    {
        lock (_lock)
        {
            long sum = 0;
            foreach (Zone zone in Zones)
            {
                if (nid < 0 || zone.Node == nid)
                {
                    sum += counter(zone);
                }
            }

            return sum;
        }
    }

    // The checks are small enough to inline on every call; their messages are built apart (Bad*).
    private void CheckNode(int nid)
    {
        if ((uint)nid >= (uint)Layout.Nodes)
        {
            BadNode(nid);
        }
    }

    private void CheckOrder(int order)
    {
        if ((uint)order > (uint)MaxOrder)
        {
            BadOrder(order);
        }
    }

    private void CheckBlock(ulong pfn, int order)
    {
        CheckRange(pfn, 1UL << order);
        if ((pfn & ((1UL << order) - 1)) != 0)
        {
            BadAlignment(pfn, order);
        }
    }

    private void CheckRange(ulong pfn, ulong frames)
    {
        if (frames == 0 || pfn < Owners.FirstPfn || pfn >= Owners.EndPfn || frames > Owners.EndPfn - pfn)
        {
            BadRange(pfn, frames);
        }
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void BadNode(int nid) => throw new ArgumentOutOfRangeException(nameof(nid), nid, $"the machine has {Layout.Nodes} nodes");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void BadOrder(int order) => throw new ArgumentOutOfRangeException(nameof(order), order, $"orders are 0..{MaxOrder}");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void BadAlignment(ulong pfn, int order) => throw new ArgumentException($"frame 0x{pfn:x} is not aligned to an order-{order} block", nameof(pfn));

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void BadRange(ulong pfn, ulong frames) =>
        throw new ArgumentOutOfRangeException(nameof(pfn), $"frames 0x{pfn:x}+{frames} are not a range of the machine's {Owners.Frames} frames from 0x{Owners.FirstPfn:x}");

    private static void CheckOwner(FrameOwner owner)
    {
        if (owner == FrameOwner.Free)
        {
            throw new ArgumentException("an allocation's owner cannot be Free", nameof(owner));
        }
    }
}
