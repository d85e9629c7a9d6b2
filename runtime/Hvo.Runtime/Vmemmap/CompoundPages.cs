using System;
using System.Collections.Generic;
using System.Threading;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>
/// A compound page as its struct pages describe it: a head pfn, an order, and whether its tail
/// vmemmap pages are remapped (HPageVmemmapOptimized, a flag of the head struct page). The
/// HugeTLB pool's pages are compound pages with more state of their own.
/// </summary>
public class CompoundPage
{
    public CompoundPage(ulong headPfn, int order)
    {
        HeadPfn = headPfn;
        Order = order;
    }

    public ulong HeadPfn { get; }

    /// <summary>log2 of the base pages in the compound page.</summary>
    public int Order { get; }

    public ulong Frames => 1UL << Order;

    /// <summary>HPageVmemmapOptimized: set only when every tail vmemmap page was remapped and freed.</summary>
    public bool VmemmapOptimized { get; set; }
}

/// <summary>
/// prep_compound_page and its undoing for huge pages, on the struct pages in vmemmap bytes.
/// A vmemmap frame that holds bytes is written for real; one still deferred (a boot vmemmap
/// frame nobody wrote) gets the compound contents from <see cref="Origin"/> when it is read, so
/// preparing half a million 2 MiB pages does not copy 16 GiB of identical tails.
/// </summary>
public sealed class CompoundPages<TArch> where TArch : struct, IPagingArch
{
    private readonly Machine<TArch> _machine;
    // The pages of each order prepared so far, by head pfn >> order: flat, for millions of pages.
    private (int Order, SparseMap<CompoundPage> Heads)[] _byOrder = [];
    private readonly Lock _lock = new();

    public CompoundPages(Machine<TArch> machine) => _machine = machine;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                long n = 0;
                foreach ((_, SparseMap<CompoundPage> heads) in _byOrder)
                {
                    n += heads.Count;
                }

