using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// Collapse-on-free (<see cref="HvoPolicy.CollapseOnFree"/>, docs/ARCHITECTURE.md §4), a policy no
/// kernel has: after a grow and a shrink every vmemmap PMD the grow split is a leaf again and MemFree
/// is what it was after boot (less v7.1's shared tail pages, which no kernel frees); the kernels'
/// own rule (never coalesce, 3bc2b6a72596) leaves it a table per split lower. Strict mode watches
/// every free; the struct pages read the same; an allocation failure leaves the PMD split with
/// nothing leaked; on arm64 the collapse keeps break-before-make with a writer that does.
/// </summary>
[TestClass]
public sealed class CollapseTests
{
    /// <summary>Each family's representative whose vmemmap boots with blocks a small machine holds two of, under the layouts' policies.</summary>
    public static IEnumerable<object[]> Cases =>
        from e in ArchRegistry.All
        where Archs.IsRepresentative(e.Name) && BootsWithBlocks(e.Info)
        from p in HvoPolicy.Kernel
        where !p.SharedTail || HvoPolicy.SharedTailProblem(e.Info) is null
        where HugePageVmemmap.For(e.Info, HugeTlbCommandLine.ArchDefaultSize(e.Info)).IsOptimizable(p.ReservePages)
        select new object[] { e.Name, p.Name };

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void AGrowAndAShrinkLeaveEverySplitPmdALeafAndMemFreeAsAfterBoot(string arch, string policy) =>
        Archs.Run(arch, new GrowShrink(HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void ACollapseTheAllocatorCannotServeLeavesThePmdSplitWithNothingLeaked(string arch, string policy) =>
        Archs.Run(arch, new CollapseFails(HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void ACollapsedPmdReadsTheSameStructPagesAndNoOptimizedPageIsEverCollapsed(string arch, string policy) =>
        Archs.Run(arch, new SameBytes(HvoPolicy.Find(policy)!));

    [TestMethod]
    public void OnArm64TheDirectWriterBreaksBreakBeforeMakeAndBreakFlushMakeKeepsIt()
    {
        HvoPolicy direct = HvoPolicy.Find("v6.7+collapse")!;
        (long splits, IReadOnlyList<Violation> found) = Archs.Run("arm64-4k", new Arm64Rule(direct, EntryWriterKind.Direct));
        Violation[] collapse = [.. found.Where(v => v.Change?.Step == VmemmapCollapse<Arch.Arm64_4k>.Step)];
        Assert.AreEqual(splits, collapse.Length, "each table replaced by a leaf in one store is one finding");
        Assert.IsTrue(collapse.All(v => v.Change!.Level == Arch.Arm64_4k.Info.Levels[Arch.Arm64_4k.VmemmapBootLevel].Name));

        HvoPolicy safe = HvoPolicy.Find("arm64-bbm-fault+collapse")!;
        (long safeSplits, IReadOnlyList<Violation> none) = Archs.Run("arm64-4k", new Arm64Rule(safe, EntryWriterKind.BreakFlushMake));
        Assert.IsTrue(safeSplits > 0);
        Assert.AreEqual(0, none.Count, string.Join("\n", none.Take(3)));
    }

    [TestMethod]
    public void ThePolicyNameTakesTheSuffixAndTheKernelsNeverCollapse()
    {
        HvoPolicy p = HvoPolicy.Find("v6.7+collapse")!;
        Assert.IsTrue(p.CollapseOnFree);
        Assert.AreEqual("v6.7+collapse", p.Name);
        Assert.AreEqual(HvoPolicy.V6_7 with { Name = p.Name, CollapseOnFree = true, Description = p.Description }, p);
        Assert.IsTrue(HvoPolicy.Find("arm64-bbml2+collapse")!.CollapseOnFree);
        Assert.IsNull(HvoPolicy.Find("v6.7+collapse+x"));
        Assert.IsTrue(HvoPolicy.Versions.Concat(HvoPolicy.Strategies).All(v => !v.CollapseOnFree));
    }

    /// <summary>Does the vmemmap boot with blocks (above the last level) that a machine of <see cref="Memory"/>, up to 16 GiB, holds?</summary>
    internal static bool BootsWithBlocks(ArchInfo a) => a.VmemmapBootLevel < a.Levels.Count - 1 && Memory(a) <= 16UL << 30;

    /// <summary>Four boot leaves' worth of memory at least, and 2 GiB.</summary>
    internal static ulong Memory(ArchInfo a) => Math.Max(2UL << 30, 4 * Archs.MemoryPerBootLeaf(a));

    /// <summary>Vmemmap blocks of RAM's struct pages at the boot leaf level: (leaves, tables).</summary>
    internal static (int Leaves, int Tables) BootLevelEntries<TArch>(Machine<TArch> m) where TArch : struct, IPagingArch
    {
        var count = new BootLevelCounter<TArch>();
        m.PageTable.WalkRange(m.StructPageAddress(m.Layout.FirstPfn), m.StructPageAddress(m.Layout.FirstPfn + m.Layout.Frames), ref count);
        return (count.Leaves, count.Tables);
    }

    private static (Machine<TArch> Machine, HvoOptimizer<TArch> Hvo, HugeTlbPool<TArch> Pool) Boot<TArch>(HvoPolicy policy, EntryWriterKind writer = EntryWriterKind.Direct, bool checkBbm = false)
        where TArch : struct, IPagingArch
    {
        var m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = Memory(TArch.Info), Strict = true, CheckBreakBeforeMake = checkBbm, EntryWriter = writer });
        var hvo = new HvoOptimizer<TArch>(m, policy);
        return (m, hvo, new HugeTlbPool<TArch>(m, hvo));
    }

    /// <summary>Half of memory as default-size pages, then none.</summary>
    private static void GrowAndShrink<TArch>(HugeTlbPool<TArch> pool) where TArch : struct, IPagingArch
    {
        ulong size = HugeTlbCommandLine.ArchDefaultSize(TArch.Info);
        pool.SetNrHugepages(pool.Hstate(size), Memory(TArch.Info) / 2 / size);
        Assert.IsTrue(pool.NrHugepages(pool.Hstate(size)) > 0);
        pool.SetNrHugepages(pool.Hstate(size), 0);
    }

    private static void AssertInvariants<TArch>(Machine<TArch> m, HugeTlbPool<TArch> pool) where TArch : struct, IPagingArch
    {
        List<string> problems = new Invariants<TArch>(m, pool) { IncludeBreakBeforeMake = false }.CheckAll();
        Assert.AreEqual(0, problems.Count, string.Join("\n", problems.Take(5)));
    }

    private sealed class GrowShrink(HvoPolicy kernel) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            // The kernel's rule: the split tables stay, a page each.
            (Machine<TArch> m0, HvoOptimizer<TArch> k, HugeTlbPool<TArch> p0) = Boot<TArch>(kernel);
            using (m0)
            {
                ulong free0 = TestMachines.FreeBytes(m0);
                (int leaves0, int tables0) = BootLevelEntries(m0);
                GrowAndShrink(p0);
                Assert.IsTrue(k.Total.PmdsSplit > 0);
                Assert.AreEqual(0, k.Total.PmdsCollapsed);
                Assert.AreEqual(tables0 + k.Total.PmdsSplit, BootLevelEntries(m0).Tables, "never coalesced");
                Assert.AreEqual(free0 - ((ulong)(k.Total.PmdsSplit + k.Total.SharedTailPages) * TArch.PageSize), TestMachines.FreeBytes(m0), "a page per table (and v7.1's shared tail) lower");
                Assert.AreEqual(leaves0 - k.Total.PmdsSplit, BootLevelEntries(m0).Leaves);
            }

            // Collapse-on-free: every split PMD a leaf again, MemFree as after boot.
            (Machine<TArch> m, HvoOptimizer<TArch> hvo, HugeTlbPool<TArch> pool) = Boot<TArch>(kernel.WithCollapse());
            using (m)
            {
                ulong free = TestMachines.FreeBytes(m);
                (int leaves, int tables) = BootLevelEntries(m);
                GrowAndShrink(pool);
                HvoCounters c = hvo.Total;
                Assert.IsTrue(c.PmdsSplit > 0);
                Assert.AreEqual(c.PmdsSplit, c.PmdsCollapsed, "every PMD the grow split is collapsed");
                Assert.AreEqual((leaves, tables), BootLevelEntries(m), "the vmemmap is mapped by the boot leaves again");
                Assert.AreEqual(free - ((ulong)c.SharedTailPages * TArch.PageSize), TestMachines.FreeBytes(m), "MemFree as after boot (v7.1's shared tails are never freed)");
                Assert.AreEqual(c.PmdsCollapsed * (long)TArch.LevelSize(TArch.VmemmapBootLevel), c.CollapseBytesCopied);
                Assert.IsTrue(c.CollapseFlushes >= c.PmdsCollapsed, "a flush per collapse at least");
                Assert.AreEqual(0, c.CollapseFailures);
                Assert.AreEqual(-c.SharedTailPages * (long)TArch.PageSize, c.NetBytesSaved(TArch.PageSize), "nothing saved, nothing lost but the shared tails");
                AssertInvariants(m, pool);
            }

            return true;
        }
    }

