using System;
using System.Collections.Generic;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// Collapse-on-free, a policy no kernel has (<see cref="HvoPolicy.CollapseOnFree"/>,
/// docs/ARCHITECTURE.md §4): the kernel splits a vmemmap PMD on demand and never puts it back
/// (3bc2b6a72596, "mm: sparsemem: split the huge PMD mapping of vmemmap pages": coalescing "is
/// much more complex"), so every PTE table a split allocated stays, and so do the TLB misses of
/// base-page translations. Here, once a huge page has been freed, each vmemmap PMD its struct pages
/// lie under is collapsed if no huge page under it is optimized any more: its PTE table maps
/// one writable frame per vmemmap page, no two the same (an optimized page's tails all map its
/// kept page, v5.14's second page, or v7.1's shared tail). Then a PMD-aligned block is allocated
/// on the page's node, the pages are copied into it, the table entry is replaced by a leaf through
/// the machine's entry writer (so by the architecture's rule: one store then the flush on x86-64,
/// break, flush, make with arm64's break-before-make writers, and the checker sees every change),
/// and only after the flush are the PTE table and the old frames freed. No block (-ENOMEM):
/// the PMD stays split, nothing allocated.
/// </summary>
/// <remarks>
/// Two walks, each with its visitor: one reads the table (<see cref="CollapseInspectVisitor{TArch}"/>),
/// the other replaces its entry (<see cref="CollapseReplaceVisitor{TArch}"/>) if it is still the one
/// read. Between the copy and the replacement nothing may write those struct pages: a kernel would
/// have to keep every writer of them out (they describe memory the page allocator now owns, whose
/// struct pages it writes under zone->lock); in the model nothing else runs meanwhile.
/// </remarks>
internal sealed class VmemmapCollapse<TArch> where TArch : struct, IPagingArch
{
    /// <summary>The step named in the checker's reports: the model's, no kernel function has it.</summary>
    public const string Step = "collapse_vmemmap_pmd";

    private readonly Machine<TArch> _machine;

    public VmemmapCollapse(Machine<TArch> machine) => _machine = machine;

    /// <summary>The level of the vmemmap's boot leaves (a PMD), or -1 where boot maps the vmemmap with base pages: nothing to collapse to.</summary>
    public static int Level(Machine<TArch> machine) =>
        machine.Config.VmemmapBlocks && TArch.VmemmapBootLevel < TArch.LastLevel ? TArch.VmemmapBootLevel : -1;

    /// <summary>
    /// Collapse every collapsible vmemmap PMD over [<paramref name="start"/>, <paramref name="end"/>)
    /// (the struct pages of a freed huge page), allocating on <paramref name="node"/>; counted in <paramref name="counters"/>.
    /// </summary>
    public void TryCollapse(ulong start, ulong end, int node, HvoCounters counters)
    {
        int level = Level(_machine);
        if (level < 0)
        {
            return;
        }

        ulong size = TArch.LevelSize(level);
        for (ulong pmd = start & ~(size - 1); pmd < end; pmd += size)
        {
            TryCollapseOne(pmd, level, node, counters);
        }
    }

    private void TryCollapseOne(ulong va, int level, int node, HvoCounters counters)
    {
        ulong size = TArch.LevelSize(level);
        int pages = (int)(size >> TArch.PageShift);
        var inspect = new CollapseInspectVisitor<TArch> { Level = level, Frames = new List<ulong>(pages), Entries = new List<ulong>(pages) };
        _machine.PageTable.WalkRange(va, va + size, ref inspect);
        if (!inspect.SawTable || inspect.Frames.Count != pages || !Collapsible(inspect.Frames))
        {
            return;
        }

        if (!TryAllocBlock(node, pages, out ulong block))
        {
            counters.CollapseFailed(); // -ENOMEM: stays split; nothing was taken
            return;
        }

        for (int i = 0; i < pages; i++)
        {
            _machine.CopyFrame(inspect.Frames[i], block + (ulong)i, va + ((ulong)i << TArch.PageShift));
        }

        // smp_wmb: the copies are visible before the leaf that maps them.
        System.Threading.Interlocked.MemoryBarrier();
        var replace = new CollapseReplaceVisitor<TArch> { Level = level, Expected = inspect.TableEntry, BlockPfn = block };
        PageWalkResult r = _machine.PageTable.WalkRange(va, va + size, ref replace, PageWalkFlags.None, Step);
        if (!replace.Replaced)
        {
            FreeBlock(block, pages); // the table changed since it was read: leave it
            return;
        }

        // The table is unreachable now; its entries go (pte_clear, as free_pte_table's caller does),
        // then one flush retires every translation the TLBs hold of the range, old PTEs and table alike.
        KernelPageTable<TArch>.Context ctx = _machine.PageTable.Ctx(PageWalkFlags.None, Step);
        ulong empty = ctx.EmptyEntry(TArch.LastLevel);
        bool owed = r.NeedsFlush;
        for (int i = 0; i < pages; i++)
        {
            owed |= ctx.SetEntry(TArch.LastLevel, inspect.TablePfn, i, inspect.Entries[i], empty, va + ((ulong)i << TArch.PageShift));
        }

        int flushes = r.RangeFlushes;
        if (owed)
        {
            ctx.FlushTlbRange(va, va + size);
            flushes++;
        }

        // Only now can no CPU reach the table or the frames: give them back.
        ctx.FreeTable(TArch.LastLevel, inspect.TablePfn);
        foreach (ulong pfn in inspect.Frames)
        {
            _machine.FreeVmemmapFrame(pfn);
        }

        counters.Collapsed((long)size, flushes, -ctx.TableFrames);
    }

