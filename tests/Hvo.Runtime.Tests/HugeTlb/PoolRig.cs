using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// A stand-in for the HVO policy: records what the pool asks, marks pages optimized, and can be
/// told to fail restores (the -ENOMEM of hugetlb_vmemmap_restore).
/// </summary>
internal sealed class RecordingOptimizer : IVmemmapOptimizer
{
    public string Name => "recording";

    /// <summary>Allocate a write's pages first and hand them over together (v6.7); false: one by one as allocated.</summary>
    public bool OptimizesInBatches { get; set; } = true;

    /// <summary>Every page handed to Optimize, directly or in a batch, in order.</summary>
    public List<HugePage> Optimized { get; } = [];

    /// <summary>Each OptimizeBatch call's pages.</summary>
    public List<HugePage[]> Batches { get; } = [];

    /// <summary>Every page handed to Restore, failed or not, in order.</summary>
    public List<HugePage> Restored { get; } = [];

    /// <summary>Restores of optimized pages fail with NoMemory while set.</summary>
    public bool FailRestore { get; set; }

    public void Optimize(HugePage page)
    {
        Optimized.Add(page);
        page.VmemmapOptimized = true;
    }

    public void OptimizeBatch(IReadOnlyList<HugePage> pages)
    {
        Batches.Add([.. pages]);
        foreach (HugePage page in pages)
        {
            Optimize(page);
        }
    }

    public RestoreResult Restore(HugePage page, bool inBatch = false)
    {
        Restored.Add(page);
        if (FailRestore && page.VmemmapOptimized)
        {
            return RestoreResult.NoMemory;
        }

        page.VmemmapOptimized = false;
        return RestoreResult.Ok;
    }
}

/// <summary>Test data: which (architecture, huge page size) pairs a pool test runs on.</summary>
public static class PoolCases
{
    public static IEnumerable<object[]> GiganticSizes =>
        from e in ArchRegistry.All
        let maxOrderBytes = e.Info.PageSize << MachineLayout.DefaultMaxOrder(e.Info.PageShift)
        from h in e.Info.HugePageSizes
        where h.Size > maxOrderBytes
        select new object[] { e.Name, h.Size };

    /// <summary>Sizes with a smaller size to demote to.</summary>
    public static IEnumerable<object[]> DemotableSizes =>
        from e in ArchRegistry.All
        from h in e.Info.HugePageSizes
        where e.Info.HugePageSizes.Any(s => s.Size < h.Size)
        select new object[] { e.Name, h.Size };

    /// <summary>
    /// Room for a handful of pages of <paramref name="size"/> on every node, contiguous ones included
    /// (besides the ranges the kernel image, the vmemmap, swiotlb and the kernel's own boot
    /// allocations keep from gigantic pages).
    /// </summary>
    public static ulong MemoryFor(ulong size) => Math.Max(2UL << 30, size * 10);

    /// <summary>Room for a handful of default-size pages on each of up to 3 nodes.</summary>
    public static ulong MemoryForDefault(ArchInfo arch) => MemoryFor(HugeTlbCommandLine.ArchDefaultSize(arch) * 2);
}

/// <summary>A booted machine with a pool over a <see cref="RecordingOptimizer"/>, and the pool's invariants.</summary>
internal sealed class PoolRig<TArch> : IDisposable where TArch : struct, IPagingArch
{
    private readonly Invariants<TArch> _invariants;

    /// <summary>The gigantic pages memblock gave at boot.</summary>
    public HugeBootPages BootPages { get; }

    public PoolRig(ulong memory, int nodes = 1, HugeTlbCommandLine? boot = null)
    {
        Machine = HugeBootPages.Boot<TArch>(new MachineConfig { MemoryBytes = memory, Nodes = nodes }, boot ?? HugeTlbCommandLine.Empty, out HugeBootPages bootPages);
        BootPages = bootPages;
        Optimizer = new RecordingOptimizer();
        Pool = new HugeTlbPool<TArch>(Machine, Optimizer, bootPages);
        _invariants = new Invariants<TArch>(Machine, Pool);
    }

    public Machine<TArch> Machine { get; }

    public RecordingOptimizer Optimizer { get; }

    public HugeTlbPool<TArch> Pool { get; }

    public Hstate<TArch> H(ulong size) => Pool.Hstate(size);

    /// <summary>Per-node nr_hugepages of <paramref name="h"/>.</summary>
    public ulong[] PerNode(Hstate<TArch> h) => [.. Enumerable.Range(0, Machine.Layout.Nodes).Select(n => Pool.NrHugepages(h, n))];

    /// <summary>Fail the <paramref name="k"/>-th huge page allocation from now (and only huge pages).</summary>
    public void FailNthHugePage(long k)
    {
        Machine.Faults.Sites = new HashSet<AllocSite> { AllocSite.HugePage };
        Machine.Faults.MinOrder = 0;
        Machine.Faults.FailNth(k);
    }

    /// <summary>
    /// What must hold after every operation (<see cref="Invariants{TArch}.CheckOwners"/> and
    /// <see cref="Invariants{TArch}.CheckPool"/>): the machine's owners add up; the pool's frames are
    /// exactly its pages' and each is a compound page; per-node counters add up to the totals and
    /// match the lists; every page sits on the node its frames are on; as many pages per node
    /// carry the surplus flag as the node's surplus count allows.
    /// </summary>
    public void Check()
    {
        var problems = new List<string>();
        _invariants.CheckOwners(problems);
        _invariants.CheckPool(problems);
        Assert.IsEmpty(problems, string.Join(Environment.NewLine, problems));
    }

    public void Dispose() => Machine.Dispose();
}

/// <summary>A pool test body, generic over the architecture.</summary>
internal abstract class PoolCase : IArchVisitor<bool>
{
    public bool Visit<TArch>() where TArch : struct, IPagingArch
    {
        Run<TArch>();
        return true;
    }

    protected abstract void Run<TArch>() where TArch : struct, IPagingArch;
}
