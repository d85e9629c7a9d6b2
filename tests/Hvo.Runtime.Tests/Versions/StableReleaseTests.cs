using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Versions;

/// <summary>
/// Stable point releases as versions (a release on a branch, with the changes backported to it),
/// and the 6.12.114 restore regression they expose: free_pages_prepare's checks refuse every
/// restored huge page under v6.12.114+, which 6.12.111 frees. Numbers as measured on Debian's
/// 6.12.111 and 6.12.118 (4 GiB x86-64, hugetlb_free_vmemmap=on), from the spec's arithmetic.
/// </summary>
[TestClass]
public sealed class StableReleaseTests
{
    private const ulong TwoMiB = 2UL << 20;

    private const string EchoScript = "boot mem=4G hugetlb_free_vmemmap=on\necho 64 > /proc/sys/vm/nr_hugepages\n";

    /// <summary>Every kernel version modelled (a release per milestone, and the stable ones but 6.12.114+): the free checks must pass on all of them.</summary>
    public static IEnumerable<object[]> CorrectVersions =>
        HvoPolicy.Milestones.Concat(HvoPolicy.StableVersions.Where(p => !p.RestoreCopiesMapped || p.SharedTail)).Select(p => new object[] { p.Name });

    [TestMethod]
    [DataRow("v6.12.111", 6, 12, 111)]
    [DataRow("6.12.118", 6, 12, 118)]
    [DataRow("V6.12.114", 6, 12, 114)]
    public void AStableReleaseParsesAndNamesItself(string text, int major, int minor, int sublevel)
    {
        Assert.IsTrue(KernelVersion.TryParse(text, out KernelVersion v));
        Assert.AreEqual(new KernelVersion(major, minor, sublevel), v);
        Assert.AreEqual($"v{major}.{minor}.{sublevel}", HvoPolicy.Find(text)!.Name);
        Assert.AreEqual(new KernelVersion(major, minor), v.Branch);
    }

    [TestMethod]
    [DataRow("v6.12.112")]
    [DataRow("v6.1.47")]
    [DataRow("v6.12.118.1")]
    [DataRow("v6.12.x")]
    public void AStableReleaseNotModelledIsNoPolicy(string text) => Assert.IsNull(HvoPolicy.Find(text));

    [TestMethod]
    public void APointReleaseSortsBetweenItsBranchAndTheNextRelease()
    {
        KernelVersion[] sorted = [new(6, 13), new(6, 12, 118), new(6, 12), new(6, 12, 111), new(6, 11), new(6, 12, 114)];
        Array.Sort(sorted);
        CollectionAssert.AreEqual(new[] { "v6.11", "v6.12", "v6.12.111", "v6.12.114", "v6.12.118", "v6.13" }, sorted.Select(v => v.ToString()).ToArray());
        Assert.AreEqual(new KernelVersion(6, 12), new KernelVersion(6, 12, 111).Previous);
        Assert.AreEqual(new KernelVersion(6, 12, 114), new KernelVersion(6, 12, 118).Previous);
    }

    /// <summary>A stable release has its branch's mainline changes and the backports up to its sublevel; never a later mainline change.</summary>
    [TestMethod]
    public void AStableReleaseHasItsBranchAndItsBackportsOnly()
    {
        KernelVersion v111 = new(6, 12, 111), v114 = new(6, 12, 114), v118 = new(6, 12, 118);
        Assert.IsFalse(KernelMilestone.Has(new(6, 12), KernelChange.HugetlbPage3));
        Assert.IsTrue(KernelMilestone.Has(v111, KernelChange.HugetlbPage3));
        Assert.IsFalse(KernelMilestone.Has(v111, KernelChange.RestoreCopiesMapped));
        Assert.IsTrue(KernelMilestone.Has(v114, KernelChange.RestoreCopiesMapped));
        Assert.IsTrue(KernelMilestone.Has(v118, KernelChange.HugetlbPage3) && KernelMilestone.Has(v118, KernelChange.RestoreCopiesMapped));
        foreach (KernelChange later in new[] { KernelChange.PreHvo, KernelChange.SharedTail })
        {
            Assert.IsFalse(KernelMilestone.Has(v118, later), $"{later} is mainline's only");
        }

        Assert.IsTrue(KernelMilestone.Has(v118, KernelChange.RcuOnlyWhenOptimizing), "v6.12's own change");
        Assert.IsFalse(KernelMilestone.Has(new(6, 14), KernelChange.HugetlbPage3), "the backport is 6.12.y's, not v6.14's");
    }