    private sealed class CollapseFails(HvoPolicy kernel) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            (Machine<TArch> m, HvoOptimizer<TArch> hvo, HugeTlbPool<TArch> pool) = Boot<TArch>(kernel.WithCollapse());
            using (m)
            {
                ulong free = TestMachines.FreeBytes(m);
                (int leaves, _) = BootLevelEntries(m);
                m.Faults.Sites = new HashSet<AllocSite> { AllocSite.VmemmapCollapse };
                m.Faults.MinOrder = 0;
                m.Faults.Probability = 100;
                m.Faults.Times = -1;
                GrowAndShrink(pool);
                HvoCounters c = hvo.Total;
                Assert.AreEqual(0, c.PmdsCollapsed);
                Assert.IsTrue(c.CollapseFailures >= c.PmdsSplit, "every collapsible PMD tried, and stayed split");
                Assert.AreEqual(leaves - c.PmdsSplit, BootLevelEntries(m).Leaves);
                Assert.AreEqual(free - ((ulong)(c.PmdsSplit + c.SharedTailPages) * TArch.PageSize), TestMachines.FreeBytes(m), "as the kernel's rule leaves it: nothing leaked");
                AssertInvariants(m, pool);

                // Only the first collapse fails: the others go through.
                m.Faults.Probability = 0;
                m.Faults.FailNth(1);
                GrowAndShrink(pool);
                Assert.IsTrue(c.PmdsCollapsed >= c.PmdsSplit - 1 && c.PmdsCollapsed > 0, $"{c.PmdsCollapsed} of {c.PmdsSplit}");
                AssertInvariants(m, pool);
            }

