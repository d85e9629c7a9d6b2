using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.HugeTlb;

/// <summary>
/// mm/hugetlb_vmemmap.c on the simulated machine: optimize (vmemmap_remap_free), restore
/// (vmemmap_remap_alloc) and the batched variant, all driving the one generated range walk
/// (<see cref="IPagingArch.RemapWalk"/>) with the visitors of <see cref="RemapPteVisitor{TArch}"/>
/// and <see cref="RestorePteVisitor{TArch}"/>. The <see cref="HvoPolicy"/> picks the kernel
/// version's choices; the walk, the visitors and the ordering rules are shared by all of them.
/// </summary>
/// <remarks>
/// Several CPUs (threads, <see cref="Machine{TArch}.RunOnCpu"/>) may optimize and restore
/// different huge pages at once, as allocating and freeing tasks do in the kernel: the frame lists
/// of a call are its own (the kernel's on-stack vmemmap_pages list), counters are updated with
/// atomic adds, and the page table, the allocator and the TLBs do their own locking. One huge
/// page is worked on by one CPU at a time, as the kernel's folio is.
/// </remarks>
public sealed class HvoOptimizer<TArch> : IVmemmapOptimizer where TArch : struct, IPagingArch
{
    [ThreadStatic]
    private static Scratch? t_scratch;

    private readonly Machine<TArch> _machine;
    // [order][node], filled on first use; reads need no lock.
    private readonly HvoCounters?[]?[] _counters = new HvoCounters?[64][];

    public HvoOptimizer(Machine<TArch> machine, HvoPolicy policy, HvoSwitches? switches = null)
    {
        _machine = machine;
        Policy = policy;
        Switches = switches ?? new HvoSwitches();
    }

    public HvoPolicy Policy { get; }

    public HvoSwitches Switches { get; }

    public string Name => Policy.Name;

    /// <summary>
    /// Test only, a deliberately broken ordering: the vmemmap frames are freed before the TLB flush
    /// that makes them unreachable (the use-after-free through a stale translation that
    /// DESIGN.md 1.5 lists). Strict mode and page poisoning must catch it.
    /// </summary>
    internal bool FreeBeforeFlush { get; set; }

    /// <summary>Every hstate and node together.</summary>
    public HvoCounters Total { get; } = new();

    /// <summary>The counters of one hstate (by order) on one node.</summary>
    public HvoCounters For(int order, int node)
    {
        HvoCounters?[] byNode = System.Threading.Volatile.Read(ref _counters[order])
            ?? System.Threading.Interlocked.CompareExchange(ref _counters[order], new HvoCounters?[_machine.Layout.Nodes], null)
            ?? _counters[order]!;
        return System.Threading.Volatile.Read(ref byNode[node])
            ?? System.Threading.Interlocked.CompareExchange(ref byNode[node], new HvoCounters(), null)
            ?? byNode[node]!;
    }

    /// <summary>Vmemmap pages behind a huge page of <paramref name="order"/>, and the ones this policy frees.</summary>
    public (ulong Pages, ulong Freed) Geometry(int order)
    {
        HugePageVmemmap g = HugePageVmemmap.For<TArch>(TArch.PageSize << order);
        return (g.VmemmapPages, g.FreedPages(Policy.ReservePages));
    }

    /// <summary>hugetlb_vmemmap_optimizable: this size has more vmemmap pages than the policy keeps.</summary>
    public bool IsOptimizable(int order) => Geometry(order).Freed > 0;

    public void Optimize(HugePage page)
    {
        if (!ShouldOptimize(page))
        {
            return;
        }

        Scratch s = Scratch.Rent();
        try
        {
            OptimizeOne(page, s, RemapWalkFlags.None, flushAfter: true);
            FreeTakenFrames(s);
        }
        finally
        {
            s.Return();
        }
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

        Scratch s = Scratch.Rent();
        try
        {
            OptimizeBatch(pages, s);
        }
        finally
        {
            s.Return();
        }
    }

