using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Checks;

/// <summary>
/// The invariants of docs/ARCHITECTURE.md §8, checked on a live machine, its HugeTLB pool and (when
/// the pool's optimizer is an <see cref="HvoOptimizer{TArch}"/>) HVO's state. Each check appends
/// what it found broken to a list; <see cref="CheckAll"/> runs them all. Nothing here changes the
/// simulation except CPU TLB contents (struct pages and write probes go through the MMU, as a
/// speculative PFN walker would) and the MMU's fault counters.
/// </summary>
/// <remarks>
/// Cost: the ownership, pool and counter checks are counts; the page-table check visits every
/// table and every frame a leaf maps (a bitmap of the machine's frames); the vmemmap check walks
/// every vmemmap page of every optimizable pool page (8 per 2 MiB page on x86-64); the struct
/// page check reads <see cref="StructPageSamples"/> struct pages through the MMU and compares them
/// with their canonical contents, and probes <see cref="WriteProbes"/> tails with a write (a write-protect fault where PAGE_KERNEL_RO is read-only).
/// </remarks>
public sealed class Invariants<TArch> where TArch : struct, IPagingArch
{
    private const int MaxProblems = 32;

    private readonly HashSet<ulong> _frames = [];
    private ulong[] _seen = [];
    private ulong _random;

    /// <param name="machine">The machine.</param>
    /// <param name="pool">Its HugeTLB pool, if the pool's invariants are to be checked too.</param>
    /// <param name="label">Put in front of every problem (which machine, when several are checked).</param>
    /// <param name="seed">Seeds the choice of sampled struct pages.</param>
    public Invariants(Machine<TArch> machine, HugeTlbPool<TArch>? pool = null, string? label = null, ulong seed = 0x5eed)
    {
        Machine = machine;
        Pool = pool;
        Label = label is null ? string.Empty : label + ": ";
        _random = seed | 1;
    }

    public Machine<TArch> Machine { get; }

    public HugeTlbPool<TArch>? Pool { get; }

    /// <summary>HVO's optimizer, when the pool runs one (a test's stand-in has no vmemmap to check).</summary>
    public HvoOptimizer<TArch>? Optimizer => Pool?.Optimizer as HvoOptimizer<TArch>;

    public string Label { get; }

    /// <summary>Struct pages read through the MMU per <see cref="CheckAll"/>: half anywhere in memory, half in pool pages (heads, first tails, last tails).</summary>
    public int StructPageSamples { get; set; } = 256;

    /// <summary>Read-only tail vmemmap pages probed with a write per <see cref="CheckAll"/>.</summary>
    public int WriteProbes { get; set; } = 16;

    /// <summary>
    /// Count breaks of arm64's break-before-make rule as problems (they are only recorded when the
    /// machine's checker is on); off to look at everything else on a policy that breaks it by design.
    /// </summary>
    public bool IncludeBreakBeforeMake { get; set; } = true;

    /// <summary>How many times <see cref="CheckAll"/> ran.</summary>
    public long Checks { get; private set; }

    /// <summary>Struct pages compared with their canonical contents so far.</summary>
    public long StructPagesCompared { get; private set; }

    /// <summary>Vmemmap pages of huge pages whose mapping was checked so far.</summary>
    public long VmemmapPagesChecked { get; private set; }

    /// <summary>Every check; the problems found (empty when all hold).</summary>
    public List<string> CheckAll()
    {
        Checks++;
        var problems = new List<string>();
        CheckOwners(problems);
        CheckBadPages(problems);
        CheckStrictMode(problems);
        CheckPageTableReachability(problems);
        if (Pool is not null)
        {
            HugePage[] pages = [.. Pool.Hstates.SelectMany(Pool.Pages)];
            CheckPool(problems);
            CheckHvoCounters(problems, pages);
            CheckHugePageVmemmap(problems, pages);
            CheckStructPages(problems, pages);
        }
        else
        {
            CheckStructPages(problems, []);
        }

        return problems;
    }

