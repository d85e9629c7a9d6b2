using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>Whole scripts: what they leave is what the kernel's rules and the policy's arithmetic say.</summary>
[TestClass]
public sealed class ScenarioTests
{
    private const string FailEveryAllocation =
        "echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-wait\n" +
        "echo 0 > /sys/kernel/debug/fail_page_alloc/min-order\n" +
        "echo 100 > /sys/kernel/debug/fail_page_alloc/probability\n";

    /// <summary>Every architecture with every policy.</summary>
    public static IEnumerable<object[]> ArchPolicies =>
        from e in ArchRegistry.All
        from p in HvoPolicy.All
        where TestMachines.CanRun(p, e.Info)
        select new object[] { e.Name, p.Name };

    [TestMethod]
    [DynamicData(nameof(ArchPolicies))]
    public void GrowShrinkAndFailedRestoresEndWithThePolicysCounters(string arch, string policyName)
    {
        HvoPolicy policy = HvoPolicy.Find(policyName)!;
        ArchInfo info = Archs.Get(arch).Info;
        ulong size = HugeTlbCommandLine.ArchDefaultSize(info);
        long freedPerPage = (long)HugePageVmemmap.For(info, size).FreedPages(policy.ReservePages);
        ulong memory = Math.Max(1UL << 30, 32 * size);
        string sysfs = $"/sys/kernel/mm/hugepages/hugepages-{size >> 10}kB/";
        const int Grown = 8, Kept = 4, Failing = 2;

        ScenarioOutcome o = ScenarioHarness.Run(arch,
            $"boot mem={memory >> 20}M\n" +
            $"echo {Grown} > /proc/sys/vm/nr_hugepages\n" +
            $"echo {Kept} > /proc/sys/vm/nr_hugepages\n" +
            FailEveryAllocation +
            $"echo {Failing} > /sys/kernel/debug/fail_page_alloc/times\n" +
            "echo 0 > /proc/sys/vm/nr_hugepages\n" +
            "cat /proc/sys/vm/nr_hugepages\n" +
            $"cat {sysfs}nr_hugepages {sysfs}surplus_hugepages\n",
            policy);

        // A restore that allocates nothing cannot fail. Before v6.7 each failed allocation strands a
        // page. From v6.7 the bulk pass stops at the first failure and, having restored nothing,
        // bulk_vmemmap_restore_error tries that page again alone: two failed allocations, one page.
        int failures = freedPerPage > 0 ? Failing : 0;
        int failed = policy.Batched ? Math.Max(0, failures - 1) : failures;
        Assert.AreEqual($"0\n{failed}\n{failed}\n", o.Transcript, "the persistent count is 0; the pages whose restore failed stay as surplus");
        Assert.AreEqual(0, o.ShellErrors);
        Assert.AreEqual(Grown * freedPerPage, o.Counters.Freed);
        Assert.AreEqual((Grown - failed) * freedPerPage, o.Counters.Restored);
        Assert.AreEqual(failures, o.Counters.RestoreFailures);
        Assert.AreEqual(0, o.Counters.OptimizeFailures);
        Assert.AreEqual(freedPerPage > 0 ? failed : 0, o.Counters.OptimizedPages, "only the surplus pages are still optimized");
        Assert.AreEqual(o.Counters.Splits, o.Counters.Tables, "a table per split, none given back");
        if (freedPerPage > 0 && info.VmemmapBootLevel < info.LastLevel)
        {
            Assert.IsGreaterThan(0L, o.Counters.Tables, "optimizing splits at least one vmemmap block");
        }

        // Tables that are fragments of a page (s390 before v6.7) fill a page before the next is taken.
        long perPage = policy.PageTableFragments(info) ? info.FragmentsPerPage(info.LastLevel) : 1;
        Assert.AreEqual((o.Counters.Tables + perPage - 1) / perPage, o.Counters.TableFrames, "a page per table, or per fragments-per-page tables");
        Assert.AreEqual((o.Counters.Freed - o.Counters.Restored - o.Counters.TableFrames - o.SharedTails) * (long)info.PageSize, o.Counters.NetBytes);
        Assert.AreEqual((ulong)failed, o.MemInfo.HugePagesSurp);
        Assert.IsEmpty(o.Invariants, string.Join("; ", o.Invariants));
    }

