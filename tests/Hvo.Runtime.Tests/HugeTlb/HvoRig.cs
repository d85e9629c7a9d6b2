using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>Test data for the policy: (architecture, optimizable huge page size, policy).</summary>
public static class HvoCases
{
    /// <summary>Every architecture, optimizable size and kernel policy; the break-before-make strategies on the architectures that need them.</summary>
    public static IEnumerable<object[]> SizesAndPolicies =>
        from e in ArchRegistry.All
        from h in e.Info.HugePageSizes
        from p in HvoPolicy.All
        where p.RequiredWriter is null || p.ForRule == e.Info.Replacement
        where HugePageVmemmap.For(e.Info, h.Size).IsOptimizable(p.ReservePages)
        select new object[] { e.Name, h.Size, p.Name };

    /// <summary>CI's share of <see cref="SizesAndPolicies"/> for the heaviest suites: each family's representative (<see cref="Archs.IsRepresentative"/>).</summary>
    public static IEnumerable<object[]> SizesAndPoliciesCi => Archs.Representatives(SizesAndPolicies);

    /// <summary>The long category's share: the rest of each family.</summary>
    public static IEnumerable<object[]> SizesAndPoliciesLong => Archs.Others(SizesAndPolicies);

    /// <summary>
    /// The sizes the issue names for exhaustive fault injection: x86_64 2M and 1G, every optimizable
    /// arm64 size, under the oldest layout and the newest (v7.1, whose shared tail page is one more
    /// allocation that can fail; only where the spec allows it, else the policy is refused); on
    /// arm64 also the break-before-make-safe policies.
    /// </summary>
    public static IEnumerable<object[]> FaultCases =>
        from e in ArchRegistry.All
        where e.Name == "x86_64" || e.Name.StartsWith("arm64", StringComparison.Ordinal)
        from h in e.Info.HugePageSizes
        from p in new[] { HvoPolicy.V5_14, HvoPolicy.Newest }
        where !p.SharedTail || HvoPolicy.SharedTailProblem(e.Info) is null
        where HugePageVmemmap.For(e.Info, h.Size).IsOptimizable(p.ReservePages)
        select new object[] { e.Name, h.Size, p.Name };

    /// <summary>
    /// <see cref="FaultCases"/> and, on arm64, the break-before-make-safe policies for sizes whose
    /// vmemmap is at most <paramref name="maxVmemmapBytes"/> (the rest in the long category).
    /// </summary>
    public static IEnumerable<object[]> OptimizeFaultCases(ulong minVmemmapBytes, ulong maxVmemmapBytes, bool kernelPolicies) =>
        (kernelPolicies ? FaultCases : Enumerable.Empty<object[]>()).Concat(
            from c in Ruled(Safe)
            let info = ArchRegistry.Find((string)c[0])!.Info
            let bytes = HugePageVmemmap.For(info, (ulong)c[1]).VmemmapPages * info.PageSize
            where bytes >= minVmemmapBytes && bytes <= maxVmemmapBytes
            select c);

    /// <summary>CI's share of <see cref="OptimizeFaultCases"/>: kernel policies, and safe ones up to a 4 MiB vmemmap.</summary>
    public static IEnumerable<object[]> OptimizeFaultCasesCi => OptimizeFaultCases(0, 4UL << 20, kernelPolicies: true);

    /// <summary>The long category's share: the safe policies on the sizes with a vmemmap above 4 MiB.</summary>
    public static IEnumerable<object[]> OptimizeFaultCasesLong => OptimizeFaultCases((4UL << 20) + 1, ulong.MaxValue, kernelPolicies: false);

    /// <summary>Sizes whose vmemmap is at most 4 MiB: where the break-before-make tests run in CI.</summary>
    public static IEnumerable<object[]> Moderate(IEnumerable<object[]> cases) =>
        from c in cases
        let info = ArchRegistry.Find((string)c[0])!.Info
        where HugePageVmemmap.For(info, (ulong)c[1]).VmemmapPages * info.PageSize <= 4UL << 20
        select c;

    /// <summary>The policies that keep arm64's break-before-make rule.</summary>
    public static IEnumerable<HvoPolicy> Safe => HvoPolicy.All.Where(p => p.RequiredWriter is not null);

    /// <summary>(arm64 architecture, optimizable size, policy) for the given policies that apply to arm64's rule.</summary>
    public static IEnumerable<object[]> Arm64(IEnumerable<HvoPolicy> policies) =>
        from c in Ruled(policies)
        where ArchRegistry.Find((string)c[0])!.Info.Replacement == ReplacementRule.BreakBeforeMake
        select c;

