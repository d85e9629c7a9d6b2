using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Cli;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>compare with the machine options, sweep, break-before-make findings, and the small things a daily user meets.</summary>
[TestClass]
public sealed class DailyUseTests
{
    private static long Freed(string arch, ulong size, HvoPolicy policy) => (long)HugePageVmemmap.For(Archs.Get(arch).Info, size).FreedPages(policy.ReservePages);

    [TestMethod]
    public void CompareTakesTheMachineOptionsAndReportsEveryPool()
    {
        var (exit, output, err) = CliRun.InProcess("compare", "--memory", "1536G", "--hugepages", "1G:1200", "--policies", "v5.14,v6.7", "--json");
        Assert.AreEqual(0, exit, err);
        JsonElement[] runs = [.. JsonDocument.Parse(output).RootElement.EnumerateArray()];
        CollectionAssert.AreEqual(new[] { "v5.14", "v6.7" }, runs.Select(r => r.GetProperty("policy").GetString()).ToArray());
        foreach (JsonElement r in runs)
        {
            HvoPolicy policy = HvoPolicy.Find(r.GetProperty("policy").GetString()!)!;
            JsonElement giant = r.GetProperty("hstates").EnumerateArray().Single(h => h.GetProperty("pageSize").GetUInt64() == 1UL << 30);
            Assert.AreEqual(1200UL, giant.GetProperty("nrHugepages").GetUInt64());
            Assert.AreEqual(1200 * Freed("x86_64", 1UL << 30, policy), r.GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64());
        }

        var (_, table, _) = CliRun.InProcess("compare", "--memory", "8G", "--hugepages", "2M:100,1G:2", "--policies", "v6.7");
        string[] Cells(string label) => [.. table.Split('\n').Single(l => l.StartsWith("| " + label, StringComparison.Ordinal)).Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        Assert.AreEqual("2 / 0", Cells("hugepages-1048576kB total / surplus")[1], "the 1 GiB pool has its own row: meminfo's HugePages_Total counts only the default size");
        Assert.AreEqual("100 / 0", Cells("hugepages-2048kB total / surplus")[1]);
    }

    [TestMethod]
    public void CompareDefaultsToThePoliciesThatApplyToTheArchitecture()
    {
        ArchInfo x86 = Archs.Get("x86_64").Info, arm = Archs.Get("arm64-4k").Info;
        var anyWriter = new ScenarioOptions { EntryWriter = EntryWriterKind.BreakFlushMake };
        CollectionAssert.AreEqual(HvoPolicy.All.Where(p => p.RequiredWriter is null).ToArray(), CompareCommand.ApplyingPolicies(x86, anyWriter).ToArray(), "arm64's strategies never on x86_64");
        CollectionAssert.Contains(CompareCommand.ApplyingPolicies(arm, anyWriter).ToList(), HvoPolicy.Arm64BbmFaultRetry, "on arm64 with its writer");
        CollectionAssert.DoesNotContain(CompareCommand.ApplyingPolicies(arm, anyWriter).ToList(), HvoPolicy.Arm64PauseCpus, "not with another writer fixed");
        CollectionAssert.AreEqual(
            new[] { HvoPolicy.Arm64Bbml2, HvoPolicy.Arm64BbmFaultRetry, HvoPolicy.Arm64BbmAccessFlag, HvoPolicy.Arm64PauseCpus },
            CompareCommand.ApplyingPolicies(arm, new ScenarioOptions()).Where(p => p.RequiredWriter is not null).ToArray(),
            "with no writer chosen, all four arm64 strategies, each on its own writer");
        CollectionAssert.AreEqual(
            new[] { HvoPolicy.S390Safe },
            CompareCommand.ApplyingPolicies(Archs.Get("s390x").Info, new ScenarioOptions()).Where(p => p.RequiredWriter is not null).ToArray(),
            "s390x's strategy is the invalidating one");
    }

    [TestMethod]
    public void CompareRefusesMachineOptionsBesideAScriptAndWritesFailAllocAfterItsBootLine()
    {
        CliRun.AssertUsageError(CliRun.InProcess("compare", "grow-shrink", "--memory", "8G"), "--memory: the script's boot line describes its machine");
        var (exit, output, err) = CliRun.InProcessWithInput("boot mem=1G\necho 64 > /proc/sys/vm/nr_hugepages\n", "compare", "-", "--policies", "v6.7", "--fail-alloc", "probability=100,times=-1", "--json");
        Assert.AreEqual(0, exit, err);
        Assert.AreEqual(0UL, JsonDocument.Parse(output).RootElement[0].GetProperty("meminfo").GetProperty("HugePages_Total").GetUInt64(), "every huge page allocation failed");
    }

    [TestMethod]
    public void CompareCsvIsAHeaderAndALinePerRun()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hvo-{Guid.NewGuid():N}.csv");
        try
        {
            var (exit, output, err) = CliRun.InProcess("compare", "--memory", "2G", "--policies", "v5.14,v6.7", "--csv", path);
            Assert.AreEqual(0, exit, err);
            StringAssert.Contains(output, "hvo compare: default (2 runs)", "the table still goes to standard output");
            string[] lines = File.ReadAllLines(path);
            Assert.HasCount(3, lines);
            string[] header = lines[0].Split(',');
            string[] v514 = lines[1].Split(',');
            Assert.AreEqual("v5.14", v514[Array.IndexOf(header, "policy")]);
            Assert.AreEqual((512 * Freed("x86_64", 2UL << 20, HvoPolicy.V5_14)).ToString(System.Globalization.CultureInfo.InvariantCulture), v514[Array.IndexOf(header, "vmemmapPagesFreed")]);
            Assert.AreEqual("512", v514[Array.IndexOf(header, "nrHugepages_2048kB")]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ComparePlotsAgainstTheScriptsStepsWithDistinctMarkersAndNoBom()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hvo-{Guid.NewGuid():N}.svg");
        try
        {
            var (exit, _, err) = CliRun.InProcess("compare", "grow-shrink", "--policies", "v6.2,v6.7", "--plot", path);
            Assert.AreEqual(0, exit, err);
            byte[] bytes = File.ReadAllBytes(path);
            Assert.AreEqual((byte)'<', bytes[0], "no byte-order mark");
            CollectionAssert.Contains(Texts(path), "the script's writes, in order (0: before the first)");

            // Curves that coincide stay visible: no two of the first eight share a marker, and in PNG no two neighbours a dash.
            var plot = new ScottPlot.Plot();
            var looks = Enumerable.Range(0, 8).Select(i =>
            {
                var s = plot.Add.Scatter(new double[] { 0 }, new double[] { 0 });
                Hvo.Cli.Plots.HvoPlot.Distinguish(s, i, dashes: true);
                return (s.MarkerShape, s.LinePattern);
            }).ToArray();
            Assert.AreEqual(8, looks.Select(l => l.MarkerShape).Distinct().Count());
            Assert.IsTrue(looks.Zip(looks.Skip(1)).All(p => !p.First.LinePattern.Equals(p.Second.LinePattern)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static string[] Texts(string svg) =>
        [.. System.Xml.Linq.XDocument.Load(svg).Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];

    [TestMethod]
    public void SweepRangesDoubleAndListsAreTakenAsGiven()
    {
        CollectionAssert.AreEqual(new[] { 64UL << 30, 128UL << 30, 256UL << 30, 512UL << 30, 1UL << 40 }, SweepCommand.MemorySizes("64G..1T"));
        CollectionAssert.AreEqual(new[] { 64UL << 30, 128UL << 30 }, SweepCommand.MemorySizes("64G..200G"), "doubling stops before passing the end");
        CollectionAssert.AreEqual(new[] { 1UL << 30, 3UL << 39 }, SweepCommand.MemorySizes("1G,1.5T"));
        CliRun.AssertUsageError(CliRun.InProcess("sweep", "--memory", "1T..64G"), "is not a range");
        CliRun.AssertUsageError(CliRun.InProcess("sweep", "--memory", "1X"), "--memory:");
    }

    [TestMethod]
    public void SweepWritesALinePerPointWithProgressOnStandardError()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hvo-{Guid.NewGuid():N}.csv");
        try
        {
            var (exit, output, err) = CliRun.InProcess("sweep", "--archs", "x86_64,arm64-4k", "--memory", "1G..4G", "--hugepages", "2M:50%", "--hugepages", "1G:1", "--csv", path);
            Assert.AreEqual(0, exit, err);
            string[] lines = File.ReadAllLines(path);
            Assert.HasCount(1 + (2 * 3 * 2), lines, "2 architectures x 3 sizes x 2 forms");
            Assert.AreEqual(12, err.Split('\n').Count(l => l.StartsWith("hvo sweep: [", StringComparison.Ordinal)), err);
            StringAssert.Contains(err, "[12/12]");
            StringAssert.Contains(output, "hvo sweep: 12 machines");
            string[] header = lines[0].Split(',');
            string[] first = lines[1].Split(',');
            Assert.AreEqual("2M:50%", first[0]);
            Assert.AreEqual((1UL << 30).ToString(System.Globalization.CultureInfo.InvariantCulture), first[Array.IndexOf(header, "memoryBytes")]);
            Assert.AreEqual("256", first[Array.IndexOf(header, "nrHugepages_2048kB")], "50% of 1 GiB as 2 MiB pages");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void SweepJsonIsPointAndReport()
    {
        var (exit, output, err) = CliRun.InProcess("sweep", "--memory", "1G,2G", "--policies", "v5.14,v6.7", "--json");
        Assert.AreEqual(0, exit, err);
        JsonElement[] points = [.. JsonDocument.Parse(output).RootElement.EnumerateArray()];
        Assert.HasCount(4, points);
        foreach (JsonElement p in points)
        {
            HvoPolicy policy = HvoPolicy.Find(p.GetProperty("point").GetProperty("policy").GetString()!)!;
            ulong memory = p.GetProperty("point").GetProperty("memoryBytes").GetUInt64();
            Assert.AreEqual((long)(memory / 2 / (2UL << 20)) * Freed("x86_64", 2UL << 20, policy), p.GetProperty("report").GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64());
        }
    }

    [TestMethod]
    public void SweepPlotsSavingAndCostAgainstMemory()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hvo-{Guid.NewGuid():N}.svg");
        try
        {
            var (exit, _, err) = CliRun.InProcess("sweep", "--memory", "1G..4G", "--policies", "v5.14,v6.7", "--plot", path);
            Assert.AreEqual(0, exit, err);
            string[] texts = Texts(path);
            foreach (string tick in new[] { "1G", "2G", "4G", "memory (doubling)", "x86_64 v5.14 2M:50%", "x86_64 v6.7 2M:50%" })
            {
                CollectionAssert.Contains(texts, tick);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void ViolationsListTheCheckersFindingsWithTheirEntriesAndTheSafePolicies()
    {
        var (exit, output, err) = CliRun.InProcess("simulate", "--arch", "arm64-4k", "--memory", "1G", "--violations", "3");
        Assert.AreEqual(0, exit, err);
        string[] lines = output.Split('\n');
        int at = Array.FindIndex(lines, l => l.StartsWith("break-before-make violations:", StringComparison.Ordinal));
        string[] findings = lines[(at + 1)..(at + 4)];
        foreach (string f in findings)
        {
            StringAssert.Matches(f, new System.Text.RegularExpressions.Regex(@"^  0x[0-9a-f]{16} (pmd|pte) +0x[0-9a-f]{16} -> 0x[0-9a-f]{16}  (split_vmemmap_huge_pmd|vmemmap_remap_pte|vmemmap_restore_pte): "));
        }

        StringAssert.StartsWith(lines[at + 4], "  ... ");
        StringAssert.StartsWith(lines[at + 5], "safe on arm64-4k: --policy arm64-bbml2 --cpu bbml2, --policy arm64-bbm-fault --entry-writer break-flush-make");

        var (_, json, _) = CliRun.InProcess("simulate", "--arch", "arm64-4k", "--memory", "1G", "--json");
        JsonElement root = JsonDocument.Parse(json).RootElement;
        JsonElement[] all = [.. root.GetProperty("breakBeforeMakeFindings").EnumerateArray()];
        Assert.AreEqual(root.GetProperty("breakBeforeMakeViolations").GetInt64(), all.Length, "JSON has every finding");
        CollectionAssert.AreEqual(new[] { "address", "level", "oldEntry", "newEntry", "step", "rule" }, all[0].EnumerateObject().Select(p => p.Name).ToArray());
        Assert.AreEqual(findings[0].Trim().Split(' ')[0], all[0].GetProperty("address").GetString(), "the same first finding");
        string[] safe = [.. root.GetProperty("breakBeforeMakeSafePolicies").EnumerateArray().Select(p => p.GetProperty("policy").GetString()!)];
        CollectionAssert.AreEqual(HvoPolicy.All.Where(p => p.RequiredWriter is not null and not EntryWriterKind.Direct && p.ForRule == ReplacementRule.BreakBeforeMake && MachineOptions.OptionsFor(new ScenarioOptions { Policy = p }, Archs.Get("arm64-4k").Info) is not null).Select(p => p.Name).ToArray(), safe);

        // Each safe policy, run with the options named, keeps the rule.
        foreach (JsonElement p in root.GetProperty("breakBeforeMakeSafePolicies").EnumerateArray())
        {
            string[] args = ["simulate", "--arch", "arm64-4k", "--memory", "256M", "--policy", p.GetProperty("policy").GetString()!, .. p.GetProperty("options").GetString()!.Split(' '), "--json"];
            var (ok, safeJson, safeErr) = CliRun.InProcess(args);
            Assert.AreEqual(0, ok, safeErr);
            Assert.AreEqual(0, JsonDocument.Parse(safeJson).RootElement.GetProperty("breakBeforeMakeViolations").GetInt64(), string.Join(' ', args));
        }
    }

    [TestMethod]
    [DataRow(new[] { "simluate" }, "(did you mean simulate?)")]
    [DataRow(new[] { "simulate", "--memroy", "2G" }, "(did you mean --memory?)")]
    [DataRow(new[] { "compare", "--polices", "v6.7" }, "(did you mean --policies?)")]
    [DataRow(new[] { "swep" }, "(did you mean sweep?)")]
    public void AMisspelledCommandOrOptionGetsTheNearestName(string[] args, string hint)
    {
        var (exit, output, err) = CliRun.InProcess(args);
        Assert.AreEqual(2, exit);
        Assert.AreEqual(string.Empty, output);
        StringAssert.Contains(err, hint);
    }

    [TestMethod]
    [DataRow(new[] { "simulate", "--seed", "abc" }, "--seed: 'abc' is not a seed; use a whole number from 0 to 18446744073709551615")]
    [DataRow(new[] { "simulate", "--hugepages", "2M:100,2M:200" }, "--hugepages: 2M is given twice ('2M:100' and '2M:200'); give each size once")]
    [DataRow(new[] { "simulate", "--hugepages", "2M:150%" }, "is not a percentage of memory")]
    [DataRow(new[] { "simulate", "--memory", "1.3K" }, "'1.3K' is not a whole number of bytes")]
    [DataRow(new[] { "simulate", "--violations", "x" }, "--violations: 'x' is not a number of findings")]
    [DataRow(new[] { "compare", "--json", "--csv" }, "--csv: standard output already has --json's document")]
    public void SmallMistakesAreOneClearMessage(string[] args, string message)
    {
        var (exit, output, err) = CliRun.InProcess(args);
        Assert.AreEqual(2, exit, err);
        Assert.AreEqual(string.Empty, output);
        StringAssert.Contains(err, message);
        Assert.IsFalse(err.Contains("System.", StringComparison.Ordinal), "no .NET type names: " + err);
    }

    [TestMethod]
    public void FractionalMemoryAndPercentPoolsRun()
    {
        var (exit, output, err) = CliRun.InProcess("simulate", "--memory", "1.5G", "--hugepages", "1G:50%,2M:25%", "--json");
        Assert.AreEqual(0, exit, err);
        JsonElement[] h = [.. JsonDocument.Parse(output).RootElement.GetProperty("hstates").EnumerateArray()];
        Assert.AreEqual(0UL, h.Single(x => x.GetProperty("pageSize").GetUInt64() == 1UL << 30).GetProperty("requested").GetUInt64(), "50% of 1.5 GiB is less than one 1 GiB page");
        Assert.AreEqual((3UL << 29) / 4 / (2UL << 20), h.Single(x => x.GetProperty("pageSize").GetUInt64() == 2UL << 20).GetProperty("requested").GetUInt64());
    }

    [TestMethod]
    public void TheProgressProbeCountsPagesOptimizedNotOnlyAllocated()
    {
        var simulation = new SimulateScript(1UL << 30, 1, true, [(2UL << 20, 64)], null);
        var probe = new ProgressProbe();
        simulation.Run(Archs.Get("x86_64"), new ScenarioOptions { Progress = probe.Allocated, Booted = probe.Watch });
        Assert.AreEqual(64UL, probe.PagesAllocated);
        Assert.AreEqual(64UL, probe.PagesOptimized);
        Assert.AreEqual(64UL, simulation.OptimizablePages(Archs.Get("x86_64").Info, HvoPolicy.Newest));
        Assert.AreEqual(0UL, (simulation with { Hvo = false }).OptimizablePages(Archs.Get("x86_64").Info, HvoPolicy.Newest));
    }

    [TestMethod]
    public void AfterCtrlCTheReportSaysInterruptedNotShortOfMemory()
    {
        var simulation = new SimulateScript(1UL << 30, 1, true, [(2UL << 20, 64)], null);
        using var cts = new System.Threading.CancellationTokenSource();
        cts.Cancel();
        RunResult result = simulation.Run(Archs.Get("x86_64"), new ScenarioOptions { Signal = cts.Token });
        Assert.IsTrue(result.Report.Interrupted);
        string text = Hvo.Cli.Reports.ReportText.Render(result.Report);
        StringAssert.Contains(text, "interrupted (Ctrl-C) before the rest was allocated");
        Assert.IsFalse(text.Contains("no memory for more", StringComparison.Ordinal), text);
        Assert.IsTrue(JsonDocument.Parse(Hvo.Cli.Reports.ReportJson.Render(result.Report)).RootElement.GetProperty("interrupted").GetBoolean());
    }

    [TestMethod]
    public void SpecsNamesEachPolicyOnceWithoutRepeatingItsReserve()
    {
        var (_, output, _) = CliRun.InProcess("specs");
        string[] policies = [.. output.Split('\n').SkipWhile(l => !l.StartsWith("policies (--policy)", StringComparison.Ordinal))];
        foreach (HvoPolicy p in HvoPolicy.All)
        {
            string line = policies.Single(l => l.StartsWith("  " + p.Name + " ", StringComparison.Ordinal));
            Assert.IsFalse(System.Text.RegularExpressions.Regex.IsMatch(line, @"reserve \d+.*reserve \d+"), line);
        }
    }
}