    /// <summary>Every frame has one owner and the owners add up to the machine; the buddy allocator's free count is the free frames.</summary>
    public void CheckOwners(List<string> problems)
    {
        long sum = Enum.GetValues<FrameOwner>().Sum(o => Machine.Owners.Count(o));
        if (sum != (long)Machine.PhysicalFrames)
        {
            Add(problems, $"the frame owners add up to {sum} frames, but the machine has {Machine.PhysicalFrames} ("
                + string.Join(", ", Enum.GetValues<FrameOwner>().Select(o => $"{o} {Machine.Owners.Count(o)}")) + ")");
        }

        long free = Machine.Owners.Count(FrameOwner.Free);
        if (Machine.Pages is { } pages && pages.NrFreePages + pages.PcpPages != free)
        {
            Add(problems, $"the buddy allocator holds {pages.NrFreePages} free pages and its per-CPU lists {pages.PcpPages}, but {free} frames are owned as free");
        }
    }

    /// <summary>
    /// No huge page was lost to bad_page: free_pages_prepare found every freed compound page's
    /// struct pages as a correct restore leaves them. For one it refused, the problem names the
    /// first struct page that differs from its canonical contents as the free (right after the
    /// restore) read it: which page, which field, what it holds and what it should.
    /// </summary>
    public void CheckBadPages(List<string> problems)
    {
        foreach (BadCompoundPage bad in Machine.FreeChecks.BadPages)
        {
            Add(problems, bad.ToString());
        }
    }

    /// <summary>
    /// Strict mode recorded nothing: no frame was freed while a page-table entry or a TLB could
    /// reach it, no stale translation was used (and, if asked, no break-before-make was broken).
    /// </summary>
    public void CheckStrictMode(List<string> problems)
    {
        IReadOnlyList<Violation> all = Machine.Violations.Snapshot();
        Violation[] counted = [.. all.Where(v => IncludeBreakBeforeMake || v.Kind != ViolationKind.BreakBeforeMake)];
        if (counted.Length != 0)
        {
            Add(problems, $"{counted.Length} strict-mode violations, first: " + string.Join(" | ", counted.Take(3)));
        }
    }

    /// <summary>
    /// Nothing leaks and nothing freed is mapped: every page-table, runtime-vmemmap and
    /// boot-vmemmap frame is reachable from the root, and every frame a leaf maps is a vmemmap
    /// frame (so no free or reused frame is reachable through a translation).
    /// </summary>
    public void CheckPageTableReachability(List<string> problems)
    {
        ulong frames = Machine.PhysicalFrames;
        if (_seen.Length == 0)
        {
            _seen = new ulong[(frames + 63) / 64];
        }
        else
        {
            Array.Clear(_seen);
        }

        var reach = new ReachVisitor { Owner = this, Stray = [] };
        reach.CountTable(Machine.PageTable.RootPfn, 0);
        for (int i = 0; i < Machine.PageTable.InvalidTables.Count; i++)
        {
            // LoongArch's invalid_pte_table and friends: reached through every empty entry above them.
            reach.CountTable(Machine.PageTable.InvalidTables[i], i + 1);
        }

        int topBit = TArch.LevelShift(0) + TArch.LevelBits(0);
        Machine.PageTable.WalkRange(0, topBit >= 64 ? 0 : 1UL << topBit, ref reach); // every entry of every table, once
        (long tables, long runtime, long boot, List<string> stray) = (reach.Reached, reach.Runtime, reach.Boot, reach.Stray);
        if (stray.Count > 0)
        {
            Add(problems, string.Join("; ", stray));
        }

        CompareLeak(problems, "page-table frames reachable from the root", tables, Machine.Owners.Count(FrameOwner.PageTable));
        // v7.1's shared tail pages stay allocated while no page maps them.
        ulong firstPfn = Machine.Layout.FirstPfn;
        long idleTails = Optimizer?.SharedTailFrames.Count(pfn => (_seen[(pfn - firstPfn) >> 6] & (1UL << (int)((pfn - firstPfn) & 63))) == 0) ?? 0;
        CompareLeak(problems, "runtime vmemmap frames mapped", runtime, Machine.Owners.Count(FrameOwner.RuntimeVmemmap) - idleTails);
        CompareLeak(problems, "boot vmemmap frames mapped", boot, Machine.Owners.Count(FrameOwner.BootVmemmap));
    }

