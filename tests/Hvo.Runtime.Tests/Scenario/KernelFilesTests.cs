using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>Each kernel file read and written as a script does, with the kernel's values and errnos, on a 1 GiB x86-64 machine.</summary>
[TestClass]
public sealed class KernelFilesTests
{
    private const string Sysfs2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/";
    private const string Sysfs1G = "/sys/kernel/mm/hugepages/hugepages-1048576kB/";
    private const string Fail = "/sys/kernel/debug/fail_page_alloc/";

    private static string Transcript(string lines, HvoPolicy? policy = null)
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G\n" + lines.Replace(";", "\n", System.StringComparison.Ordinal), policy);
        Assert.IsEmpty(o.Invariants, string.Join("; ", o.Invariants));
        return o.Transcript.TrimEnd('\n');
    }

    private static string WriteError(Errno e) => "sh: echo: write error: " + ErrnoText.Message(e);

    [TestMethod]
    [DataRow("echo 3 > /proc/sys/vm/nr_hugepages;cat /proc/sys/vm/nr_hugepages", "3")]
    [DataRow("echo '  3' > /proc/sys/vm/nr_hugepages;cat /proc/sys/vm/nr_hugepages", "3")]
    [DataRow("echo 0x4 > /proc/sys/vm/nr_hugepages;cat /proc/sys/vm/nr_hugepages", "4")]
    [DataRow("echo 010 > /proc/sys/vm/nr_hugepages;cat /proc/sys/vm/nr_hugepages", "8")]
    [DataRow("echo '3 4' > /proc/sys/vm/nr_hugepages;cat /proc/sys/vm/nr_hugepages", "3")]
    [DataRow("echo 5 > /proc/sys/vm/nr_hugepages_mempolicy;cat /proc/sys/vm/nr_hugepages", "5")]
    [DataRow("echo -n 5 > " + Sysfs2M + "nr_hugepages;cat " + Sysfs2M + "nr_hugepages", "5")]
    [DataRow("echo +5 > " + Sysfs2M + "nr_hugepages;cat " + Sysfs2M + "nr_hugepages " + Sysfs2M + "free_hugepages", "5\n5")]
    [DataRow("echo 2 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages;cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/free_hugepages", "2")]
    [DataRow("echo 7 > " + Sysfs2M + "nr_overcommit_hugepages;cat /proc/sys/vm/nr_overcommit_hugepages", "7")]
    [DataRow("echo 7 > /proc/sys/vm/nr_overcommit_hugepages;cat " + Sysfs2M + "nr_overcommit_hugepages", "7")]
    [DataRow("cat " + Sysfs2M + "resv_hugepages " + Sysfs2M + "surplus_hugepages", "0\n0")]
    [DataRow("cat " + Sysfs1G + "demote_size", "2048kB")]
    [DataRow("echo 2M > " + Sysfs1G + "demote_size;cat " + Sysfs1G + "demote_size", "2048kB")]
    [DataRow("echo 2 > /proc/sys/vm/hugetlb_optimize_vmemmap;cat /proc/sys/vm/hugetlb_optimize_vmemmap", "1")]
    [DataRow("echo 0 > /proc/sys/vm/hugetlb_optimize_vmemmap;cat /proc/sys/vm/hugetlb_optimize_vmemmap", "0")]
    [DataRow("cat /proc/cmdline", "mem=1G")]
    [DataRow("cat /proc/self/fail-nth", "0")]
    [DataRow("echo 0x10 > /proc/self/fail-nth;cat /proc/self/fail-nth", "16")]
    [DataRow("echo 4294967295 > /proc/self/fail-nth;cat /proc/self/fail-nth", "4294967295")]
    public void WritesAreReadBack(string lines, string expected) => Assert.AreEqual(expected, Transcript(lines));

    [TestMethod]
    [DataRow("echo -1 > /proc/sys/vm/nr_hugepages", Errno.EINVAL)]
    [DataRow("echo 18446744073709551616 > /proc/sys/vm/nr_hugepages", Errno.EINVAL)]
    [DataRow("echo 3abc > /proc/sys/vm/nr_hugepages", Errno.EINVAL)]
    [DataRow("echo > /proc/sys/vm/nr_hugepages", Errno.EINVAL)]
    [DataRow("echo -1 > " + Sysfs2M + "nr_hugepages", Errno.EINVAL)]
    [DataRow("echo 0x4 > " + Sysfs2M + "nr_hugepages", Errno.EINVAL)]
    [DataRow("echo 18446744073709551616 > " + Sysfs2M + "nr_hugepages", Errno.ERANGE)]
    [DataRow("echo 99999999999999999999999999999 > /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages", Errno.ERANGE)]
    [DataRow("echo -7 > /proc/sys/vm/nr_overcommit_hugepages", Errno.EINVAL)]
    [DataRow("echo 1 > " + Sysfs1G + "nr_overcommit_hugepages", Errno.EINVAL)]
    [DataRow("echo x > /proc/sys/vm/hugetlb_optimize_vmemmap", Errno.EINVAL)]
    [DataRow("echo 4K > " + Sysfs1G + "demote_size", Errno.EINVAL)]
    [DataRow("echo 1G > " + Sysfs1G + "demote_size", Errno.EINVAL)]
    [DataRow("echo junk > " + Sysfs1G + "demote_size", Errno.EINVAL)]
    [DataRow("echo -1 > " + Sysfs1G + "demote", Errno.EINVAL)]
    [DataRow("echo -2 > " + Fail + "probability", Errno.EINVAL)]
    [DataRow("echo maybe > " + Fail + "ignore-gfp-wait", Errno.EINVAL)]
    [DataRow("echo 99999999999999999999 > " + Fail + "times", Errno.ERANGE)]
    [DataRow("echo 4294967296 > /proc/self/fail-nth", Errno.ERANGE)]
    [DataRow("echo -1 > /proc/self/fail-nth", Errno.EINVAL)]
    public void RefusedWritesPrintTheShellsWriteError(string line, Errno errno) =>
        Assert.AreEqual(WriteError(errno), Transcript(line));

    [TestMethod]
    [DataRow("echo 1 > " + Sysfs2M + "free_hugepages", "sh: " + Sysfs2M + "free_hugepages: Permission denied")]
    [DataRow("echo 1 > " + Sysfs2M + "surplus_hugepages", "sh: " + Sysfs2M + "surplus_hugepages: Permission denied")]
    [DataRow("echo 1 > " + Sysfs2M + "resv_hugepages", "sh: " + Sysfs2M + "resv_hugepages: Permission denied")]
    [DataRow("echo 1 > /proc/meminfo", "sh: /proc/meminfo: Permission denied")]
    [DataRow("echo 1 > " + Sysfs2M + "bogus", "sh: " + Sysfs2M + "bogus: Permission denied")]
    [DataRow("echo 1 > /sys/kernel/mm/hugepages/hugepages-4kB/nr_hugepages", "sh: /sys/kernel/mm/hugepages/hugepages-4kB/nr_hugepages: No such file or directory")]
    [DataRow("echo 1 > /sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages", "sh: /sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages: No such file or directory")]
    [DataRow("echo 1 > " + Sysfs2M + "demote", "sh: " + Sysfs2M + "demote: Permission denied")]
    [DataRow("echo 1 > /proc/sys/vm", "sh: /proc/sys/vm: Is a directory")]
    [DataRow("echo 1 > nr_hugepages", "sh: nr_hugepages: No such file or directory")]
    [DataRow("cat " + Sysfs1G + "demote", "cat: " + Sysfs1G + "demote: Permission denied")]
    [DataRow("cat " + Sysfs2M + "demote", "cat: " + Sysfs2M + "demote: No such file or directory")]
    [DataRow("cat /sys/devices/system/node/node1/meminfo", "cat: /sys/devices/system/node/node1/meminfo: No such file or directory")]
    [DataRow("cat /proc/sys/vm", "cat: /proc/sys/vm: Is a directory")]
    [DataRow("cat /proc/meminfo/", "cat: /proc/meminfo/: Not a directory")]
    [DataRow("cat /proc/meminfo/x", "cat: /proc/meminfo/x: Not a directory")]
    [DataRow("cat /tmp/x", "cat: /tmp/x: No such file or directory")]
    public void OpensTheKernelRefusesPrintTheShellsMessage(string line, string expected) => Assert.AreEqual(expected, Transcript(line));

    [TestMethod]
    public void PathsResolveAsTheVfsDoes()
    {
        string meminfo = Transcript("cat /proc/meminfo");
        Assert.AreEqual(meminfo, Transcript("cat //proc/./meminfo"));
        Assert.AreEqual(meminfo, Transcript("cat /sys/../proc/meminfo"));
        Assert.AreEqual(meminfo, Transcript("cat /../proc/meminfo"));
    }

    [TestMethod]
    public void FailPageAllocShowsTheKernelsDefaults() =>
        Assert.AreEqual(
            "0\n1\n1\n0\n2\n1\nY\nY",
            Transcript("cat " + string.Join(' ', new[] { "probability", "interval", "times", "space", "verbose", "min-order", "ignore-gfp-wait", "ignore-gfp-highmem" }.Select(f => Fail + f))));

    [TestMethod]
    [DataRow("probability", "150", "150")]
    [DataRow("interval", "0x10", "16")]
    [DataRow("interval", "0", "0")]
    [DataRow("times", "-5", "-5")]
    [DataRow("space", "-3", "-3")]
    [DataRow("space", "4096", "4096")]
    [DataRow("verbose", "0", "0")]
    [DataRow("min-order", "4294967297", "1")]
    [DataRow("ignore-gfp-wait", "off", "N")]
    [DataRow("ignore-gfp-highmem", "0", "N")]
    public void FailPageAllocKeepsWhatWasWritten(string knob, string value, string readBack) =>
        Assert.AreEqual(readBack, Transcript($"echo {value} > {Fail}{knob};cat {Fail}{knob}"));

    [TestMethod]
    public void FailPageAllocKnobsReachTheModelWithTheKernelsMeaning() => Archs.Run("x86_64", new FaultKnobs());

    [TestMethod]
    public void TheSiteFilterNarrowsWhatTheIgnoreFlagsLetThroughAndTheSeedSeedsTheDraws() => Archs.Run("x86_64", new FaultFilter());

    [TestMethod]
    public void FailNthFailsTheNthAllocationOfTheWritingTask()
    {
        // ignore-gfp-* at N: the huge pages reach should_fail; the 4th of them fails and the growth stops there.
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", $"boot mem=1G\necho N > {Fail}ignore-gfp-wait\necho N > {Fail}ignore-gfp-highmem\necho 4 > /proc/self/fail-nth\necho 10 > {Sysfs2M}nr_hugepages\ncat {Sysfs2M}nr_hugepages /proc/self/fail-nth\n");
        Assert.AreEqual("3\n0\n", o.Transcript);
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    public void MeminfoBuddyinfoAndZoneinfoAreThePoolsAndAllocatorsText() => Archs.Run("x86_64", new ProcTexts());

    [TestMethod]
    public void HugetlbOptimizeVmemmapCameAfterV518AsABool()
    {
        // v5.19's sysctl: v5.14 and v5.18 have only hugetlb_free_vmemmap=; from then on proc_dobool.
        foreach (HvoPolicy before in new[] { HvoPolicy.V5_14, HvoPolicy.V5_18 })
        {
            Assert.AreEqual("cat: /proc/sys/vm/hugetlb_optimize_vmemmap: No such file or directory", Transcript("cat /proc/sys/vm/hugetlb_optimize_vmemmap", before), before.Name);
        }

        Assert.AreEqual("1", Transcript("echo 0 > /proc/sys/vm/hugetlb_optimize_vmemmap;echo 2 > /proc/sys/vm/hugetlb_optimize_vmemmap;cat /proc/sys/vm/hugetlb_optimize_vmemmap", HvoPolicy.V6_2));
        Assert.AreEqual("0", Transcript("echo 0 > /proc/sys/vm/hugetlb_optimize_vmemmap;cat /proc/sys/vm/hugetlb_optimize_vmemmap", HvoPolicy.V6_2));
    }

    [TestMethod]
    public void WithTheSysctlAtZeroNewPagesAreNotOptimizedAndOldOnesStillRestore()
    {
        ulong freed = HugePageVmemmap.For(Archs.Get("x86_64").Info, 2UL << 20).FreedPages(HvoPolicy.Newest.ReservePages);
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G\necho 10 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/hugetlb_optimize_vmemmap\necho 30 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\n");
        Assert.AreEqual((long)(10 * freed), o.Counters.Freed, "only the first 10 were optimized");
        Assert.AreEqual((long)(10 * freed), o.Counters.Restored, "and all 10 restored when freed with the sysctl at 0");
        Assert.AreEqual(0, o.Counters.OptimizedPages);
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void EveryHstateAndNodeHasItsFiles(string arch)
    {
        ArchInfo info = Archs.Get(arch).Info;
        ScenarioOutcome o = ScenarioHarness.Run(arch, "boot mem=4G numa=fake=2\n", readAtEnd: [.. ExpectedFiles(info)]);
        foreach ((string path, string text) in o.Files)
        {
            bool writeOnly = path.EndsWith("/demote", System.StringComparison.Ordinal);
            if (writeOnly)
            {
                Assert.AreEqual("<EACCES>", text, path);
            }
            else
            {
                Assert.IsFalse(text.StartsWith('<'), $"{path}: {text}");
                Assert.IsTrue(text.EndsWith('\n'), $"{path}: a line or more");
            }
        }
    }

    private static IEnumerable<string> ExpectedFiles(ArchInfo info)
    {
        string[] global = ["nr_hugepages", "nr_hugepages_mempolicy", "free_hugepages", "surplus_hugepages", "resv_hugepages", "nr_overcommit_hugepages"];
        string[] perNode = ["nr_hugepages", "free_hugepages", "surplus_hugepages"];
        ulong smallest = info.HugePageSizes.Min(h => h.Size);
        foreach (HugePageSizeInfo h in info.HugePageSizes)
        {
            string name = $"hugepages-{h.Size >> 10}kB/";
            string[] demote = h.Size > smallest ? ["demote", "demote_size"] : [];
            foreach (string f in global.Concat(demote))
            {
                yield return "/sys/kernel/mm/hugepages/" + name + f;
            }

            for (int nid = 0; nid < 2; nid++)
            {
                foreach (string f in perNode.Concat(demote))
                {
                    yield return $"/sys/devices/system/node/node{nid}/hugepages/" + name + f;
                }
            }
        }

        yield return "/sys/devices/system/node/node0/meminfo";
        yield return "/sys/devices/system/node/node1/meminfo";
        foreach (string f in new[] { "/proc/meminfo", "/proc/buddyinfo", "/proc/zoneinfo", "/proc/cmdline", "/proc/sys/vm/nr_hugepages", "/proc/sys/vm/nr_overcommit_hugepages", "/proc/sys/vm/hugetlb_optimize_vmemmap", "/sys/kernel/debug/kernel_page_tables" })
        {
            yield return f;
        }
    }

    private sealed class FaultKnobs : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var s = ScenarioSession<TArch>.Boot(ScriptParser.Parse("boot mem=1G\n", "t"), new ScenarioOptions());
            FaultInjection model = s.Machine.Faults;
            Assert.AreEqual(0, model.Sites!.Count, "ignore-gfp-wait=Y: every allocation here may sleep, so none may fail");
            Write(s, "ignore-gfp-wait", "N");
            CollectionAssert.AreEquivalent(System.Enum.GetValues<AllocSite>().Where(a => a != AllocSite.HugePage).ToArray(), model.Sites!.ToArray(), "ignore-gfp-highmem=Y spares the HugeTLB pages");
            Write(s, "ignore-gfp-highmem", "N");
            Assert.AreEqual(System.Enum.GetValues<AllocSite>().Length, model.Sites!.Count);
            Write(s, "probability", "150");
            Assert.AreEqual(100, model.Probability, "more than 100 always fails");
            Write(s, "interval", "0");
            Assert.AreEqual(1UL, model.Interval, "interval 0 is every call");
            Write(s, "times", "-5");
            Assert.AreEqual(-1, model.Times, "a negative times has no limit");
            Write(s, "space", "-3");
            Assert.AreEqual(0, model.Space);
            Write(s, "min-order", "0");
            Assert.AreEqual(0, model.MinOrder);
            return true;
        }

        private static void Write<TArch>(ScenarioSession<TArch> s, string knob, string value)
            where TArch : struct, IPagingArch =>
            Assert.AreEqual(Errno.None, s.Files.Write(Fail + knob, value + "\n", out _));
    }

    private sealed class FaultFilter : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            var options = new ScenarioOptions { FaultSites = new HashSet<AllocSite> { AllocSite.PteTable, AllocSite.HugePage }, FaultSeed = 42 };
            using var s = ScenarioSession<TArch>.Boot(ScriptParser.Parse("boot mem=1G\n", "t"), options);
            FaultInjection model = s.Machine.Faults;
            Assert.AreEqual(42UL, model.Seed);
            Assert.AreEqual(0, model.Sites!.Count, "ignore-gfp-wait=Y spares every site, filter or not");
            Assert.AreEqual(Errno.None, s.Files.Write(Fail + "ignore-gfp-wait", "N\n", out _));
            CollectionAssert.AreEquivalent(new[] { AllocSite.PteTable }, model.Sites!.ToArray(), "ignore-gfp-highmem=Y still spares the HugeTLB pages");
            Assert.AreEqual(Errno.None, s.Files.Write(Fail + "ignore-gfp-highmem", "N\n", out _));
            CollectionAssert.AreEquivalent(new[] { AllocSite.PteTable, AllocSite.HugePage }, model.Sites!.ToArray());
            return true;
        }
    }

    private sealed class ProcTexts : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var s = ScenarioSession<TArch>.Boot(ScriptParser.Parse("boot mem=1G numa=fake=2\necho 9 > /proc/sys/vm/nr_hugepages\n", "t"), new ScenarioOptions { EchoCommands = false });
            s.Run(System.IO.TextWriter.Null);
            Assert.AreEqual(Errno.None, s.Files.Read("/proc/meminfo", out string meminfo));
            Assert.AreEqual(s.Pool.MemInfo().Format(), meminfo);
            Assert.AreEqual(Errno.None, s.Files.Read("/proc/buddyinfo", out string buddy));
            Assert.AreEqual(s.Machine.Pages.BuddyInfo(), buddy);
            Assert.AreEqual(Errno.None, s.Files.Read("/proc/zoneinfo", out string zone));
            Assert.AreEqual(s.Machine.Pages.ZoneInfo(), zone);
            for (int nid = 0; nid < 2; nid++)
            {
                Assert.AreEqual(Errno.None, s.Files.Read($"/sys/devices/system/node/node{nid}/meminfo", out string node));
                long total = s.Machine.Pages.NodeManagedPages(nid) * (long)TArch.PageSize / 1024;
                long free = s.Machine.Pages.NodeFreePages(nid) * (long)TArch.PageSize / 1024;
                StringAssert.StartsWith(node, $"Node {nid} MemTotal:       {total,8} kB\nNode {nid} MemFree:        {free,8} kB\nNode {nid} MemUsed:        {total - free,8} kB\n");
                StringAssert.EndsWith(node, s.Pool.NodeMemInfo(nid));
            }

            return true;
        }
    }
}
