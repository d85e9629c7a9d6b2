using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using Hvo.Cli.Plots;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo simulate</c>: boot a machine, grow the HugeTLB pool as <c>echo N &gt; nr_hugepages</c>
/// would, with HVO under the chosen policy, and report /proc/meminfo, the pool and HVO's counters.
/// </summary>
public static class SimulateCommand
{
    /// <summary>Writes of nr_hugepages per pool with --plot: the points of each curve.</summary>
    public const int PlotWrites = 64;

    public const string Examples =
        "Examples:\n" +
        "  hvo simulate                                        x86_64, 64G, half of it as 2M pages, v6.7\n" +
        "  hvo simulate --policy v5.14 --json                  the first kernel with HVO, as one JSON object\n" +
        "  hvo simulate --arch arm64-4k --memory 256G --hugepages 2M:4096,1G:64 --nodes 2\n" +
        "  hvo simulate --memory 1.5T --hugepages 1G:90%        90% of 1.5 TiB as 1 GiB pages\n" +
        "  hvo simulate --arch arm64-4k --memory 8G --violations 5   the first break-before-make findings, and the safe policies\n" +
        "  hvo simulate --policy v5.14 --batch                 v5.14 with v6.7's batched flushes: compare 'HVO TLB flushes'\n" +
        "  hvo simulate --batch off                            v6.7 page by page (hugetlb_vmemmap_optimize per page)\n" +
        "  hvo simulate --fail-alloc probability=10,times=-1,min-order=0,site=pte-table --seed 7\n" +
        "                                                      splits fail 10% of the time; the same seed replays the run\n" +
        "  hvo simulate --memory 8G --plot hvo.svg             curves over 64 writes and the vmemmap map, as SVG (or .png)";

    public static Command Build(TextWriter output, TextWriter error)
    {
        Option<string> arch = Options.Arch();
        var shape = new ShapeOptions();
        Option<string> policy = Options.Policy();
        var batch = new Option<string?>("--batch")
        {
            Description = "Batch each write's pages as v6.7's hugetlb_vmemmap_optimize_folios does (split them all, one flush_tlb_all, remap them all, one flush_tlb_all); 'off' optimizes page by page (hugetlb_vmemmap_optimize, a range flush per split and per page) even under v6.7. Default: the policy's own (v6.7 and arm64-bbml2 batch, the others do not). Refused for arm64-bbm-fault and arm64-bbm-af, which break and flush every entry they change.",
            Arity = ArgumentArity.ZeroOrOne,
            HelpName = "on|off",
        };
        var plot = new Option<string?>("--plot") { Description = $"Write a picture (FILE.svg or FILE.png): memory saved and PTE-table cost against the pool size, grown in {PlotWrites} writes of nr_hugepages, and the vmemmap's PMDs, split or still huge.", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object." };
        Option<int?> violations = Options.Violations();
        var machine = new MachineOptions();
        var command = new Command("simulate", "Boot a simulated machine, grow the HugeTLB pool with HVO and report memory and HVO counters.\n\n" + Examples)
        {
            arch, policy, batch, plot, json, violations,
        };
        shape.AddTo(command);
        machine.AddTo(command);
        command.SetAction(p =>
        {
            ArchEntry entry = Options.FindArch(p.GetValue(arch)!);
            HvoPolicy chosen = Options.FindPolicy(p.GetValue(policy)!);
            if (p.GetResult(batch) is not null)
            {
                chosen = WithBatching(chosen, p.GetValue(batch));
            }

            string? plotPath = p.GetValue(plot);
            if (plotPath is not null)
            {
                PlotFile.Validate(plotPath);
            }

            SimulateScript simulation = shape.Script(p, entry.Info, plotPath is null ? 1 : PlotWrites);
            ulong total = simulation.TotalPages;

            using var cts = new CancellationTokenSource();
            using IDisposable ctrlC = LiveProgress.HookCtrlC(output, error, cts);
            ScenarioOptions options = machine.Apply(p, new ScenarioOptions { Policy = chosen, FaultSeed = p.GetValue(shape.Seed), Signal = cts.Token });
            MachineOptions.Check(options, entry.Info);
            RunResult result;
            try
            {
                result = LiveProgress.Run(
                    probe => simulation.Run(entry, options with { Progress = probe.Allocated, Booted = probe.Watch }, map: plotPath is not null),
                    total,
                    simulation.OptimizablePages(entry.Info, chosen, options.HvoDefaultOn),
                    LiveProgress.IsInteractive(output) ? LiveProgress.ErrorConsole() : null,
                    LiveProgress.Delay);
            }
            catch (ScriptError e)
            {
                // Only the boot line can fail once a script is built: the machine could not be booted.
                throw new UsageException($"--memory: {p.GetValue(shape.Memory)}: {e.Reason}");
            }

            SimulationReport report = Options.Complete(result.Report, entry.Info, p.GetValue(violations), json: p.GetValue(json));
            if (p.GetValue(json))
            {
                output.WriteLine(ReportJson.Render(report));
            }
            else if (TerminalReport.IsTerminal(output))
            {
                TerminalReport.Write(TerminalReport.OutputConsole(), output, report, p.GetValue(violations));
            }
            else
            {
                output.Write(ReportText.Render(report, p.GetValue(violations)));
            }

            if (result.Interrupted)
            {
                error.WriteLine($"hvo: interrupted: the pool grew by {result.PagesAllocated} of {total} pages before Ctrl-C; the report is of what was done");
            }

            if (plotPath is not null)
            {
                string label = $"{report.Arch} {report.Policy}{(report.HvoEnabled ? string.Empty : " (HVO off)")}";
                PlotFile.Save(
                    plotPath,
                    $"{report.Arch}, {CmdLine.FormatSize(simulation.MemoryBytes)}",
                    [new GrowthSeries(label, result.Trace)],
                    [new VmemmapPicture(label, result.Map!)],
                    PlotAxis.PoolSize);

                error.WriteLine($"hvo: wrote {plotPath} ({result.Trace.Count - 1} writes of nr_hugepages sampled)");
            }

            return result.Interrupted ? InterruptedExit : 0;
        });
        return command;
    }

    /// <summary>Exit code after Ctrl-C: 128 + SIGINT, as a shell reports an interrupted command.</summary>
    public const int InterruptedExit = 130;

    /// <summary>--batch: the policy with v6.7's batching forced on or off; its name says so when that differs from the policy's own.</summary>
    internal static HvoPolicy WithBatching(HvoPolicy policy, string? value)
    {
        bool on = value?.ToLowerInvariant() switch
        {
            null or "on" => true,
            "off" => false,
            _ => throw new UsageException($"--batch: '{value}' is not on or off (a bare --batch means on)"),
        };
        if (on == policy.Batched)
        {
            return policy;
        }

        if (policy.RequiredWriter is EntryWriterKind.BreakFlushMake or EntryWriterKind.ClearAccessFlag or EntryWriterKind.Invalidate)
        {
            // These break and flush each live entry before making the new one: there is no
            // split-all / flush / remap-all / flush sequence to batch.
            throw new UsageException($"--batch: {policy.Name} breaks and flushes every entry it changes; v6.7's batching does not apply to it");
        }

        return policy with
        {
            Name = policy.Name + (on ? "-batched" : "-unbatched"),
            Batched = on,
            Description = policy.Description + (on ? "; batched as v6.7 (--batch)" : "; page by page (--batch off)"),
        };
    }

    internal static (ulong Size, ulong Count)[] ParseHugepages(string? text, ArchInfo a, ulong memory) => ShapeOptions.ParseHugepages(text, a, memory);
}
