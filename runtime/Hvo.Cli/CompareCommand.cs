using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.Cli.Plots;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Spectre.Console;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo compare</c>: one scenario under several policies and architectures, each on a fresh
/// machine, with what HVO saved and cost printed side by side.
/// </summary>
internal static class CompareCommand
{
    public const string Example =
        "Example:\n" +
        "  hvo compare                                hvo simulate's default scenario under every policy\n" +
        "  hvo compare policy-compare --policies v5.14,v6.7 --archs x86_64,arm64-4k\n" +
        "  hvo compare my.hvo --json\n" +
        "  hvo compare grow-shrink --policies v5.14,v6.7 --plot compare.svg   memory saved and PTE-table cost per policy, and each vmemmap";

    public static Command Build(TextReader input, TextWriter output, TextWriter error, Func<TextWriter, bool> isTerminal)
    {
        var script = new Argument<string?>("SCRIPT") { Description = "A script file, - for standard input, or an example's name; default: hvo simulate's default scenario.", Arity = ArgumentArity.ZeroOrOne };
        var policies = new Option<string>("--policies") { Description = $"Comma-separated policies, any release {KernelVersion.First}..{KernelVersion.Last} or a strategy (default: those of {string.Join(",", HvoPolicy.Compared.Select(p => p.Name))} the machine can run: the kernel versions', and an arm64-* one where --entry-writer and --cpu give it its writer)." };
        var machine = new MachineOptions();
        var archs = new Option<string>("--archs") { Description = "Comma-separated architectures (default: x86_64).", DefaultValueFactory = _ => "x86_64" };
        var json = new Option<bool>("--json") { Description = "Print a JSON array of the per-run reports instead of the table." };
        var plot = new Option<string?>("--plot") { Description = "Write a picture (FILE.svg or FILE.png): memory saved and PTE-table cost against the number of huge pages after each write of the script, one curve per run, and each run's vmemmap PMDs, split or still huge.", HelpName = "FILE" };
        var command = new Command("compare",
            "Run one scenario under several policies and/or architectures and print memory saved, page-table cost, PMDs split, " +
            "TLB flushes and failures side by side. The scripts' own output is not printed.\n\n" + Example)
        {
            script, policies, archs, json, plot,
        };
        machine.AddTo(command);
        command.SetAction(p =>
        {
            HvoPolicy[]? chosenPolicies = p.GetValue(policies) is { } pl ? [.. SplitList(pl, "--policies").Select(n => Options.FindPolicy(n, "--policies"))] : null;
            ScenarioOptions machineOptions = machine.Apply(p, new ScenarioOptions { EchoCommands = false });
            ArchEntry[] chosenArchs = [.. SplitList(p.GetValue(archs)!, "--archs").Select(n => Options.FindArch(n, "--archs"))];
            string? name = p.GetValue(script);
            Script? given = name is null ? null : ScriptSource.Load(name, input);
            string? plotPath = p.GetValue(plot);
            if (plotPath is not null)
            {
                PlotFile.Validate(plotPath);
            }

            RunReporter reporter = RunReporter.ForScript(map: plotPath is not null);
            var runs = new List<RunResult>();
            foreach (ArchEntry arch in chosenArchs)
            {
                Script parsed = given ?? SimulateScript.Default(arch.Info).Build();
                MachineOptions.CheckMachine(machineOptions with { Policy = HvoPolicy.V6_7 }, arch.Info); // a policy that needs nothing of the machine
                foreach (HvoPolicy policy in chosenPolicies ?? [.. HvoPolicy.Compared.Where(x => (machineOptions with { Policy = x }).Refusal(arch.Info) is null)])
                {
                    ScenarioOptions options = machineOptions with { Policy = policy };
                    MachineOptions.Check(options, arch.Info, $"--policies ({arch.Name})");
                    runs.Add(arch.Accept(new ScenarioRunner<RunResult>(parsed, options, TextWriter.Null, reporter)));
                }
            }

            SimulationReport[] reports = [.. runs.Select(r => r.Report)];
            if (p.GetValue(json))
            {
                output.WriteLine(ReportJson.Render(reports));
            }
            else
            {
                output.WriteLine($"hvo compare: {given?.File ?? "default"} ({reports.Length} runs)");
                WriteTable(output, isTerminal(output), reports);
            }

            if (plotPath is not null)
            {
                string Label(RunResult r) => $"{r.Report.Arch} {r.Report.Policy}";
                PlotFile.Save(plotPath, $"hvo compare: {given?.File ?? "default"}", [.. runs.Select(r => new GrowthSeries(Label(r), r.Trace))], [.. runs.Select(r => new VmemmapPicture(Label(r), r.Map!))]);
                error.WriteLine($"hvo: wrote {plotPath} ({reports.Length} runs)");
            }

            return 0;
        });
        return command;
    }