    /// <summary>
    /// The pool's counters: per node, nr_hugepages is the free list plus the pages in use, free
    /// is at most nr, as many pages carry the surplus flag as the count allows (the count itself
    /// may exceed nr: demoting a surplus page leaves it, as remove_hugetlb_folio_for_demote does not
    /// adjust surplus, and per node a surplus count can name pages another node holds); per-node
    /// sums are the totals; every page is a compound page of its order on the node its frames are
    /// on; the huge page frames are exactly the pool's pages'.
    /// </summary>
    public void CheckPool(List<string> problems)
    {
        HugeTlbPool<TArch> pool = Pool ?? throw new InvalidOperationException("no pool to check");
        ulong hugeFrames = 0, pages = 0;
        foreach (Hstate<TArch> h in pool.Hstates)
        {
            ulong nr = 0, free = 0, surplus = 0;
            for (int nid = 0; nid < Machine.Layout.Nodes; nid++)
            {
                HugePage[] freeList = [.. h.FreeList(nid)];
                IReadOnlyCollection<HugePage> active = h.Active(nid);
                ulong nrNode = h.NrHugePagesNode(nid), freeNode = h.FreeHugePagesNode(nid), surplusNode = h.SurplusHugePagesNode(nid);
                Expect(problems, (ulong)freeList.Length, freeNode, $"{h.Name} node {nid}: free_hugepages and the free list");
                Expect(problems, (ulong)(freeList.Length + active.Count), nrNode, $"{h.Name} node {nid}: nr_hugepages and free + in use");
                if (freeNode > nrNode)
                {
                    Add(problems, $"{h.Name} node {nid}: free {freeNode} above nr_hugepages {nrNode}");
                }

                foreach (HugePage page in freeList.Concat(active))
                {
                    if (page.Node != nid || Machine.NodeOf(page.HeadPfn) != nid)
                    {
                        Add(problems, $"{page} is listed on node {nid} and its frames are on node {Machine.NodeOf(page.HeadPfn)}");
                    }

                    if (Machine.Owners[page.HeadPfn] != FrameOwner.HugePage || Machine.Owners[page.HeadPfn + page.Frames - 1] != FrameOwner.HugePage)
                    {
                        Add(problems, $"{page}: its frames are {Machine.Owners[page.HeadPfn]}, not huge page data");
                    }

                    if (!Machine.Compounds.TryGetHead(page.HeadPfn + page.Frames - 1, out ulong head, out int order) || head != page.HeadPfn || order != page.Order)
                    {
                        Add(problems, $"{page} is not a compound page of its order");
                    }
                }

                foreach (HugePage page in freeList)
                {
                    if (page.State != HugePageState.Free)
                    {
                        Add(problems, $"{page} is on the free list but {page.State}");
                    }
                }

                ulong flagged = (ulong)freeList.Concat(active).Count(p => p.Surplus);
                Expect(problems, Math.Min(surplusNode, nrNode), flagged, $"{h.Name} node {nid}: pages flagged surplus");
                nr += nrNode;
                free += freeNode;
                surplus += surplusNode;
            }

            Expect(problems, h.NrHugePages, nr, $"{h.Name}: nr_hugepages and the sum over nodes");
            Expect(problems, h.FreeHugePages, free, $"{h.Name}: free_hugepages and the sum over nodes");
            Expect(problems, h.SurplusHugePages, surplus, $"{h.Name}: surplus_hugepages and the sum over nodes");
            if (h.FreeHugePages > h.NrHugePages)
            {
                Add(problems, $"{h.Name}: free {h.FreeHugePages} above nr_hugepages {h.NrHugePages}");
            }
            hugeFrames += h.NrHugePages * h.Frames;
            pages += h.NrHugePages;
        }

        Expect(problems, hugeFrames, (ulong)Machine.Owners.Count(FrameOwner.HugePage), "frames of pool pages and frames owned as huge page data");
        Expect(problems, pages, (ulong)Machine.Compounds.Count, "pool pages and compound pages");
    }