            return true;
        }
    }

    private sealed class SameBytes(HvoPolicy kernel) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            (Machine<TArch> m, HvoOptimizer<TArch> hvo, HugeTlbPool<TArch> pool) = Boot<TArch>(kernel.WithCollapse());
            using (m)
            {
                ulong size = HugeTlbCommandLine.ArchDefaultSize(TArch.Info);
                Hstate<TArch> h = pool.Hstate(size);
                pool.SetNrHugepages(h, 2);
                HugePage[] pages = [.. pool.Pages(h)];
                Assert.IsTrue(pages.All(p => p.VmemmapOptimized));
                int level = TArch.VmemmapBootLevel;
                ulong leaf = TArch.LevelSize(level);
                ulong pmd = m.StructPageAddress(pages[0].HeadPfn) & ~(leaf - 1);

                // Freeing a page while the other, under the same PMD, is optimized: nothing collapses.
                HugePage[] sameBlock = [.. pages.Where(p => (m.StructPageAddress(p.HeadPfn) & ~(leaf - 1)) == pmd)];
                hvo.Restore(pages[0]);
                hvo.PageFreed(pages[0]);
                Assert.AreEqual(sameBlock.Length == 1, m.PageTable.EntryAt(level, pmd).IsLeaf, "collapsed only when no optimized page is left under it");
                foreach (HugePage p in pages.Skip(1))
                {
                    hvo.Restore(p);
                }

                // Restored, not freed: the struct pages are still compound pages, and must read the same.
                byte[] before = ReadBlock(m, pmd, leaf);
                hvo.PageFreed(pages[^1]);
                hvo.PageFreed(pages[0]);
                Assert.IsTrue(m.PageTable.EntryAt(level, pmd).IsLeaf, "a leaf again");
                CollectionAssert.AreEqual(before, ReadBlock(m, pmd, leaf), "the copy reads as what it replaced");
                Assert.AreEqual(0, m.Violations.Count, string.Join("\n", m.Violations.Snapshot().Take(3)));
            }

            return true;
        }

        private static byte[] ReadBlock<TArch>(Machine<TArch> m, ulong va, ulong size) where TArch : struct, IPagingArch
        {
            var bytes = new byte[size];
            for (ulong off = 0; off < size; off += TArch.PageSize)
            {
                Assert.AreEqual(AccessFault.None, m.Mmu.Read(1, va + off, bytes.AsSpan((int)off, (int)TArch.PageSize)));
            }

            return bytes;
        }
    }

    private sealed class Arm64Rule(HvoPolicy policy, EntryWriterKind writer) : IArchVisitor<(long, IReadOnlyList<Violation>)>
    {
        public (long, IReadOnlyList<Violation>) Visit<TArch>() where TArch : struct, IPagingArch
        {
            (Machine<TArch> m, HvoOptimizer<TArch> hvo, HugeTlbPool<TArch> pool) = Boot<TArch>(policy, writer, checkBbm: true);
            using (m)
            {
                GrowAndShrink(pool);
                Assert.AreEqual(hvo.Total.PmdsSplit, hvo.Total.PmdsCollapsed);
                return (hvo.Total.PmdsSplit, m.Violations.Snapshot().Where(v => v.Kind == ViolationKind.BreakBeforeMake).ToList());
            }
        }
    }

    /// <summary>Entries at the vmemmap's boot leaf level: leaves and tables (not descended).</summary>
    private struct BootLevelCounter<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
    {
        public int Leaves;
        public int Tables;

        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            if (e.Level < TArch.VmemmapBootLevel)
            {
                return WalkAction.Descend;
            }

            Tables++;
            return WalkAction.Continue;
        }

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            Leaves += e.Level == TArch.VmemmapBootLevel ? 1 : 0;
            return WalkAction.Continue;
        }

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Continue;
    }
}
