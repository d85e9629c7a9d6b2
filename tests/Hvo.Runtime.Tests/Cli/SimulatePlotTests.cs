using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Threading;
using System.Xml.Linq;
using Hvo.Cli;
using Hvo.Cli.Plots;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;
using SkiaSharp;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>--plot pictures show what the report says; the samples and the vmemmap map behind them are checked on every architecture.</summary>
[TestClass]
public sealed class SimulatePlotTests
{
    public TestContext TestContext { get; set; } = null!;

    private string TempFile(string name) => Path.Combine(TestContext.TestRunResultsDirectory ?? Path.GetTempPath(), $"{Guid.NewGuid():N}-{name}");

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TheSamplesAndTheVmemmapMapAgreeWithTheReport(string arch)
    {
        ArchEntry entry = Archs.Get(arch);
        // Several boot leaves of vmemmap, so that some stay huge while half the memory is huge pages.
        ulong memory = Math.Max(entry.Info.PageSize >= 65536 ? 8UL << 30 : 2UL << 30, 8 * Archs.MemoryPerBootLeaf(entry.Info));
        var simulation = new SimulateScript(memory, 1, true, SimulateCommand.ParseHugepages(null, entry.Info, memory), null, Writes: 4);
        RunResult result = simulation.Run(entry, new ScenarioOptions(), map: true);
        SimulationReport report = result.Report;

        Assert.AreEqual(1 + 4, result.Trace.Count, "one point before growing and one per write");
        Assert.AreEqual(new GrowthPoint(0, 0, 0), result.Trace[0]);
        GrowthPoint last = result.Trace[^1];
        Assert.AreEqual((double)report.Hstates.Sum(h => (double)h.NrHugepages), last.HugePages);
        Assert.AreEqual((double)(report.Hvo.VmemmapPagesFreed - report.Hvo.VmemmapPagesRestored) * entry.Info.PageSize, last.SavedBytes);
        Assert.AreEqual((double)report.Hvo.PteTablesAllocated * entry.Info.PageSize, last.PageTableBytes);
        Assert.AreEqual(4 * 2, report.Hvo.TlbFlushes, "v6.7: each of the 4 writes is one batch with two flush_tlb_all");
        for (int i = 1; i < result.Trace.Count; i++)
        {
            Assert.IsTrue(result.Trace[i].HugePages > result.Trace[i - 1].HugePages);
            Assert.IsTrue(result.Trace[i].SavedBytes >= result.Trace[i - 1].SavedBytes);
        }

        VmemmapLeafMap map = result.Map!;
        ulong structPages = memory / entry.Info.PageSize * (ulong)entry.Info.StructPageBytes;
        Assert.IsTrue((ulong)map.Leaves.Count * map.LeafBytes >= structPages, "the map covers the whole vmemmap of the machine");
        Assert.IsTrue((ulong)(map.Leaves.Count - 1) * map.LeafBytes < structPages + map.LeafBytes);
        int split = map.Count(VmemmapLeafState.Split) + map.Count(VmemmapLeafState.SplitOptimized);
        Assert.AreEqual(report.Hvo.PmdsSplit, split, "every split the counters report is a split leaf in the picture");
        if (entry.Info.VmemmapBootLevel == entry.Info.LastLevel)
        {
            Assert.AreEqual(0, map.Count(VmemmapLeafState.Huge), "mapped by base pages at boot: nothing is huge");
            Assert.IsTrue(map.Count(VmemmapLeafState.BasePagesOptimized) > 0);
        }
        else
        {
            Assert.AreEqual(split, map.Count(VmemmapLeafState.SplitOptimized), "every split leaf holds the optimized pages it was split for");
            Assert.IsTrue(map.Count(VmemmapLeafState.Huge) > 0, "half the memory is not huge pages: some leaves stay huge");
        }
    }

