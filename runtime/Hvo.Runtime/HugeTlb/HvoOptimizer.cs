using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.HugeTlb;

/// <summary>
/// mm/hugetlb_vmemmap.c on the simulated machine: optimize (vmemmap_remap_free), restore
/// (vmemmap_remap_alloc) and the batched variant, each one walk of the kernel page table with the
/// visitors of VmemmapRemap.cs. The <see cref="HvoPolicy"/> picks the kernel version's choices
/// (reserve, head copy, reset, batching); how a live entry changes is the machine's entry writer,
/// so nothing here depends on the architecture's rule.
/// </summary>
/// <remarks>
/// Several CPUs (threads, <see cref="Machine{TArch}.RunOnCpu"/>) may optimize and restore
/// different huge pages at once, as allocating and freeing tasks do in the kernel: the frame lists
/// of a call are its own (the kernel's on-stack vmemmap_pages list), the counters add what each
/// walk reports of itself, and the page table, the allocator and the TLBs do their own locking.
/// One huge page is worked on by one CPU at a time, as the kernel's folio is.
/// </remarks>
public class HvoOptimizer<TArch> : IVmemmapOptimizer where TArch : struct, IPagingArch
{
    private readonly Machine<TArch> _machine;
    private readonly HvoCounterTable _counters;
    // v7.1's shared tail pages: replaced whole under the lock when one is added (once per zone and
    // order), never changed in place, so a look-up reads the published one without the lock.
    private Dictionary<(int Node, int Zone, int Order), ulong> _tails = new();
    private readonly System.Threading.Lock _tailsLock = new();
    private readonly VmemmapCollapse<TArch>? _collapse;

    public HvoOptimizer(Machine<TArch> machine, HvoPolicy policy, HvoSwitches? switches = null)
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentNullException.ThrowIfNull(policy);
        if (policy.Refusal(machine.Config, TArch.Info) is { } refusal)
        {
            throw new ArgumentException(refusal, nameof(policy));
        }

        _machine = machine;
        _counters = new HvoCounterTable(machine.Layout.Nodes);
        Policy = policy;
        Switches = switches ?? new HvoSwitches();
        _collapse = policy.CollapseOnFree ? new VmemmapCollapse<TArch>(machine) : null;
        if (policy.SharedTail)
        {
            // v7.1's kernel encodes compound_info as a mask in every compound page, not only HVO's.
            if (machine.Compounds.Count > 0 && !machine.BootVmemmap.CompoundInfoMask)
            {
                throw new InvalidOperationException($"{policy.Name} needs compound_info as a mask from boot; this machine has compound pages already");
            }

            machine.BootVmemmap.CompoundInfoMask = true;
        }

