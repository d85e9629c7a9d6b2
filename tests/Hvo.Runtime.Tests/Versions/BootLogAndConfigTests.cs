using System.Linq;
using Hvo.HugeTlb;
using Hvo.Runtime.Tests.Cli;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Versions;

/// <summary>
/// The kernel log (<c>dmesg</c>) with HugeTLB's boot lines in each version's format, and the build
/// option CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON as a machine setting.
/// </summary>
[TestClass]
public sealed class BootLogAndConfigTests
{
    private const string Script = "boot mem=4G hugepagesz=1G hugepages=1 quiet foo=1\ndmesg\n";

    /// <summary>6.1's lines, with the KiB derived from the spec: 28 KiB for 2 MiB, 16380 KiB for 1 GiB on x86-64.</summary>
    [TestMethod]
    public void V61PrintsKiBFreedPerSizeAfterTheBootNotices()
    {
        var info = Archs.Get("x86_64").Info;
        ulong Kib(ulong size) => HugePageVmemmap.For(info, size).FreedPages(1) * info.PageSize / 1024;
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", Script, HvoPolicy.Find("v6.1"));
        string[] dmesg = [.. o.Lines().SkipWhile(l => !l.StartsWith("Unknown", System.StringComparison.Ordinal))];
        CollectionAssert.AreEqual(
            new[]
            {
                "Unknown kernel command line parameters \"foo=1\", will be passed to user space.",
                "HugeTLB: registered 1.00 GiB page size, pre-allocated 1 pages",
                $"HugeTLB: {Kib(1UL << 30)} KiB vmemmap can be freed for a 1.00 GiB page",
                "HugeTLB: registered 2.00 MiB page size, pre-allocated 0 pages",
                $"HugeTLB: {Kib(2UL << 20)} KiB vmemmap can be freed for a 2.00 MiB page",
            },
            dmesg);
        Assert.AreEqual(16380UL, Kib(1UL << 30));
        Assert.AreEqual(28UL, Kib(2UL << 20));
    }

    /// <summary>v6.0 moved the lines to report_hugepages in KiB; v5.19 printed "can optimize N vmemmap pages", v5.18 "can free".</summary>
    [TestMethod]
    public void TheFormatChangesAtV519AndV60()
    {
        string Dmesg(string version) => string.Join("\n", ScenarioHarness.Run("x86_64", Script, HvoPolicy.Find(version)).Lines());
        StringAssert.Contains(Dmesg("v5.18"), "HugeTLB: can free 7 vmemmap pages for hugepages-2048kB");
        StringAssert.Contains(Dmesg("v5.19"), "HugeTLB: can optimize 7 vmemmap pages for hugepages-2048kB");
        StringAssert.Contains(Dmesg("v5.19"), "HugeTLB registered 2.00 MiB page size, pre-allocated 0 pages");
        Assert.IsFalse(Dmesg("v5.19").Contains("KiB vmemmap", System.StringComparison.Ordinal));
        StringAssert.Contains(Dmesg("v6.0"), "HugeTLB: 28 KiB vmemmap can be freed for a 2.00 MiB page");
    }

    /// <summary>
    /// Without hugepagesz= the sizes come as their hstates were added: the architecture's at
    /// arch_initcall, largest first, before hugetlb_init adds the default (x86-64: 1 GiB, then
    /// 2 MiB, as real machines print); a size the command line names comes first.
    /// </summary>
    [TestMethod]
    [DataRow("x86_64")]
    [DataRow("arm64-4k")]
    public void SizesAreReportedLargestFirstUnlessTheCommandLineNamesOne(string arch)
    {
        string[] Registered(string boot) =>
            [.. ScenarioHarness.Run(arch, boot + "dmesg\n", HvoPolicy.Find("v6.1")).Lines()
                .Where(l => l.StartsWith("HugeTLB: registered ", System.StringComparison.Ordinal))];

        var info = Archs.Get(arch).Info;
        string[] largestFirst = [.. info.HugePageSizes.Select(h => h.Size).OrderDescending()
            .Select(s => $"HugeTLB: registered {HugeBootPages.SizeString(s)} page size, pre-allocated 0 pages")];
        CollectionAssert.AreEqual(largestFirst, Registered("boot mem=4G\n"));
        ulong smallest = info.HugePageSizes.Min(h => h.Size);
        string size = smallest % (1UL << 20) == 0 ? $"{smallest >> 20}M" : $"{smallest >> 10}K";
        string first = Registered($"boot mem=4G hugepagesz={size} hugepages=1\n")[0];
        StringAssert.StartsWith(first, $"HugeTLB: registered {HugeBootPages.SizeString(smallest)} page size, pre-allocated 1 pages");
    }

    [TestMethod]
    public void ABuildWithTheDefaultOffLeavesHvoOffUnlessTheBootLineTurnsItOn()
    {
        const string grow = "echo 8 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/hugetlb_optimize_vmemmap\n";
        ScenarioOutcome off = ScenarioHarness.Run("x86_64", "config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n\nboot mem=1G\n" + grow, HvoPolicy.Find("v6.1"));
        ScenarioOutcome on = ScenarioHarness.Run("x86_64", "config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n\nboot mem=1G hugetlb_free_vmemmap=on\n" + grow, HvoPolicy.Find("v6.1"));
        ScenarioOutcome mainline = ScenarioHarness.Run("x86_64", "boot mem=1G\n" + grow, HvoPolicy.Find("v6.1"));
        Assert.AreEqual(0L, off.Counters.Freed);
        Assert.AreEqual("0\n", off.Transcript);
        Assert.AreEqual(8 * 7L, on.Counters.Freed);
        Assert.AreEqual(8 * 7L, mainline.Counters.Freed, "mainline's default is on");
        var options = TestMachines.Options(HvoPolicy.Find("v6.1")!) with { HvoDefaultOn = false, EchoCommands = false, DefaultMemoryBytes = ScenarioHarness.GiB };
        ScenarioOutcome machine = ScenarioHarness.Run("x86_64", global::Hvo.Scenario.ScriptParser.Parse("boot mem=1G\n" + grow, "t"), options);
        Assert.AreEqual(0L, machine.Counters.Freed, "the machine setting, as --hvo-default-on off");
    }

    [TestMethod]
    public void SimulateTakesTheBuildDefault()
    {
        var (exit, output, err) = CliRun.InProcess("simulate", "--memory", "1G", "--hugepages", "2M:8", "--hvo-default-on", "off", "--json");
        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(output, "\"hvoEnabled\": false");
        var (bad, _, badErr) = CliRun.InProcess("simulate", "--hvo-default-on", "maybe");
        Assert.AreEqual(2, bad);
        StringAssert.Contains(badErr, "--hvo-default-on: 'maybe' is not on or off");
    }

    [TestMethod]
    [DataRow("boot mem=1G\nconfig CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n\n", "'config' comes before the boot line")]
    [DataRow("config CONFIG_FOO=y\n", "config takes CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y or =n")]
    [DataRow("dmesg -w\n", "dmesg takes no arguments")]
    public void BadConfigAndDmesgLinesAreLocatedErrors(string text, string message)
    {
        var e = Assert.ThrowsExactly<global::Hvo.Scenario.ScriptError>(() => global::Hvo.Scenario.ScriptParser.Parse(text, "t.hvo"));
        StringAssert.Contains(e.Message, message);
    }
}