    /// <summary>
    /// (architecture with a replacement rule to check, optimizable size, policy): arm64's and s390's, each
    /// with the kernel policies given and the strategies written for its rule.
    /// </summary>
    public static IEnumerable<object[]> Ruled(IEnumerable<HvoPolicy> policies) =>
        from e in ArchRegistry.All
        where e.Info.Replacement != ReplacementRule.Store
        from h in e.Info.HugePageSizes
        from p in policies
        where p.ForRule is null || p.ForRule == e.Info.Replacement
        where HugePageVmemmap.For(e.Info, h.Size).IsOptimizable(p.ReservePages)
        select new object[] { e.Name, h.Size, p.Name };
}

/// <summary>A booted machine in strict mode with an optimizer, and huge pages made by hand.</summary>
public sealed class HvoRig<TArch> : IDisposable where TArch : struct, IPagingArch
{
    /// <param name="checkBreakBeforeMake">
    /// By default on only for the break-before-make-safe policies on architectures that require it:
    /// every kernel policy breaks arm64's rule (why arm64 HVO was reverted), which its own tests show;
    /// the other tests look at everything else, and so also check the safe policies keep the rule.
    /// </param>
    /// <param name="bbmLevel">The CPUs' FEAT_BBM level; by default what the policy's entry writer needs.</param>
    /// <param name="hardwareAccessFlag">FEAT_HAFDBS: readers set the access flag instead of faulting.</param>
    public HvoRig(HvoPolicy policy, ulong hugePageSize, bool? checkBreakBeforeMake = null, int? bbmLevel = null, bool hardwareAccessFlag = false)
    {
        // Room for a few huge pages of this size, however large.
        ulong memory = Math.Max(4UL << 30, hugePageSize * 8);
        Machine = Machine<TArch>.Boot(new MachineConfig
        {
            MemoryBytes = memory,
            Strict = true,
            CheckBreakBeforeMake = checkBreakBeforeMake ?? (TArch.Replacement != ReplacementRule.Store && policy.RequiredWriter is not null),
            EntryWriter = TestMachines.WriterFor(policy),
            BreakBeforeMakeLevel = bbmLevel ?? TestMachines.BbmLevelFor(policy),
            HardwareAccessFlag = hardwareAccessFlag,
        });
        Optimizer = new HvoOptimizer<TArch>(Machine, policy);
        Order = (int)Math.Log2(hugePageSize >> TArch.PageShift);
        Machine.Faults.MinOrder = 0;
    }

    public Machine<TArch> Machine { get; }

    public HvoOptimizer<TArch> Optimizer { get; }

    public int Order { get; }

    public ulong Frames => 1UL << Order;

    public int StructPagesPerPage => (int)(TArch.PageSize / (ulong)TArch.StructPageBytes);

    /// <summary>alloc_fresh_hugetlb_folio by hand: frames from the allocator, prepared as a compound page.</summary>
    public HugePage Allocate(int node = 0)
    {
        ulong pfn;
        bool ok = Order <= Machine.Layout.MaxOrder
            ? Machine.Pages.TryAllocPages(node, Order, Gfp.Comp | Gfp.ThisNode, AllocSite.HugePage, FrameOwner.HugePage, out pfn)
            : Machine.Pages.TryAllocContigPages(node, Frames, Gfp.ThisNode, AllocSite.HugePage, FrameOwner.HugePage, out pfn);
        Assert.IsTrue(ok, "the huge page itself must be allocatable in this test");
        var page = new HugePage(pfn, Order, node, fromBoot: false);
        Machine.Compounds.Prep(page);
        return page;
    }

    /// <summary>Every struct page of the page, read through the MMU by <paramref name="cpu"/>.</summary>
    public byte[] ReadStructPages(HugePage page, int cpu = 1)
    {
        int size = TArch.StructPageBytes;
        var all = new byte[(int)page.Frames * size];
        for (ulong i = 0; i < page.Frames; i += (ulong)StructPagesPerPage)
        {
            int n = (int)Math.Min((ulong)StructPagesPerPage, page.Frames - i);
            ulong va = Machine.StructPageAddress(page.HeadPfn + i);
            Assert.AreEqual(AccessFault.None, Machine.Mmu.Read(cpu, va, all.AsSpan((int)i * size, n * size)));
        }

        return all;
    }

    /// <summary>The vmemmap PTEs of the page: (address, entry), after splitting nothing.</summary>
    public IEnumerable<(ulong Va, WalkResult Pte)> VmemmapPtes(HugePage page)
    {
        ulong start = Machine.StructPageAddress(page.HeadPfn);
        ulong end = start + (page.Frames * (ulong)TArch.StructPageBytes);
        for (ulong va = start; va < end; va += TArch.PageSize)
        {
            yield return (va, Machine.PageTable.Walk(va));
        }
    }

    public void Dispose() => Machine.Dispose();
}