        if (policy.HugetlbPage3 != machine.BootVmemmap.HugetlbPage3)
        {
            // The folio layout is the kernel's, for every huge page: fixed before the first is prepared.
            if (machine.Compounds.Count > 0)
            {
                throw new InvalidOperationException($"{policy.Name} keeps the folio's hugetlb fields in page[{(policy.HugetlbPage3 ? 3 : 2)}]; this machine has compound pages laid out otherwise already");
            }

            machine.BootVmemmap.HugetlbPage3 = policy.HugetlbPage3;
        }
    }

    /// <summary>v7.1: the shared tail pages allocated so far (vmemmap_tails[] of every zone), one per zone and order used.</summary>
    public IReadOnlyCollection<ulong> SharedTailFrames
    {
        get
        {
            lock (_tailsLock)
            {
                return [.. _tails.Values];
            }
        }
    }

    /// <summary>v7.1: the shared tail page the tail vmemmap of <paramref name="page"/> maps, once its zone has one for its order.</summary>
    public bool TryGetSharedTail(HugePage page, out ulong pfn)
    {
        ArgumentNullException.ThrowIfNull(page);
        return System.Threading.Volatile.Read(ref _tails).TryGetValue((page.Node, _machine.ZoneOf(page.HeadPfn), page.Order), out pfn);
    }

    public HvoPolicy Policy { get; }

    public HvoSwitches Switches { get; }

    public string Name => Policy.Name;

    public bool OptimizesInBatches => Policy.Batched;

    public bool SkipsBootTailInit => Policy.SkipsBootTailInit;

    /// <summary>Every hstate and node together.</summary>
    public HvoCounters Total => _counters.Total;

    /// <summary>The counters of one hstate (by order) on one node; what they count, <see cref="Total"/> counts too.</summary>
    public HvoCounters For(int order, int node) => _counters.For(order, node);

    /// <summary>Vmemmap pages behind a huge page of <paramref name="order"/>, and the ones this policy frees.</summary>
    public (ulong Pages, ulong Freed) Geometry(int order)
    {
        HugePageVmemmap g = HugePageVmemmap.For<TArch>(TArch.PageSize << order);
        return (g.VmemmapPages, g.FreedPages(Policy.ReservePages));
    }

    /// <summary>hugetlb_vmemmap_optimizable: this size has more vmemmap pages than the policy keeps.</summary>
    public bool IsOptimizable(int order) =>
        Geometry(order).Freed > 0 && (!Policy.RequiresPowerOfTwoStructPage || System.Numerics.BitOperations.IsPow2(TArch.StructPageBytes));

    public void Optimize(HugePage page)
    {
        // hugetlb_vmemmap_optimize_folio: bd225530a4c7 (v6.10) waits a grace period on every call,
        // c2a967f6ab0e (v6.12) only for a page it will optimize; v7.1 not at all.
        if (Policy.RcuBeforeRemap && (!Policy.RcuOnlyWhenOptimizing || ShouldOptimize(page)))
        {
            SynchronizeRcu();
        }

        if (!ShouldOptimize(page))
        {
            return;
        }

        using VmemmapPageLists s = VmemmapPageLists.Rent();
        OptimizeOne(page, s, batched: false);
        FlushThenFree(page, default, s.ToFree); // what a failed one leaves: a spare frame, a head copy
    }

    /// <summary>
    /// hugetlb_vmemmap_optimize_folios (v6.7): split every page's vmemmap with no flush (stopping at
    /// the first ENOMEM), flush_tlb_all, remap every page with no flush, flush_tlb_all, then free.
    /// Policies before v6.7 optimize the pages one by one.
    /// </summary>
    public void OptimizeBatch(IReadOnlyList<HugePage> pages)
    {
        if (!Policy.Batched)
        {
            foreach (HugePage page in pages)
            {
                Optimize(page);
            }

            return;
        }

        // bd225530a4c7 (v6.10): a grace period before the batch is remapped, even with HVO off;
        // c2a967f6ab0e (v6.12): only when some page of it will be optimized; v7.1 (01b1d0ffb6f7): none.
        if (Policy.RcuBeforeRemap && (!Policy.RcuOnlyWhenOptimizing || pages.Any(ShouldOptimize)))
        {
            SynchronizeRcu();
        }

        using VmemmapPageLists s = VmemmapPageLists.Rent();
        if (!SplitBatch(pages))
        {
            return;
        }

        foreach (HugePage page in pages)
        {
            if (ShouldOptimize(page) && !OptimizeOne(page, s, batched: true) && s.ToFree.Count > 0)
            {
                // Frames gathered so far may be what the split needs: flush, free them and retry once.
                FlushThenFree(null, TlbFlush.Everything, s.ToFree);
                OptimizeOne(page, s, batched: true);
            }
        }

        FlushThenFree(null, TlbFlush.Everything, s.ToFree);
    }

    /// <summary>
    /// hugetlb_vmemmap_restore: allocate the freed number of pages on the page's node
    /// (GFP_KERNEL | __GFP_NORETRY | __GFP_THISNODE, all or nothing), copy the kept page into each,
    /// map them PAGE_KERNEL, flush, clear HPageVmemmapOptimized. The split tables stay. From v6.7 a
    /// restore in a batch leaves the flush to <see cref="FinishRestoring"/> (VMEMMAP_REMAP_NO_TLB_FLUSH).
    /// </summary>
    public RestoreResult Restore(HugePage page, bool inBatch = false)
    {
        // hugetlb_vmemmap_restore_folio: bd225530a4c7 (v6.10) waits a grace period on every call,
        // c2a967f6ab0e (v6.12) only for an optimized page; a batch waited once already.
        if (!inBatch && Policy.RcuBeforeRemap && (!Policy.RcuOnlyWhenOptimizing || page.VmemmapOptimized))
        {
            SynchronizeRcu();
        }

        if (!page.VmemmapOptimized)
        {
            return RestoreResult.Ok;
        }

        using VmemmapPageLists s = VmemmapPageLists.Rent();
        (ulong reuse, ulong end) = RemapRange(page);
        int needed = (int)((end - reuse) >> TArch.PageShift) - 1;
        if (!s.TryAllocRestore(_machine.Pages, page.Node, needed))
        {
            Counters(page).RestoreFailed();
            return RestoreResult.NoMemory;
        }

        var visitor = new RestorePteVisitor<TArch> { Machine = _machine, Frames = s.Restore, ResetStructPages = Policy.ResetStructPagesOnRestore ? Policy.NrResetStructPage : 0 };
        WalkToTheEnd(page, reuse, end, ref visitor, "vmemmap_restore_pte", flush: !(inBatch && Policy.Batched));
        page.VmemmapOptimized = false;
        _machine.SetStructPageFlag(page.HeadPfn, StructPage.PgHugeVmemmapOptimized, false);
        Counters(page).Restored(needed);
        Counters(page).Optimized(-1);
        return RestoreResult.Ok;
    }

    /// <summary>
    /// Collapse-on-free (<see cref="HvoPolicy.CollapseOnFree"/>, no kernel): the split vmemmap PMDs
    /// the freed page's struct pages lie under, with no optimized page left, become leaves again.
    /// </summary>
    public void PageFreed(HugePage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        if (_collapse is not null)
        {
            ulong start = _machine.StructPageAddress(page.HeadPfn);
            _collapse.TryCollapse(start, start + (page.Frames * (ulong)TArch.StructPageBytes), page.Node, Counters(page));
        }
    }

    /// <summary>
    /// hugetlb_vmemmap_restore_folios' grace period, once for a batch about to be restored:
    /// bd225530a4c7 (v6.10) whatever the batch holds, c2a967f6ab0e (v6.12) only when a page of it
    /// is optimized, v7.1 never.
    /// </summary>
    public void SynchronizeBeforeRestoring(IReadOnlyList<HugePage> pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        if (Policy.RcuBeforeRemap && (!Policy.RcuOnlyWhenOptimizing || pages.Any(p => p.VmemmapOptimized)))
        {
            SynchronizeRcu();
        }
    }

    /// <summary>
    /// hugetlb_vmemmap_restore_folios' flush_tlb_all after its batch ("hugetlb: batch TLB flushes when
    /// restoring vmemmap", v6.7): once, when it restored a page, before any of them is freed.
    /// </summary>
    public void FinishRestoring(int restored)
    {
        if (restored > 0 && Policy.Batched)
        {
            Flush(null, TlbFlush.Everything);
        }
    }

    /// <summary>
    /// The end of vmemmap_remap_free: flush what the remap left unflushed, then free_vmemmap_page_list,
    /// so that no CPU can reach a freed frame any more. Virtual so that a test can break the order.
    /// </summary>
    /// <param name="page">The page whose counters the flush goes to; null for a batch (a full flush, counted once).</param>
    /// <param name="flush">What to flush.</param>
    /// <param name="frames">The frames to free; emptied.</param>
    protected virtual void FlushThenFree(HugePage? page, TlbFlush flush, VmemmapFrameList frames)
    {
        Flush(page, flush);
        Free(frames);
    }

    /// <summary>flush_tlb_kernel_range, flush_tlb_all, or nothing.</summary>
    protected void Flush(HugePage? page, TlbFlush flush)
    {
        if (flush.All)
        {
            _machine.FlushTlbAll();
            Total.FullFlush();
        }
        else if (flush.Start < flush.End && page is not null)
        {
            var ctx = _machine.PageTable.Ctx();
            ctx.FlushTlbRange(flush.Start, flush.End);
            Counters(page).RangeFlushes(1);
        }
    }

    // The most frames Free gathers into one call (a 2 MiB page of 4 KiB pages frees 7 at most).
    private const int FewFrames = 64;

    /// <summary>free_vmemmap_page_list: each frame back where it came from, in the list's order (Machine.FreeVmemmapFrames: a few frames in one call, more a run of consecutive frames at a time), and the list emptied.</summary>
    [System.Runtime.CompilerServices.SkipLocalsInit] // the stack buffer is written before it is read: no zeroing per call
    protected void Free(VmemmapFrameList frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        if (frames.Count <= FewFrames)
        {
            // One page's frames (a restore's come back descending: runs of one): one call for all.
            Span<ulong> few = stackalloc ulong[FewFrames];
            frames.CopyTo(few);
            _machine.FreeVmemmapFrames(few[..frames.Count]);
            frames.Clear();
            return;
        }

        foreach ((ulong start, ulong count) in frames.Runs)
        {
            _machine.FreeVmemmapFrames(start, count);
        }

        frames.Clear();
    }

    /// <summary>
    /// synchronize_rcu: a speculative get_page_unless_zero that read a struct page's refcount before
    /// the remap (under rcu_read_lock from v6.10) has done its compare-and-exchange before the
    /// vmemmap becomes read-only.
    /// </summary>
    private void SynchronizeRcu()
    {
        _machine.Rcu.Synchronize(_machine.CurrentCpu);
        Total.GracePeriod();
    }

    private bool ShouldOptimize(HugePage page) =>
        Switches.EnabledNow && !page.VmemmapOptimized && IsOptimizable(page.Order) && !(Policy.MemmapOnMemoryWithHvo && VmemmapSelfHosted(page));

    /// <summary>
    /// vmemmap_should_optimize's memory hotplug check (66361095129b, v6.0): the page backing the head
    /// struct page is found through the page table; if its memory block hosts its own struct pages
    /// (memmap_on_memory, PageVmemmapSelfHosted), the page is left unoptimized. Before v6.0 a kernel
    /// with HVO on never had self-hosted struct pages (memmap_on_memory gave way to HVO).
    /// </summary>
    private bool VmemmapSelfHosted(HugePage page) =>
        _machine.Hotplug.AnySelfHosted // no block hosts its own struct pages: none to find through the page table
        && _machine.TryTranslateKernel(_machine.StructPageAddress(page.HeadPfn), out ulong pa)
        && _machine.Hotplug.IsSelfHostedVmemmap(pa >> TArch.PageShift);

    /// <summary>v6.7's split pass (vmemmap_remap_split, no flush): false when no page is to be optimized; a flush_tlb_all follows.</summary>
    private bool SplitBatch(IReadOnlyList<HugePage> pages)
    {
        bool any = false;
        foreach (HugePage page in pages)
        {
            if (!ShouldOptimize(page))
            {
                continue;
            }

            any = true;
            ulong start = _machine.StructPageAddress(page.HeadPfn);
            var split = default(SplitPmdVisitor<TArch>);
            PageWalkResult r = Walk(page, start, start + (page.Frames * (ulong)TArch.StructPageBytes), ref split, PageWalkFlags.NoTlbFlushOnSplit, "split_vmemmap_huge_pmd");
            if (r.Status == PageWalkStatus.NoMemory)
            {
                break; // splitting needs memory: no point going on; the remap pass retries
            }
        }

        if (any)
        {
            Flush(null, TlbFlush.Everything);
        }

        return any;
    }

    /// <summary>[reuse, end): the vmemmap pages the walks of a page cover, from the last page kept.</summary>
    private (ulong Reuse, ulong End) RemapRange(HugePage page)
    {
        ulong start = _machine.StructPageAddress(page.HeadPfn);
        return (start + ((ulong)(Policy.ReservePages - 1) * TArch.PageSize), start + (page.Frames * (ulong)TArch.StructPageBytes));
    }

    /// <summary>
    /// vmemmap_remap_free for one page: remap [reuse, end), splitting on the way, flush, free the
    /// frames taken; on ENOMEM put back what was remapped, with the very frames taken, allocating
    /// nothing. In a batch the flush and the free are the caller's, once for every page.
    /// </summary>
    private bool OptimizeOne(HugePage page, VmemmapPageLists s, bool batched)
    {
        (ulong reuse, ulong end) = RemapRange(page);
        var visitor = new RemapPteVisitor<TArch> { Taken = s.Taken };
        s.Taken.Clear();
        if (Policy.SharedTail)
        {
            if (!TryGetOrAllocSharedTail(page, out visitor.TailPfn))
            {
                Counters(page).Failed(OptimizeFailure.SplitNoMemory);
                return false;
            }

            visitor.HasTail = true;
        }

        TryCopyHead(page, reuse, ref visitor);
        PageWalkResult r = Walk(page, reuse, end, ref visitor, PageWalkFlags.MayGiveUp, "vmemmap_remap_pte");
        if (r.Status is PageWalkStatus.NoMemory or PageWalkStatus.WriterGaveUp)
        {
            if (r.Status == PageWalkStatus.NoMemory && visitor.Walked > 0)
            {
                Rollback(page, s, reuse, visitor);
            }
            else if (visitor.HasNewHead)
            {
                s.ToFree.Add(visitor.NewHeadPfn); // nothing stays remapped (the writer put back what it did): the copy is unused
            }

            s.Taken.Clear();
            Counters(page).Failed(r.Status == PageWalkStatus.NoMemory ? OptimizeFailure.SplitNoMemory : OptimizeFailure.BbmRetriesExhausted);
            return false;
        }

        Expect(r, page, "vmemmap_remap_pte");

        int freed = s.Taken.Count - (visitor.HasNewHead ? 1 : 0); // the old head was replaced, not freed for good
        s.ToFree.AddRange(s.Taken);
        if (!batched)
        {
            // Only the remapped range changed: [reuse + PAGE_SIZE, end), or from reuse with a new head.
            FlushThenFree(page, r.NeedsFlush ? new TlbFlush(visitor.HasNewHead ? reuse : reuse + TArch.PageSize, end, false) : default, s.ToFree);
        }

        page.VmemmapOptimized = true;
        _machine.SetStructPageFlag(page.HeadPfn, StructPage.PgHugeVmemmapOptimized, true);
        HvoCounters counters = Counters(page);
        counters.Freed(freed);
        counters.Optimized(1);
        return true;
    }

    /// <summary>v6.2+: a fresh copy of the head vmemmap page for the reuse PTE, if one can be had.</summary>
    private void TryCopyHead(HugePage page, ulong reuse, ref RemapPteVisitor<TArch> visitor)
    {
        if (!Policy.CopyHead)
        {
            return;
        }

        // A fresh head page, so the whole original block can go back; keep the old one if none.
        if (!_machine.Pages.TryAllocPages(page.Node, 0, Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode, AllocSite.HeadPageCopy, FrameOwner.RuntimeVmemmap, out ulong copy))
        {
            Counters(page).Failed(OptimizeFailure.HeadCopyNoMemory);
            return;
        }

        if (!_machine.TryTranslateKernel(reuse, out ulong pa)) // copy_page from the vmemmap address
        {
            throw new InvalidOperationException($"{page}: its vmemmap at 0x{reuse:x} is not mapped");
        }

        _machine.CopyFrame(pa >> TArch.PageShift, copy, reuse);
        visitor.NewHeadPfn = copy;
        visitor.HasNewHead = true;
    }

    /// <summary>
    /// v7.1: the zone's vmemmap_tails[order], allocated the first time a page of that order in that
    /// zone is optimized: one page of identical tail struct pages (compound_info as a mask, the
    /// zone and node in the flags), mapped read-only under every such page and never freed.
    /// </summary>
    private bool TryGetOrAllocSharedTail(HugePage page, out ulong pfn)
    {
        int zone = _machine.ZoneOf(page.HeadPfn);
        if (System.Threading.Volatile.Read(ref _tails).TryGetValue((page.Node, zone, page.Order), out pfn))
        {
            return true; // allocated already: no lock
        }

        lock (_tailsLock)
        {
            if (_tails.TryGetValue((page.Node, zone, page.Order), out pfn))
            {
                return true;
            }

            if (!_machine.Pages.TryAllocPages(page.Node, 0, Gfp.Kernel | Gfp.ThisNode, AllocSite.VmemmapTail, FrameOwner.RuntimeVmemmap, out pfn))
            {
                return false;
            }

            Span<byte> bytes = _machine.Mmu.Materialize(pfn);
            int size = TArch.StructPageBytes;
            for (int offset = 0; offset + size <= bytes.Length; offset += size)
            {
                // A plain tail (past the tails that hold folio fields, which live in the head page).
                StructPage.InitializeCompound(bytes.Slice(offset, size), page.Node, zone, StructPage.FirstPlainTail, 0, page.Order, mask: true);
            }

            System.Threading.Volatile.Write(ref _tails, new Dictionary<(int Node, int Zone, int Order), ulong>(_tails) { [(page.Node, zone, page.Order)] = pfn });
            Counters(page).SharedTailAllocated();
            return true;
        }
    }

    /// <summary>The ENOMEM path: restore [reuse, reuse + walked) with the frames the remap took.</summary>
    private void Rollback(HugePage page, VmemmapPageLists s, ulong reuse, in RemapPteVisitor<TArch> failed)
    {
        var restore = new RestorePteVisitor<TArch> { Machine = _machine, Frames = s.Taken, ResetStructPages = Policy.ResetStructPagesOnRestore ? Policy.NrResetStructPage : 0 };
        WalkToTheEnd(page, reuse, reuse + ((ulong)failed.Walked * TArch.PageSize), ref restore, "vmemmap_restore_pte (ENOMEM rollback)");

        // With a fresh head the walk kept the copy at reuse; the one frame it did not use is the spare.
        for (int i = restore.Next; i < s.Taken.Count; i++)
        {
            s.ToFree.Add(s.Taken[i]);
        }
    }

    /// <summary>One walk of the page's vmemmap, counted in its counters; <paramref name="step"/> names it in reports.</summary>
    private PageWalkResult Walk<TVisitor>(HugePage page, ulong start, ulong end, ref TVisitor visitor, PageWalkFlags flags, string step)
        where TVisitor : struct, IPageWalkVisitor
    {
        PageWalkResult r = _machine.PageTable.WalkRange(start, end, ref visitor, flags, step);
        HvoCounters c = Counters(page);
        c.Split(r.Splits, r.TableFrames);
        c.RangeFlushes(r.RangeFlushes);
        c.Retried(r.Retries);
        return r;
    }

    /// <summary>A walk that must finish (a restore, a rollback: they allocate nothing), then the flush it left owed over its range unless the caller flushes later.</summary>
    private void WalkToTheEnd<TVisitor>(HugePage page, ulong start, ulong end, ref TVisitor visitor, string step, bool flush = true)
        where TVisitor : struct, IPageWalkVisitor
    {
        PageWalkResult r = Walk(page, start, end, ref visitor, PageWalkFlags.None, step);
        Expect(r, page, step);
        if (r.NeedsFlush && flush)
        {
            Flush(page, new TlbFlush(start, end, false));
        }
    }

    private static void Expect(in PageWalkResult r, HugePage page, string step)
    {
        if (!r.Done)
        {
            throw new InvalidOperationException($"{step} on {page}: the vmemmap walk ended {r.Status} at 0x{r.StoppedAt:x}");
        }
    }

    /// <summary>The page's hstate-and-node counters (each event counts in <see cref="Total"/> too).</summary>
    private HvoCounters Counters(HugePage page) => For(page.Order, page.Node);
}
