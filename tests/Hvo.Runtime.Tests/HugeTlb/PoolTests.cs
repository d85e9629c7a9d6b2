using System;
using System.Linq;
using Hvo.Arch;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// The HugeTLB pool's promises (mm/hugetlb.c, docs/ARCHITECTURE.md §7.3), with a recording stand-in for the
/// HVO policy; <see cref="PoolRig{TArch}.Check"/> runs after every operation.
/// </summary>
[TestClass]
public sealed class PoolTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void GrowingInterleavesNodesAndShrinkingFreesThroughRestore(string arch, ulong size) =>
        Archs.Run(arch, new GrowAndShrink(size));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TheRoundRobinPositionCarriesOverBetweenWrites(string arch) => Archs.Run(arch, new InterleaveCarriesOver());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void APerNodeWriteAllocatesAndFreesOnThatNodeOnly(string arch) => Archs.Run(arch, new PerNodeWrite());

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void GrowingStopsAtTheFirstPageThatCannotBeAllocatedAndTheWriteSucceeds(string arch, ulong size) =>
        Archs.Run(arch, new GrowthStopsAtFirstFailure(size));

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void AFailedRestoreOnShrinkLeavesASurplusPageThatSysfsCountsAndProcDoesNot(string arch, ulong size) =>
        Archs.Run(arch, new FailedRestore(size, FailedRestore.Then.Nothing));

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void WritingZeroAgainFreesNothing(string arch, ulong size) =>
        Archs.Run(arch, new FailedRestore(size, FailedRestore.Then.WriteZeroAgain));

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void WritingTheCountBackMakesTheSurplusPagePersistentWithoutAllocating(string arch, ulong size) =>
        Archs.Run(arch, new FailedRestore(size, FailedRestore.Then.WriteCountBack));

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void AfterTheCountIsWrittenBackAShrinkFreesTheFormerSurplusPage(string arch, ulong size) =>
        Archs.Run(arch, new FailedRestore(size, FailedRestore.Then.WriteCountBackThenShrink));

    [TestMethod]
    [DynamicData(nameof(PoolCases.GiganticSizes), typeof(PoolCases))]
    public void GiganticPagesAreContiguousRangesLargerThanAnyBuddyBlock(string arch, ulong size) =>
        Archs.Run(arch, new GiganticPages(size));

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void StructPagesOfAPoolPageReadThroughTheMmuAsACompoundPage(string arch, ulong size) =>
        Archs.Run(arch, new CompoundStructPages(size));

    [TestMethod]
    [DynamicData(nameof(PoolCases.GiganticSizes), typeof(PoolCases))]
    public void BootTimeGiganticPagesComeFromMemblockAndAreGatheredOptimizedIntoThePool(string arch, ulong size) =>
        Archs.Run(arch, new BootGigantic(size));

    [TestMethod]
    public void BootTimePagesOfABuddySizeComeFromTheBuddyAllocatorWhenThePoolIsCreated()
    {
        using var r = new PoolRig<X86_64>(4 * GiB, nodes: 2, boot: HugeTlbCommandLine.Empty.BootReserve(2 * MiB, 5));
        Hstate<X86_64> h = r.H(2 * MiB);

        Assert.AreEqual(0, r.BootPages.Pages.Count, "memblock is for gigantic pages only");
        Assert.AreEqual(5UL, h.NrHugePages);
        Assert.AreEqual(5UL, r.Pool.ProcNrHugepages);
        CollectionAssert.AreEqual(new ulong[] { 3, 2 }, r.PerNode(h), "interleaved like a write");
        Assert.AreEqual(1, r.Optimizer.Batches.Count);
        Assert.IsTrue(r.Pool.Pages(h).All(p => !p.FromBoot && p.VmemmapOptimized));
        r.Check();
    }

    [TestMethod]
    public void BootTimeGiganticPagesInterleaveNodesAndAShortfallIsLogged()
    {
        // 2 nodes of 4 GiB of RAM, each with its vmemmap at its top (memblock is top down) and node 0
        // with the kernel image in its first GiB and the PC's hole at 3 GiB (its RAM: 0-3 GiB and
        // 4-5 GiB, vmemmap in the latter): node 0 has room for 2 pages, node 1 for 3. Node 0 runs
        // out on the fifth page, which falls back to node 1 (memblock_alloc_try_nid_raw). swiotlb
        // comes later (mm_init) and finds its 64 MiB below 1 GiB.
        using var r = new PoolRig<X86_64>(8 * GiB, nodes: 2, boot: HugeTlbCommandLine.Parse("hugepagesz=1G hugepages=9", X86_64.Info));
        Hstate<X86_64> h = r.H(GiB);

        Assert.AreEqual((5UL, 5UL), (h.NrHugePages, h.MaxHugePages));
        CollectionAssert.AreEqual(new ulong[] { 2, 3 }, r.PerNode(h));
        CollectionAssert.AreEqual(new[] { 0, 1, 0, 1, 1 }, r.BootPages.Pages.Select(p => p.Node).ToArray());
        Assert.AreEqual("HugeTLB: allocating 9 of page size 1.00 GiB failed.  Only allocated 5 hugepages.", r.Pool.Log.Single());
        r.Check();
    }

    [TestMethod]
    public void TheBootLineIsParsedAsTheKernelDoes()
    {
        HugeTlbCommandLine c = HugeTlbCommandLine.Parse(
            "root=/dev/sda hugepages=3 default_hugepagesz=1G hugepagesz=2M hugepages=0:4,1:5 hugepagesz=3M hugepages=7 hugepagesz=2M hugepages=1",
            X86_64.Info);

        Assert.AreEqual(GiB, c.DefaultSize);
        CollectionAssert.AreEqual(new[] { (GiB, 3UL), (2 * MiB, 9UL) }, c.Requests.Select(q => (q.Size, q.Count)).ToArray());
        CollectionAssert.AreEqual(new[] { (0, 4UL), (1, 5UL) }, c.Requests[1].PerNode!.ToArray());
        CollectionAssert.AreEqual(
            new[]
            {
                "HugeTLB: unsupported hugepagesz=3M",
                "HugeTLB: hugepages=7 does not follow a valid hugepagesz, ignoring",
                "HugeTLB: hugepagesz=2M specified twice, ignoring",
                "HugeTLB: hugepages=1 does not follow a valid hugepagesz, ignoring",
            },
            c.Warnings.ToArray());
        Assert.AreEqual(2 * MiB, HugeTlbCommandLine.Parse("hugepages=4", X86_64.Info).Requests.Single().Size, "HPAGE_SIZE by default");
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TheDefaultHstateIsThePmdSizeUnlessTheBootLineSaysOtherwise(string arch) => Archs.Run(arch, new DefaultHstate());

    [TestMethod]
    public void DemoteOfAGigabytePageRestoresItThenOptimizesEachOfIts512Pieces()
    {
        using var r = new PoolRig<X86_64>(8 * GiB);
        Hstate<X86_64> giant = r.H(GiB), small = r.H(2 * MiB);
        r.Pool.SetNrHugepages(giant, 1);
        HugePage page = r.Pool.Pages(giant).Single();
        int batches = r.Optimizer.Batches.Count;

        Assert.AreEqual(new DemoteResult(1, HugeTlbStatus.Ok), r.Pool.Demote(giant));

        Assert.AreEqual(page, r.Optimizer.Restored.Single(), "restored before it is split");
        HugePage[] pieces = r.Optimizer.Batches.Skip(batches).Single();
        CollectionAssert.AreEqual(Enumerable.Range(0, 512).Select(i => page.HeadPfn + ((ulong)i << 9)).ToArray(), pieces.Select(p => p.HeadPfn).ToArray());
        Assert.IsTrue(pieces.All(p => p.Order == 9 && p.VmemmapOptimized && p.State == HugePageState.Free));
        Assert.AreEqual((0UL, 0UL), (giant.NrHugePages, giant.MaxHugePages));
        Assert.AreEqual((512UL, 512UL, 512UL), (small.NrHugePages, small.FreeHugePages, small.MaxHugePages));
        r.Check();
    }

    [TestMethod]
    [DynamicData(nameof(PoolCases.DemotableSizes), typeof(PoolCases))]
    public void DemotedPiecesLeaveThePoolLikeAnyOtherPage(string arch, ulong size) => Archs.Run(arch, new DemoteThenFree(size));

    [TestMethod]
    public void DemoteFailsWithEnomemAndKeepsThePageWhenRestoreFails()
    {
        using var r = new PoolRig<X86_64>(8 * GiB);
        Hstate<X86_64> giant = r.H(GiB);
        r.Pool.SetNrHugepages(giant, 2);
        r.Optimizer.FailRestore = true;

        Assert.AreEqual(new DemoteResult(0, HugeTlbStatus.NoMemory), r.Pool.Demote(giant, 2));

        Assert.AreEqual((2UL, 2UL, 0UL), (giant.NrHugePages, giant.FreeHugePages, giant.SurplusHugePages));
        Assert.AreEqual(0UL, r.H(2 * MiB).NrHugePages);
        Assert.AreEqual(HugeTlbStatus.Invalid, r.Pool.Demote(r.H(2 * MiB)).Status, "the smallest size has no demote file");
        r.Check();
    }

    [TestMethod]
    public void APageTakenIntoUseAndReleasedGoesBackToTheHeadOfItsFreeList()
    {
        using var r = new PoolRig<X86_64>(2 * GiB, nodes: 2);
        Hstate<X86_64> h = r.H(2 * MiB);
        r.Pool.SetNrHugepages(h, 4);

        HugePage page = r.Pool.AllocForUse(h, nid: 1)!;
        Assert.AreEqual((1, HugePageState.InUse), (page.Node, page.State));
        Assert.AreEqual((3UL, 1UL), (h.FreeHugePages, h.FreeHugePagesNode(1)));
        r.Check();

        r.Pool.Release(page);

        Assert.AreEqual(4UL, h.FreeHugePages);
        Assert.AreEqual(page, h.FreeList(1).First(), "the same page (a view of it: the pool keeps no object per page)");
        Assert.AreEqual(0, r.Optimizer.Restored.Count, "a released persistent page stays in the pool");
        Assert.ThrowsExactly<InvalidOperationException>(() => r.Pool.Release(page));
        r.Check();
    }

    [TestMethod]
    public void OvercommitAddsSurplusPagesThatAreFreedWhenReleased()
    {
        using var r = new PoolRig<X86_64>(2 * GiB);
        Hstate<X86_64> h = r.H(2 * MiB);
        ulong memFree = TestMachines.FreeBytes(r.Machine);
        Assert.IsNull(r.Pool.AllocForUse(h), "no free page and no overcommit");
        Assert.AreEqual(HugeTlbStatus.Ok, r.Pool.SetNrOvercommitHugepages(h, 1));
        Assert.AreEqual(HugeTlbStatus.Invalid, r.Pool.SetNrOvercommitHugepages(r.H(GiB), 1), "gigantic pages cannot be overcommitted");

        HugePage page = r.Pool.AllocForUse(h)!;
        Assert.IsNull(r.Pool.AllocForUse(h), "overcommit is used up");

        Assert.AreEqual((1UL, 0UL, 1UL, 0UL), (h.NrHugePages, h.FreeHugePages, h.SurplusHugePages, r.Pool.ProcNrHugepages));
        Assert.IsTrue(page.Surplus && page.VmemmapOptimized);
        r.Check();

        r.Pool.Release(page);

        Assert.AreEqual((0UL, 0UL), (h.NrHugePages, h.SurplusHugePages));
        Assert.AreSame(page, r.Optimizer.Restored.Single());
        Assert.AreEqual(memFree, TestMachines.FreeBytes(r.Machine));
        r.Check();
    }

    [TestMethod]
    public void ShrinkingBelowThePagesInUseTurnsThemSurplusAndReleasingFreesThem()
    {
        using var r = new PoolRig<X86_64>(2 * GiB);
        Hstate<X86_64> h = r.H(2 * MiB);
        r.Pool.SetNrHugepages(h, 3);
        HugePage a = r.Pool.AllocForUse(h)!, b = r.Pool.AllocForUse(h)!;

        PoolResize shrink = r.Pool.SetNrHugepages(h, 0);

        Assert.AreEqual((1UL, 2UL, 0UL), (shrink.Freed, shrink.PersistentMadeSurplus, shrink.Persistent));
        Assert.AreEqual((2UL, 0UL, 2UL), (h.NrHugePages, h.FreeHugePages, h.SurplusHugePages));
        Assert.IsTrue(a.Surplus && b.Surplus);
        r.Check();

        r.Pool.Release(a);

        Assert.AreEqual((1UL, 1UL), (h.NrHugePages, h.SurplusHugePages));
        r.Check();
    }

    [TestMethod]
    public void MemInfoPrintsTheKernelsLines()
    {
        using var r = new PoolRig<X86_64>(4 * GiB, boot: HugeTlbCommandLine.Empty.BootReserve(GiB, 1));
        r.Pool.SetNrHugepages(r.H(2 * MiB), 3);
        r.Pool.SetNrOvercommitHugepages(r.H(2 * MiB), 1);
        r.Pool.AllocForUse(r.H(2 * MiB));
        r.Pool.AllocForUse(r.H(2 * MiB));
        r.Pool.AllocForUse(r.H(2 * MiB));
        r.Pool.AllocForUse(r.H(2 * MiB));

        MemInfo m = r.Pool.MemInfo();

        Assert.AreEqual(
            $"MemTotal:       {r.Machine.MemTotalBytes >> 10,8} kB\n" +
            $"MemFree:        {r.Machine.MemFreeBytes >> 10,8} kB\n" +
            "Shmem:                 0 kB\n" +
            "HugePages_Total:       4\n" +
            "HugePages_Free:        0\n" +
            "HugePages_Rsvd:        0\n" +
            "HugePages_Surp:        1\n" +
            "Hugepagesize:       2048 kB\n" +
            "Hugetlb:         1056768 kB\n",
            m.Format());
        Assert.AreEqual("Node 0 HugePages_Total:     4\nNode 0 HugePages_Free:      0\nNode 0 HugePages_Surp:      1\n", r.Pool.NodeMemInfo(0));
        Assert.AreEqual(1056768UL, m.Fields.Single(f => f.Key == "Hugetlb").Value);
    }

    private sealed class GrowAndShrink(ulong size) : PoolCase
    {
        protected override void Run<TArch>()
        {
            // Half as much again: node 0 keeps two gigantic pages beside the kernel image, swiotlb's
            // 64 MiB below 4 GiB, a PC's hole at 3 GiB and the vmemmap at the top of the node.
            using var r = new PoolRig<TArch>(PoolCases.MemoryFor(size) * 3 / 2, nodes: 2);
            Hstate<TArch> h = r.H(size);
            ulong memFree = TestMachines.FreeBytes(r.Machine);

            PoolResize grow = r.Pool.SetNrHugepages(h, 4);

            Assert.AreEqual((4UL, 4UL), (grow.Allocated, grow.Persistent));
            Assert.AreEqual((4UL, 4UL, 0UL), (h.NrHugePages, h.FreeHugePages, h.SurplusHugePages));
            CollectionAssert.AreEqual(new ulong[] { 2, 2 }, r.PerNode(h));
            Assert.AreEqual(4, r.Optimizer.Batches.Single().Length, "the write's pages go to the policy together");
            Assert.AreEqual(memFree - (4 * size), TestMachines.FreeBytes(r.Machine));
            r.Check();

            PoolResize shrink = r.Pool.SetNrHugepages(h, 1);

            Assert.AreEqual((3UL, 0UL, 1UL), (shrink.Freed, shrink.RestoreFailures, shrink.Persistent));
            Assert.AreEqual(3, r.Optimizer.Restored.Count);
            Assert.IsTrue(r.Optimizer.Restored.All(p => !p.VmemmapOptimized));
            Assert.AreEqual(1UL, h.NrHugePages);
            CollectionAssert.AreEqual(new ulong[] { 0, 1 }, r.PerNode(h), "freed round robin from node 0: 0, 1, 0");
            Assert.AreEqual(memFree - size, TestMachines.FreeBytes(r.Machine));
            r.Check();
        }
    }

    private sealed class InterleaveCarriesOver : PoolCase
    {
        protected override void Run<TArch>()
        {
            using var r = new PoolRig<TArch>(PoolCases.MemoryForDefault(TArch.Info), nodes: 3);
            Hstate<TArch> h = r.Pool.Default;

            r.Pool.SetNrHugepages(h, 1);
            CollectionAssert.AreEqual(new ulong[] { 1, 0, 0 }, r.PerNode(h));
            r.Pool.SetNrHugepages(h, 2);
            CollectionAssert.AreEqual(new ulong[] { 1, 1, 0 }, r.PerNode(h), "the second write starts where the first stopped");
            r.Pool.SetNrHugepages(h, 5);
            CollectionAssert.AreEqual(new ulong[] { 2, 2, 1 }, r.PerNode(h));
            Assert.AreEqual(2, h.NextNidToAlloc);

            r.Pool.SetNrHugepages(h, 4);
            CollectionAssert.AreEqual(new ulong[] { 1, 2, 1 }, r.PerNode(h), "freeing starts at node 0");
            r.Pool.SetNrHugepages(h, 3);
            CollectionAssert.AreEqual(new ulong[] { 1, 1, 1 }, r.PerNode(h), "and carries on at node 1");
            Assert.AreEqual(2, h.NextNidToFree);
            r.Check();
        }
    }

    private sealed class PerNodeWrite : PoolCase
    {
        protected override void Run<TArch>()
        {
            using var r = new PoolRig<TArch>(PoolCases.MemoryForDefault(TArch.Info), nodes: 2);
            Hstate<TArch> h = r.Pool.Default;
            r.Pool.SetNrHugepages(h, 2);

            PoolResize grow = r.Pool.SetNrHugepages(h, 4, nid: 1);

            Assert.AreEqual((3UL, 5UL), (grow.Allocated, grow.Persistent));
            CollectionAssert.AreEqual(new ulong[] { 1, 4 }, r.PerNode(h));
            Assert.AreEqual(1, h.NextNidToAlloc, "a per-node write leaves the interleave on its node");
            r.Check();

            PoolResize shrink = r.Pool.SetNrHugepages(h, 0, nid: 1);

            Assert.AreEqual((4UL, 1UL), (shrink.Freed, shrink.Persistent));
            CollectionAssert.AreEqual(new ulong[] { 1, 0 }, r.PerNode(h));
            r.Check();
        }
    }

    private sealed class GrowthStopsAtFirstFailure(ulong size) : PoolCase
    {
        protected override void Run<TArch>()
        {
            using var r = new PoolRig<TArch>(PoolCases.MemoryFor(size));
            Hstate<TArch> h = r.H(size);
            r.FailNthHugePage(3);

            PoolResize grow = r.Pool.SetNrHugepages(h, 5);

            Assert.AreEqual((2UL, 2UL), (grow.Allocated, grow.Persistent), "the write succeeds with what it had");
            Assert.AreEqual((2UL, 2UL), (h.NrHugePages, h.MaxHugePages));
            Assert.AreEqual(2, r.Optimizer.Batches.Single().Length, "the pages allocated before the failure are optimized and added");
            Assert.AreEqual(1L, r.Machine.Faults.Failures);
            r.Check();

            Assert.AreEqual(5UL, r.Pool.SetNrHugepages(h, 5).Persistent, "the next write allocates again");
            r.Check();
        }
    }

    private sealed class FailedRestore(ulong size, FailedRestore.Then then) : PoolCase
    {
        public enum Then
        {
            Nothing,
            WriteZeroAgain,
            WriteCountBack,
            WriteCountBackThenShrink,
        }

        protected override void Run<TArch>()
        {
            using var r = new PoolRig<TArch>(PoolCases.MemoryFor(size), boot: HugeTlbCommandLine.Empty.WithDefaultSize(size));
            Hstate<TArch> h = r.H(size);
            Assert.AreSame(h, r.Pool.Default);
            ulong memFree = TestMachines.FreeBytes(r.Machine);
            r.Pool.SetNrHugepages(h, 1);
            HugePage page = r.Pool.Pages(h).Single();
            r.Optimizer.FailRestore = true;

            PoolResize shrink = r.Pool.SetNrHugepages(h, 0);

            Assert.AreEqual((0UL, 1UL, 0UL), (shrink.Freed, shrink.RestoreFailures, shrink.Persistent), "the write succeeds");
            Assert.AreEqual(0UL, r.Pool.ProcNrHugepages, "/proc/sys/vm/nr_hugepages: persistent pages only");
            Assert.AreEqual((1UL, 1UL, 1UL), (r.Pool.NrHugepages(h), r.Pool.FreeHugepages(h), r.Pool.SurplusHugepages(h)), "sysfs counts the surplus page");
            MemInfo m = r.Pool.MemInfo();
            Assert.AreEqual((1UL, 1UL, 1UL), (m.HugePagesTotal, m.HugePagesFree, m.HugePagesSurp));
            Assert.IsTrue(page.Surplus && page.VmemmapOptimized);
            r.Check();
            if (then == Then.Nothing)
            {
                return;
            }

            r.Optimizer.FailRestore = false;
            int restores = r.Optimizer.Restored.Count;
            if (then == Then.WriteZeroAgain)
            {
                PoolResize again = r.Pool.SetNrHugepages(h, 0);

                Assert.AreEqual(new PoolResize(0, 0, 0, 0, 0, 0, 0), again, "the persistent count is 0 already");
                Assert.AreEqual(restores, r.Optimizer.Restored.Count);
                Assert.AreEqual((1UL, 1UL), (h.NrHugePages, h.SurplusHugePages));
                r.Check();
                return;
            }

            long allocCalls = r.Machine.Pages.AllocCalls;
            PoolResize back = r.Pool.SetNrHugepages(h, 1);

            Assert.AreEqual((0UL, 1UL, 1UL), (back.Allocated, back.SurplusMadePersistent, back.Persistent));
            Assert.AreEqual(allocCalls, r.Machine.Pages.AllocCalls, "nothing allocated");
            Assert.AreEqual((1UL, 1UL, 0UL), (r.Pool.ProcNrHugepages, r.Pool.NrHugepages(h), r.Pool.SurplusHugepages(h)));
            Assert.IsFalse(page.Surplus);
            r.Check();
            if (then == Then.WriteCountBack)
            {
                return;
            }

            PoolResize free = r.Pool.SetNrHugepages(h, 0);

            Assert.AreEqual((1UL, 0UL), (free.Freed, free.RestoreFailures));
            Assert.AreEqual(0UL, h.NrHugePages);
            Assert.AreEqual(memFree, TestMachines.FreeBytes(r.Machine));
            r.Check();
        }
    }

    private sealed class GiganticPages(ulong size) : PoolCase
    {
        protected override void Run<TArch>()
        {
            using var r = new PoolRig<TArch>(PoolCases.MemoryFor(size));
            Hstate<TArch> h = r.H(size);
            // alloc_contig_range drains the per-CPU lists (the boot's leftovers wait there), so drain
            // them first: the buddy lists before and after then compare.
            r.Machine.Pages.DrainAllPages();
            string buddyInfo = r.Machine.Pages.BuddyInfo();
            Assert.IsTrue(h.IsGigantic);
            Assert.IsTrue(h.Frames > r.Machine.Layout.MaxOrderFrames);

            r.Pool.SetNrHugepages(h, 2);

            foreach (HugePage page in r.Pool.Pages(h))
            {
                Assert.AreEqual(0UL, page.HeadPfn % h.Frames, "aligned to its size");
                Assert.AreEqual(r.Machine.Layout.ZoneOf(page.HeadPfn), r.Machine.Layout.ZoneOf(page.HeadPfn + h.Frames - 1), "inside one zone");
            }

            r.Check();
            r.Pool.SetNrHugepages(h, 0);

            Assert.AreEqual(buddyInfo, r.Machine.Pages.BuddyInfo(), "free_contig_range gave every frame back");
            r.Check();
        }
    }

    private sealed class CompoundStructPages(ulong size) : PoolCase
    {
        protected override void Run<TArch>()
        {
            using var r = new PoolRig<TArch>(PoolCases.MemoryFor(size));
            Hstate<TArch> h = r.H(size);
            r.Pool.SetNrHugepages(h, 1);
            HugePage page = r.Pool.Pages(h).Single();
            var sp = new byte[TArch.StructPageBytes];
            ulong headAddress = r.Machine.StructPageAddress(page.HeadPfn);

            Assert.AreEqual(AccessFault.None, r.Machine.ReadStructPage(1, page.HeadPfn, sp));
            Assert.AreNotEqual(0UL, StructPage.Flags(sp) & StructPage.PgHead, "the head has PG_head");
            Assert.AreEqual(0UL, StructPage.Flags(sp) & StructPage.PgReserved);
            Assert.AreEqual(page.Node, StructPage.Node(sp));
            foreach (ulong i in new[] { 1UL, 2UL, page.Frames / 2, page.Frames - 1 })
            {
                Assert.AreEqual(AccessFault.None, r.Machine.ReadStructPage(1, page.HeadPfn + i, sp));
                Assert.AreEqual(headAddress | 1, StructPage.CompoundHead(sp), $"tail {i} points at the head");
                Assert.AreEqual(0UL, StructPage.Flags(sp) & StructPage.PgHead);
                if (i == 1)
                {
                    Assert.AreEqual(page.Order, sp[StructPage.CompoundOrderOffset], "the first tail holds the order");
                }
            }

            r.Pool.SetNrHugepages(h, 0);

            Assert.AreEqual(AccessFault.None, r.Machine.ReadStructPage(1, page.HeadPfn + 1, sp));
            Assert.AreEqual(0UL, StructPage.CompoundHead(sp), "freed: no longer a tail");
            r.Check();
        }
    }

    private sealed class BootGigantic(ulong size) : PoolCase
    {
        protected override void Run<TArch>()
        {
            ulong memory = PoolCases.MemoryFor(size);
            var config = new MachineConfig { MemoryBytes = memory };
            using var m = HugeBootPages.Boot<TArch>(config, HugeTlbCommandLine.Empty.BootReserve(size, 2), out HugeBootPages bootPages);
            ulong frames = size >> TArch.PageShift;
            Assert.AreEqual(2, bootPages.Pages.Count);
            Assert.AreEqual(2 * (long)frames, m.Owners.Count(FrameOwner.HugePage), "memblock gave them before memblock_free_all");
            ulong memTotal = m.MemTotalBytes;
            ulong memFree = TestMachines.FreeBytes(m);
            var optimizer = new RecordingOptimizer();

            var pool = new HugeTlbPool<TArch>(m, optimizer, bootPages);

            Hstate<TArch> h = pool.Hstate(size);
            Assert.AreEqual((2UL, 2UL, 2UL), (h.NrHugePages, h.FreeHugePages, h.MaxHugePages));
            HugePage[] gathered = optimizer.Batches.Single();
            Assert.IsTrue(gathered.All(p => p.FromBoot && p.VmemmapOptimized), "gather_bootmem_prealloc optimizes them");
            Assert.AreEqual(memTotal + (2 * size), m.MemTotalBytes, "they count in MemTotal once gathered");
            Assert.AreEqual(memFree, TestMachines.FreeBytes(m));
            Assert.IsTrue(m.OwnersAddUp());
            Assert.ThrowsExactly<InvalidOperationException>(() => new HugeTlbPool<TArch>(m, optimizer, bootPages), "gathered once");

            pool.SetNrHugepages(h, 0);

            Assert.AreEqual(0UL, h.NrHugePages);
            Assert.AreEqual(memFree + (2 * size), TestMachines.FreeBytes(m), "they go back to the page allocator as the kernel does");
            Assert.AreEqual(memTotal + (2 * size), m.MemTotalBytes);
            Assert.AreEqual(0L, m.Owners.Count(FrameOwner.HugePage));
            Assert.IsTrue(m.OwnersAddUp());
        }
    }

    private sealed class DefaultHstate : PoolCase
    {
        protected override void Run<TArch>()
        {
            using (var r = new PoolRig<TArch>(PoolCases.MemoryFor(0)))
            {
                HugePageSizeInfo pmd = TArch.Info.HugePageSizes.Single(s => s.Level == TArch.LastLevel - 1 && s.ContiguousCount == 1);
                Assert.AreEqual(pmd.Size, r.Pool.Default.Size, "HPAGE_SIZE: PMD_SIZE");
                Assert.AreEqual($"hugepages-{pmd.Size >> 10}kB", r.Pool.Default.Name);
                Assert.AreEqual(pmd.Size >> 10, r.Pool.MemInfo().HugepagesizeKb);
            }

            ulong largest = TArch.Info.HugePageSizes.Max(s => s.Size);
            using var other = new PoolRig<TArch>(PoolCases.MemoryFor(largest), boot: HugeTlbCommandLine.Empty.WithDefaultSize(largest));
            Assert.AreEqual(largest, other.Pool.Default.Size);
        }
    }

    private sealed class DemoteThenFree(ulong size) : PoolCase
    {
        protected override void Run<TArch>()
        {
            using var r = new PoolRig<TArch>(PoolCases.MemoryFor(size));
            Hstate<TArch> h = r.H(size);
            Hstate<TArch> target = h.DemoteTarget!;
            ulong memFree = TestMachines.FreeBytes(r.Machine);
            r.Pool.SetNrHugepages(h, 2);

            Assert.AreEqual(new DemoteResult(1, HugeTlbStatus.Ok), r.Pool.Demote(h));

            ulong pieces = h.Frames / target.Frames;
            Assert.AreEqual((1UL, pieces), (h.NrHugePages, target.NrHugePages));
            Assert.AreEqual((int)pieces, r.Optimizer.Batches[^1].Length);
            r.Check();

            r.Pool.SetNrHugepages(target, 0);
            r.Pool.SetNrHugepages(h, 0);

            Assert.AreEqual(memFree, TestMachines.FreeBytes(r.Machine), "every frame went back");
            r.Check();
        }
    }
}