    /// <summary>One writable frame per vmemmap page, no two the same, each a vmemmap frame the page allocator can take back.</summary>
    private bool Collapsible(List<ulong> frames)
    {
        var seen = new HashSet<ulong>(frames.Count);
        foreach (ulong pfn in frames)
        {
            FrameOwner owner = _machine.Owners[pfn];
            if (!seen.Add(pfn) || owner is not (FrameOwner.BootVmemmap or FrameOwner.RuntimeVmemmap) || _machine.Hotplug.IsSelfHostedVmemmap(pfn))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>A PMD-aligned block of <paramref name="pages"/> frames as order-0 vmemmap pages (split_page), from the buddy allocator or, past its largest order, alloc_contig_pages.</summary>
    private bool TryAllocBlock(int node, int pages, out ulong block)
    {
        const Gfp gfp = Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode;
        int order = System.Numerics.BitOperations.Log2((uint)pages);
        if (order > _machine.Layout.MaxOrder)
        {
            return _machine.Pages.TryAllocContigPages(node, (ulong)pages, gfp, AllocSite.VmemmapCollapse, FrameOwner.RuntimeVmemmap, out block);
        }

        if (!_machine.Pages.TryAllocPages(node, order, gfp, AllocSite.VmemmapCollapse, FrameOwner.RuntimeVmemmap, out block))
        {
            return false;
        }

        _machine.Pages.SplitPage(block, order);
        return true;
    }

    private void FreeBlock(ulong block, int pages)
    {
        for (int i = 0; i < pages; i++)
        {
            _machine.Frames.Discard(block + (ulong)i);
            _machine.BootVmemmap.ForgetCopy(block + (ulong)i);
        }

        _machine.Pages.FreeContigRange(block, (ulong)pages, FrameOwner.RuntimeVmemmap);
    }
}

/// <summary>
/// Collapse-on-free's first walk: the table entry at <see cref="Level"/> over one PMD's range and the
/// frame each PTE of its table maps; a block already, a hole, or a read-only PTE (an optimized
/// page's tail) ends it.
/// </summary>
internal struct CollapseInspectVisitor<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
{
    public int Level;
    public List<ulong> Frames;
    public List<ulong> Entries;
    public bool SawTable;
    public ulong TableEntry;
    public ulong TablePfn;

    public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        if (e.Level == Level)
        {
            SawTable = true;
            TableEntry = e.Entry;
        }

        return WalkAction.Descend;
    }

    public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        if (e.Level != TArch.LastLevel || !SawTable || !TArch.IsWritable(e.Entry))
        {
            SawTable = false; // a block (nothing to collapse), or a PTE of an optimized page
            return WalkAction.Stop;
        }

        if (e.Index != Frames.Count)
        {
            SawTable = false; // not the table's entries in order from the first: not one whole PMD
            return WalkAction.Stop;
        }

        TablePfn = e.TablePfn;
        Frames.Add(TArch.PfnOf(e.Level, e.Entry));
        Entries.Add(e.Entry);
        return WalkAction.Continue;
    }

    public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        SawTable = false;
        return WalkAction.Stop;
    }
}

/// <summary>
/// Collapse-on-free's second walk: the table entry at <see cref="Level"/>, if it is still
/// <see cref="Expected"/>, becomes a PAGE_KERNEL leaf mapping <see cref="BlockPfn"/>, through the
/// entry writer (the architecture's rule for changing a live entry).
/// </summary>
internal struct CollapseReplaceVisitor<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
{
    public int Level;
    public ulong Expected;
    public ulong BlockPfn;
    public bool Replaced;

    public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        if (e.Level < Level)
        {
            return WalkAction.Descend;
        }

        if (e.Entry != Expected)
        {
            return WalkAction.Stop;
        }

        ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, TArch.MakeLeaf(e.Level, BlockPfn), e.Addr);
        Replaced = true;
        return WalkAction.Continue;
    }

    public readonly WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;

    public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;
}
