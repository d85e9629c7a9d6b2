using System;
using System.Collections.Generic;
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
public sealed class HvoOptimizer<TArch> : IVmemmapOptimizer where TArch : struct, IPagingArch
{
    private readonly Machine<TArch> _machine;
    // [order][node], filled on first use; reads need no lock.
    private readonly HvoCounters?[]?[] _counters = new HvoCounters?[64][];
    private readonly List<ulong> _taken = new();
    private readonly List<ulong> _toFree = new();
    private readonly List<ulong> _restore = new();

    public HvoOptimizer(Machine<TArch> machine, HvoPolicy policy, HvoSwitches? switches = null)
    {
        _machine = machine;
        Policy = policy;
        Switches = switches ?? new HvoSwitches();
    }

    public HvoPolicy Policy { get; }

    public HvoSwitches Switches { get; }

    public string Name => Policy.Name;

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

        OptimizeOne(page, RemapWalkFlags.None, flushAfter: true);
        FreeTakenFrames();
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

        bool any = false;
        foreach (HugePage page in pages)
        {
            if (!ShouldOptimize(page))
            {
                continue;
            }

            any = true;
            (ulong start, ulong end) = Range(page);
            RemapWalkResult split = Walk(page, start, end, RemapWalkFlags.SplitOnly | RemapWalkFlags.NoTlbFlushOnSplit);
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

            if (!OptimizeOne(page, RemapWalkFlags.None, flushAfter: false) && _toFree.Count > 0)
            {
                // Frames gathered so far may be what the split needs: flush, free them and retry once.
                FlushAll();
                FreeTakenFrames();
                OptimizeOne(page, RemapWalkFlags.None, flushAfter: false);
            }
        }

        FlushAll();
        FreeTakenFrames();
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

        (ulong start, ulong end) = Range(page);
        ulong reuse = start + ((ulong)(Policy.ReservePages - 1) * TArch.PageSize);
        int needed = (int)((end - reuse) >> TArch.PageShift) - 1;
        _restore.Clear();
        for (int i = 0; i < needed; i++)
        {
            if (!_machine.Pages.TryAllocPages(page.Node, 0, Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, out ulong pfn))
            {
                foreach (ulong taken in _restore)
                {
                    _machine.Pages.FreePages(taken, 0, FrameOwner.RuntimeVmemmap);
                }

                _restore.Clear();
                foreach (HvoCounters c in Counters(page))
                {
                    c.RestoreFailed();
                }

                return RestoreResult.NoMemory;
            }

            _restore.Add(pfn);
        }

        var visitor = new RestorePteVisitor<TArch> { Machine = _machine, Frames = _restore, ResetStructPages = Policy.ResetStructPagesOnRestore };
        RemapWalkResult r = _machine.PageTable.RemapWalk(reuse, end, ref visitor);
        if (!r.Ok)
        {
            throw new InvalidOperationException($"restoring {page}: the vmemmap walk failed ({r.Status}) on an already split range");
        }

        FlushRange(page, reuse, end);
        page.VmemmapOptimized = false;
        SetOptimizedFlag(page, false);
        foreach (HvoCounters c in Counters(page))
        {
            c.Restored(needed);
            c.Optimized(-1);
        }

        return RestoreResult.Ok;
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
    /// in <see cref="_toFree"/> for the caller to free after its flush.
    /// </summary>
    private bool OptimizeOne(HugePage page, RemapWalkFlags flags, bool flushAfter)
    {
        (ulong start, ulong end) = Range(page);
        ulong reuse = start + ((ulong)(Policy.ReservePages - 1) * TArch.PageSize);

        var visitor = new RemapPteVisitor<TArch> { Taken = _taken };
        _taken.Clear();
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

        RemapWalkResult r = Walk(page, reuse, end, flags, ref visitor);
        if (r.Status == RemapWalkStatus.NoMemory)
        {
            Rollback(page, reuse, visitor);
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

        if (flushAfter)
        {
            // Only the remapped range changed: [reuse + PAGE_SIZE, end), or from reuse with a new head.
            FlushRange(page, visitor.HasNewHead ? reuse : reuse + TArch.PageSize, end);
        }

        _toFree.AddRange(_taken);
        page.VmemmapOptimized = true;
        SetOptimizedFlag(page, true);
        foreach (HvoCounters c in Counters(page))
        {
            c.Freed(_taken.Count - (visitor.HasNewHead ? 1 : 0));
            c.Optimized(1);
        }

        return true;
    }

    /// <summary>The ENOMEM path: restore [reuse, reuse + walked) with the frames the remap took.</summary>
    private void Rollback(HugePage page, ulong reuse, RemapPteVisitor<TArch> failed)
    {
        if (failed.Walked > 0)
        {
            var restore = new RestorePteVisitor<TArch> { Machine = _machine, Frames = _taken, ResetStructPages = Policy.ResetStructPagesOnRestore };
            ulong end = reuse + ((ulong)failed.Walked * TArch.PageSize);
            RemapWalkResult r = _machine.PageTable.RemapWalk(reuse, end, ref restore);
            if (!r.Ok)
            {
                throw new InvalidOperationException($"rolling back {page}: {r.Status} on a range that was just walked");
            }

            FlushRange(page, reuse, end);

            // With a fresh head the walk kept the copy at reuse; the one frame it did not use is the spare.
            _toFree.AddRange(_taken.GetRange(restore.Next, _taken.Count - restore.Next));
        }
        else if (failed.HasNewHead)
        {
            _toFree.Add(failed.NewHeadPfn);
        }

        _taken.Clear();
    }

    private RemapWalkResult Walk(HugePage page, ulong start, ulong end, RemapWalkFlags flags)
    {
        var none = new RemapPteVisitor<TArch> { Taken = _taken };
        return Walk(page, start, end, flags, ref none);
    }

    private RemapWalkResult Walk<TVisitor>(HugePage page, ulong start, ulong end, RemapWalkFlags flags, ref TVisitor visitor)
        where TVisitor : struct, IRemapPteVisitor
    {
        long flushesBefore = _machine.PageTable.Counters.TlbRangeFlushes;
        RemapWalkResult r = _machine.PageTable.RemapWalk(start, end, ref visitor, flags);
        long flushes = _machine.PageTable.Counters.TlbRangeFlushes - flushesBefore;
        foreach (HvoCounters c in Counters(page))
        {
            c.Split(r.Splits);
            c.RangeFlushes(flushes);
        }

        return r;
    }

    /// <summary>free_vmemmap_page_list: only after the flush, so no CPU can reach them any more.</summary>
    private void FreeTakenFrames()
    {
        foreach (ulong pfn in _toFree)
        {
            _machine.FreeVmemmapFrame(pfn);
        }

        _toFree.Clear();
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
}