    /// <summary>
    /// hugetlb_vmemmap_restore: allocate the freed number of pages on the page's node
    /// (GFP_KERNEL | __GFP_NORETRY | __GFP_THISNODE, all or nothing), copy the kept page into each,
    /// map them PAGE_KERNEL, flush, clear HPageVmemmapOptimized. The split tables stay.
    /// </summary>
    public RestoreResult Restore(HugePage page)
    {
        if (!page.VmemmapOptimized)
        {
            return RestoreResult.Ok;
        }

        Scratch s = Scratch.Rent();
        try
        {
            return Restore(page, s.Restore);
        }
        finally
        {
            s.Return();
        }
    }

    private RestoreResult Restore(HugePage page, List<ulong> frames)
    {
        (ulong start, ulong end) = Range(page);
        ulong reuse = start + ((ulong)(Policy.ReservePages - 1) * TArch.PageSize);
        int needed = (int)((end - reuse) >> TArch.PageShift) - 1;
        for (int i = 0; i < needed; i++)
        {
            if (!_machine.Pages.TryAllocPages(page.Node, 0, Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, out ulong pfn))
            {
                foreach (ulong taken in frames)
                {
                    _machine.Pages.FreePages(taken, 0, FrameOwner.RuntimeVmemmap);
                }

                frames.Clear();
                foreach (HvoCounters c in Counters(page))
                {
                    c.RestoreFailed();
                }

                return RestoreResult.NoMemory;
            }

            frames.Add(pfn);
        }

        var visitor = new RestorePteVisitor<TArch> { Machine = _machine, Frames = frames, ResetStructPages = Policy.ResetStructPagesOnRestore };
        SetStep("vmemmap_restore_pte");
        RemapWalkResult r = Walk(page, reuse, end, BreaksEntries ? RemapWalkFlags.BreakBeforeMake : RemapWalkFlags.None, ref visitor);
        if (!r.Ok)
        {
            throw new InvalidOperationException($"restoring {page}: the vmemmap walk failed ({r.Status}) on an already split range");
        }

        if (!BreaksEntries)
        {
            FlushRange(page, reuse, end); // with break-before-make each entry was flushed when broken
        }
        page.VmemmapOptimized = false;
        SetOptimizedFlag(page, false);
        foreach (HvoCounters c in Counters(page))
        {
            c.Restored(needed);
            c.Optimized(-1);
        }

        return RestoreResult.Ok;
    }

    private void OptimizeBatch(IReadOnlyList<HugePage> pages, Scratch s)
    {
        bool any = false;
        foreach (HugePage page in pages)
        {
            if (!ShouldOptimize(page))
            {
                continue;
            }

            any = true;
            (ulong start, ulong end) = Range(page);
            SetStep("split_vmemmap_huge_pmd");
            RemapWalkResult split = Walk(page, s, start, end, RemapWalkFlags.SplitOnly | RemapWalkFlags.NoTlbFlushOnSplit);
            if (split.Status == RemapWalkStatus.NoMemory)
            {
                break; // splitting needs memory: no point going on; the remap pass retries
            }
        }

        if (!any)
        {
            return;
        }

        FlushAll();
        foreach (HugePage page in pages)
        {
            if (!ShouldOptimize(page))
            {
                continue;
            }

            if (!OptimizeOne(page, s, RemapWalkFlags.None, flushAfter: false) && s.ToFree.Count > 0)
            {
                // Frames gathered so far may be what the split needs: flush, free them and retry once.
                FlushAll();
                FreeTakenFrames(s);
                OptimizeOne(page, s, RemapWalkFlags.None, flushAfter: false);
            }
        }

        if (FreeBeforeFlush)
        {
            FreeTakenFrames(s); // the deliberate bug: other CPUs may still reach these frames
        }

        FlushAll();
        FreeTakenFrames(s);
    }


    private bool ShouldOptimize(HugePage page) =>
        Switches.EnabledNow && !page.VmemmapOptimized && IsOptimizable(page.Order);

