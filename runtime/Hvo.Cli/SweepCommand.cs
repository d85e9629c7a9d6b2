using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using Hvo.Cli.Plots;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>One machine of a sweep: its architecture, policy, memory and pools as asked.</summary>
internal sealed record SweepPoint(string Arch, string Policy, ulong MemoryBytes, string Hugepages);

/// <summary>A point and its report (<c>hvo sweep --json</c>).</summary>
internal sealed record SweepResult(SweepPoint Point, SimulationReport Report);

/// <summary>
/// <c>hvo sweep</c>: <c>simulate</c> over a grid of architectures, policies, memory sizes and pool
/// forms, the points run in parallel on the host's cores, a line of progress per point on standard
/// error, the results as a table, CSV and/or JSON, and a plot of saving and cost against memory.
/// </summary>
internal static class SweepCommand
{
    public const string Example =
        "Examples:\n" +
        "  hvo sweep --archs x86_64,arm64-4k --memory 64G..1T --csv out.csv    5 sizes, doubling, 2 architectures: 10 lines\n" +
        "  hvo sweep --memory 256G,1T --hugepages 2M:50% --hugepages 1G:50% --policies v5.14,v6.7 --json\n" +
        "  hvo sweep --memory 64G..4T --plot sweep.svg                          saving and PTE-table cost against memory size";

    /// <summary>The most points one sweep runs: a guard against a range that would take hours.</summary>
    public const int MaxPoints = 4096;