    /// <summary>Each stable release of the list changes behaviour from the release before it on its branch, except 6.12.118 (as 6.12.114 for HVO).</summary>
    [TestMethod]
    public void EachBackportChangesItsReleaseAndV612118BehavesAsV612114()
    {
        static HvoPolicy Bare(string name) => HvoPolicy.Find(name)! with { Name = "x", Description = "x", Version = null };
        Assert.AreNotEqual(Bare("v6.12"), Bare("v6.12.111"));
        Assert.AreNotEqual(Bare("v6.12.111"), Bare("v6.12.114"));
        Assert.AreEqual(Bare("v6.12.114"), Bare("v6.12.118"));
        Assert.AreEqual(4, HvoPolicy.Find("v6.12.111")!.NrResetStructPage);
        Assert.AreEqual(3, HvoPolicy.Find("v6.12")!.NrResetStructPage);
        Assert.IsFalse(HvoPolicy.Find("v6.12.118")!.ResetStructPagesOnRestore);
        StringAssert.Contains(HvoPolicy.Find("v6.12.118")!.Description, "as v6.12.114: v7.1's change backported to v6.12.y");
    }

    /// <summary>
    /// The measurement: echo 64, then echo 0. 6.12.111 gets back each page less the vmemmap
    /// restore took (+64 x 2020 kB); 6.12.118 loses the pages and the restored vmemmap (-64 x 28 kB),
    /// and says so in the kernel log.
    /// </summary>
    [TestMethod]
    [DataRow("v6.12.111", false)]
    [DataRow("v6.12.118", true)]
    public void EchoZeroGivesBackThePagesOnlyWithoutTheRegression(string version, bool leaks)
    {
        ArchInfo x86 = Archs.Get("x86_64").Info;
        long restoredKb = (long)(HugePageVmemmap.For(x86, TwoMiB).FreedPages(1) * x86.PageSize / 1024);
        long pageKb = (long)(TwoMiB / 1024);
        ScenarioOutcome grown = ScenarioHarness.Run("x86_64", EchoScript, HvoPolicy.Find(version));
        ScenarioOutcome shrunk = ScenarioHarness.Run("x86_64", EchoScript + "echo 0 > /proc/sys/vm/nr_hugepages\ndmesg\n", HvoPolicy.Find(version));
        long delta = (long)shrunk.FreeKb - (long)grown.FreeKb; // MemFree and the per-CPU lists' pages: the restores' batches wait on the lists
        Assert.AreEqual(leaks ? -64 * restoredKb : 64 * (pageKb - restoredKb), delta, version);
        Assert.AreEqual(leaks ? -1792 : 129280, delta, "the measured numbers");
        Assert.AreEqual(leaks, shrunk.Transcript.Contains("BUG: Bad page state in process", StringComparison.Ordinal), version);
        Assert.AreEqual(0UL, shrunk.MemInfo.HugePagesTotal);
    }

    /// <summary>Grow, shrink, grow 1024 2 MiB pages on 4 GiB: 6.12.118 gets fewer the second time, 6.12.111 as many.</summary>
    [TestMethod]
    [DataRow("v6.12.111", false)]
    [DataRow("v6.12.118", true)]
    public void TheSecondGrowGetsFewerPagesOnlyWithTheRegression(string version, bool fewer)
    {
        const string Script = "boot mem=4G hugetlb_free_vmemmap=on\necho 1024 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\necho 1024 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/nr_hugepages\n";
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", Script, HvoPolicy.Find(version));
        string[] counts = o.Lines();
        Assert.AreEqual("1024", counts[0]);
        Assert.AreEqual(fewer, int.Parse(counts[1], System.Globalization.CultureInfo.InvariantCulture) < 1024, $"{version}: {counts[1]} the second time");
    }