    /// <summary>[start, end) of the page's struct pages in the vmemmap.</summary>
    private static (ulong Start, ulong End) Range(HugePage page)
    {
        ulong start = Machine<TArch>.StructPageAddress(page.HeadPfn);
        return (start, start + (page.Frames * (ulong)TArch.StructPageBytes));
    }

    /// <summary>
    /// vmemmap_remap_free for one page: remap [reuse, end), splitting on the way; on ENOMEM put back
    /// what was remapped, with the very frames taken, allocating nothing. The frames taken are left
    /// in the scratch's to-free list for the caller to free after its flush.
    /// </summary>
    private bool OptimizeOne(HugePage page, Scratch s, RemapWalkFlags flags, bool flushAfter)
    {
        if (Policy.Strategy == BbmStrategy.AccessFlagCmpxchg)
        {
            return OptimizeWithAccessFlag(page, s);
        }

        if (BreaksEntries)
        {
            // Each entry is flushed when broken: the frames may go once the walk is done.
            flags |= RemapWalkFlags.BreakBeforeMake;
            flushAfter = false;
        }

        (ulong start, ulong end) = Range(page);
        ulong reuse = start + ((ulong)(Policy.ReservePages - 1) * TArch.PageSize);

        var visitor = new RemapPteVisitor<TArch> { Taken = s.Taken };
        s.Taken.Clear();
        TryCopyHead(page, reuse, ref visitor);
        SetStep("vmemmap_remap_pte");
        RemapWalkResult r = Walk(page, reuse, end, flags, ref visitor);
        if (r.Status == RemapWalkStatus.NoMemory)
        {
            Rollback(page, s, reuse, visitor);
            foreach (HvoCounters c in Counters(page))
            {
                c.Failed(OptimizeFailure.SplitNoMemory);
            }

            return false;
        }

        if (!r.Ok)
        {
            throw new InvalidOperationException($"optimizing {page}: the vmemmap walk failed ({r.Status})");
        }

        int taken = s.Taken.Count;
        if (flushAfter)
        {
            if (FreeBeforeFlush)
            {
                s.ToFree.AddRange(s.Taken); // the deliberate bug: other CPUs may still reach these frames
                s.Taken.Clear();
                FreeTakenFrames(s);
            }

            // Only the remapped range changed: [reuse + PAGE_SIZE, end), or from reuse with a new head.
            FlushRange(page, visitor.HasNewHead ? reuse : reuse + TArch.PageSize, end);
        }

        s.ToFree.AddRange(s.Taken);
        Optimized(page, visitor.HasNewHead, taken);
        return true;
    }

    /// <summary>The policy breaks live entries itself (break-before-make walks for split, restore and rollback).</summary>
    private bool BreaksEntries => Policy.Strategy is BbmStrategy.BreakFlushMake or BbmStrategy.AccessFlagCmpxchg;

    /// <summary>HPageVmemmapOptimized and the counters, for <paramref name="taken"/> frames unmapped (one of them the old head if a fresh copy replaced it).</summary>
    private void Optimized(HugePage page, bool hasNewHead, int taken)
    {
        page.VmemmapOptimized = true;
        SetOptimizedFlag(page, true);
        foreach (HvoCounters c in Counters(page))
        {
            c.Freed(taken - (hasNewHead ? 1 : 0));
            c.Optimized(1);
        }
    }

    /// <summary>v6.2+: a fresh copy of the head vmemmap page for the reuse PTE, if one can be had.</summary>
    private void TryCopyHead(HugePage page, ulong reuse, ref RemapPteVisitor<TArch> visitor)
    {
        if (Policy.CopyHead)
        {
            // A fresh head page, so the whole original block can go back; keep the old one if none.
            if (_machine.Pages.TryAllocPages(page.Node, 0, Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode, AllocSite.HeadPageCopy, FrameOwner.RuntimeVmemmap, out ulong copy))
            {
                if (!_machine.PageTable.TryTranslate(reuse, out ulong pa))
                {
                    throw new InvalidOperationException($"{page}: its vmemmap at 0x{reuse:x} is not mapped");
                }

                _machine.CopyFrame(pa >> TArch.PageShift, copy, reuse);
                visitor.NewHeadPfn = copy;
                visitor.HasNewHead = true;
            }
            else
            {
                foreach (HvoCounters c in Counters(page))
                {
                    c.Failed(OptimizeFailure.HeadCopyNoMemory);
                }
            }
        }
    }

