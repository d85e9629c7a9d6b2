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
        "  hvo compare                                hvo simulate's default scenario under every policy of the architecture\n" +
        "  hvo compare --memory 1536G --hugepages 1G:1200 --policies v5.14,v6.7 --json\n" +
        "  hvo compare policy-compare --policies v5.14,v6.7 --archs x86_64,arm64-4k\n" +
        "  hvo compare my.hvo --csv runs.csv\n" +
        "  hvo compare grow-shrink --policies v5.14,v6.7 --plot compare.svg   memory saved and PTE-table cost per policy at each write, and each vmemmap";

    public static Command Build(TextReader input, TextWriter output, TextWriter error, Func<TextWriter, bool> isTerminal)
    {
        var script = new Argument<string?>("SCRIPT") { Description = "A script file, - for standard input, or an example's name; default: hvo simulate's scenario of the machine options (--memory, --hugepages, --nodes, --hvo).", Arity = ArgumentArity.ZeroOrOne };
        var policies = new Option<string>("--policies") { Description = $"Comma-separated policies, any release {KernelVersion.First}..{KernelVersion.Last}, a stable release ({string.Join(", ", KernelVersion.Stable)}) or a strategy, any of them with {HvoPolicy.CollapseSuffix} (default: those of {string.Join(",", HvoPolicy.Compared.Select(p => p.Name))} that apply to the architecture: the kernel versions', and the strategies written for its replacement rule (arm64-* on arm64, s390-safe on s390x), each with its own entry writer unless --entry-writer fixes one)." };
        var shape = new ShapeOptions();
        var machine = new MachineOptions();
        var archs = new Option<string>("--archs") { Description = "Comma-separated architectures (default: x86_64).", DefaultValueFactory = _ => "x86_64" };
        var json = new Option<bool>("--json") { Description = "Print a JSON array of the per-run reports instead of the table." };
        var csv = new Option<string?>("--csv") { Description = "Write the runs as CSV, one line each, to FILE (or standard output with no FILE or -).", Arity = ArgumentArity.ZeroOrOne, HelpName = "FILE" };
        var plot = new Option<string?>("--plot") { Description = "Write a picture (FILE.svg or FILE.png): memory saved and PTE-table cost at each write of the script (x: the write's number), one curve per run with its own marker and dash, and each run's vmemmap PMDs, split or still huge.", HelpName = "FILE" };
        Option<int?> violations = Options.Violations();
        var command = new Command("compare",
            "Run one scenario under several policies and/or architectures and print memory saved, page-table cost, PMDs split, " +
            "TLB flushes, failures and every pool side by side. The scripts' own output is not printed. Runs go in parallel on the host's cores.\n\n" + Example)
        {
            script, policies, archs, json, csv, plot, violations,
        };
        shape.AddTo(command);
        machine.AddTo(command);
        command.SetAction(p =>
        {
            HvoPolicy[]? chosenPolicies = p.GetValue(policies) is { } pl ? [.. SplitList(pl, "--policies").Select(n => Options.FindPolicy(n, "--policies"))] : null;
            ScenarioOptions machineOptions = machine.Apply(p, new ScenarioOptions { EchoCommands = false, FaultSeed = p.GetValue(shape.Seed) });
            ArchEntry[] chosenArchs = [.. SplitList(p.GetValue(archs)!, "--archs").Select(n => Options.FindArch(n, "--archs"))];
            string? name = p.GetValue(script);
            Script? given = name is null ? null : ScriptSource.Load(name, input);
            if (given is not null && shape.MachineGiven(p).FirstOrDefault() is { } option)
            {
                throw new UsageException($"{option}: the script's boot line describes its machine (mem=, numa=fake=, hugepagesz= and hugepages=, hugetlb_free_vmemmap=); {option} is for the scenario compare runs without a script");
            }

            FaultSpec? faults = shape.Faults(p);
            bool toCsv = p.GetResult(csv) is not null;
            string? csvPath = p.GetValue(csv);
            if (p.GetValue(json) && toCsv && OutputFile.IsStandardOutput(csvPath))
            {
                throw new UsageException("--csv: standard output already has --json's document; give --csv a FILE");
            }

            OutputFile.Validate(csvPath, "--csv");
            string? plotPath = p.GetValue(plot);
            if (plotPath is not null)
            {
                PlotFile.Validate(plotPath);
            }

            RunReporter reporter = RunReporter.ForScript(map: plotPath is not null);
            var jobs = new List<Func<RunResult>>();
            var runArchs = new List<ArchInfo>();
            foreach (ArchEntry arch in chosenArchs)
            {
                Script parsed = given is null ? shape.Script(p, arch.Info).Build() : faults is null ? given : faults.Prepend(given);
                MachineOptions.CheckMachine(machineOptions with { Policy = HvoPolicy.V6_7 }, arch.Info); // a policy that needs nothing of the machine
                foreach (HvoPolicy policy in chosenPolicies ?? [.. ApplyingPolicies(arch.Info, machineOptions)])
                {
                    ScenarioOptions options = StrategyMachine(machineOptions, policy, arch.Info) with { Policy = policy, FaultSites = faults?.Sites };
                    MachineOptions.Check(options, arch.Info, $"--policies ({arch.Name})");
                    ArchEntry runOn = arch;
                    jobs.Add(() => runOn.Accept(new ScenarioRunner<RunResult>(parsed, options, TextWriter.Null, reporter)));
                    runArchs.Add(arch.Info);
                }
            }

            RunResult[] runs = ParallelRuns.RunUnwrapped(jobs);
            bool asJson = p.GetValue(json);
            SimulationReport[] reports = [.. runs.Select((r, i) => Options.Complete(r.Report, runArchs[i], p.GetValue(violations), asJson))];
            string title = given?.File ?? "default";
            if (toCsv)
            {
                OutputFile.Write(csvPath, output, "--csv", o => ReportCsv.Write(o, reports));
            }

            if (asJson)
            {
                output.WriteLine(ReportJson.Render(reports));
            }
            else if (!toCsv || !OutputFile.IsStandardOutput(csvPath))
            {
                output.WriteLine($"hvo compare: {title} ({reports.Length} runs)");
                WriteTable(output, isTerminal(output), reports);
                WriteBreakBeforeMake(output, reports, p.GetValue(violations));
            }

            if (plotPath is not null)
            {
                string Label(RunResult r) => $"{r.Report.Arch} {r.Report.Policy}";
                PlotFile.Save(plotPath, $"hvo compare: {title}", [.. runs.Select(r => new GrowthSeries(Label(r), r.Trace))], [.. runs.Select(r => new VmemmapPicture(Label(r), r.Map!))], PlotAxis.Step);
                error.WriteLine($"hvo: wrote {plotPath} ({reports.Length} runs)");
            }

            return 0;
        });
        return command;
    }

    /// <summary>
    /// Under the table, for each run the checker found changes in: the findings asked for
    /// (<c>--violations</c>), else how to list them; then per architecture the policies that keep the rule.
    /// </summary>
    private static void WriteBreakBeforeMake(TextWriter output, IReadOnlyList<SimulationReport> reports, int? violations)
    {
        foreach (IGrouping<string, SimulationReport> arch in reports.Where(r => r.BreakBeforeMakeViolations > 0).GroupBy(r => r.Arch))
        {
            foreach (SimulationReport r in arch)
            {
                output.Write($"{r.Arch} {r.Policy}: " + ReportText.BreakBeforeMake(r with { BreakBeforeMakeSafePolicies = null }, violations));
            }

            if (arch.First().BreakBeforeMakeSafePolicies is { Count: > 0 } safe)
            {
                output.WriteLine($"safe on {arch.Key}: {string.Join(", ", safe.Select(x => $"--policy {x.Policy} {x.Options}"))}");
            }
        }
    }

    /// <summary>
    /// The policies <c>compare</c> runs by default on <paramref name="arch"/>: the kernel versions of
    /// <see cref="HvoPolicy.Compared"/> the machine can run, and every strategy written for the
    /// architecture's replacement rule (arm64's four on an arm64 spec, s390-safe on s390x), each on a
    /// machine with its own entry writer (<see cref="StrategyMachine"/>) unless <c>--entry-writer</c>
    /// fixed one, so that the strategies of an architecture stand side by side.
    /// </summary>
    public static IEnumerable<HvoPolicy> ApplyingPolicies(ArchInfo arch, ScenarioOptions machine)
    {
        ArgumentNullException.ThrowIfNull(arch);
        ArgumentNullException.ThrowIfNull(machine);
        return HvoPolicy.Compared.Where(x => (x.RequiredWriter is null || x.ForRule == arch.Replacement) &&
            (StrategyMachine(machine, x, arch) with { Policy = x }).Refusal(arch) is null);
    }

    /// <summary>
    /// The machine a run of <paramref name="policy"/> on <paramref name="arch"/> gets: a strategy written
    /// for the architecture's rule has its entry writer (and FEAT_BBM level 2 CPUs for bbml2) when the
    /// command line chose no writer; otherwise the machine as given (and a strategy for another rule is refused as before).
    /// </summary>
    public static ScenarioOptions StrategyMachine(ScenarioOptions machine, HvoPolicy policy, ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(arch);
        return machine.EntryWriter is null && policy.RequiredWriter is { } writer && policy.ForRule == arch.Replacement
            ? machine with { EntryWriter = writer, BbmLevel = writer == EntryWriterKind.Bbml2 ? 2 : machine.BbmLevel }
            : machine;
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

        foreach ((string label, Func<SimulationReport, string> value) in Rows.Concat(OptionalRows(reports)).Concat(PoolRows(reports)).Concat(Totals).Concat(BadPageRows(reports)))
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
        ("behaves as (milestone)", r => HvoPolicy.Find(r.Policy)?.Version is { } v ? BehavesAs(v) : "proposal"),
        ("memory saved (net)", r => Units.Size(r.Hvo.NetBytesSaved)),
        ("vmemmap pages freed", r => Units.Count(r.Hvo.VmemmapPagesFreed)),
        ("vmemmap pages restored", r => Units.Count(r.Hvo.VmemmapPagesRestored)),
        ("PTE tables (page-table cost)", r => $"{Units.Count(r.Hvo.PteTablesAllocated)} ({Units.Kb((ulong)r.Hvo.PteTableBytes(r.PageSize) / 1024)})"),
        ("PMDs split", r => Units.Count(r.Hvo.PmdsSplit)),
        ("TLB flushes", r => Units.Count(r.Hvo.TlbFlushes)),
        ("shared tail pages (v7.1)", r => Units.Count(r.Hvo.SharedTailPages)),
        ("RCU grace periods (v6.10+)", r => Units.Count(r.Hvo.GracePeriods)),
        ("struct pages initialized at boot", r => Units.Count((long)r.StructPagesInitializedAtBoot)),
        ("optimize failures", r => Units.Count(r.Hvo.OptimizeFailures)),
        ("restore failures", r => Units.Count(r.Hvo.RestoreFailures)),
        ("entries invalidated (break, IPTE/IDTE)", r => Units.Count(r.Hvo.EntryInvalidations)),
        ("CPU pauses / IPIs", r => $"{Units.Count(r.Hvo.CpuPauses)} / {Units.Count(r.Hvo.PauseIpis)}"),
        ("paused CPU-steps", r => Units.Count(r.Hvo.PausedCpuSteps)),
        ("rule violations (arm64 BBM, s390 invalidate)", r => r.Hvo.BbmChecked ? Units.Count(r.Hvo.BbmViolations) : "not required"),
    ];

    private static readonly (string Label, Func<SimulationReport, string> Value)[] Totals =
    [
        ("MemTotal", r => Units.Kb(r.MemInfo.MemTotalKb)),
        ("MemFree", r => Units.Kb(r.MemInfo.MemFreeKb)),
        ("shell errors", r => Units.Count(r.ShellErrors)),
    ];

    /// <summary>The milestone a version behaves as; on a stable branch, the point release that backported it: <c>v6.12.114 (v7.1's)</c>.</summary>
    private static string BehavesAs(KernelVersion v)
    {
        KernelMilestone m = KernelMilestone.Latest(v);
        return m.BackportIn(v) is { } b ? $"{b} ({m.Version}'s)" : m.Version.ToString();
    }

    /// <summary>Where some run's free_pages_prepare refused pages (bad_page): how many, the memory lost, the reports.</summary>
    private static IEnumerable<(string Label, Func<SimulationReport, string> Value)> BadPageRows(IReadOnlyList<SimulationReport> reports) =>
        reports.Any(r => r.BadPages is not null)
            ? [
                ("pages lost to bad_page", r => r.BadPages is { } b ? $"{Units.Count(b.Pages)} ({Units.Kb((ulong)b.LostKb)})" : "0"),
                ("bad_page reports", r => Units.Count(r.BadPages?.Reports ?? 0)),
            ]
            : [];

    /// <summary>
    /// Rows only some runs have: collapse-on-free's (a policy <c>VERSION+collapse</c>), and the struct
    /// page scan's TLB misses (<c>--tlb-reach</c>); "-" in the columns of the runs without them.
    /// </summary>
    private static IEnumerable<(string Label, Func<SimulationReport, string> Value)> OptionalRows(IReadOnlyList<SimulationReport> reports)
    {
        if (reports.Any(r => r.Hvo.Collapse is not null))
        {
            yield return ("PTE tables recovered (collapse)", r => r.Hvo.Collapse is { } c ? $"{Units.Count(c.PteTablesRecovered)} ({Units.Kb((ulong)c.PteTablesRecovered * r.PageSize / 1024)})" : "- (never coalesced)");
            yield return ("collapse: bytes copied / flushes", r => r.Hvo.Collapse is { } c ? $"{Units.Size(c.BytesCopied)} / {Units.Count(c.TlbFlushes)}" : "-");
            yield return ("collapse failures (left split)", r => r.Hvo.Collapse is { } c ? Units.Count(c.Failures) : "-");
        }

        if (reports.Any(r => r.TlbReach is not null))
        {
            yield return ("struct page scan: TLB misses", r => r.TlbReach is { } t ? Units.Count(t.TlbMisses) : "-");
            yield return ("TLB misses per GiB of struct pages", r => r.TlbReach is { } t ? Units.Count(t.MissesPerGiB) : "-");
        }
    }

    /// <summary>
    /// A row per huge page size that any run has pages of (or asked for), as sysfs counts them
    /// (HugePages_Total of meminfo is the default size's alone); the default size when none has any.
    /// </summary>
    private static IEnumerable<(string Label, Func<SimulationReport, string> Value)> PoolRows(IReadOnlyList<SimulationReport> reports)
    {
        ulong[] sizes = [.. reports.SelectMany(r => r.Hstates.Where(h => h.NrHugepages > 0 || h.Requested > 0).Select(h => h.PageSize)).Distinct().Order()];
        if (sizes.Length == 0)
        {
            sizes = [.. reports.Select(r => r.MemInfo.HugepagesizeKb * 1024).Distinct().Order()];
        }

        return sizes.Select(size => (
            $"hugepages-{size >> 10}kB total / surplus",
            (Func<SimulationReport, string>)(r => r.Hstates.FirstOrDefault(h => h.PageSize == size) is { } h
                ? $"{Units.Count((long)h.NrHugepages)} / {Units.Count((long)h.Surplus)}"
                : "-")));
    }

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