                return (int)n;
            }
        }
    }

    /// <summary>The huge page <paramref name="pfn"/> belongs to, if it was prepared as a compound page.</summary>
    /// <remarks>
    /// Without the lock (every struct page read while nobody wrote it asks): the maps are replaced
    /// whole when an order is added, and a map's chunks and slots hold references, each read
    /// atomically, so a look-up racing <see cref="Prep"/> or <see cref="Destroy"/> sees the page as
    /// it was before or after, as it would with the lock.
    /// </remarks>
    public bool TryGetPage(ulong pfn, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CompoundPage? page) =>
        Lookup(pfn, out page);

    private bool Lookup(ulong pfn, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CompoundPage? page)
    {
        foreach ((int o, SparseMap<CompoundPage> heads) in Volatile.Read(ref _byOrder))
        {
            if (heads.TryGetValue(pfn >> o, out page))
            {
                return true;
            }
        }

        page = null;
        return false;
    }

    /// <summary>The map of the pages of <paramref name="order"/>, made on first use (under the lock).</summary>
    private SparseMap<CompoundPage> Heads(int order)
    {
        foreach ((int o, SparseMap<CompoundPage> heads) in _byOrder)
        {
            if (o == order)
            {
                return heads;
            }
        }

        var map = new SparseMap<CompoundPage>((_machine.PhysicalEndPfn >> order) + 1);
        Volatile.Write(ref _byOrder, [.. _byOrder, (order, map)]);
        return map;
    }

    /// <summary>The compound page <paramref name="pfn"/> belongs to, if it was prepared as one.</summary>
    public bool TryGetHead(ulong pfn, out ulong head, out int order)
    {
        bool found = TryGetPage(pfn, out CompoundPage? page);
        head = page?.HeadPfn ?? 0;
        order = page?.Order ?? 0;
        return found;
    }

    /// <summary>prep_new_hugetlb_folio: the page's struct pages become a compound page.</summary>
    public void Prep(CompoundPage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        lock (_lock)
        {
            if (Lookup(page.HeadPfn, out CompoundPage? there) && there.HeadPfn == page.HeadPfn)
            {
                throw new ArgumentException($"a compound page at pfn 0x{page.HeadPfn:x} was prepared already", nameof(page));
            }

            Heads(page.Order).Set(page.HeadPfn >> page.Order, page);
        }

        RewriteWrittenFrames(page);
    }

    /// <summary>__update_and_free_hugetlb_folio / destroy_compound: back to plain free pages.</summary>
    public void Destroy(CompoundPage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        lock (_lock)
        {
            Heads(page.Order).Remove(page.HeadPfn >> page.Order);
        }

        RewriteWrittenFrames(page);
    }

    /// <summary>What an unwritten struct page of <paramref name="pfn"/> holds now.</summary>
    public StructPageOrigin Origin(StructPageOrigin boot, ulong pfn) =>
        TryGetPage(pfn, out CompoundPage? page)
            ? boot with { Reserved = false, CompoundHead = page.HeadPfn, CompoundOrder = page.Order, VmemmapOptimized = page.VmemmapOptimized }
            : boot;

    /// <summary>
    /// The struct pages of [<paramref name="pfn"/>, +<paramref name="frames"/>) become what they
    /// hold now (node, zone, compound page): memmap_init_range when memory is onlined into a zone.
    /// </summary>
    public void Rewrite(ulong pfn, ulong frames) => RewriteWrittenFrames(pfn, frames);

    // Frames holding bytes are rewritten with what the struct pages are now; deferred ones follow Origin by themselves.
    private void RewriteWrittenFrames(CompoundPage page) => RewriteWrittenFrames(page.HeadPfn, page.Frames);

    private void RewriteWrittenFrames(ulong pfn, ulong frames)
    {
        ulong start = _machine.StructPageAddress(pfn);
        ulong end = _machine.StructPageAddress(pfn + frames);
        var rewrite = new RewriteVisitor(_machine, start, end);
        PageWalkResult r = _machine.PageTable.WalkRange(start & ~(TArch.PageSize - 1), end, ref rewrite);
        if (!r.Done)
        {
            throw new InvalidOperationException($"the vmemmap at 0x{r.StoppedAt:x} is not mapped");
        }
    }

    /// <summary>Each vmemmap page of [start, end) whose frame holds bytes gets the struct pages it holds now.</summary>
    private readonly struct RewriteVisitor(Machine<TArch> machine, ulong start, ulong end) : IPageWalkVisitor
    {
        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            // A boot block maps many of these vmemmap pages at once: one leaf, its frames in order.
            ulong leafStart = e.Addr & ~(TArch.LevelSize(e.Level) - 1);
            ulong frame = TArch.PfnOf(e.Level, e.Entry) + ((e.Addr - leafStart) >> TArch.PageShift);
            for (ulong va = e.Addr, pages = Pages(e); pages > 0; va += TArch.PageSize, frame++, pages--)
            {
                if (machine.Frames.IsMaterialized(frame) || !machine.BootVmemmap.TryGetVirtualAddress(frame, out _))
                {
                    // Only this page's struct pages: a small huge page shares its vmemmap frame with others.
                    ulong from = Math.Max(va, start);
                    ulong to = Math.Min(va + TArch.PageSize, end);
                    Span<byte> bytes = machine.Mmu.Materialize(frame).Slice((int)(from - va), (int)(to - from));
                    machine.BootVmemmap.FillStructPages(from, bytes);
                }
            }

            return WalkAction.Continue;
        }

        public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;

        /// <summary>The vmemmap pages [e.Addr, e.Next) touches (the last may be partly in the range).</summary>
        private static ulong Pages(PageWalkEntry e)
        {
            ulong span = e.Next - e.Addr;
            return (span >> TArch.PageShift) + ((span & (TArch.PageSize - 1)) != 0 ? 1UL : 0);
        }
    }
}