    /// <summary>
    /// arm64-bbm-af: split by break-before-make; then per round, pte_mkold every entry still to change
    /// (same output address: allowed live), one flush of their range, and a cmpxchg of each from its
    /// AF-clear value to the new entry. A CPU that translated through an entry after the flush set its
    /// AF (and may cache the old frame): that cmpxchg fails and the entry goes to the next round. After
    /// <see cref="HvoPolicy.CmpxchgRetries"/> further rounds the page is rolled back: every changed
    /// entry goes back to its own frame (untouched meanwhile) by break, flush, make, the head copy is
    /// freed, and the page stays fully backed and unoptimized (<see cref="OptimizeFailure.BbmRetriesExhausted"/>).
    /// </summary>
    private bool OptimizeWithAccessFlag(HugePage page, Scratch s)
    {
        (ulong start, ulong end) = Range(page);
        ulong reuse = start + ((ulong)(Policy.ReservePages - 1) * TArch.PageSize);
        s.Taken.Clear();

        // The PMD split: break (invalid PMD), flush, make (the table); readers fault meanwhile.
        SetStep("split_vmemmap_huge_pmd");
        var none = new RemapPteVisitor<TArch> { Taken = s.Taken };
        RemapWalkResult split = Walk(page, reuse, end, RemapWalkFlags.SplitOnly | RemapWalkFlags.BreakBeforeMake, ref none);
        if (split.Status == RemapWalkStatus.NoMemory)
        {
            foreach (HvoCounters c in Counters(page))
            {
                c.Failed(OptimizeFailure.SplitNoMemory);
            }

            return false; // nothing was remapped; splits so far stay
        }

        if (!split.Ok)
        {
            throw new InvalidOperationException($"optimizing {page}: the vmemmap split failed ({split.Status})");
        }

        var visitor = new RemapPteVisitor<TArch> { Taken = s.Taken };
        TryCopyHead(page, reuse, ref visitor);

        // What each entry becomes: the visitor's own rules, applied to the entries as they are.
        var changes = new List<(ulong Va, ulong Old, ulong New)>();
        for (ulong va = reuse; va < end; va += TArch.PageSize)
        {
            WalkResult w = _machine.PageTable.Walk(va);
            if (!w.IsLeaf || w.Level != TArch.LastLevel)
            {
                throw new InvalidOperationException($"optimizing {page}: 0x{va:x} is not mapped by a PTE after the split");
            }

            ulong updated = visitor.RemapPte(va, w.Entry);
            if (updated != w.Entry)
            {
                changes.Add((va, w.Entry, updated));
            }
        }

        SetStep("vmemmap_remap_pte (clear AF, flush, cmpxchg)");
        List<(ulong Va, ulong Old, ulong New)> pending = changes;
        var done = new List<(ulong Va, ulong Old, ulong New)>();
        for (int round = 0; round <= Policy.CmpxchgRetries && pending.Count > 0; round++)
        {
            if (round > 0)
            {
                foreach (HvoCounters c in Counters(page))
                {
                    c.Retried(pending.Count);
                }
            }

            // pte_mkold: clear AF on the live entries (the output address stays: no break needed).
            var ctx = _machine.PageTable.Ctx;
            foreach ((ulong va, _, _) in pending)
            {
                WalkResult w = _machine.PageTable.Walk(va);
                ulong aged = w.Entry & ~TArch.AccessFlag;
                if (aged != w.Entry)
                {
                    ctx.SetEntry(w.Level, w.TablePfn, w.Index, w.Entry, aged, va);
                }
            }

            FlushRange(page, pending[0].Va, pending[^1].Va + TArch.PageSize);

            var failed = new List<(ulong Va, ulong Old, ulong New)>();
            foreach ((ulong va, ulong old, ulong updated) in pending)
            {
                WalkResult w = _machine.PageTable.Walk(va);
                if (_machine.PageTable.CompareExchangeEntry(w.Level, w.TablePfn, w.Index, old & ~TArch.AccessFlag, updated, va))
                {
                    done.Add((va, old, updated));
                }
                else
                {
                    failed.Add((va, old, updated));
                }
            }

            pending = failed;
        }

        if (pending.Count == 0)
        {
            Optimized(page, visitor.HasNewHead, s.Taken.Count);
            s.ToFree.AddRange(s.Taken);
            return true;
        }

        // Retries exhausted: every entry back to its own frame. A changed one by break, flush, make
        // (readers fault meanwhile); an unchanged one just gets its access flag back.
        SetStep("vmemmap_remap_pte (retries exhausted: roll back)");
        var bbm = new KernelPageTable<TArch>.Context(_machine.PageTable, breakBeforeMake: true);
        long flushesBefore = _machine.PageTable.Counters.TlbRangeFlushes;
        foreach ((ulong va, ulong old, _) in done.Concat(pending))
        {
            WalkResult w = _machine.PageTable.Walk(va);
            if (w.Entry != old)
            {
                bbm.SetEntry(w.Level, w.TablePfn, w.Index, w.Entry, old, va);
            }
        }

        foreach (HvoCounters c in Counters(page))
        {
            c.RangeFlushes(_machine.PageTable.Counters.TlbRangeFlushes - flushesBefore);
            c.Failed(OptimizeFailure.BbmRetriesExhausted);
        }

        if (visitor.HasNewHead)
        {
            s.ToFree.Add(visitor.NewHeadPfn); // unmapped and flushed when its entry was broken
        }

        s.Taken.Clear();
        return false;
    }