    public static Command Build(TextWriter output, TextWriter error, Func<TextWriter, bool> isTerminal)
    {
        var archs = new Option<string>("--archs") { Description = "Comma-separated architectures (default: x86_64).", DefaultValueFactory = _ => "x86_64" };
        var policies = new Option<string?>("--policies") { Description = $"Comma-separated policies (default: {HvoPolicy.Newest.Name})." };
        var memory = new Option<string>("--memory") { Description = "Memory sizes: a list (64G,256G,1.5T) or a range doubling from the first to the last (64G..64T). Default: 64G.", DefaultValueFactory = _ => CmdLine.FormatSize(MachineConfig.DefaultMemoryBytes) };
        var hugepages = new Option<string[]>("--hugepages") { Description = $"A pool form, repeatable: {ShapeOptions.HugepagesForms}; a percentage scales with each memory size. Default: half of memory as pages of the default size.", AllowMultipleArgumentsPerToken = false };
        var nodes = new Option<int>("--nodes") { Description = "NUMA nodes of every machine.", DefaultValueFactory = _ => 1 };
        var hvo = new Option<string?>("--hvo") { Description = "on|off: hugetlb_free_vmemmap= on the boot line; without it the build default decides (--hvo-default-on, on unless said otherwise)." };
        var csv = new Option<string?>("--csv") { Description = "Write the points as CSV, one line each, to FILE (or standard output with no FILE or -).", Arity = ArgumentArity.ZeroOrOne, HelpName = "FILE" };
        var json = new Option<string?>("--json") { Description = "Write the points as one JSON array of {point, report} to FILE (or standard output with no FILE or -).", Arity = ArgumentArity.ZeroOrOne, HelpName = "FILE" };
        var plot = new Option<string?>("--plot") { Description = "Write a picture (FILE.svg or FILE.png): memory saved and PTE-table cost against memory size, a curve per architecture, policy and pool form.", HelpName = "FILE" };
        var machine = new MachineOptions();
        var command = new Command("sweep",
            "Simulate a grid of machines (architectures x policies x memory sizes x pool forms), each as hvo simulate would, in parallel on the host's cores; " +
            "progress on standard error, the results as a table, CSV or JSON, and a plot against memory size.\n\n" + Example)
        {
            archs, policies, memory, hugepages, nodes, hvo, csv, json, plot,
        };
        machine.AddTo(command);
        command.SetAction(p =>
        {
            ArchEntry[] chosenArchs = [.. List(p.GetValue(archs)!, "--archs").Select(n => Options.FindArch(n, "--archs"))];
            HvoPolicy[] chosenPolicies = p.GetValue(policies) is { } pl ? [.. List(pl, "--policies").Select(n => Options.FindPolicy(n, "--policies"))] : [HvoPolicy.Newest];
            string[] forms = p.GetValue(hugepages) is { Length: > 0 } given ? [.. given.SelectMany(g => g.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))] : [string.Empty];
            int nodeCount = p.GetValue(nodes);
            bool? hvoOn = ShapeOptions.ParseHvo(p.GetValue(hvo));
            string memoryText = p.GetValue(memory)!;
            ulong[] sizes = MemorySizes(memoryText);
            bool toCsv = p.GetResult(csv) is not null, toJson = p.GetResult(json) is not null;
            string? csvPath = p.GetValue(csv), jsonPath = p.GetValue(json);
            if (toCsv && toJson && OutputFile.IsStandardOutput(csvPath) && OutputFile.IsStandardOutput(jsonPath))
            {
                throw new UsageException("--csv: standard output already has --json's document; give one of them a FILE");
            }

            OutputFile.Validate(csvPath, "--csv");
            OutputFile.Validate(jsonPath, "--json");
            string? plotPath = p.GetValue(plot);
            if (plotPath is not null)
            {
                PlotFile.Validate(plotPath);
            }

            ScenarioOptions machineOptions = machine.Apply(p, new ScenarioOptions());
            var points = new List<(SweepPoint Point, ArchEntry Arch, SimulateScript Script, ScenarioOptions Options)>();
            foreach (ArchEntry arch in chosenArchs)
            {
                foreach (HvoPolicy policy in chosenPolicies)
                {
                    ScenarioOptions options = machineOptions with { Policy = policy };
                    MachineOptions.Check(options, arch.Info, $"--policies ({arch.Name})");
                    foreach (ulong size in sizes)
                    {
                        string label = CmdLine.FormatSize(size);
                        ulong bytes = ShapeOptions.ParseMemory(label, arch.Info, nodeCount, $"--memory ({arch.Name})");
                        foreach (string form in forms)
                        {
                            var pages = ShapeOptions.ParseHugepages(form, arch.Info, bytes);
                            string shown = form.Length > 0 ? form : $"{CmdLine.FormatSize(pages[0].Size)}:50%";
                            points.Add((new SweepPoint(arch.Name, policy.Name, bytes, shown), arch, new SimulateScript(bytes, nodeCount, hvoOn, pages, null), options));
                        }
                    }
                }
            }

            if (points.Count > MaxPoints)
            {
                throw new UsageException($"--memory: the grid has {points.Count} points, more than a sweep runs ({MaxPoints}); narrow the lists or the range");
            }

            var clock = Stopwatch.StartNew();
            int done = 0;
            RunResult[] runs = ParallelRuns.RunUnwrapped(
                [.. points.Select(x => (Func<RunResult>)(() => x.Script.Run(x.Arch, x.Options)))],
                (i, r) =>
                {
                    done++;
                    SweepPoint pt = points[i].Point;
                    error.WriteLine($"hvo sweep: [{done}/{points.Count}] {pt.Arch} {pt.Policy} {CmdLine.FormatSize(pt.MemoryBytes)} {pt.Hugepages}: saved {Units.Size(r.Report.Hvo.NetBytesSaved)}, {Units.Count(r.Report.Hvo.PteTablesAllocated)} PTE tables ({clock.Elapsed.TotalSeconds:0.0} s)");
                });
            SweepResult[] results = [.. points.Select((x, i) => new SweepResult(x.Point, Options.Complete(runs[i].Report, x.Arch.Info, violations: 0, json: true) with { BreakBeforeMakeFindings = null }))];

            if (toCsv)
            {
                OutputFile.Write(csvPath, output, "--csv", o => ReportCsv.Write(o, [.. results.Select(r => r.Report)], [("hugepages", [.. results.Select(r => r.Point.Hugepages)])]));
            }

            if (toJson)
            {
                OutputFile.Write(jsonPath, output, "--json", o => o.WriteLine(JsonSerializer.Serialize(results, SweepJsonContext.Default.SweepResultArray)));
            }

            if (!(toCsv && OutputFile.IsStandardOutput(csvPath)) && !(toJson && OutputFile.IsStandardOutput(jsonPath)))
            {
                WriteTable(output, results);
            }

            if (plotPath is not null)
            {
                var series = results
                    .GroupBy(r => $"{r.Point.Arch} {r.Point.Policy} {r.Point.Hugepages}")
                    .Select(g => new SweepSeries(g.Key, [.. g.Select(r => (r.Point.MemoryBytes, (double)r.Report.Hvo.NetBytesSaved, (double)r.Report.Hvo.PteTableBytes(r.Report.PageSize)))]))
                    .ToList();
                PlotFile.SaveSweep(plotPath, $"hvo sweep: {points.Count} machines", series);
                error.WriteLine($"hvo: wrote {plotPath} ({series.Count} curves)");
            }

            return 0;
        });
        return command;
    }

    /// <summary><c>A,B,C</c>, or <c>FROM..TO</c>: FROM, then doubling while not past TO (TO itself is the last when a power-of-two multiple of FROM).</summary>
    internal static ulong[] MemorySizes(string text)
    {
        int range = text.IndexOf("..", StringComparison.Ordinal);
        if (range < 0)
        {
            return [.. List(text, "--memory").Select(Size)];
        }

        ulong from = Size(text[..range]), to = Size(text[(range + 2)..]);
        if (from == 0 || to < from)
        {
            throw new UsageException($"--memory: '{text}' is not a range: FROM..TO with 0 < FROM <= TO, e.g. 64G..64T");
        }

        var sizes = new List<ulong>();
        for (ulong m = from; m <= to && m >= from; m <<= 1)
        {
            sizes.Add(m);
            if (m > ulong.MaxValue / 2)
            {
                break;
            }
        }

        return [.. sizes];
    }

    private static ulong Size(string text) => Sizes.TryParse(text, out ulong bytes, out string error)
        ? bytes
        : throw new UsageException($"--memory: {error}; use a list of sizes (64G,1T) or a range (64G..64T) of {Sizes.Forms}");

    private static string[] List(string text, string option)
    {
        string[] items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return items.Length > 0 ? items : throw new UsageException($"{option}: give at least one, comma-separated");
    }

    private static void WriteTable(TextWriter o, IReadOnlyList<SweepResult> results)
    {
        o.WriteLine($"hvo sweep: {results.Count} machines");
        o.WriteLine("| arch | policy | memory | hugepages | huge pages | memory saved (net) | PTE tables | TLB flushes | BBM violations |");
        o.WriteLine("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (SweepResult r in results)
        {
            HvoReport h = r.Report.Hvo;
            string pages = string.Join(" + ", r.Report.Hstates.Where(x => x.NrHugepages > 0).Select(x => $"{Units.Count((long)x.NrHugepages)} x {CmdLine.FormatSize(x.PageSize)}"));
            o.WriteLine($"| {r.Point.Arch} | {r.Point.Policy} | {CmdLine.FormatSize(r.Point.MemoryBytes)} | {r.Point.Hugepages} | {(pages.Length > 0 ? pages : "0")} | {Units.Size(h.NetBytesSaved)} | {Units.Count(h.PteTablesAllocated)} ({Units.Kb((ulong)h.PteTableBytes(r.Report.PageSize) / 1024)}) | {Units.Count(h.TlbFlushes)} | {(h.BbmChecked ? Units.Count(h.BbmViolations) : "not required")} |");
        }
    }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(SweepResult[]))]
internal sealed partial class SweepJsonContext : JsonSerializerContext;
