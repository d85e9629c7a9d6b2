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
    public static IEnumerable<object[]> SizesAndPolicies =>
        from e in ArchRegistry.All
        from h in e.Info.HugePageSizes
        from p in HvoPolicy.All
        where HugePageVmemmap.For(e.Info, h.Size).IsOptimizable(p.ReservePages)
        select new object[] { e.Name, h.Size, p.Name };

    /// <summary>The sizes the issue names for exhaustive fault injection: x86_64 2M and 1G, every optimizable arm64 size.</summary>
    public static IEnumerable<object[]> FaultCases =>
        from e in ArchRegistry.All
        where e.Name == "x86_64" || e.Name.StartsWith("arm64", StringComparison.Ordinal)
        from h in e.Info.HugePageSizes
        from p in new[] { HvoPolicy.V5_14, HvoPolicy.Newest }
        where HugePageVmemmap.For(e.Info, h.Size).IsOptimizable(p.ReservePages)
        select new object[] { e.Name, h.Size, p.Name };
}

/// <summary>A booted machine in strict mode with an optimizer, and huge pages made by hand.</summary>
public sealed class HvoRig<TArch> : IDisposable where TArch : struct, IPagingArch
{
    /// <param name="checkBreakBeforeMake">
    /// Off by default: every kernel policy here breaks arm64's rule (why arm64 HVO was reverted),
    /// which its own test shows; the other tests look at everything else.
    /// </param>
    public HvoRig(HvoPolicy policy, ulong hugePageSize, bool checkBreakBeforeMake = false)
    {
        // Room for a few huge pages of this size, however large.
        ulong memory = Math.Max(4UL << 30, hugePageSize * 8);
        Machine = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = memory, Strict = true, CheckBreakBeforeMake = checkBreakBeforeMake });
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
            ulong va = Machine<TArch>.StructPageAddress(page.HeadPfn + i);
            Assert.AreEqual(AccessFault.None, Machine.Mmu.Read(cpu, va, all.AsSpan((int)i * size, n * size)));
        }

        return all;
    }

    /// <summary>The vmemmap PTEs of the page: (address, entry), after splitting nothing.</summary>
    public IEnumerable<(ulong Va, WalkResult Pte)> VmemmapPtes(HugePage page)
    {
        ulong start = Machine<TArch>.StructPageAddress(page.HeadPfn);
        ulong end = start + (page.Frames * (ulong)TArch.StructPageBytes);
        for (ulong va = start; va < end; va += TArch.PageSize)
        {
            yield return (va, Machine.PageTable.Walk(va));
        }
    }

    public void Dispose() => Machine.Dispose();
}
