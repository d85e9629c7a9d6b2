using System.Collections.Generic;
using System.Linq;
using Hvo.Arch;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Paging.Reference;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// s390's page-table fragments (spec key levels[].fragmentsUntil, docs/ARCHITECTURE.md §5): before
/// v6.7 (d08d4e7cd6bf) page_table_alloc handed init_mm's 2 KiB page tables out two to a 4 KiB page,
/// so the PTE tables of N split segments cost ceil(N/2) pages; from v6.7 each takes a page. A freed
/// table gives its page back only when the other half is free too; the segment entry holds the
/// half's origin (bit 11), which the generated walk and the interpreted one both follow.
/// </summary>
[TestClass]
public sealed class PageTableFragmentTests
{
    private const ulong Memory = 2UL << 30;
    private const ulong HugePage = 1UL << 20;

    /// <summary>Page tables per page from the spec: the page size over the last level's tableBytes.</summary>
    private static long PerPage => (long)(S390x.PageSize / (ulong)S390x.Info.Levels[S390x.LastLevel].TableBytes);

    [TestMethod]
    public void KernelsBeforeV6_7HandOutFragmentsOnS390AndNoOtherSpecHasThem()
    {
        Assert.AreEqual("v6.7", S390x.Info.Levels[S390x.LastLevel].FragmentsUntil);
        Assert.AreEqual(2, S390x.Info.FragmentsPerPage(S390x.LastLevel));
        Assert.AreEqual(0x800UL, S390x.Info.OriginInPage(S390x.LastLevel), "_SEGMENT_ENTRY_ORIGIN ~0x7ff: a 2 KiB half");
        foreach (string v in new[] { "v5.14", "v6.2", "v6.6" })
        {
            Assert.IsTrue(HvoPolicy.Find(v)!.PageTableFragments(S390x.Info), v);
            Assert.IsTrue(HvoPolicy.Find(v + "+collapse")!.PageTableFragments(S390x.Info), v + "+collapse");
        }

        foreach (string v in new[] { "v6.7", "v6.12", "v6.12.118", "v7.1" })
        {
            Assert.IsFalse(HvoPolicy.Find(v)!.PageTableFragments(S390x.Info), v);
        }

        Assert.IsTrue(HvoPolicy.S390Safe.PageTableFragments(S390x.Info), "s390-safe runs on v6.2's page tables");
        Assert.IsFalse(HvoPolicy.Arm64PauseCpus.PageTableFragments(S390x.Info), "a strategy of today's kernels");
        foreach (ArchEntry e in ArchRegistry.All.Where(e => e.Name != "s390x"))
        {
            Assert.IsTrue(e.Info.Levels.All(l => l.FragmentsUntil is null), e.Name);
            Assert.IsFalse(HvoPolicy.V6_2.PageTableFragments(e.Info), e.Name);
        }
    }

