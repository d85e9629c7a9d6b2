using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Runtime.Tests.HugeTlb;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Checks;

/// <summary>
/// The invariant checker (<see cref="Invariants{TArch}"/>): it holds on a pool with HVO on every
/// architecture, it catches what it is for (a lost HPageVmemmapOptimized, a leaked vmemmap frame,
/// a corrupt struct page), and the simulation bug it found stays fixed.
/// </summary>
[TestClass]
public sealed class InvariantsTests
{
    /// <summary>Every architecture with two sizes v5.14 optimizes, the larger at most 1 GiB.</summary>
    public static IEnumerable<object[]> BigAndSmall =>
        from e in ArchRegistry.All
        let sizes = e.Info.HugePageSizes.Select(h => h.Size)
            .Where(s => s <= 1UL << 30 && HugePageVmemmap.For(e.Info, s).IsOptimizable(VmemmapReserve.V5_14))
            .Order().ToArray()
        where sizes.Length >= 2
        select new object[] { e.Name, sizes[^1], sizes[0] };

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void HoldOnAPoolOfEveryOptimizableSize(string arch) => Archs.Run(arch, new EverySize());

    /// <summary>
    /// Found by the soak's checker: v5.14 restores a page by copying its reuse vmemmap page into
    /// fresh frames, and the copies were deferred as "what the reuse address holds". Once the page
    /// was freed and smaller pages were prepared over its frames, their struct pages read through
    /// the MMU showed the old reuse address's (plain pages: no PG_head, no HPageVmemmapOptimized).
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(BigAndSmall))]
    public void PagesPreparedWhereARestoredPageWas_ReadTheirOwnStructPages(string arch, ulong big, ulong small) =>
        Archs.Run(arch, new ReuseAfterRestore(big, small));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void CatchALostOptimizedFlagALeakAndACorruptStructPage(string arch) => Archs.Run(arch, new Planted());

    private static ulong SmallestOptimizable(ArchInfo a, HvoPolicy p) =>
        a.HugePageSizes.Select(h => h.Size).Where(s => HugePageVmemmap.For(a, s).IsOptimizable(p.ReservePages)).DefaultIfEmpty(0UL).Min();

    private sealed class EverySize : PoolCase
    {
        protected override void Run<TArch>()
        {
            HvoPolicy policy = HvoPolicy.Newest;
            ulong[] sizes = [.. TArch.Info.HugePageSizes.Select(h => h.Size).Where(s => s <= 1UL << 30)];
            using var machine = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = PoolCases.MemoryFor(sizes.Max()), Nodes = 2, Strict = true, CheckBreakBeforeMake = false });
            var optimizer = new HvoOptimizer<TArch>(machine, policy);
            var pool = new HugeTlbPool<TArch>(machine, optimizer);
            var invariants = new Invariants<TArch>(machine, pool);
            foreach (ulong size in sizes)
            {
                Assert.AreEqual(2UL, pool.SetNrHugepages(pool.Hstate(size), 2).Allocated, $"{size >> 10} KiB pages");
            }

            HugePage? used = pool.AllocForUse(pool.Hstate(sizes[0]));
            Assert.IsNotNull(used);
            List<string> problems = invariants.CheckAll();
            Assert.IsEmpty(problems, string.Join(Environment.NewLine, problems));
            Assert.IsGreaterThan(0L, invariants.StructPagesCompared);
            HugePage[] optimizable = [.. pool.Hstates.SelectMany(pool.Pages).Where(p => optimizer.IsOptimizable(p.Order))];
            Assert.IsTrue(optimizable.All(p => p.VmemmapOptimized), "every optimizable page was optimized");
            Assert.AreEqual(
                optimizable.Sum(p => (long)(p.Frames * (ulong)TArch.StructPageBytes / TArch.PageSize)),
                invariants.VmemmapPagesChecked,
                "every vmemmap page of every optimizable pool page is checked");
        }
    }

    private sealed class ReuseAfterRestore(ulong big, ulong small) : PoolCase
    {
        protected override void Run<TArch>()
        {
            using var machine = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = Math.Max(6UL << 30, big * 6), Strict = true, CheckBreakBeforeMake = false });
            var pool = new HugeTlbPool<TArch>(machine, new HvoOptimizer<TArch>(machine, HvoPolicy.V5_14));
            var invariants = new Invariants<TArch>(machine, pool) { StructPageSamples = 1024 };
            Hstate<TArch> hb = pool.Hstate(big), hs = pool.Hstate(small);

            Assert.AreEqual(1UL, pool.SetNrHugepages(hb, 1).Allocated);
            HugePage was = pool.Pages(hb)[0];
            Assert.IsTrue(was.VmemmapOptimized);
            pool.SetNrHugepages(hb, 0); // hugetlb_vmemmap_restore, then the frames go back
            pool.SetNrHugepages(hs, (machine.Layout.Frames << TArch.PageShift) / small);

            HugePage[] inside = [.. pool.Pages(hs).Where(p => p.HeadPfn >= was.HeadPfn && p.HeadPfn < was.HeadPfn + was.Frames)];
            Assert.IsGreaterThan(1, inside.Length, "pages were prepared where the restored page was");
            Span<byte> head = stackalloc byte[TArch.StructPageBytes];
            foreach (HugePage p in inside)
            {
                Assert.AreEqual(AccessFault.None, machine.ReadStructPage(1, p.HeadPfn, head));
                Assert.AreNotEqual(0UL, StructPage.Flags(head) & StructPage.PgHead, $"{p}: its head struct page is a head");
                Assert.AreEqual(p.VmemmapOptimized, (StructPage.Flags(head) & StructPage.PgHugeVmemmapOptimized) != 0, $"{p}: HPageVmemmapOptimized");
            }

            List<string> problems = invariants.CheckAll();
            Assert.IsEmpty(problems, string.Join(Environment.NewLine, problems));
        }
    }

    private sealed class Planted : PoolCase
    {
        protected override void Run<TArch>()
        {
            HvoPolicy policy = HvoPolicy.Newest;
            ulong size = SmallestOptimizable(TArch.Info, policy);
            using var machine = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = Math.Max(2UL << 30, size * 4), Strict = true, CheckBreakBeforeMake = false });
            var pool = new HugeTlbPool<TArch>(machine, new HvoOptimizer<TArch>(machine, policy));
            var invariants = new Invariants<TArch>(machine, pool) { StructPageSamples = 64 };
            pool.SetNrHugepages(pool.Hstate(size), 1);
            HugePage page = pool.Pages(pool.Hstate(size))[0];
            Assert.IsTrue(page.VmemmapOptimized);
            Assert.IsEmpty(invariants.CheckAll());

            // HPageVmemmapOptimized cleared behind HVO's back (the head vmemmap page is writable).
            ulong va = machine.StructPageAddress(page.HeadPfn);
            Span<byte> head = stackalloc byte[TArch.StructPageBytes];
            Assert.AreEqual(AccessFault.None, machine.Mmu.Read(0, va, head));
            byte[] original = head.ToArray();
            StructPage.SetFlags(head, StructPage.Flags(head) & ~StructPage.PgHugeVmemmapOptimized);
            Assert.AreEqual(AccessFault.None, machine.Mmu.Write(0, va, head));
            List<string> found = invariants.CheckAll();
            Assert.IsTrue(found.Any(p => p.Contains("HPageVmemmapOptimized is clear", StringComparison.Ordinal)), string.Join(Environment.NewLine, found));
            Assert.IsTrue(found.Any(p => p.Contains("differs from its canonical contents", StringComparison.Ordinal)), string.Join(Environment.NewLine, found));

            Assert.AreEqual(AccessFault.None, machine.Mmu.Write(0, va, original));
            Assert.IsEmpty(invariants.CheckAll());

            // A runtime vmemmap frame nobody maps: a leak, and the vmemmap frames no longer add up.
            Assert.IsTrue(machine.Pages.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.RuntimeVmemmap, out _));
            found = invariants.CheckAll();
            Assert.IsTrue(found.Any(p => p.Contains("leak: runtime vmemmap frames mapped", StringComparison.Ordinal)), string.Join(Environment.NewLine, found));
            Assert.IsTrue(found.Any(p => p.Contains("vmemmap frames are owned", StringComparison.Ordinal)), string.Join(Environment.NewLine, found));
        }
    }
}