    /// <summary>The ENOMEM path: restore [reuse, reuse + walked) with the frames the remap took.</summary>
    private void Rollback(HugePage page, Scratch s, ulong reuse, RemapPteVisitor<TArch> failed)
    {
        if (failed.Walked > 0)
        {
            var restore = new RestorePteVisitor<TArch> { Machine = _machine, Frames = s.Taken, ResetStructPages = Policy.ResetStructPagesOnRestore };
            ulong end = reuse + ((ulong)failed.Walked * TArch.PageSize);
            SetStep("vmemmap_restore_pte (ENOMEM rollback)");
            RemapWalkResult r = Walk(page, reuse, end, BreaksEntries ? RemapWalkFlags.BreakBeforeMake : RemapWalkFlags.None, ref restore);
            if (!r.Ok)
            {
                throw new InvalidOperationException($"rolling back {page}: {r.Status} on a range that was just walked");
            }

            if (!BreaksEntries)
            {
                FlushRange(page, reuse, end);
            }

            // With a fresh head the walk kept the copy at reuse; the one frame it did not use is the spare.
            for (int i = restore.Next; i < s.Taken.Count; i++)
            {
                s.ToFree.Add(s.Taken[i]);
            }
        }
        else if (failed.HasNewHead)
        {
            s.ToFree.Add(failed.NewHeadPfn);
        }

        s.Taken.Clear();
    }

    /// <summary>Name the kernel step for the break-before-make checker's reports.</summary>
    private void SetStep(string step)
    {
        if (_machine.BreakBeforeMake is { } checker)
        {
            checker.Step = step;
        }
    }

    private RemapWalkResult Walk(HugePage page, Scratch s, ulong start, ulong end, RemapWalkFlags flags)
    {
        var none = new RemapPteVisitor<TArch> { Taken = s.Taken };
        return Walk(page, start, end, flags, ref none);
    }