    [TestMethod]
    [DataRow("on")]
    [DataRow("off")]
    public void AskingForMorePagesThanFitIsPartlyHonouredAndTheCountShowsIt(string hvo)
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64",
            $"boot mem=1G hugetlb_free_vmemmap={hvo}\necho 100000 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/nr_hugepages\necho 100000 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/nr_hugepages\n");
        string[] counts = o.Lines();
        ulong first = ulong.Parse(counts[0], CultureInfo.InvariantCulture);
        ulong second = ulong.Parse(counts[1], CultureInfo.InvariantCulture);
        Assert.AreEqual(0, o.ShellErrors, "the writes succeed");
        Assert.IsTrue(first > 0 && first < (1UL << 30) / (2UL << 20), $"{first} pages: some, not all asked");
        if (hvo == "off")
        {
            Assert.AreEqual(first, second, "growth stopped at the first page that could not be had, and nothing was freed since");
        }
        else
        {
            // The vmemmap HVO gave back lifts the zone over its watermark again: a free block left
            // below it may now be taken (the freed pages themselves are scattered base pages).
            Assert.IsGreaterThanOrEqualTo(first, second);
        }

        Assert.AreEqual(second, o.MemInfo.HugePagesTotal);
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    public void GiganticCountsBeyondMemoryStopAtWhatFits()
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64",
            "boot mem=4G\necho 18446744073709551615 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages\ncat /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages\n");
        ulong achieved = ulong.Parse(o.Transcript.Trim(), CultureInfo.InvariantCulture);
        Assert.IsTrue(achieved is >= 1 and < 4, $"{achieved} 1 GiB pages on 4 GiB");
        Assert.AreEqual(0, o.ShellErrors);
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    public void APerNodeWriteGrowsThatNodeOnly()
    {
        const string Node = "/sys/devices/system/node/node{0}/hugepages/hugepages-2048kB/nr_hugepages";
        ScenarioOutcome o = ScenarioHarness.Run("x86_64",
            $"boot mem=1G numa=fake=2\necho 100000 > {string.Format(CultureInfo.InvariantCulture, Node, 0)}\ncat {string.Format(CultureInfo.InvariantCulture, Node, 0)} {string.Format(CultureInfo.InvariantCulture, Node, 1)}\n");
        string[] counts = o.Lines();
        Assert.IsGreaterThan(0, int.Parse(counts[0], CultureInfo.InvariantCulture));
        Assert.AreEqual("0", counts[1]);
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    public void DemoteFailsWithEnomemWhenTheVmemmapCannotBeRestoredAndThePageStays()
    {
        const string Giant = "/sys/kernel/mm/hugepages/hugepages-1048576kB/";
        ScenarioOutcome o = ScenarioHarness.Run("x86_64",
            "boot mem=4G hugepagesz=1G hugepages=1\n" + FailEveryAllocation + "echo -1 > /sys/kernel/debug/fail_page_alloc/times\n" +
            $"echo 1 > {Giant}demote\ncat {Giant}nr_hugepages /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages\n" +
            "echo 0 > /sys/kernel/debug/fail_page_alloc/probability\n" +
            $"echo 1 > {Giant}demote\necho 1 > {Giant}demote\ncat {Giant}nr_hugepages /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages\n");
        Assert.AreEqual(
            "sh: echo: write error: Cannot allocate memory\n1\n0\n0\n512\n",
            o.Transcript,
            "demote_store returns -ENOMEM and the page stays; then it demotes; with no free page left a demote does nothing and succeeds");
        Assert.AreEqual(1, o.Counters.RestoreFailures);
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    public void UnknownBootParametersGetTheKernelsNoticeAndModuleParametersNone()
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G foo=1 quiet bar usbcore.autosuspend=-1 console=ttyS0\n");
        Assert.AreEqual("kernel: Unknown kernel command line parameters \"foo=1 bar\", will be passed to user space.\n", o.Transcript);
    }

    [TestMethod]
    public void BootLineHugeTlbParametersFollowTheKernelsParser()
    {
        const string Node = "/sys/devices/system/node/node{0}/hugepages/hugepages-2048kB/nr_hugepages";
        ScenarioOutcome perNode = ScenarioHarness.Run("x86_64",
            $"boot mem=2G numa=fake=2 hugepages=0:3,1:1\ncat {string.Format(CultureInfo.InvariantCulture, Node, 0)} {string.Format(CultureInfo.InvariantCulture, Node, 1)} /proc/sys/vm/nr_hugepages\n");
        Assert.AreEqual("3\n1\n4\n", perNode.Transcript);

        ScenarioOutcome giant = ScenarioHarness.Run("x86_64", "boot mem=4G default_hugepagesz=1G hugepagesz=1G hugepages=2\ncat /proc/sys/vm/nr_hugepages\n");
        Assert.AreEqual("2\n", giant.Transcript);
        Assert.AreEqual(1UL << 20, giant.MemInfo.HugepagesizeKb);

        ScenarioOutcome warned = ScenarioHarness.Run("x86_64", "boot mem=1G hugepagesz=3M hugepages=2 hugepages=99999999999999999999\n");
        StringAssert.Contains(warned.Transcript, "kernel: HugeTLB: unsupported hugepagesz=3M\n");
        StringAssert.Contains(warned.Transcript, "kernel: HugeTLB: Invalid hugepages parameter 99999999999999999999\n");
    }

    [TestMethod]
    public void TooManyBootPagesAreLoggedAndWhatFitsIsAllocated()
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=1G hugepages=99999999999\ncat /proc/sys/vm/nr_hugepages\n");
        string[] lines = o.Lines();
        StringAssert.StartsWith(lines[0], "kernel: HugeTLB: allocating 99999999999 of page size 2.00 MiB failed.  Only allocated ");
        Assert.AreEqual(o.MemInfo.HugePagesTotal.ToString(CultureInfo.InvariantCulture), lines[1]);
        StringAssert.EndsWith(lines[0], $" {lines[1]} hugepages.");
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    public void BootTimeGiganticPagesWithHvoOnRaiseMemTotalByWhatTheyFree()
    {
        ArchInfo info = Archs.Get("x86_64").Info;
        // docs/ARCHITECTURE.md §7.3, measured on 6.1: reserve 1 and no head copy, as v5.18.
        ScenarioOutcome on = ScenarioHarness.Run("x86_64", "boot mem=8G hugepagesz=1G hugepages=3 hugetlb_free_vmemmap=on\n", HvoPolicy.V5_18);
        ScenarioOutcome off = ScenarioHarness.Run("x86_64", "boot mem=8G hugepagesz=1G hugepages=3 hugetlb_free_vmemmap=off\n", HvoPolicy.V5_18);
        ScenarioOutcome sysctl = ScenarioHarness.Run("x86_64", "boot mem=8G hugepagesz=1G hugepages=3 hugetlb_free_vmemmap=off\ncat /proc/sys/vm/hugetlb_optimize_vmemmap\n", HvoPolicy.V6_7);
        ulong freedKb = HugePageVmemmap.For(info, 1UL << 30).FreedPages(HvoPolicy.V5_18.ReservePages) * info.PageSize / 1024;
        Assert.AreEqual(3 * freedKb, on.MemInfo.MemTotalKb - off.MemInfo.MemTotalKb);
        Assert.AreEqual(0, off.Counters.Freed);
        Assert.AreEqual("0\n", sysctl.Transcript, "the sysctl (v5.19+) starts from the boot parameter");
    }

    [TestMethod]
    public void APerNodeWriteCountsOnlyPersistentPagesAsTheKernelDoes()
    {
        // set_max_huge_pages for node N: count += persistent_huge_pages - (nr_node - surplus_node).
        // 256 pages become surplus (their restores fail), 128 on each node; asking node 0 for 10 makes
        // 10 of its surplus pages persistent and allocates nothing, so node 0 keeps its 128 pages.
        const string node0 = "/sys/devices/system/node/node0/hugepages/hugepages-2048kB/";
        const int pages = 256, nodes = 2, asked = 10;
        string text = string.Join('\n',
            $"boot mem=2G numa=fake={nodes}",
            $"echo {pages} > /proc/sys/vm/nr_hugepages",
            "echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-wait",
            "echo 0 > /sys/kernel/debug/fail_page_alloc/min-order",
            "echo -1 > /sys/kernel/debug/fail_page_alloc/times",
            "echo 100 > /sys/kernel/debug/fail_page_alloc/probability",
            "echo 0 > /proc/sys/vm/nr_hugepages",
            "echo 0 > /sys/kernel/debug/fail_page_alloc/probability",
            $"cat {node0}nr_hugepages {node0}surplus_hugepages",
            $"echo {asked} > {node0}nr_hugepages",
            $"cat {node0}nr_hugepages {node0}surplus_hugepages",
            "cat /sys/kernel/mm/hugepages/hugepages-2048kB/surplus_hugepages",
            string.Empty);
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", text, HvoPolicy.V6_7);
        const int perNode = pages / nodes;
        Assert.AreEqual($"{perNode}\n{perNode}\n{perNode}\n{perNode - asked}\n{pages - asked}\n", o.Transcript);
    }

    [TestMethod]
    public void AMemLargerThanTheSimulatorCanHoldIsALocatedErrorAtTheValue()
    {
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => ScenarioHarness.Run("x86_64-la57", "boot mem=200T"));
        Assert.AreEqual((1, 6), (e.Location.Line, e.Location.Column));
        StringAssert.Contains(e.Message, "more than the simulator can hold");
    }

    [TestMethod]
    [DataRow("boot quiet mem=64K", 1, 12, "mem=64K is too small for 1 node(s) of x86_64: the kernel cannot boot")]
    [DataRow("# small\nboot mem=64M numa=fake=64", 2, 6, "mem=64M is too small for 64 node(s) of x86_64: the kernel cannot boot")]
    [DataRow("boot numa=fake=64 mem=1G mem=128M", 1, 26, "mem=128M is too small for 64 node(s) of x86_64: the kernel cannot boot without a 4M max-order block on each node; use at least 256M")]
    [DataRow("boot mem=1P", 1, 6, "mem=1P is more than x86_64's vmemmap can describe (64T)")]
    public void ABootLineTheMachineCannotBootWithIsALocatedError(string text, int line, int column, string reason)
    {
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => ScenarioHarness.Run("x86_64", text));
        Assert.AreEqual(new SourceLocation("test.hvo", line, column), e.Location);
        StringAssert.Contains(e.Reason, reason);
    }

    [TestMethod]
    public void TheTranscriptShowsCommandsCommentsAndKernelMessagesInOrder()
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "# start\nboot mem=1G foo\n\necho 2 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/nr_hugepages\necho done\n", echo: true);
        Assert.AreEqual(
            "# start\n$ boot mem=1G foo\nkernel: Unknown kernel command line parameters \"foo\", will be passed to user space.\n\n" +
            "$ echo 2 > /proc/sys/vm/nr_hugepages\n$ cat /proc/sys/vm/nr_hugepages\n2\n$ echo done\ndone\n",
            o.Transcript);
    }

    [TestMethod]
    [DataRow("x86_64")]
    [DataRow("arm64-4k")]
    public void MeminfoAndPtdumpMatchTheGoldenText(string arch)
    {
        ScenarioOutcome o = ScenarioHarness.Run(arch,
            "boot mem=1G\necho 4 > /proc/sys/vm/nr_hugepages\ncat /proc/meminfo\ncat /sys/kernel/debug/kernel_page_tables\n", echo: true);
        string golden = System.IO.File.ReadAllText(System.IO.Path.Combine(AppContext.BaseDirectory, "Scenario", "Golden", $"meminfo-ptdump.{arch}.txt"));
        Assert.AreEqual(golden, o.Transcript);

        // The golden MemFree leaves out the pages on the per-CPU lists: with them, it is the lists-off machine's.
        ScenarioOutcome off = ScenarioHarness.Run(arch, "boot mem=1G hvo.pcp=off\necho 4 > /proc/sys/vm/nr_hugepages\n");
        Assert.IsTrue(o.PcpPages > 0);
        Assert.AreEqual(off.MemInfo.MemFreeKb, o.FreeKb, "MemFree and the per-CPU lists' pages");
        Assert.AreEqual(off.MemInfo with { MemFreeKb = o.MemInfo.MemFreeKb }, o.MemInfo, "nothing else differs");
    }
}
