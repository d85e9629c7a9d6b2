using System;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Hvo.Memory;

/// <summary>
/// Per-CPU page lists for order 0 (mm/page_alloc.c as of v6.1): an order-0 allocation that passed
/// the zone's watermark takes a page from the current CPU's list of its migrate type, which an
/// empty list refills with a batch from the buddy lists (rmqueue_bulk); an order-0 free goes to the
/// list of its pageblock's type, and when the CPU's count reaches high a batch (growing while frees
/// follow frees) goes back to the buddy lists (free_pcppages_bulk). Pages on the lists are not in
/// NR_FREE_PAGES (MemFree), so the watermarks see less than is free. An allocation that no zone can
/// serve drains every list and tries once more only where the OOM killer would come next: a
/// __GFP_NORETRY one fails as it is, since __alloc_pages_direct_reclaim drains (drain_all_pages)
/// only after reclaim made progress (<see cref="DrainsBeforeFailing"/>). docs/ARCHITECTURE.md §5.
/// </summary>
/// <remarks>
/// Every caller runs on CPU 0 (the shell's CPU): the other CPUs' lists exist, with their high and
/// batch, and stay empty. Higher orders (v5.13's pcp lists up to PAGE_ALLOC_COSTLY_ORDER and THP's
/// pageblock order, where a freed 2 MiB huge page would wait too: MemFree would lag; the pressure
/// thresholds would not move), v6.7's adaptive high between high_min and high_max and its batch scaling,
/// and the ZONE_RECLAIM_ACTIVE cap (no kswapd here) are not modelled.
/// </remarks>
public sealed partial class PageAllocator
{
    /// <summary>MIN_PERCPU_PAGELIST_HIGH_FRACTION: the smallest non-zero vm.percpu_pagelist_high_fraction.</summary>
    public const int MinPercpuPagelistHighFraction = 8;

    private int _cpus;
    private int _percpuPagelistHighFraction;
    private long _pcpPages;

    /// <summary>CPUs with per-CPU page lists: 0 before <see cref="SetupPerCpuPageset"/>, and then no list is used.</summary>
    public int Cpus
    {
        get
        {
            lock (_lock)
            {
                return _cpus;
            }
        }
    }

    /// <summary>Pages on every per-CPU list: free frames that MemFree does not count.</summary>
    public long PcpPages
    {
        get
        {
            lock (_lock)
            {
                return _pcpPages;
            }
        }
    }

    /// <summary>
    /// vm.percpu_pagelist_high_fraction: 0 (the default) sizes high from the zone's low watermark,
    /// N from its managed pages / N; a write recomputes every zone's high and batch (zone_pcp_update).
    /// </summary>
    public int PercpuPagelistHighFraction
    {
        get
        {
            lock (_lock)
            {
                return _percpuPagelistHighFraction;
            }
        }

        set
        {
            if (value != 0 && value < MinPercpuPagelistHighFraction)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"0, or at least {MinPercpuPagelistHighFraction}");
            }