    /// <summary>
    /// HVO's counters agree with the pages: per hstate and node, the pages counted optimized are
    /// the pages with HPageVmemmapOptimized, and vmemmap pages freed less restored is what those
    /// pages gave back; in all, the vmemmap frames owned are the boot vmemmap less that.
    /// </summary>
    public void CheckHvoCounters(List<string> problems, IReadOnlyList<HugePage> pages)
    {
        if (Optimizer is not { } optimizer || Pool is not { } pool)
        {
            return;
        }

        long optimizedTotal = 0, netTotal = 0;
        foreach (Hstate<TArch> h in pool.Hstates)
        {
            long perPage = (long)optimizer.Geometry(h.Order).Freed;
            for (int nid = 0; nid < Machine.Layout.Nodes; nid++)
            {
                long optimized = pages.Count(p => p.Order == h.Order && p.Node == nid && p.VmemmapOptimized);
                HvoCounters c = optimizer.For(h.Order, nid);
                Expect(problems, (ulong)optimized, (ulong)c.OptimizedPages, $"{h.Name} node {nid}: optimized pages counted and pages with HPageVmemmapOptimized");
                long net = c.VmemmapPagesFreed - c.VmemmapPagesRestored;
                if (net != optimized * perPage)
                {
                    Add(problems, $"{h.Name} node {nid}: vmemmap pages freed {c.VmemmapPagesFreed} - restored {c.VmemmapPagesRestored} = {net}, but {optimized} optimized pages free {perPage} each");
                }

                optimizedTotal += optimized;
                netTotal += optimized * perPage;
            }
        }

        HvoCounters t = optimizer.Total;
        Expect(problems, (ulong)optimizedTotal, (ulong)t.OptimizedPages, "optimized pages in all");
        Expect(problems, (ulong)netTotal, (ulong)(t.VmemmapPagesFreed - t.VmemmapPagesRestored), "vmemmap pages freed - restored in all");
        long owned = Machine.Owners.Count(FrameOwner.BootVmemmap) + Machine.Owners.Count(FrameOwner.RuntimeVmemmap);
        long hotplug = Machine.Hotplug.VmemmapFrames;
        long expected = (long)Machine.BootVmemmap.Frames + hotplug - (t.VmemmapPagesFreed - t.VmemmapPagesRestored) + t.SharedTailPages;
        if (owned != expected)
        {
            Add(problems, $"{owned} vmemmap frames are owned, but boot populated {Machine.BootVmemmap.Frames}, memory hotplug {hotplug}, and HVO freed {t.VmemmapPagesFreed}, restored {t.VmemmapPagesRestored} and allocated {t.SharedTailPages} shared tail pages: expected {expected}");
        }
    }

