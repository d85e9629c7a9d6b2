using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// The HugeTLB pool of a machine (mm/hugetlb.c): one <see cref="Hstate{TArch}"/> per huge page
/// size of the spec, sized through the nr_hugepages files, with pages taken into use and
/// released, surplus pages and demote. Fresh pages come from the buddy allocator (gigantic ones as
/// a contiguous range), are prepared as compound pages, handed to the <see cref="Optimizer"/>
/// and enqueued; pages leave through the optimizer's restore, and a page whose restore fails
/// stays in the pool as a surplus page (docs/ARCHITECTURE.md §7.3). One operation at a time (hugetlb_lock
/// and the hstates' resize_lock are one lock here).
/// </summary>
public sealed partial class HugeTlbPool<TArch> where TArch : struct, IPagingArch
{
    private readonly Lock _lock = new();
    private readonly Dictionary<int, Hstate<TArch>> _byOrder = [];
    private readonly HashSet<ulong> _rangePages = [];   // non-gigantic pages cut from a demoted page: freed as a range
    private readonly List<string> _log = [];

    /// <summary>
    /// hugetlb_init on a booted machine: the hstates (the default one from
    /// default_hugepagesz= or HPAGE_SIZE), the boot line's non-gigantic hugepages= from the
    /// buddy allocator (hugetlb_init_hstates), then the gigantic pages memblock gave at boot
    /// (gather_bootmem_prealloc). Both kinds are optimized as they join the pool.
    /// </summary>
    /// <param name="machine">The machine.</param>
    /// <param name="optimizer">The HVO policy.</param>
    /// <param name="boot">The boot line's HugeTLB parameters and the gigantic pages memblock gave for them (<see cref="HugeBootPages.Boot"/>); none when null.</param>
    public HugeTlbPool(Machine<TArch> machine, IVmemmapOptimizer optimizer, HugeBootPages? boot = null)
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentNullException.ThrowIfNull(optimizer);
        Machine = machine;
        Optimizer = optimizer;

        ulong[] sizes = [.. TArch.Info.HugePageSizes.Select(h => h.Size).Distinct().Order()];
        var hstates = new Hstate<TArch>[sizes.Length];
        for (int i = 0; i < sizes.Length; i++)
        {
            hstates[i] = new Hstate<TArch>(i, sizes[i], machine.Layout.Nodes, machine.Layout.MaxOrder, machine.PhysicalEndPfn, machine.Compounds.Attach);
            hstates[i].DemoteTarget = i > 0 ? hstates[i - 1] : null; // demote_order: the next smaller size
            _byOrder.Add(hstates[i].Order, hstates[i]);
        }

        Hstates = hstates;
        machine.Hotplug.HugePages = this; // offline_pages dissolves this pool's free pages
        boot ??= HugeBootPages.None;
        HugeTlbCommandLine commandLine = boot.CommandLine;
        ulong defaultSize = commandLine.ResolveDefaultSize(TArch.Info);
        Default = hstates.FirstOrDefault(h => h.Size == defaultSize) ?? hstates.First(h => h.Size == HugeTlbCommandLine.ArchDefaultSize(TArch.Info));