    private RemapWalkResult Walk<TVisitor>(HugePage page, ulong start, ulong end, RemapWalkFlags flags, ref TVisitor visitor)
        where TVisitor : struct, IRemapPteVisitor
    {
        // Each split flushes its range unless told not to; a lost race flushes nothing. Counted from
        // this walk's own result, as the page table's counters move with every CPU's walks. A
        // break-before-make walk also flushes every entry it breaks, counted by reading the page
        // table's counter around the walk: right while one CPU at a time changes the vmemmap, as
        // the pool's lock ensures; concurrent callers of these strategies would count each other's.
        bool breaks = (flags & RemapWalkFlags.BreakBeforeMake) != 0;
        long flushesBefore = breaks ? _machine.PageTable.Counters.TlbRangeFlushes : 0;
        RemapWalkResult r = _machine.PageTable.RemapWalk(start, end, ref visitor, flags);
        long flushes = breaks ? _machine.PageTable.Counters.TlbRangeFlushes - flushesBefore
            : (flags & RemapWalkFlags.NoTlbFlushOnSplit) != 0 ? 0 : r.Splits;
        foreach (HvoCounters c in Counters(page))
        {
            c.Split(r.Splits);
            c.RangeFlushes(flushes);
        }

        return r;
    }

    /// <summary>free_vmemmap_page_list: only after the flush, so no CPU can reach them any more.</summary>
    private void FreeTakenFrames(Scratch s)
    {
        foreach (ulong pfn in s.ToFree)
        {
            _machine.FreeVmemmapFrame(pfn);
        }

        s.ToFree.Clear();
    }

    private void FlushRange(HugePage page, ulong start, ulong end)
    {
        var ctx = _machine.PageTable.Ctx;
        ctx.FlushTlbRange(start, end);
        foreach (HvoCounters c in Counters(page))
        {
            c.RangeFlushes(1);
        }
    }

    private void FlushAll()
    {
        _machine.FlushTlbAll();
        Total.FullFlush();
    }

    /// <summary>
    /// HPageVmemmapOptimized lives in the head page's flags: written there if the head's vmemmap
    /// frame holds bytes; a deferred head page shows it from the page's state when read.
    /// </summary>
    private void SetOptimizedFlag(HugePage page, bool optimized)
    {
        ulong va = Machine<TArch>.StructPageAddress(page.HeadPfn);
        if (!_machine.PageTable.TryTranslate(va, out ulong pa))
        {
            throw new InvalidOperationException($"{page}: its head struct page is not mapped");
        }

        if (!_machine.Frames.IsMaterialized(pa >> TArch.PageShift))
        {
            return;
        }

        Span<byte> head = stackalloc byte[TArch.StructPageBytes];
        if (_machine.Mmu.Read(_machine.CurrentCpu, va, head) != AccessFault.None)
        {
            throw new InvalidOperationException($"{page}: its head struct page is not readable");
        }

        ulong flags = StructPage.Flags(head);
        StructPage.SetFlags(head, optimized ? flags | StructPage.PgHugeVmemmapOptimized : flags & ~StructPage.PgHugeVmemmapOptimized);
        _machine.Mmu.Write(_machine.CurrentCpu, va, head);
    }

    /// <summary>The totals and the page's hstate-and-node counters: every event counts in both.</summary>
    private CounterPair Counters(HugePage page) => new(Total, For(page.Order, page.Node));

    private readonly struct CounterPair(HvoCounters total, HvoCounters node)
    {
        public Enumerator GetEnumerator() => new(total, node);

        public struct Enumerator(HvoCounters total, HvoCounters node)
        {
            private int _i = -1;

            public readonly HvoCounters Current => _i == 0 ? total : node;

            public bool MoveNext() => ++_i < 2;
        }
    }

    /// <summary>
    /// One call's frame lists (the kernel keeps them on the stack: vmemmap_pages, the restore
    /// list). Reused per thread so a steady state allocates nothing; a nested call gets its own.
    /// </summary>
    private sealed class Scratch
    {
        public readonly List<ulong> Taken = new();
        public readonly List<ulong> ToFree = new();
        public readonly List<ulong> Restore = new();

        public static Scratch Rent()
        {
            Scratch? s = t_scratch;
            t_scratch = null;
            return s ?? new Scratch();
        }

        public void Return()
        {
            Taken.Clear();
            ToFree.Clear();
            Restore.Clear();
            t_scratch = this;
        }
    }
}
