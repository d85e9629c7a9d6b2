using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Cli;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>The report is one record; the text, the terminal table, the JSON and compare's column are renderings of it.</summary>
[TestClass]
public sealed class ReportTests
{
    /// <summary>A report no machine made: numbers chosen to tell the fields apart, on an architecture the registry does not know.</summary>
    private static SimulationReport Made(bool bbmChecked, ulong? requested) => new(
        "simulate",
        "pool grown",
        "toy-arch",
        "a toy, 16 KiB pages",
        PageSize: 16384,
        MemoryBytes: 3UL << 30,
        Nodes: 2,
        "v9.9",
        HvoEnabled: false,
        new MemInfo(1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008),
        [new HstateReport(2UL << 20, 11, 12, 13, 14, requested), new HstateReport(32UL << 20, 0, 0, 0, 0)],
        new HvoReport(21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 38, 39, 0, 0, 0, 0, BbmViolations: 33, bbmChecked),
        ShellErrors: 34,
        BootMs: 35,
        WorkMs: 36,
        HostFrameBytes: 37 * 1024,
        StructPagesInitializedAtBoot: 40);

    [TestMethod]
    public void TheTextIsTheHeadingThePoolTheCountersAndTheBbmCount()
    {
        SimulationReport r = Made(bbmChecked: true, requested: 50);
        string text = ReportText.Render(r);
        Assert.AreEqual(ReportText.Heading(r) + ReportText.Pool(r) + ReportText.Counters(r) + ReportText.BreakBeforeMake(r), text);
        StringAssert.StartsWith(text, "hvo simulate: toy-arch (a toy, 16 KiB pages), 3G, 2 node(s), policy v9.9, HVO off\nbooted in 35 ms; pool grown in 36 ms; host memory holding the simulated frames: 37 kB\nstruct pages initialized at boot (memmap_init): 40\n\n" + r.MemInfo.Format());
        StringAssert.Contains(text, "hugepages-2048kB: nr_hugepages 11, free 12, surplus 13, vmemmap optimized 14\n");
        StringAssert.Contains(text, "hugepages-2048kB: asked for 50, the pool grew to 11: no memory for more");
        Assert.IsFalse(text.Contains("hugepages-32768kB", StringComparison.Ordinal), "an empty hstate has no line");
        StringAssert.Contains(text, "HVO TLB flushes:                      27   (range 29, full 30)\n");
        StringAssert.Contains(text, "HVO vmemmap pages freed:              21   (336 kB)\n", "21 pages of the report's 16 KiB, in compare's units");
        StringAssert.Contains(text, "HVO PTE tables allocated:             23   (368 kB)\n");
        StringAssert.Contains(text, "HVO net bytes saved:                  28   (0 kB)\nHVO cmpxchg retries:                  31   (pages rolled back: 32)\n" + Units.Legend + "\n");
        StringAssert.EndsWith(text, "break-before-make violations:         33\n  (--violations [N] lists them: address, level, old and new entry, kernel step)\n");
        Assert.AreEqual(string.Empty, ReportText.BreakBeforeMake(Made(bbmChecked: false, requested: null)));
    }

    [TestMethod]
    public void ACtrlCReportSaysInterruptedNotNoMemory()
    {
        string text = ReportText.Pool(Made(bbmChecked: false, requested: 50) with { Interrupted = true });
        StringAssert.Contains(text, "hugepages-2048kB: asked for 50, the pool grew to 11: interrupted (Ctrl-C) before the rest was allocated\n");
        Assert.IsFalse(text.Contains("no memory", StringComparison.Ordinal), text);
    }