    [TestMethod]
    public void TheSvgIsAPictureOfTheReport()
    {
        string path = TempFile("hvo.svg");
        var (exit, output, err) = CliRun.InProcess("simulate", "--memory", "4G", "--plot", path, "--json");
        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(err, $"wrote {path}");
        using JsonDocument json = JsonDocument.Parse(output);
        long split = json.RootElement.GetProperty("hvo").GetProperty("pmdsSplit").GetInt64();
        ulong leaves = (4UL << 30) / 4096 * 64 / (2UL << 20);

        XDocument svg = XDocument.Load(path);
        Assert.AreEqual("svg", svg.Root!.Name.LocalName);
        string[] texts = [.. svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];
        CollectionAssert.Contains(texts, $"x86_64 {HvoPolicy.Newest.Name}", "the series is in the legend");
        CollectionAssert.Contains(texts, $"split, holds optimized pages: {split}");
        CollectionAssert.Contains(texts, $"still huge: {(long)leaves - split}");
        Assert.IsTrue(svg.Descendants().Count(e => e.Name.LocalName == "path") > 10, "curves and axes are drawn");
    }

    [TestMethod]
    public void ThePngDecodesAndShowsSplitAndHugeLeaves()
    {
        string path = TempFile("hvo.png");
        var (exit, _, err) = CliRun.InProcess("simulate", "--memory", "4G", "--plot", path);
        Assert.AreEqual(0, exit, err);
        byte[] bytes = File.ReadAllBytes(path);
        CollectionAssert.AreEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8], "PNG signature");
        int width = (bytes[16] << 24) | (bytes[17] << 16) | (bytes[18] << 8) | bytes[19];
        int height = (bytes[20] << 24) | (bytes[21] << 16) | (bytes[22] << 8) | bytes[23];
        Assert.AreEqual(HvoPlot.Width, width);
        Assert.AreEqual(HvoPlot.RowHeight * 3, height, "two curves and one vmemmap map");

        using SKBitmap bitmap = SKBitmap.Decode(path);
        Assert.IsNotNull(bitmap);
        Assert.AreEqual(width, bitmap.Width);
        Assert.AreEqual(height, bitmap.Height);
        int Pixels(string hex)
        {
            SKColor c = SKColor.Parse(hex);
            int n = 0;
            for (int y = 2 * HvoPlot.RowHeight; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    n += bitmap.GetPixel(x, y) == c ? 1 : 0;
                }
            }

            return n;
        }

        // Cells, not just the legend's swatches: far more than a swatch's few hundred pixels.
        Assert.IsTrue(Pixels("#2a9d8f") > 2000, "split leaves holding optimized pages are drawn");
        Assert.IsTrue(Pixels("#d9d9d9") > 2000, "leaves still huge are drawn");
    }

    [TestMethod]
    public void HvoPlotTakesSeveralSeriesAndMaps()
    {
        string path = TempFile("compare.svg");
        var map = new VmemmapLeafMap(0xffffea0000000000, 2UL << 20, 128UL << 20, "pmd", [VmemmapLeafState.Huge, VmemmapLeafState.Split, VmemmapLeafState.SplitOptimized]);
        HvoPlot.Save(
            path,
            "compare",
            [new GrowthSeries("v5.14", [new(0, 0, 0), new(10, 6 << 20, 4096)]), new GrowthSeries("v6.7", [new(0, 0, 0), new(10, 7 << 20, 4096)])],
            [new VmemmapPicture("v5.14", map), new VmemmapPicture("v6.7", map)]);
        XDocument svg = XDocument.Load(path);
        Assert.AreEqual(((HvoPlot.RowHeight * 4).ToString(System.Globalization.CultureInfo.InvariantCulture)), svg.Root!.Attribute("height")!.Value);
        string[] texts = [.. svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];
        CollectionAssert.Contains(texts, "v5.14");
        CollectionAssert.Contains(texts, "v6.7");
        Assert.AreEqual(2, texts.Count(t => t == "split, no optimized page now: 1"));
    }

    [TestMethod]
    public void CtrlCDuringSimulateReportsThePagesGrown()
    {
        // The signal arrives when the 300th page is allocated, from the progress callback.
        using var cts = new CancellationTokenSource();
        ArchEntry entry = Archs.Get("x86_64");
        var simulation = new SimulateScript(2UL << 30, 1, true, [(2UL << 20, 512)], null);
        var options = new ScenarioOptions { Signal = cts.Token, Progress = n => { if (n == 300) { cts.Cancel(); } } };
        RunResult result = simulation.Run(entry, options);
        SimulationReport report = result.Report;

        Assert.IsTrue(result.Interrupted);
        Assert.AreEqual(300UL, result.PagesAllocated);
        Assert.AreEqual(300UL, report.MemInfo.HugePagesTotal);
        ulong freedEach = HugePageVmemmap.For(entry.Info, 2UL << 20).FreedPages(HvoPolicy.Newest.ReservePages);
        Assert.AreEqual((long)(300 * freedEach), report.Hvo.VmemmapPagesFreed, "the pages grown were optimized");
        Assert.AreEqual(300UL, report.Hstates.Single(h => h.PageSize == 2UL << 20).Optimized);
    }

    [TestMethod]
    public void AfterCtrlCNoMoreWritesRunAsTheInterruptedShellRunsNone()
    {
        // --plot's writes of 128, 256, 384 and 512 pages: the signal comes with the 300th page, in the third.
        using var cts = new CancellationTokenSource();
        var simulation = new SimulateScript(2UL << 30, 1, true, [(2UL << 20, 512), (1UL << 30, 1)], null, Writes: 4);
        var options = new ScenarioOptions { Signal = cts.Token, Progress = n => { if (n == 300) { cts.Cancel(); } } };
        RunResult result = simulation.Run(Archs.Get("x86_64"), options);

        Assert.IsTrue(result.Interrupted);
        Assert.AreEqual(1 + 3, result.Trace.Count, "a point before growing and one after each write that ran: the third was cut short, the fourth and the 1G one never ran");
        Assert.AreEqual(300UL, result.Report.MemInfo.HugePagesTotal);
        Assert.AreEqual(300.0, result.Trace[^1].HugePages);
        Assert.AreEqual(0UL, result.Report.Hstates.Single(h => h.PageSize == 1UL << 30).NrHugepages);
    }

    [TestMethod]
    public void SimulatePlotsAPointPerWriteEvenWhenThePoolIsFullAndCompareOnlyTheChanges()
    {
        var simulation = new SimulateScript(64UL << 20, 1, true, [(2UL << 20, 1000)], null, Writes: 8);
        RunResult simulated = simulation.Run(Archs.Get("x86_64"), new ScenarioOptions());
        Assert.AreEqual(1 + 8, simulated.Trace.Count, "one point before growing and one per write");
        Assert.AreEqual(simulated.Trace[^1] with { Step = 0 }, simulated.Trace[^2] with { Step = 0 }, "the pool was full before the last writes");
        CollectionAssert.AreEqual(Enumerable.Range(0, 9).ToArray(), simulated.Trace.Select(p => p.Step).ToArray(), "each point is its write's step");

        RunResult compared = Archs.Get("x86_64").Accept(new ScenarioRunner<RunResult>(simulation.Build(), new ScenarioOptions { EchoCommands = false }, TextWriter.Null, RunReporter.ForScript()));
        CollectionAssert.AreEqual(
            simulated.Trace.Where((p, i) => i == 0 || p with { Step = 0 } != simulated.Trace[i - 1] with { Step = 0 }).ToArray(),
            compared.Trace.ToArray(),
            "a script's points are the writes that changed something, at the step of each");
        Assert.IsLessThan(simulated.Trace.Count, compared.Trace.Count);
    }

    [TestMethod]
    public void WithoutASignalNothingIsInterrupted()
    {
        var simulation = new SimulateScript(1UL << 30, 1, true, [(2UL << 20, 16)], null);
        RunResult result = simulation.Run(Archs.Get("x86_64"), new ScenarioOptions());
        Assert.IsFalse(result.Interrupted);
        Assert.AreEqual(16UL, result.PagesAllocated);
        Assert.AreEqual(2, result.Trace.Count);
    }
}