    /// <summary>
    /// Each optimizable pool page is fully optimized or fully backed: optimized, its reserved
    /// vmemmap pages are writable and every tail vmemmap PTE maps the reuse frame with PAGE_KERNEL_RO
    /// (read-only; writable where the architecture has no PAGE_KERNEL_RO), with
    /// HPageVmemmapOptimized set; backed, every vmemmap page maps its own writable frame, flag clear.
    /// </summary>
    public void CheckHugePageVmemmap(List<string> problems, IReadOnlyList<HugePage> pages)
    {
        if (Optimizer is not { } optimizer)
        {
            return;
        }

        int reserve = optimizer.Policy.ReservePages;
        Span<byte> head = stackalloc byte[TArch.StructPageBytes];
        foreach (HugePage page in pages)
        {
            if (!optimizer.IsOptimizable(page.Order))
            {
                // Nothing to remap (its head is among the sampled struct pages, flag included).
                if (page.VmemmapOptimized)
                {
                    Add(problems, $"{page}: optimized, but its size is not optimizable");
                }

                continue;
            }

            // HPageVmemmapOptimized, as a reader of the head struct page sees it.
            if (Machine.ReadStructPage(Machine.CurrentCpu, page.HeadPfn, head) != AccessFault.None)
            {
                Add(problems, $"{page}: its head struct page cannot be read");
                continue;
            }

            bool flag = (StructPage.Flags(head) & StructPage.PgHugeVmemmapOptimized) != 0;
            if (flag != page.VmemmapOptimized)
            {
                Add(problems, $"{page}: HPageVmemmapOptimized is {(flag ? "set" : "clear")} in the head struct page");
            }

            ulong start = Machine.StructPageAddress(page.HeadPfn);
            bool shared = optimizer.Policy.SharedTail && page.VmemmapOptimized;
            ulong tail = shared && optimizer.TryGetSharedTail(page, out ulong t) ? t : ulong.MaxValue;
            var check = new VmemmapPageVisitor { Owner = this, Page = page, Reserve = reserve, Problems = problems, ReuseFrame = ulong.MaxValue, SharedTail = tail, HasSharedTail = shared };
            _frames.Clear();
            PageWalkResult r = Machine.PageTable.WalkRange(start, start + (page.Frames * (ulong)TArch.StructPageBytes), ref check);
            if (r.Status == PageWalkStatus.Stopped && !check.Reported)
            {
                Add(problems, $"{page}: vmemmap page {(r.StoppedAt - start) >> TArch.PageShift} at 0x{r.StoppedAt:x} is not mapped");
            }
        }
    }

    /// <summary>
    /// Each vmemmap page of an optimizable pool page, in order: fully optimized (reserved pages
    /// writable, every tail the reuse frame read-only in a PTE) or fully backed (a writable frame each).
    /// </summary>
    private struct VmemmapPageVisitor : IPageWalkVisitor
    {
        public Invariants<TArch> Owner;
        public HugePage Page;
        public int Reserve;
        public List<string> Problems;
        public ulong ReuseFrame;
        public ulong SharedTail;
        public bool HasSharedTail;
        public bool Reported;
        private int _index;

        public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            ulong leafStart = e.Addr & ~(TArch.LevelSize(e.Level) - 1);
            ulong frame = TArch.PfnOf(e.Level, e.Entry) + ((e.Addr - leafStart) >> TArch.PageShift);
            bool writable = TArch.IsWritable(e.Entry);
            for (ulong va = e.Addr; va - e.Addr < e.Next - e.Addr; va += TArch.PageSize, frame++, _index++)
            {
                Owner.VmemmapPagesChecked++;
                string? wrong = null;
                if (Page.VmemmapOptimized && _index >= Reserve)
                {
                    ulong expected = HasSharedTail ? SharedTail : ReuseFrame;
                    bool tailWritable = !TArch.Info.PageKernelRo;
                    if (e.Level != TArch.LastLevel || frame != expected || writable != tailWritable)
                    {
                        wrong = $"an optimized page's tail maps frame 0x{frame:x} {(writable ? "rw" : "ro")} at level {e.Level}; expected the {(HasSharedTail ? "zone's shared tail" : "reuse")} frame 0x{expected:x} {(tailWritable ? "rw" : "ro")} (PAGE_KERNEL_RO) in a PTE";
                    }
                }
                else if (!writable)
                {
                    wrong = $"maps frame 0x{frame:x} read-only; {(Page.VmemmapOptimized ? "a reserved vmemmap page" : "a page not optimized")} is writable";
                }
                else if (!Page.VmemmapOptimized && !Owner._frames.Add(frame))
                {
                    wrong = $"maps frame 0x{frame:x} a second time; a page not optimized has a frame per vmemmap page";
                }

                if (Page.VmemmapOptimized && _index == Reserve - 1)
                {
                    ReuseFrame = frame;
                }

                if (wrong is not null)
                {
                    Owner.Add(Problems, $"{Page}: vmemmap page {_index} at 0x{va:x} {wrong}");
                    Reported = true;
                    return WalkAction.Stop;
                }
            }