    [TestMethod]
    public void ViolationsListsTheFindingsAndTheSafePolicies()
    {
        BbmFinding[] findings = [.. Enumerable.Range(0, 3).Select(i => new BbmFinding($"0x{i:x16}", "pte", "0x1", "0x2", "vmemmap_remap_pte", "a live valid entry got a different output address without break-before-make"))];
        SimulationReport r = Made(bbmChecked: true, requested: null) with { AllFindings = findings, BreakBeforeMakeSafePolicies = [new SafePolicy("arm64-bbm-fault", "--entry-writer break-flush-make")] };
        string two = ReportText.BreakBeforeMake(r, 2);
        string[] lines = two.TrimEnd('\n').Split('\n');
        CollectionAssert.AreEqual(
            new[]
            {
                "break-before-make violations:         33",
                "  0x0000000000000000 pte  0x1 -> 0x2  vmemmap_remap_pte: a live valid entry got a different output address without break-before-make",
                "  0x0000000000000001 pte  0x1 -> 0x2  vmemmap_remap_pte: a live valid entry got a different output address without break-before-make",
                "  ... 1 more (--violations with no number lists all)",
                "safe on toy-arch: --policy arm64-bbm-fault --entry-writer break-flush-make",
            },
            lines);
        Assert.AreEqual(3, ReportText.BreakBeforeMake(r, int.MaxValue).Split('\n').Count(l => l.StartsWith("  0x", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void TheJsonHasTheContractsKeysInOrderFromTheSameRecord()
    {
        SimulationReport r = Made(bbmChecked: true, requested: 50);
        using JsonDocument doc = JsonDocument.Parse(ReportJson.Render(r));
        JsonElement root = doc.RootElement;
        CollectionAssert.AreEqual(new[] { "arch", "policy", "hvoEnabled", "meminfo", "hstates", "hvo", "breakBeforeMakeViolations" }, root.EnumerateObject().Select(p => p.Name).ToArray());
        Assert.AreEqual("toy-arch", root.GetProperty("arch").GetString());
        Assert.AreEqual("v9.9", root.GetProperty("policy").GetString());
        Assert.IsFalse(root.GetProperty("hvoEnabled").GetBoolean());
        CollectionAssert.AreEqual(r.MemInfo.Fields.Select(f => (f.Key, f.Value)).ToArray(), root.GetProperty("meminfo").EnumerateObject().Select(p => (p.Name, p.Value.GetUInt64())).ToArray());
        JsonElement[] hstates = [.. root.GetProperty("hstates").EnumerateArray()];
        CollectionAssert.AreEqual(new[] { "pageSize", "nrHugepages", "free", "surplus", "optimized", "requested" }, hstates[0].EnumerateObject().Select(p => p.Name).ToArray());
        Assert.AreEqual(50UL, hstates[0].GetProperty("requested").GetUInt64());
        Assert.IsFalse(hstates[1].TryGetProperty("requested", out _), "requested only where it was asked");
        string[] counters = ["vmemmapPagesFreed", "vmemmapPagesRestored", "pteTablesAllocated", "pmdsSplit", "optimizeFailures", "restoreFailures", "tlbFlushes", "netBytesSaved", "tlbRangeFlushes", "tlbFullFlushes", "bbmRetries", "bbmRetriesExhausted", "sharedTailPages", "gracePeriods", "entryInvalidations", "cpuPauses", "pauseIpis", "pausedCpuSteps"];
        CollectionAssert.AreEqual(counters, root.GetProperty("hvo").EnumerateObject().Select(p => p.Name).ToArray());
        CollectionAssert.AreEqual(Enumerable.Range(21, 12).Append(38).Append(39).Concat(Enumerable.Repeat(0, 4)).Select(n => (long)n).ToArray(), root.GetProperty("hvo").EnumerateObject().Select(p => p.Value.GetInt64()).ToArray());
        Assert.AreEqual(33, root.GetProperty("breakBeforeMakeViolations").GetInt64());

        using JsonDocument unchecked_ = JsonDocument.Parse(ReportJson.Render(Made(bbmChecked: false, requested: null)));
        Assert.IsFalse(unchecked_.RootElement.TryGetProperty("breakBeforeMakeViolations", out _), "only where the checker ran");
    }

    [TestMethod]
    public void SeveralReportsAreAnArrayOfTheSameObjectsIndentedOneLevelMore()
    {
        SimulationReport a = Made(bbmChecked: true, requested: 50), b = Made(bbmChecked: false, requested: null);
        string array = ReportJson.Render([a, b]);
        string Indented(SimulationReport r) => string.Join('\n', ReportJson.Render(r).Split('\n').Select(l => "  " + l));
        Assert.AreEqual("[\n" + Indented(a) + ",\n" + Indented(b) + "\n]", array.ReplaceLineEndings("\n"));
    }

    [TestMethod]
    public void OnATerminalTheTextStaysAndTheCountersBecomeATableSizedByTheReportsPage()
    {
        SimulationReport r = Made(bbmChecked: true, requested: 50);
        var text = new StringWriter { NewLine = "\n" };
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Ansi = Spectre.Console.AnsiSupport.No,
            ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
            Interactive = Spectre.Console.InteractionSupport.No,
            Out = new Spectre.Console.AnsiConsoleOutput(text),
        });

        TerminalReport.Write(console, text, r);

        string shown = text.ToString().Replace("\r\n", "\n", StringComparison.Ordinal);
        StringAssert.StartsWith(shown, ReportText.Heading(r) + ReportText.Pool(r) + ReportText.BreakBeforeMake(r) + "\n");
        string[] rows = shown.Split('\n');
        Assert.IsFalse(rows.Any(l => l.StartsWith("HVO ", StringComparison.Ordinal)), "the counter lines became the table");
        StringAssert.Contains(shown, "HVO under v9.9");
        string Row(string name) => rows.Single(l => l.Contains(name, StringComparison.Ordinal));
        StringAssert.Contains(Row("vmemmap pages freed"), "21");
        StringAssert.Contains(Row("vmemmap pages freed"), "336 kB", "21 pages of the report's 16 KiB");
        StringAssert.Contains(Row("PTE tables allocated"), "368 kB", "23 pages of 16 KiB");
        StringAssert.Contains(Row("TLB flushes"), "27");
        StringAssert.Contains(Row("net bytes saved"), "0 kB");
        StringAssert.Contains(shown, Units.Legend);
        Assert.IsFalse(TerminalReport.IsTerminal(new StringWriter()), "a writer passed in is never the terminal");
    }

    [TestMethod]
    public void ACompareColumnIsTheSameRecordsNumbers()
    {
        var output = new StringWriter { NewLine = "\n" };
        CompareCommand.WriteTable(output, terminal: false, [Made(bbmChecked: true, requested: null), Made(bbmChecked: false, requested: null)]);
        string[] rows = output.ToString().Split('\n');
        string[] Cells(string label) => [.. rows.Single(l => l.StartsWith("| " + label, StringComparison.Ordinal)).Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        CollectionAssert.AreEqual(new[] { "PTE tables (page-table cost)", "23 (368 kB)", "23 (368 kB)" }, Cells("PTE tables"), "23 tables of the report's 16 KiB page");
        CollectionAssert.AreEqual(new[] { "rule violations (arm64 BBM, s390 invalidate)", "33", "not required" }, Cells("rule violations"));
        CollectionAssert.AreEqual(new[] { "shell errors", "34", "34" }, Cells("shell errors"));
        CollectionAssert.AreEqual(new[] { "MemTotal", "1,001 kB", "1,001 kB" }, Cells("MemTotal"));
        StringAssert.Contains(rows[0], "toy-arch v9.9");
    }

    [TestMethod]
    public void AMachinesReportRendersTheSameWaysAndCarriesItsPageSize()
    {
        // x86_64 1G under v5.14, 64 pages: the record from a real run, then each rendering of it.
        var simulation = new SimulateScript(1UL << 30, 1, true, [(2UL << 20, 64)], null);
        SimulationReport r = simulation.Run(Archs.Get("x86_64"), new ScenarioOptions { Policy = HvoPolicy.V5_14 }).Report;
        Assert.AreEqual(Archs.Get("x86_64").Info.PageSize, r.PageSize);
        var (exit, json, err) = CliRun.InProcess("simulate", "--memory", "1G", "--hugepages", "2M:64", "--policy", "v5.14", "--json");
        Assert.AreEqual(0, exit, err);
        Assert.AreEqual(ReportJson.Render(r) + "\n", json);
        var (_, text, _) = CliRun.InProcess("simulate", "--memory", "1G", "--hugepages", "2M:64", "--policy", "v5.14");
        string Untimed(string s) => string.Join('\n', s.Split('\n').Where(l => !l.StartsWith("booted in ", StringComparison.Ordinal)));
        Assert.AreEqual(Untimed(ReportText.Render(r)), Untimed(text));
        Assert.AreEqual(64L * (long)HugePageVmemmap.For(Archs.Get("x86_64").Info, 2UL << 20).FreedPages(HvoPolicy.V5_14.ReservePages), r.Hvo.VmemmapPagesFreed);
    }
}
