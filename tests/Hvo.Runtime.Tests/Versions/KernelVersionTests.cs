using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Versions;

/// <summary>
/// Every release from v5.14 to v7.1 is a policy built from the milestones; each milestone is tested
/// at its boundary: the release before it behaves the old way, the milestone's release the new way,
/// so moving a milestone by one version fails a test here or in the milestone's own test class.
/// </summary>
[TestClass]
public sealed class KernelVersionTests
{
    private const ulong TwoMiB = 2UL << 20;

    public static IEnumerable<object[]> Milestones => KernelMilestone.All.Skip(1).Select(m => m.Version).Distinct().Select(v => new object[] { v.ToString() });

    [TestMethod]
    public void TheReleasesAreV514ToV519V60ToV619V70AndV71()
    {
        string[] names = [.. KernelVersion.Released.Select(v => v.ToString())];
        string[] expected = [.. Enumerable.Range(14, 6).Select(m => $"v5.{m}"), .. Enumerable.Range(0, 20).Select(m => $"v6.{m}"), "v7.0", "v7.1"];
        CollectionAssert.AreEqual(expected, names);
        foreach (KernelVersion v in KernelVersion.Released)
        {
            HvoPolicy p = HvoPolicy.Find(v.ToString())!;
            Assert.AreEqual(v.ToString(), p.Name, "a report names the version asked for");
            Assert.AreEqual(v, p.Version);
            Assert.AreEqual(p, HvoPolicy.Find(v.ToString()[1..]), "6.1 is v6.1");
        }
    }

    [TestMethod]
    [DataRow("v5.13")]
    [DataRow("v7.2")]
    [DataRow("v6.20")]
    [DataRow("v4.0")]
    [DataRow("v6")]
    [DataRow("v6.1.2")]
    [DataRow("")]
    public void AnythingElseIsNoPolicy(string name) => Assert.IsNull(HvoPolicy.Find(name));

    [TestMethod]
    public void TheOldNamesStillName()
    {
        foreach (string name in new[] { "v5.14", "v5.18", "v6.2", "v6.7", "arm64-bbml2", "arm64-bbm-fault", "arm64-bbm-af" })
        {
            Assert.AreEqual(name, HvoPolicy.Find(name)?.Name);
        }
    }

    /// <summary>The choices of a milestone's release differ from the release before it, and nothing else changes in between.</summary>
    [TestMethod]
    [DynamicData(nameof(Milestones))]
    public void AMilestoneChangesItsReleaseAndNotTheOneBefore(string version)
    {
        KernelVersion v = HvoPolicy.Find(version)!.Version!.Value;
        HvoPolicy at = HvoPolicy.ForVersion(v), before = HvoPolicy.ForVersion(v.Previous!.Value);
        foreach (KernelMilestone m in KernelMilestone.All.Where(x => x.Version == v))
        {
            Assert.IsTrue(KernelMilestone.Has(v, m.Change));
            Assert.IsFalse(KernelMilestone.Has(v.Previous!.Value, m.Change));
        }

        Assert.AreNotEqual(before with { Name = "x", Description = "x", Version = null }, at with { Name = "x", Description = "x", Version = null });
        KernelVersion? next = v.Next;
        KernelMilestone? following = KernelMilestone.All.FirstOrDefault(x => x.Version > v);
        if (next is { } n && (following is null || n < following.Version))
        {
            Assert.AreEqual(at with { Name = "x", Description = "x", Version = null }, HvoPolicy.ForVersion(n) with { Name = "x", Description = "x", Version = null }, $"{n} behaves as {v}");
        }
    }

    /// <summary>v5.18 (e7d324850bfc): one vmemmap page kept; v5.17 keeps two.</summary>
    [TestMethod]
    public void V518FreesOneMorePagePerHugePageThanV517()
    {
        ArchInfo info = Archs.Get("x86_64").Info;
        foreach ((string version, int reserve) in new[] { ("v5.17", 2), ("v5.18", 1) })
        {
            ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G\necho 16 > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find(version));
            Assert.AreEqual(16 * (long)HugePageVmemmap.For(info, TwoMiB).FreedPages(reserve), o.Counters.Freed, version);
            Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
        }
    }

    /// <summary>v5.19 (78f39084b41d): /proc/sys/vm/hugetlb_optimize_vmemmap; v5.18 has only the boot parameter.</summary>
    [TestMethod]
    public void TheSysctlArrivesInV519()
    {
        ScenarioOutcome v518 = ScenarioHarness.Run("x86_64", "cat /proc/sys/vm/hugetlb_optimize_vmemmap\n", HvoPolicy.Find("v5.18"));
        ScenarioOutcome v519 = ScenarioHarness.Run("x86_64", "cat /proc/sys/vm/hugetlb_optimize_vmemmap\n", HvoPolicy.Find("v5.19"));
        Assert.AreEqual("cat: /proc/sys/vm/hugetlb_optimize_vmemmap: No such file or directory\n", v518.Transcript);
        Assert.AreEqual("1\n", v519.Transcript);
    }

    /// <summary>
    /// v6.2 (11aad2631bf7) replaces the head vmemmap page by a fresh copy: every boot frame of the page's
    /// vmemmap goes back, so MemTotal rises by all of them (32 kB per 2 MiB page); v6.1 keeps the head,
    /// and MemTotal rises by the freed ones (28 kB), as measured on Linux 6.1.
    /// </summary>
    [TestMethod]
    public void MemTotalRises28KbPerPageInV61And32KbInV62()
    {
        ArchInfo info = Archs.Get("x86_64").Info;
        HugePageVmemmap g = HugePageVmemmap.For(info, TwoMiB);
        const int N = 100;
        foreach ((string version, ulong kbPerPage) in new[] { ("v6.1", g.FreedPages(1) * info.PageSize / 1024), ("v6.2", g.VmemmapPages * info.PageSize / 1024) })
        {
            ScenarioOutcome before = ScenarioHarness.Run("x86_64", "boot mem=2G\n", HvoPolicy.Find(version));
            ScenarioOutcome after = ScenarioHarness.Run("x86_64", $"boot mem=2G\necho {N} > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find(version));
            Assert.AreEqual(N * kbPerPage, after.MemInfo.MemTotalKb - before.MemInfo.MemTotalKb, version);
        }

        Assert.AreEqual(28UL, g.FreedPages(1) * info.PageSize / 1024, "x86-64's 2 MiB page: 28 kB");
    }

    /// <summary>
    /// Before v6.7 each page is optimized as it is allocated, so the vmemmap it frees counts toward
    /// the same write's watermark: filling memory gets more pages with HVO on than off. From v6.7
    /// (d67e32f26713) the write's pages are allocated first: the same count either way.
    /// </summary>
    [TestMethod]
    public void BeforeV67TheFreedVmemmapHelpsTheSameWrite()
    {
        ulong Fill(string version, bool hvo) =>
            ScenarioHarness.Run("x86_64", $"boot mem=1G hugetlb_free_vmemmap={(hvo ? "on" : "off")}\necho 100000 > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find(version)).MemInfo.HugePagesTotal;

        Assert.IsTrue(Fill("v6.6", hvo: true) > Fill("v6.6", hvo: false), "v6.6: more pages with HVO on");
        Assert.AreEqual(Fill("v6.7", hvo: false), Fill("v6.7", hvo: true), "v6.7: the same count either way");
        Assert.IsTrue(Fill("v6.1", hvo: true) > Fill("v6.1", hvo: false), "v6.1 (measured: 11 more on a real 4 GiB machine)");
    }
}