            lock (_lock)
            {
                _percpuPagelistHighFraction = value;
                ZonePcpUpdate();
            }
        }
    }

    /// <summary>
    /// setup_per_cpu_pageset: each zone gets a pageset on each of <paramref name="cpus"/> CPUs (CPU c on
    /// node c % nodes, as <see cref="MachineConfig.Cpus"/> places them), with high and batch set.
    /// </summary>
    public void SetupPerCpuPageset(int cpus)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cpus, 1);
        lock (_lock)
        {
            if (_cpus != 0)
            {
                throw new InvalidOperationException("the per-CPU pagesets are set up once, at boot");
            }

            _cpus = cpus;
            foreach (Zone zone in Zones)
            {
                var sets = new PerCpuPages[cpus];
                for (int cpu = 0; cpu < cpus; cpu++)
                {
                    sets[cpu] = new PerCpuPages(cpu);
                }

                zone.Pagesets = sets;
            }

            ZonePcpUpdate();
        }
    }

    /// <summary>A zone's pageset on <paramref name="cpu"/>.</summary>
    public PerCpuPages Pageset(Zone zone, int cpu)
    {
        ArgumentNullException.ThrowIfNull(zone);
        lock (_lock)
        {
            if ((uint)cpu >= (uint)zone.Pagesets.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"the machine has {_cpus} CPUs with pagesets");
            }

            return zone.Pagesets[cpu];
        }
    }

    /// <summary>drain_all_pages(NULL): every CPU's lists of every zone back to the buddy lists.</summary>
    public void DrainAllPages()
    {
        lock (_lock)
        {
            DrainAllPagesLocked();
        }
    }

    /// <summary>
    /// zone_batchsize: about a quarter of the zone's managed pages / 1024, at most a quarter of 1 MiB
    /// of pages, then rounddown_pow_of_two(batch * 1.5) - 1 (63 for a zone of 1 GiB or more with 4 KiB pages).
    /// </summary>
    public int ZoneBatchsize(Zone zone)
    {
        ArgumentNullException.ThrowIfNull(zone);
        long batch = Math.Min(zone.ManagedPages >> 10, (1L << 20) >> Layout.PageShift) / 4;
        batch = Math.Max(batch, 1);
        return (1 << (Fls(batch + (batch / 2)) - 1)) - 1;
    }

    // zone_highsize: the zone's low watermark (or managed pages / the high fraction) split over the
    // CPUs of its node, and at least 4 batches.
    private int ZoneHighsize(Zone zone, int batch)
    {
        long total = _percpuPagelistHighFraction == 0 ? zone.LowWatermark : zone.ManagedPages / _percpuPagelistHighFraction;
        int split = CpusOfNode(zone.Node);
        if (split == 0)
        {
            split = _cpus;
        }

        return (int)Math.Max(total / split, (long)batch << 2);
    }

    private int CpusOfNode(int nid)
    {
        int n = 0;
        for (int cpu = 0; cpu < _cpus; cpu++)
        {
            n += cpu % Layout.Nodes == nid ? 1 : 0;
        }

        return n;
    }

    // zone_pcp_update for every zone (setup_per_zone_wmarks ends with it): zone_set_pageset_high_and_batch.
    private void ZonePcpUpdate()
    {
        if (_cpus == 0)
        {
            return;
        }

        foreach (Zone zone in Zones)
        {
            int batch = Math.Max(1, ZoneBatchsize(zone));
            int high = ZoneHighsize(zone, batch);
            foreach (PerCpuPages pcp in zone.Pagesets)
            {
                (pcp.Batch, pcp.High) = (batch, high);
            }
        }
    }

    // rmqueue for an order: order 0 through the current CPU's list once the lists are set up.
    private bool Rmqueue(Zone zone, int order, MigrateType type, out ulong pfn) =>
        order == 0 && zone.Pagesets.Length > 0 && (uint)type < FreeAreaSet.ListTypes
            ? TryRmqueuePcplist(zone, type, out pfn)
            : TryRmqueue(zone, order, type, out pfn);

    // rmqueue_pcplist: the head of the type's list, which an empty list first fills with a batch
    // taken from the buddy lists one page at a time (rmqueue_bulk, appending to the tail).
    private bool TryRmqueuePcplist(Zone zone, MigrateType type, out ulong pfn)
    {
        PerCpuPages pcp = zone.Pagesets[CurrentCpu];
        pcp.FreeFactor >>= 1;
        PcpList list = pcp.Lists[(int)type];
        if (list.Count == 0)
        {
            for (int i = 0; i < pcp.Batch && TryRmqueue(zone, 0, type, out ulong page); i++)
            {
                list.AddTail(page);
                pcp.Count++;
                _pcpPages++;
            }

            if (list.Count == 0)
            {
                pfn = 0;
                return false;
            }
        }

        pfn = list.TakeHead();
        pcp.Count--;
        _pcpPages--;
        return true;
    }

    /// <summary>
    /// Whether an order-0 batch (<see cref="TryAllocOrder0Pages"/>, <see cref="FreeOrder0Pages(ReadOnlySpan{ulong}, FrameOwner)"/>)
    /// moves a run of pages that step by one to or from the per-CPU list's head at once
    /// (<see cref="TakePcpHeadRun"/>, <see cref="TryFreePcpRun"/>) when every page's call would do
    /// just that; false: one call per page, the tests' reference.
    /// </summary>
    internal bool Order0Runs { get; set; } = true;

    /// <summary>The runs an order-0 batch moved to or from a per-CPU list at once (<see cref="Order0Runs"/>), for tests.</summary>
    internal long Order0RunsMoved { get; private set; }

    // rmqueue_pcplist for as many of `max` order-0 pages as the next calls would each take off the
    // head run of one per-CPU list, at once: fault injection passes order 0 by without counting it
    // (should_fail_alloc_page's min-order, 1 by default), the request's first zone
    // that is populated and passes its watermark has the list (the pops leave its NR_FREE_PAGES,
    // and so every zone's watermark, as they are), and the pages are the head run's, stepping by
    // one so they change owner as one range. Each page counts as its call would (the call, the
    // halved free factor, the list's count). 0 when the next call does more than that: the caller
    // makes it.
    private int TakePcpHeadRun(int nid, Gfp gfp, int highest, FrameOwner owner, int max, List<ulong> pages)
    {
        MigrateType type = GfpMigrateType(gfp);
        if ((Faults is { } faults && faults.MinOrder == 0) || (uint)type >= FreeAreaSet.ListTypes)
        {
            return 0;
        }

        foreach (Zone zone in Zonelist(nid, gfp, highest))
        {
            if (!zone.IsPopulated || !ZoneWatermarkOk(zone, 0, zone.MinWatermark, highest))
            {
                continue;
            }

            if (zone.Pagesets.Length == 0)
            {
                return 0;
            }

            PerCpuPages pcp = zone.Pagesets[CurrentCpu];
            PcpList list = pcp.Lists[(int)type];
            if (list.Count == 0)
            {
                return 0; // the call refills the list (rmqueue_bulk)
            }

            int n = Math.Min(max, list.PeekHeadRun(out ulong first, out long step));
            if (step is not (1 or -1))
            {
                n = 1;
            }

            ulong low = step < 0 ? first - (ulong)(n - 1) : first;
            if (!Owners.TryTransferHeld(low, (ulong)n, FrameOwner.Free, owner))
            {
                return 0; // the call's Commit says which page is wrong
            }

            list.DropHead(n);
            Order0RunsMoved++;
            for (int i = 0; i < n; i++)
            {
                pages.Add(first + (ulong)(step * i));
            }

            _allocCalls += n;
            pcp.FreeFactor = n < 32 ? pcp.FreeFactor >> n : 0;
            pcp.Count -= n;
            _pcpPages -= n;
            return n;
        }

        return 0;
    }

    // __free_page for `count` order-0 pages first, first + step, ... (step 1 or -1), in that order,
    // at once, when none is refused and each goes to the per-CPU list: the run lies in one
    // pageblock of one zone that has the lists, none of it isolated, each page its own allocation
    // (no higher-order block around it), managed, and `owner`'s. False, with nothing changed, when
    // one page's call would do anything else: the caller frees them one by one.
    private bool TryFreePcpRun(ulong first, long step, ulong count, FrameOwner owner)
    {
        if (!Order0Runs)
        {
            return false;
        }

        ulong low = step < 0 ? first - (count - 1) : first;
        ulong end = low + count;
        Zone zone = ZoneOf(low);
        // LiveBlockOrderIn: BlockAround for every page at once.
        if (zone.Pagesets.Length == 0 || end > (low | (PageblockFrames - 1)) + 1 || RunEnd(zone, low, end) != end
            || OverlapsIsolation(low, count) || _unmanaged.Any(low, end) || LiveBlockOrderIn(low, end) > 0
            || !Owners.TryTransferHeld(low, count, owner, FrameOwner.Free))
        {
            return false;
        }

        FreeUnrefPages(zone, first, step, count);
        Order0RunsMoved++;
        return true;
    }

    // The CPU every caller runs on.
    private const int CurrentCpu = 0;

    // free_unref_page for an order-0 page: to the head of its pageblock's type's list, then a batch
    // back to the buddy lists if the count reached high. False when the page goes to the buddy lists
    // directly: before the pagesets exist, or from an isolated pageblock (free_one_page).
    private bool FreeUnrefPage(Zone zone, ulong pfn)
    {
        if (zone.Pagesets.Length == 0 || IsIsolated(pfn))
        {
            return false;
        }

        FreeUnrefPages(zone, pfn, 1, 1);
        return true;
    }

    // free_unref_page for each page of [pfn, end), in order: FreeUnrefPages from pfn up.
    private void FreeUnrefPages(Zone zone, ulong pfn, ulong end) => FreeUnrefPages(zone, pfn, 1, end - pfn);

    // free_unref_page for `count` pages first, first + step, ..., in that order: pages of one
    // pageblock (one type), with the lists set up and none isolated. They go to the list's head in a
    // row up to the count that reaches high, then free_pcppages_bulk, as one page after the other
    // would (a flush changes no pageblock's type).
    private void FreeUnrefPages(Zone zone, ulong first, long step, ulong count)
    {
        MigrateType type = PageblockType(first);
        PerCpuPages pcp = zone.Pagesets[CurrentCpu];
        PcpList list = pcp.Lists[(uint)type < FreeAreaSet.ListTypes ? (int)type : (int)MigrateType.Movable];
        ulong pfn = first;
        while (count > 0)
        {
            int n = (int)Math.Min(count, (ulong)Math.Max(1, pcp.High - pcp.Count));
            count -= (ulong)n;
            for (int i = 0; i < n; i++, pfn += (ulong)step)
            {
                list.AddHead(pfn);
            }

            pcp.Count += n;
            _pcpPages += n;
            if (pcp.Count >= pcp.High)
            {
                FreePcppagesBulk(zone, pcp, NrPcpFree(pcp), (int)type);
            }
        }
    }

    // nr_pcp_free: batch << free_factor (free_factor growing while that stays below high - batch),
    // clamped to [batch, high - batch]; one page when high is below batch.
    private static int NrPcpFree(PerCpuPages pcp)
    {
        int high = pcp.High, batch = pcp.Batch;
        if (high < batch)
        {
            return 1;
        }

        int max = high - batch;
        int n = batch << pcp.FreeFactor;
        if (n < max)
        {
            pcp.FreeFactor++;
        }

        return Math.Clamp(n, batch, Math.Max(batch, max));
    }

    // free_pcppages_bulk: `count` pages from the tails of the lists, round-robin from `first`, to the buddy lists.
    private void FreePcppagesBulk(Zone zone, PerCpuPages pcp, int count, int first)
    {
        int index = first - 1;
        while (count > 0 && pcp.Count > 0)
        {
            PcpList list;
            do
            {
                index = (index + 1) % pcp.Lists.Length;
                list = pcp.Lists[index];
            }
            while (list.Count == 0);

            do
            {
                // A run of the list's tail at a time, page by page from its tail end: pages of
                // ascending pfns as their aligned blocks, which leaves the same free lists.
                int n = list.TakeTailRun(count, out ulong pfn, out long step);
                count -= n;
                pcp.Count -= n;
                _pcpPages -= n;
                if (n > 1 && step == -1 && BulkFreeByBlocks && !OverlapsIsolation(pfn, (ulong)n))
                {
                    FreeRange(zone, pfn, pfn + (ulong)n);
                    RunsFreedByBlocks++;
                    continue;
                }

                for (int i = 0; i < n; i++, pfn -= (ulong)step)
                {
                    FreeOneBlock(zone, pfn, 0);
                }
            }
            while (count > 0 && list.Count > 0);
        }
    }

    /// <summary>
    /// Whether free_pcppages_bulk gives a run of the list's tail whose pfns ascend one by one
    /// (HVO's freed vmemmap frames, in the order they were freed) to the buddy lists as the aligned
    /// blocks it is made of (<see cref="FreeRange"/>), each merged once, rather than page by page;
    /// false: page by page, the tests' reference. The free lists come out the same: while the
    /// pages of an aligned block go in one after the other, each merge stays inside the block, so
    /// the last page's merges take the block whole into __free_one_page at its order, with the rest
    /// of the zone as it would find it; the blocks the pages make on the way are merged away again,
    /// and a block's place on its list does not depend on them (<see cref="FreeArea"/>). A run
    /// that reaches an isolated range goes page by page.
    /// </summary>
    internal bool BulkFreeByBlocks { get; set; } = true;

    /// <summary>The runs free_pcppages_bulk gave back as blocks (<see cref="BulkFreeByBlocks"/>), for tests.</summary>
    internal long RunsFreedByBlocks { get; private set; }

    // Whether [pfn, +count) reaches the isolated range (memory offline's, alloc_contig_pages').
    private bool OverlapsIsolation(ulong pfn, ulong count) => pfn < _isolatedEnd && pfn + count > _isolatedStart;

    // drain_all_pages: true when a list held anything.
    private bool DrainAllPagesLocked()
    {
        if (_pcpPages == 0)
        {
            return false;
        }

        foreach (Zone zone in Zones)
        {
            foreach (PerCpuPages pcp in zone.Pagesets)
            {
                FreePcppagesBulk(zone, pcp, pcp.Count, 0);
            }
        }

        return true;
    }

    // zoneinfo_show_print's pagesets: each online CPU's count, high and batch, then the zone's
    // vmstat threshold (calculate_normal_threshold).
    private void AppendPagesets(StringBuilder text, Zone zone)
    {
        if (zone.Pagesets.Length == 0)
        {
            return;
        }

        text.Append("\n  pagesets");
        int threshold = Math.Min(125, 2 * Fls(_cpus) * (1 + Fls(zone.ManagedPages >> (27 - Layout.PageShift))));
        foreach (PerCpuPages pcp in zone.Pagesets)
        {
            text.Append(CultureInfo.InvariantCulture, $"\n    cpu: {pcp.Cpu}");
            text.Append(CultureInfo.InvariantCulture, $"\n              count: {pcp.Count}");
            text.Append(CultureInfo.InvariantCulture, $"\n              high:  {pcp.High}");
            text.Append(CultureInfo.InvariantCulture, $"\n              batch: {pcp.Batch}");
            text.Append(CultureInfo.InvariantCulture, $"\n  vm stats threshold: {threshold}");
        }
    }

    // fls: the 1-based index of the highest set bit, 0 for 0.
    private static int Fls(long x) => x <= 0 ? 0 : 64 - BitOperations.LeadingZeroCount((ulong)x);
}