            return WalkAction.Continue;
        }
    }

    /// <summary>
    /// Struct pages read through the MMU (on each CPU in turn) equal their canonical contents:
    /// what boot wrote, or the compound head and tails of a prepared huge page, with
    /// HPageVmemmapOptimized where set. Also: a write through an optimized page's tail traps.
    /// </summary>
    public void CheckStructPages(List<string> problems, IReadOnlyList<HugePage> pages)
    {
        int size = TArch.StructPageBytes;
        Span<byte> read = stackalloc byte[size];
        Span<byte> canonical = stackalloc byte[size];
        int cpus = Machine.Config.Cpus;
        for (int i = 0; i < StructPageSamples; i++)
        {
            ulong pfn;
            if (pages.Count == 0 || i % 2 == 0)
            {
                pfn = Machine.Layout.FirstPfn + (Next() % Machine.Layout.Frames);
                if (Machine.Layout.IsHole(pfn))
                {
                    continue; // the firmware's hole has no struct pages
                }
            }
            else
            {
                HugePage page = pages[(int)(Next() % (ulong)pages.Count)];
                ulong r = Next();
                ulong offset = (r % 4) switch
                {
                    0 => 0,
                    1 => Math.Min(1, page.Frames - 1),
                    2 => page.Frames - 1,
                    _ => (r >> 8) % page.Frames,
                };
                pfn = page.HeadPfn + offset;
            }

            int cpu = i % cpus;
            AccessFault fault = Machine.ReadStructPage(cpu, pfn, read);
            StructPagesCompared++;
            if (fault != AccessFault.None)
            {
                Add(problems, $"struct page of pfn 0x{pfn:x} cannot be read on CPU {cpu}: {fault}");
                continue;
            }

            ulong shown = AliasOf(pfn);
            Machine.BootVmemmap.FillStructPages(Machine.StructPageAddress(shown), canonical);
            if (!read.SequenceEqual(canonical))
            {
                Add(problems, $"struct page of pfn 0x{pfn:x} read on CPU {cpu} differs from its canonical contents"
                    + (shown == pfn ? string.Empty : $" (those of pfn 0x{shown:x}, whose vmemmap page its tail vmemmap page maps)")
                    + $": read {Convert.ToHexString(read)}, expected {Convert.ToHexString(canonical)}");
            }
        }

        if (Optimizer is not { } optimizer || pages.Count == 0)
        {
            return;
        }

        HugePage[] optimized = [.. pages.Where(p => p.VmemmapOptimized)];
        ulong reserveBytes = (ulong)optimizer.Policy.ReservePages * TArch.PageSize;
        for (int i = 0; i < WriteProbes && optimized.Length > 0; i++)
        {
            HugePage page = optimized[(int)(Next() % (ulong)optimized.Length)];
            ulong start = Machine.StructPageAddress(page.HeadPfn);
            ulong tails = (page.Frames * (ulong)size) - reserveBytes;
            ulong va = start + reserveBytes + ((Next() % tails) & ~(ulong)(size - 1));
            // PAGE_KERNEL_RO traps the write; where it is PAGE_KERNEL (no PAGE_KERNEL_RO) the write would land on the shared page.
            AccessFault expected = TArch.Info.PageKernelRo ? AccessFault.WriteProtect : AccessFault.None;
            AccessFault fault = Machine.Mmu.Translate(i % cpus, va, write: true, out _);
            if (fault != expected)
            {
                Add(problems, $"{page}: a write to its tail struct page at 0x{va:x} gives {fault}, not {expected}");
            }
        }
    }

    /// <summary>
    /// The struct page whose bytes a read of <paramref name="pfn"/>'s struct page returns: itself,
    /// or, in a tail vmemmap page of an optimized huge page, the one at the same offset in the
    /// reuse page (all tail vmemmap pages map it). With one reserved page (v5.18+) that is the head
    /// vmemmap page, so the first struct pages of every tail vmemmap page read as the head and its
    /// first tails: the kernel's fake heads, which page_fixed_fake_head resolves.
    /// </summary>
    private ulong AliasOf(ulong pfn)
    {
        if (Optimizer is not { } optimizer || optimizer.Policy.SharedTail || !Machine.Compounds.TryGetPage(pfn, out CompoundPage? page) || !page.VmemmapOptimized)
        {
            return pfn; // v7.1: a shared tail page holds the very tails any page of its order and zone has
        }

        ulong perPage = TArch.PageSize / (ulong)TArch.StructPageBytes;
        ulong index = pfn - page.HeadPfn;
        ulong reserve = (ulong)optimizer.Policy.ReservePages;
        return index / perPage < reserve ? pfn : page.HeadPfn + ((reserve - 1) * perPage) + (index % perPage);
    }

    /// <summary>The reachability check's visitor: every table and every frame a leaf maps, counted once.</summary>
    private struct ReachVisitor : IPageWalkVisitor
    {
        public Invariants<TArch> Owner;
        public List<string> Stray;
        public long Reached;
        public long Runtime;
        public long Boot;

        // Frames holding fragments already counted: two s390 page tables may share one (levels[].fragmentsUntil).
        public HashSet<ulong>? FragmentFrames;

        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            ulong pfn = TArch.PfnOf(e.Level, e.Entry);
            if (TArch.Info.OriginInPage(e.Level + 1) == 0 || (FragmentFrames ??= []).Add(pfn))
            {
                CountTable(pfn, e.Level + 1);
            }

            return WalkAction.Descend;
        }

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            Machine<TArch> machine = Owner.Machine;
            ulong firstPfn = machine.Layout.FirstPfn, frames = machine.PhysicalFrames;
            ulong first = TArch.PfnOf(e.Level, e.Entry);
            ulong n = TArch.LevelSize(e.Level) >> TArch.PageShift;
            for (ulong pfn = first; pfn < first + n; pfn++)
            {
                if (pfn - firstPfn >= frames)
                {
                    Stray.Add($"a level-{e.Level} leaf maps frame 0x{pfn:x} outside memory");
                    break;
                }

                ref ulong word = ref Owner._seen[(pfn - firstPfn) >> 6];
                ulong bit = 1UL << (int)((pfn - firstPfn) & 63);
                if ((word & bit) != 0)
                {
                    continue; // mapped more than once (tails on the reuse frame): counted once
                }

                word |= bit;
                switch (machine.Owners[pfn])
                {
                    case FrameOwner.RuntimeVmemmap:
                        Runtime++;
                        break;
                    case FrameOwner.BootVmemmap:
                        Boot++;
                        break;
                    default:
                        if (Stray.Count < 5)
                        {
                            Stray.Add($"a level-{e.Level} leaf maps frame 0x{pfn:x}, which is {machine.Owners[pfn]}");
                        }

                        break;
                }
            }

            return WalkAction.Continue;
        }

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Continue;

        /// <summary>A table frame reached from the root: it must be owned as one.</summary>
        public void CountTable(ulong pfn, int level)
        {
            // Every frame of the table: s390's region and segment tables take four.
            for (ulong i = 0; i < 1UL << TArch.TableOrder(level); i++)
            {
                Reached++;
                FrameOwner owner = Owner.Machine.Owners[pfn + i];
                if (owner != FrameOwner.PageTable)
                {
                    Stray.Add($"table 0x{pfn:x} at level {level}: frame 0x{pfn + i:x} is {owner}");
                }
            }
        }
    }

    private void CompareLeak(List<string> problems, string what, long reachable, long owned)
    {
        if (reachable != owned)
        {
            Add(problems, $"leak: {what}: {reachable}, but {owned} frames are owned as such");
        }
    }

    private void Expect(List<string> problems, ulong expected, ulong actual, string what)
    {
        if (expected != actual)
        {
            Add(problems, string.Create(CultureInfo.InvariantCulture, $"{what}: {expected} and {actual} differ"));
        }
    }

    private void Add(List<string> problems, string problem)
    {
        if (problems.Count < MaxProblems)
        {
            problems.Add(Label + problem);
        }
    }

    // xorshift64*: the sampled struct pages are the same on every run with the same seed.
    private ulong Next()
    {
        _random ^= _random >> 12;
        _random ^= _random << 25;
        _random ^= _random >> 27;
        return _random * 0x2545F4914F6CDD1DUL;
    }
}