    [TestMethod]
    [DataRow("v6.2", true)]
    [DataRow("v6.6", true)]
    [DataRow("v6.7", false)]
    [DataRow("v6.12", false)]
    public void ASplitOfNSegmentsCostsCeilNOverTwoPagesBeforeV6_7AndNFrom(string version, bool fragments)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        (Machine<S390x> m, HvoOptimizer<S390x> hvo, HugeTlbPool<S390x> pool) = Boot(policy);
        using (m)
        {
            ulong free0 = TestMachines.FreeBytes(m);
            long tables0 = m.Owners.Count(FrameOwner.PageTable);
            Hstate<S390x> h = pool.Hstate(HugePage);
            pool.SetNrHugepages(h, Memory / 2 / HugePage);
            HvoCounters c = hvo.Total;
            long n = c.PmdsSplit;
            Assert.IsGreaterThan(2L, n, "several segments split");
            long frames = fragments ? (n + PerPage - 1) / PerPage : n;
            Assert.AreEqual(n, c.PteTablesAllocated, "a table per split either way");
            Assert.AreEqual(frames, m.Owners.Count(FrameOwner.PageTable) - tables0, "page-table pages the splits took");
            Assert.AreEqual(frames, c.PteTableFrames);
            ulong huge = pool.NrHugepages(h) * HugePage;
            Assert.AreEqual(free0 - huge + ((ulong)c.VmemmapPagesFreed * S390x.PageSize) - ((ulong)frames * S390x.PageSize), TestMachines.FreeBytes(m), "MemFree: less the pages, plus the vmemmap freed, less the table pages");
            Assert.AreEqual((c.VmemmapPagesFreed - frames) * (long)S390x.PageSize, c.NetBytesSaved(S390x.PageSize));
            Assert.AreEqual(fragments, m.PageTable.IsFragmented(S390x.LastLevel));
            AssertInvariants(m, pool);

            // The kernel's rule: the tables stay when the pages go, a page per two of them before v6.7.
            pool.SetNrHugepages(h, 0);
            Assert.AreEqual(free0 - ((ulong)frames * S390x.PageSize), TestMachines.FreeBytes(m));
            AssertInvariants(m, pool);
        }
    }

    [TestMethod]
    [DataRow("v6.2+collapse")]
    [DataRow("v6.7+collapse")]
    public void CollapseGivesAPageBackOnlyWhenBothHalvesAreFreeAndEndsAsAfterBoot(string policyName)
    {
        HvoPolicy policy = HvoPolicy.Find(policyName)!;
        (Machine<S390x> m, HvoOptimizer<S390x> hvo, HugeTlbPool<S390x> pool) = Boot(policy);
        using (m)
        {
            ulong free0 = TestMachines.FreeBytes(m);
            long tables0 = m.Owners.Count(FrameOwner.PageTable);
            Hstate<S390x> h = pool.Hstate(HugePage);
            ulong grown = Memory / 2 / HugePage;
            pool.SetNrHugepages(h, grown);
            HvoCounters c = hvo.Total;
            Assert.IsGreaterThan(2L, c.PmdsSplit);

            // Shrink step by step: each step collapses some segments; the pages holding tables are
            // exactly those with a live half (strict mode checks every page freed is unreachable).
            bool halfHeld = false;
            for (ulong left = grown; left > 0;)
            {
                left = left > 48 ? left - 48 : 0;
                pool.SetNrHugepages(h, left);
                long live = c.PteTablesAllocated - c.PmdsCollapsed;
                (long tables, long frames) = m.PageTable.FragmentsInUse();
                if (m.PageTable.IsFragmented(S390x.LastLevel))
                {
                    Assert.AreEqual(live, tables, "every live table is a fragment");
                    Assert.IsTrue(frames >= (live + PerPage - 1) / PerPage && frames <= live, $"{frames} pages for {live} halves");
                    halfHeld |= frames * PerPage > live;
                }
                else
                {
                    Assert.AreEqual((0L, 0L), (tables, frames));
                    frames = live;
                }

                Assert.AreEqual(frames, m.Owners.Count(FrameOwner.PageTable) - tables0, "a page is held while one of its halves is");
                Assert.AreEqual(frames, c.PteTableFrames);
                AssertInvariants(m, pool);
            }

            Assert.AreEqual(m.PageTable.IsFragmented(S390x.LastLevel), halfHeld, "with fragments, some page was held by one live half while its other half was free");
            Assert.AreEqual(c.PmdsSplit, c.PmdsCollapsed, "every split segment is a leaf again");
            Assert.AreEqual(free0, TestMachines.FreeBytes(m), "MemFree as after boot");
            Assert.AreEqual(tables0, m.Owners.Count(FrameOwner.PageTable));
            Assert.AreEqual(0L, c.NetBytesSaved(S390x.PageSize));
        }
    }

    [TestMethod]
    public void AnEnomemOnTheFragmentPageLeavesThePageUnoptimizedAndTheListedHalfStillServes()
    {
        (Machine<S390x> m, HvoOptimizer<S390x> hvo, HugeTlbPool<S390x> pool) = Boot(HvoPolicy.V6_2);
        using (m)
        {
            Hstate<S390x> h = pool.Hstate(HugePage);
            HvoCounters c = hvo.Total;

            // The first split needs a fresh page, and fails: the page stays whole, nothing is taken.
            long tables0 = m.Owners.Count(FrameOwner.PageTable);
            m.Faults.Sites = new HashSet<AllocSite> { AllocSite.PteTable };
            m.Faults.MinOrder = 0;
            m.Faults.FailNth(1);
            pool.SetNrHugepages(h, 1);
            Assert.AreEqual(1, c.OptimizeFailures);
            Assert.AreEqual(0, c.PmdsSplit);
            Assert.IsFalse(pool.Pages(h).Single().VmemmapOptimized);
            Assert.AreEqual(tables0, m.Owners.Count(FrameOwner.PageTable), "nothing leaked");
            Assert.AreEqual((0L, 0L), m.PageTable.FragmentsInUse());
            AssertInvariants(m, pool);

            // Grow until one split has been made: its page's other half is listed.
            ulong n = 1;
            while (c.PmdsSplit == 0)
            {
                pool.SetNrHugepages(h, ++n);
            }

            Assert.AreEqual((1L, 1L), m.PageTable.FragmentsInUse());

            // Every fresh page fails from now on; the listed half still serves the next split, then splits fail.
            m.Faults.Probability = 100;
            m.Faults.Times = -1;
            long failures = c.OptimizeFailures;
            while (c.OptimizeFailures == failures)
            {
                pool.SetNrHugepages(h, ++n);
            }

            Assert.AreEqual(2, c.PmdsSplit, "the second half of the page needed no allocation");
            Assert.AreEqual((2L, 1L), m.PageTable.FragmentsInUse());
            Assert.AreEqual(tables0 + 1, m.Owners.Count(FrameOwner.PageTable));
            Assert.AreEqual(2, c.OptimizeFailures);
            Assert.AreEqual(2, pool.Pages(h).Count(p => !p.VmemmapOptimized), "the two pages whose split found no page stay whole");
            AssertInvariants(m, pool);
        }
    }

    [TestMethod]
    public void TwoTablesInOnePageAreFoundAtTheirHalvesByTheGeneratedAndTheInterpretedWalk()
    {
        (Machine<S390x> m, HvoOptimizer<S390x> hvo, HugeTlbPool<S390x> pool) = Boot(HvoPolicy.V6_2);
        using (m)
        {
            Hstate<S390x> h = pool.Hstate(HugePage);
            ulong n = 0;
            while (hvo.Total.PmdsSplit < 2)
            {
                pool.SetNrHugepages(h, ++n);
            }

            // The two segments split: their entries point into one page, at 0 and at 2 KiB.
            ulong[] segments = [.. pool.Pages(h).Where(p => p.VmemmapOptimized)
                .Select(p => m.StructPageAddress(p.HeadPfn) & ~(S390x.LevelSize(S390x.Levels.Pmd) - 1)).Distinct()];
            Assert.HasCount(2, segments);
            ulong[] entries = [.. segments.Select(va => m.PageTable.EntryAt(S390x.Levels.Pmd, va)).Select(w => w.Entry)];
            Assert.IsTrue(entries.All(e => S390x.IsTable(S390x.Levels.Pmd, e)));
            Assert.AreEqual(S390x.PfnOf(S390x.Levels.Pmd, entries[0]), S390x.PfnOf(S390x.Levels.Pmd, entries[1]), "one page");
            CollectionAssert.AreEquivalent(new[] { 0UL, 0x800UL }, entries.Select(e => e & 0x800).ToArray(), "the lower and the upper half");

            // Every struct page under both segments translates alike through either walk.
            var translated = new List<(bool, ulong)>();
            foreach (ulong va in segments.SelectMany(s => Enumerable.Range(0, 256).Select(i => s + ((ulong)i << S390x.PageShift))))
            {
                translated.Add((m.PageTable.TryTranslate(va, out ulong pa), pa));
                Assert.AreEqual(S390x.LastLevel, m.PageTable.Walk(va).Level, "through a page table");
            }

            m.PageTable.Reference = new ReferenceWalker(S390x.Info);
            int i = 0;
            foreach (ulong va in segments.SelectMany(s => Enumerable.Range(0, 256).Select(k => s + ((ulong)k << S390x.PageShift))))
            {
                Assert.AreEqual(translated[i++], (m.PageTable.TryTranslate(va, out ulong pa), pa), $"0x{va:x}");
            }

            m.PageTable.Reference = null;
            AssertInvariants(m, pool);
        }
    }

    private static (Machine<S390x> Machine, HvoOptimizer<S390x> Hvo, HugeTlbPool<S390x> Pool) Boot(HvoPolicy policy)
    {
        var m = Machine<S390x>.Boot(new MachineConfig
        {
            MemoryBytes = Memory,
            Strict = true,
            CheckBreakBeforeMake = false,
            PageTableFragments = policy.PageTableFragments(S390x.Info),
        });
        var hvo = new HvoOptimizer<S390x>(m, policy);
        return (m, hvo, new HugeTlbPool<S390x>(m, hvo));
    }

    private static void AssertInvariants(Machine<S390x> m, HugeTlbPool<S390x> pool)
    {
        List<string> problems = new Invariants<S390x>(m, pool) { IncludeBreakBeforeMake = false }.CheckAll();
        Assert.AreEqual(0, problems.Count, string.Join("\n", problems.Take(5)));
    }
}