        _log.AddRange(boot.Log);
        lock (_lock)
        {
            foreach (HugePagesRequest request in commandLine.Requests)
            {
                if (!TryGetHstate(request.Size, out Hstate<TArch>? h))
                {
                    _log.Add(string.Create(CultureInfo.InvariantCulture, $"HugeTLB: unsupported hugepagesz={request.Size >> 10}K, ignoring hugepages={request.Count}"));
                }
                else if (!h.IsGigantic)
                {
                    BootAllocPages(h, request);
                }
            }

            GatherBootmemPrealloc(boot);
        }
    }

    public Machine<TArch> Machine { get; }

    /// <summary>The HVO policy the pool calls; it may be replaced between operations.</summary>
    public IVmemmapOptimizer Optimizer { get; set; }

    /// <summary>Every hstate, smallest size first.</summary>
    public IReadOnlyList<Hstate<TArch>> Hstates { get; }

    /// <summary>default_hstate: the one /proc/sys/vm/nr_hugepages and meminfo's HugePages_ lines are about.</summary>
    public Hstate<TArch> Default { get; }

    /// <summary>What the kernel logged about the pool (boot-time allocation failures).</summary>
    public IReadOnlyList<string> Log
    {
        get
        {
            lock (_lock)
            {
                return [.. _log];
            }
        }
    }

    /// <summary>The hstate of <paramref name="size"/> bytes (size_to_hstate).</summary>
    public Hstate<TArch> Hstate(ulong size) =>
        TryGetHstate(size, out Hstate<TArch>? h) ? h : throw new ArgumentException($"{TArch.Name} has no {size}-byte huge pages; sizes: {string.Join(", ", Hstates.Select(x => x.Size))}", nameof(size));

    public bool TryGetHstate(ulong size, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Hstate<TArch>? hstate)
    {
        hstate = Hstates.FirstOrDefault(h => h.Size == size);
        return hstate is not null;
    }

    /// <summary>The hstate named like its sysfs directory (<c>hugepages-2048kB</c>).</summary>
    public Hstate<TArch>? FindByName(string name) => Hstates.FirstOrDefault(h => h.Name == name);

    /// <summary>page_hstate: the hstate a page of the pool belongs to.</summary>
    public Hstate<TArch> HstateOf(HugePage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        return _byOrder.TryGetValue(page.Order, out Hstate<TArch>? h) ? h : throw new ArgumentException($"{page}: no hstate of order {page.Order}", nameof(page));
    }

    /// <summary>/proc/sys/vm/nr_hugepages: the default hstate's persistent count (max_huge_pages), without surplus pages.</summary>
    public ulong ProcNrHugepages
    {
        get
        {
            lock (_lock)
            {
                return Default.MaxHugePages;
            }
        }
    }

    /// <summary>sysfs nr_hugepages (global, or /sys/devices/system/node/nodeN/...): every page, surplus included.</summary>
    public ulong NrHugepages(Hstate<TArch> h, int? nid = null) => Read(h, nid, static (x, n) => n is { } i ? x.NrHugePagesNode(i) : x.NrHugePages);

    /// <summary>sysfs free_hugepages.</summary>
    public ulong FreeHugepages(Hstate<TArch> h, int? nid = null) => Read(h, nid, static (x, n) => n is { } i ? x.FreeHugePagesNode(i) : x.FreeHugePages);

    /// <summary>sysfs surplus_hugepages.</summary>
    public ulong SurplusHugepages(Hstate<TArch> h, int? nid = null) => Read(h, nid, static (x, n) => n is { } i ? x.SurplusHugePagesNode(i) : x.SurplusHugePages);

    /// <summary>sysfs resv_hugepages: reservations are not modelled.</summary>
    public ulong ResvHugepages(Hstate<TArch> h) => Read(h, null, static (x, _) => x.ResvHugePages);

    /// <summary>sysfs nr_overcommit_hugepages (/proc/sys/vm/nr_overcommit_hugepages for the default hstate).</summary>
    public ulong NrOvercommitHugepages(Hstate<TArch> h) => Read(h, null, static (x, _) => x.NrOvercommitHugePages);

    /// <summary>
    /// Write nr_overcommit_hugepages: how many surplus pages <see cref="AllocForUse"/> may add.
    /// Gigantic pages cannot be overcommitted (-EINVAL).
    /// </summary>
    public HugeTlbStatus SetNrOvercommitHugepages(Hstate<TArch> h, ulong count)
    {
        CheckHstate(h);
        lock (_lock)
        {
            if (h.IsGigantic)
            {
                return HugeTlbStatus.Invalid;
            }

            h.NrOvercommitHugePages = count;
            return HugeTlbStatus.Ok;
        }
    }

    /// <summary>/proc/meminfo's totals and HugeTLB lines (meminfo_proc_show, hugetlb_report_meminfo).</summary>
    public MemInfo MemInfo()
    {
        lock (_lock)
        {
            ulong hugetlbBytes = 0;
            foreach (Hstate<TArch> h in Hstates)
            {
                hugetlbBytes += h.Size * h.NrHugePages;
            }

            return new MemInfo(
                Machine.MemTotalBytes >> 10,
                Machine.MemFreeBytes >> 10,
                Default.NrHugePages,
                Default.FreeHugePages,
                Default.ResvHugePages,
                Default.SurplusHugePages,
                Default.SizeKb,
                hugetlbBytes >> 10)
            {
                ShmemKb = (ulong)Machine.Owners.Count(FrameOwner.Shmem) << TArch.PageShift >> 10,
            };
        }
    }

    /// <summary>/sys/devices/system/node/nodeN/meminfo's HugeTLB lines (hugetlb_report_node_meminfo).</summary>
    public string NodeMemInfo(int nid)
    {
        lock (_lock)
        {
            CultureInfo c = CultureInfo.InvariantCulture;
            return string.Create(c, $"Node {nid} HugePages_Total: {Default.NrHugePagesNode(nid),5}\n")
                + string.Create(c, $"Node {nid} HugePages_Free:  {Default.FreeHugePagesNode(nid),5}\n")
                + string.Create(c, $"Node {nid} HugePages_Surp:  {Default.SurplusHugePagesNode(nid),5}\n");
        }
    }

    private ulong Read(Hstate<TArch> h, int? nid, Func<Hstate<TArch>, int?, ulong> counter)
    {
        CheckHstate(h);
        lock (_lock)
        {
            return counter(h, nid);
        }
    }

    private void CheckHstate(Hstate<TArch> h)
    {
        ArgumentNullException.ThrowIfNull(h);
        if (h.Index >= Hstates.Count || !ReferenceEquals(Hstates[h.Index], h))
        {
            throw new ArgumentException($"{h.Name} is not an hstate of this pool", nameof(h));
        }
    }

    private void CheckNode(int? nid)
    {
        if (nid is { } n && (uint)n >= (uint)Machine.Layout.Nodes)
        {
            throw new ArgumentOutOfRangeException(nameof(nid), n, $"the machine has {Machine.Layout.Nodes} nodes");
        }
    }

    // hugetlb_hstate_alloc_pages for a size the buddy allocator serves: interleaved like a write
    // of nr_hugepages, or node by node for hugepages=N:C; a shortfall is logged and max_huge_pages
    // is what was had.
    private void BootAllocPages(Hstate<TArch> h, HugePagesRequest request)
    {
        HugePageBatch pages = NewBatch(h);
        string size = HugeBootPages.SizeString(h.Size);
        if (request.PerNode is null)
        {
            ulong before = h.PersistentHugePages;
            if (Optimizer.OptimizesInBatches)
            {
                HugetlbPagesAllocBoot(h, request.Count, pages);
            }
            else
            {
                AllocPoolPages(h, request.Count, null, pages);
            }

            ulong had = h.PersistentHugePages - before + (ulong)pages.Count;
            if (had < request.Count)
            {
                _log.Add(string.Create(CultureInfo.InvariantCulture, $"HugeTLB: allocating {request.Count} of page size {size} failed.  Only allocated {had} hugepages."));
            }
        }
        else
        {
            foreach ((int node, ulong count) in request.PerNode)
            {
                if ((uint)node >= (uint)Machine.Layout.Nodes)
                {
                    _log.Add(string.Create(CultureInfo.InvariantCulture, $"HugeTLB: Invalid hugepages parameter {node}:{count}"));
                    continue;
                }

                // hugetlb_hstate_alloc_pages_onenode: that node only, the interleave position untouched.
                ulong i = 0;
                for (; i < count && AllocFreshHugetlbFolio(h, node, Gfp.ThisNode) is { } page; i++)
                {
                    AddFresh(h, page, pages);
                }

                if (i < count)
                {
                    _log.Add(string.Create(CultureInfo.InvariantCulture, $"HugeTLB: allocating {count} of page size {size} failed node{node}.  Only allocated {i} hugepages."));
                }
            }
        }

        PrepAndAddAllocatedFolios(h, pages);
        h.MaxHugePages = h.PersistentHugePages;
    }

    // hugetlb_pages_alloc_boot (v6.13): a padata job (padata_do_multithreaded) over the count, in
    // chunks of at least count / nodes / 2, at most nodes * 2 threads, each allocating its pages
    // (alloc_pool_huge_folio) and preparing them. Here the buddy allocator (zone->lock on the kernel)
    // hands out the pages in the serial order, and the struct page part of each new page
    // (prep_new_hugetlb_folio) runs on host threads over the chunks: each chunk's pages own their
    // struct pages. The pages and every counter are what the serial loop gives; the batch is then
    // optimized and enqueued as one (prep_and_add_allocated_folios).
    private void HugetlbPagesAllocBoot(Hstate<TArch> h, ulong count, HugePageBatch pages)
    {
        int first = pages.Count;
        for (ulong i = 0; i < count && AllocPoolHugeFolio(h, null, prep: false) is { } page; i++)
        {
            pages.Add(page);
        }

        int n = pages.Count - first;
        int nodes = Machine.Layout.Nodes;
        long minChunk = Math.Max(1, n / nodes / 2);
        int works = (int)Math.Min(Math.Max(n / minChunk, 1), nodes * 2);
        int hostThreads = Machine.Config.HostThreads > 0 ? Machine.Config.HostThreads : Environment.ProcessorCount;
        int threads = Math.Min(works, hostThreads);
        if (threads <= 1)
        {
            PrepRange(pages, first, pages.Count);
            return;
        }

        // padata_do_multithreaded: equal chunks, the last one takes the rest.
        int chunk = n / threads;
        System.Threading.Tasks.Parallel.For(0, threads, new System.Threading.Tasks.ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            PrepRange(pages, first + (t * chunk), t == threads - 1 ? pages.Count : first + ((t + 1) * chunk)));
    }

    private void PrepRange(HugePageBatch pages, int from, int to)
    {
        for (int i = from; i < to; i++)
        {
            Machine.Compounds.Prep(pages[i]);
        }
    }

    // gather_bootmem_prealloc: memblock's gigantic pages become compound pages of their hstate,
    // count in MemTotal from now on (adjust_managed_page_count), are optimized and enqueued.
    private void GatherBootmemPrealloc(HugeBootPages boot)
    {
        foreach (IGrouping<ulong, HugeBootPage> group in boot.Pages.GroupBy(p => p.Size))
        {
            Hstate<TArch> h = Hstate(group.Key);
            var pages = new List<HugePage>();
            foreach (HugeBootPage bp in group)
            {
                if (!Machine.Pages.IsReserved(bp.Pfn))
                {
                    throw new InvalidOperationException($"the boot-time {h.Name} page at 0x{bp.Pfn:x} was gathered already: a machine has one HugeTLB pool");
                }

                var page = new HugePage(bp.Pfn, h.Order, bp.Node, fromBoot: true);
                Machine.Compounds.Prep(page);
                Machine.Pages.AdjustManagedPageCount(bp.Pfn, h.Frames, FrameOwner.HugePage);
                pages.Add(page);
            }

            PrepAndAddAllocatedFolios(h, pages);

            // fde1c4ecf916 (prep_and_add_bootmem_folios): hugetlb_folio_init_vmemmap initialized the
            // struct pages of the head vmemmap page (HUGETLB_VMEMMAP_RESERVE_PAGES); the other tails
            // only if HVO did not optimize the page (hugetlb_folio_init_tail_vmemmap).
            if (Optimizer.SkipsBootTailInit)
            {
                ulong inHeadPage = TArch.PageSize / (ulong)TArch.StructPageBytes;
                foreach (HugePage page in pages.Where(p => p.VmemmapOptimized))
                {
                    Machine.MemmapNeverInitialized(h.Frames - inHeadPage);
                }
            }
        }

        foreach ((ulong size, int next) in boot.NextNidToAlloc)
        {
            Hstate(size).NextNidToAlloc = next;
        }

        foreach ((ulong size, ulong allocated) in boot.Allocated)
        {
            Hstate(size).MaxHugePages = allocated;
        }
    }
}