    /// <summary>The free checks catch only real corruption: a grow and shrink under every other version leaves no bad page and no broken invariant.</summary>
    [TestMethod]
    [DynamicData(nameof(CorrectVersions))]
    public void EveryCorrectVersionFreesEveryPage(string version)
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G hugetlb_free_vmemmap=on\necho 16 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\ndmesg\n", HvoPolicy.Find(version));
        Assert.IsFalse(o.Transcript.Contains("Bad page state", StringComparison.Ordinal), o.Transcript);
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    /// <summary>
    /// The invariant checker names the first wrong struct page of a page lost under 6.12.118: the
    /// first slot of the first restored vmemmap page (index 64 on x86-64), a copy of the head, whose
    /// flags say PG_head where a tail has none.
    /// </summary>
    [TestMethod]
    public void TheInvariantsNameTheFirstWrongStructPageAfterTheRestore()
    {
        ArchInfo x86 = Archs.Get("x86_64").Info;
        ulong perVmemmapPage = x86.PageSize / (ulong)x86.StructPageBytes;
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G hugetlb_free_vmemmap=on\necho 2 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find("v6.12.118"));
        Assert.AreEqual(2, o.Invariants.Count, string.Join("\n", o.Invariants));
        string first = o.Invariants[0];
        StringAssert.Contains(first, "was lost: free_pages_prepare made");
        StringAssert.Contains(first, $"(index {perVmemmapPage} of the huge page: vmemmap page 1, slot 0) has flags: is 0x");
        StringAssert.Contains(first, "(head|");
        StringAssert.Contains(first, ", should be 0x");
    }

    /// <summary>
    /// The checks in the kernel's words on a page HVO never touched: a tail whose mapping is not
    /// TAIL_MAPPING, or which holds a reference, is reported and the page stays off the free lists.
    /// </summary>
    [TestMethod]
    [DataRow(StructPage.MappingOffset, 0UL, "corrupted mapping in tail page")]
    [DataRow(StructPage.RefcountOffset, 1UL, "nonzero _refcount")]
    [DataRow(StructPage.MapcountOffset, 0UL, "nonzero mapcount")]
    [DataRow(StructPage.FlagsOffset, StructPage.PgWriteback, "PAGE_FLAGS_CHECK_AT_FREE flag(s) set")]
    public void ABadTailKeepsThePageOffTheFreeLists(int offset, ulong value, string reason)
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 1UL << 30 });
        var hvo = new HvoOptimizer<Arch.X86_64>(m, HvoPolicy.Find("v6.12.111")!, new HvoSwitches(bootParameter: false));
        var pool = new HugeTlbPool<Arch.X86_64>(m, hvo);
        Hstate<Arch.X86_64> h = pool.Hstate(TwoMiB);
        pool.SetNrHugepages(h, 1);
        HugePage page = pool.Pages(h)[0];
        ulong pfn = page.HeadPfn + 100;
        Span<byte> bytes = stackalloc byte[Arch.X86_64.StructPageBytes];
        Assert.AreEqual(AccessFault.None, m.ReadStructPage(0, pfn, bytes));
        int width = offset is StructPage.RefcountOffset or StructPage.MapcountOffset ? 4 : 8;
        if (offset == StructPage.FlagsOffset)
        {
            value |= StructPage.Flags(bytes);
        }

        BitConverter.GetBytes(value).AsSpan(0, width).CopyTo(bytes[offset..]);
        Assert.AreEqual(AccessFault.None, m.Mmu.Write(0, m.StructPageAddress(pfn), bytes));
        ulong free = m.MemFreeBytes;

        pool.SetNrHugepages(h, 0);

        Assert.AreEqual(free, m.MemFreeBytes, "the page never reaches the free lists");
        Assert.AreEqual(1, m.Pages.BadPageLeaks.Count);
        Assert.AreEqual(TwoMiB / Arch.X86_64.PageSize, (ulong)m.Owners.Count(FrameOwner.BadPage));
        Assert.AreEqual(0, m.Compounds.Count, "free_pages_prepare ended the compound page either way");
        IReadOnlyList<string> log = m.KernelLog;
        Assert.AreEqual($"BUG: Bad page state in process sh  pfn:{pfn:x5}", log.First(l => l.StartsWith("BUG:", StringComparison.Ordinal)));
        Assert.IsTrue(log.Contains($"page dumped because: {reason}"), string.Join("\n", log));
        Assert.AreEqual(1L, m.FreeChecks.Reports);
        List<string> problems = new Hvo.Checks.Invariants<Arch.X86_64>(m, pool).CheckAll();
        Assert.IsTrue(problems.Any(p => p.Contains($"first wrong: the struct page of pfn 0x{pfn:x} (index 100 of the huge page: vmemmap page 1, slot 36) has ", StringComparison.Ordinal)), string.Join("\n", problems));
    }

    /// <summary>bad_page prints a burst of 60 reports and counts the rest.</summary>
    [TestMethod]
    public void BadPagePrintsABurstOfSixtyAndCountsTheRest()
    {
        ArchInfo x86 = Archs.Get("x86_64").Info;
        ulong restored = HugePageVmemmap.For(x86, TwoMiB).FreedPages(1);
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G hugetlb_free_vmemmap=on\necho 4 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\ndmesg\n", HvoPolicy.Find("v6.12.118"));
        Assert.AreEqual(FreePageChecks<Arch.X86_64>.Burst, o.Lines().Count(l => l.StartsWith("BUG: Bad page state in process", StringComparison.Ordinal)));
        // Per restored vmemmap page: the head copy's mapping, page[1]'s mapping and its order in the
        // flags (locked), page[2]'s list pointer, page[3]'s NULL cgroup: 5 reports.
        Assert.AreEqual(4, o.Invariants.Count, string.Join("\n", o.Invariants));
        foreach (string lost in o.Invariants)
        {
            StringAssert.Contains(lost, $"free_pages_prepare made {restored * 5} bad_page reports");
        }
    }
}