    /// <summary>
    /// The runs side by side, a column each, rendered with Spectre.Console: rounded borders on a
    /// terminal; a Markdown table with no ANSI codes when the output is redirected.
    /// </summary>
    public static void WriteTable(TextWriter output, bool terminal, IReadOnlyList<SimulationReport> reports)
    {
        var plain = new StringWriter(CultureInfo.InvariantCulture);
        IAnsiConsole console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(terminal ? output : plain),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!terminal)
        {
            console.Profile.Width = 400;
        }

        var table = new Table { Border = terminal ? TableBorder.Rounded : TableBorder.Markdown };
        table.AddColumn(new TableColumn(string.Empty));
        foreach (SimulationReport r in reports)
        {
            table.AddColumn(new TableColumn(Markup.Escape($"{r.Arch} {r.Policy}")).RightAligned());
        }

        foreach ((string label, Func<SimulationReport, string> value) in Rows)
        {
            table.AddRow([Markup.Escape(label), .. reports.Select(r => Markup.Escape(value(r)))]);
        }

        console.Write(table);
        if (!terminal)
        {
            // Spectre pads every line to the table's width and frames a Markdown table with blank lines.
            string[] lines = plain.ToString().ReplaceLineEndings("\n").Split('\n').Select(l => l.TrimEnd()).Where(l => l.Length > 0).ToArray();
            foreach (string line in lines)
            {
                output.WriteLine(line);
            }
        }
    }

    private static readonly (string Label, Func<SimulationReport, string> Value)[] Rows =
    [
        ("behaves as (milestone)", r => HvoPolicy.Find(r.Policy)?.Version is { } v ? KernelMilestone.Latest(v).Version.ToString() : "proposal"),
        ("memory saved (net)", r => Mib(r.Hvo.NetBytesSaved)),
        ("vmemmap pages freed", r => N(r.Hvo.VmemmapPagesFreed)),
        ("vmemmap pages restored", r => N(r.Hvo.VmemmapPagesRestored)),
        ("PTE tables (page-table cost)", r => $"{N(r.Hvo.PteTablesAllocated)} ({Kb((ulong)r.Hvo.PteTablesAllocated * r.PageSize / 1024)})"),
        ("PMDs split", r => N(r.Hvo.PmdsSplit)),
        ("TLB flushes", r => N(r.Hvo.TlbFlushes)),
        ("shared tail pages (v7.1)", r => N(r.Hvo.SharedTailPages)),
        ("RCU grace periods (v6.10+)", r => N(r.Hvo.GracePeriods)),
        ("struct pages initialized at boot", r => N((long)r.StructPagesInitializedAtBoot)),
        ("optimize failures", r => N(r.Hvo.OptimizeFailures)),
        ("restore failures", r => N(r.Hvo.RestoreFailures)),
        ("BBM violations (arm64 rule)", r => r.Hvo.BbmChecked ? N(r.Hvo.BbmViolations) : "not required"),
        ("HugePages_Total / Surp", r => $"{N((long)r.MemInfo.HugePagesTotal)} / {N((long)r.MemInfo.HugePagesSurp)}"),
        ("MemTotal", r => Kb(r.MemInfo.MemTotalKb)),
        ("MemFree", r => Kb(r.MemInfo.MemFreeKb)),
        ("shell errors", r => N(r.ShellErrors)),
    ];

    private static string N(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    private static string Kb(ulong kb) => kb.ToString("N0", CultureInfo.InvariantCulture) + " kB";

    private static string Mib(long bytes) => Math.Abs(bytes) < 1048576
        ? (bytes / 1024).ToString("N0", CultureInfo.InvariantCulture) + " kB"
        : (bytes / 1048576.0).ToString("N1", CultureInfo.InvariantCulture) + " MiB";

    private static IEnumerable<string> SplitList(string text, string option)
    {
        string[] items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (items.Length == 0)
        {
            throw new UsageException($"{option}: give at least one name, comma-separated");
        }

        return items;
    }
}
