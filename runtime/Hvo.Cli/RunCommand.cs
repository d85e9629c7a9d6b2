using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using System.Threading;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo run SCRIPT</c>: a scenario in the shell a user types at a root shell (a boot line, then
/// commands on the kernel's files), its transcript, then the report of the machine it left. It exits
/// as a shell does, with the last command's status; the commands that failed untested are listed on
/// standard error.
/// </summary>
internal static class RunCommand
{
    public const string Example =
        "Example:\n" +
        "  hvo run grow-shrink                        an example shipped with hvo (hvo run --list)\n" +
        "  hvo run --arch arm64-4k --policy v5.18 my.hvo --json | jq .hvo\n" +
        "  printf 'boot mem=4G\\nfor n in 256 512; do echo $n > /proc/sys/vm/nr_hugepages; grep HugePages_Total /proc/meminfo; done\\n' | hvo run -";

    public static Command Build(TextReader input, TextWriter output, TextWriter error)
    {
        var script = new Argument<string?>("SCRIPT") { Description = "A script file, - for standard input, or the name of an example.", Arity = ArgumentArity.ZeroOrOne };
        var arch = Options.Arch();
        var policy = Options.Policy();
        var json = new Option<bool>("--json") { Description = "Print one JSON object: the report, the script's exit status, its failed commands, and the transcript as an array of statements (each with its output and status); nothing else goes to standard output." };
        var list = new Option<bool>("--list") { Description = "List the examples shipped with hvo (with --json, as a JSON array)." };
        var quiet = new Option<bool>("--no-echo") { Description = "Print only what the commands print, not the commands, comments and blank lines." };
        Option<int?> violations = Options.Violations();
        var machine = new MachineOptions();
        var command = new Command("run",
            "Run a scenario written as a user types it at a root shell: 'config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y|n' lines (how the kernel was built), " +
            "'boot' with a kernel command line (mem=, numa=fake=N, hugepagesz=, hugepages=, default_hugepagesz=, hugetlb_free_vmemmap=, " +
            "memory_hotplug.memmap_on_memory=, memhp_default_state=), then commands on /proc/meminfo, /proc/sys/vm/*, " +
            "/sys/kernel/mm/hugepages/..., /sys/devices/system/node/nodeK/..., /sys/devices/system/memory/..., /sys/kernel/debug/kernel_page_tables, " +
            "/sys/kernel/debug/fail_page_alloc/* and /proc/self/fail-nth: echo, cat, sysctl, tee, grep, sleep, sync, true, false, set -e/-u/-x, " +
            "dmesg (the kernel log), plug ADDRESS [node=N] (the firmware adds a memory device), " +
            "sudo before any of them; joined with ;, &&, || and |; for loops, variables and globs; '#' comments. " +
            "A refused write prints the shell's error and the script goes on (set -e stops it); the exit status is the last command's. " +
            "Every syntax error prints file:line:column and nothing runs.\n\n" + Example)
        {
            script, arch, policy, json, list, quiet, violations,
        };
        machine.AddTo(command);
        command.SetAction(p =>
        {
            if (p.GetValue(list))
            {
                if (p.GetValue(json))
                {
                    output.WriteLine(System.Text.Json.JsonSerializer.Serialize(Examples.All.Select(e => new ExampleInfo(e.Name, e.Description)).ToArray(), ReportJsonContext.Default.ExampleInfoArray));
                    return 0;
                }

                foreach (Example e in Examples.All)
                {
                    output.WriteLine($"{e.Name,-18} {e.Description}");
                }

                return 0;
            }

            string name = p.GetValue(script) ?? throw new UsageException("run: which script? Give a file, - for standard input, or an example's name (hvo run --list)");
            ArchEntry entry = Options.FindArch(p.GetValue(arch)!);
            HvoPolicy chosen = Options.FindPolicy(p.GetValue(policy)!);
            Script parsed = ScriptSource.Load(name, input);
            bool asJson = p.GetValue(json);
            using var cts = new CancellationTokenSource();
            using IDisposable ctrlC = LiveProgress.HookCtrlC(output, error, cts);
            ScenarioOptions options = machine.Apply(p, new ScenarioOptions { Policy = chosen, EchoCommands = !p.GetValue(quiet), Diagnostics = error, Signal = cts.Token });
            MachineOptions.Check(options, entry.Info);
            RunResult result = entry.Accept(new ScenarioRunner<RunResult>(parsed, options, asJson ? TextWriter.Null : output, RunReporter.ForScript()));
            SimulationReport report = Options.Complete(result.Report, entry.Info, p.GetValue(violations), asJson) with
            {
                ExitStatus = result.ExitStatus,
                FailedCommands = [.. result.Failed.Select(f => new FailedCommandReport(f.Location.ToString(), f.Command, f.Status))],
            };
            if (asJson)
            {
                output.WriteLine(ReportJson.Render(report with
                {
                    Transcript = [.. result.Ran.Select(r => new TranscriptEntry(r.Location.ToString(), r.Command, r.Output, r.Status))],
                }));
            }
            else
            {
                output.WriteLine();
                output.Write(ReportText.Render(report, p.GetValue(violations)));
            }

            WriteSummary(error, result);
            return result.Interrupted ? SimulateCommand.InterruptedExit : result.ExitStatus;
        });
        return command;
    }

    /// <summary>On standard error: the commands that failed untested, and the exit status when it is not 0.</summary>
    private static void WriteSummary(TextWriter error, RunResult result)
    {
        if (result.Interrupted)
        {
            error.WriteLine("hvo run: interrupted (Ctrl-C): the write running then stopped growing the pool, and no command ran after it; the report is of what was done");
        }

        if (result.Failed.Count > 0)
        {
            error.WriteLine(result.Stopped
                ? $"hvo run: set -e stopped the script at the first command that failed:"
                : $"hvo run: {result.Failed.Count} command(s) failed and the script went on (set -e would stop at the first):");
            foreach (FailedCommand f in result.Failed)
            {
                error.WriteLine($"  {f.Location}: {f.Command}  (exit status {f.Status})");
            }
        }

        if (result.ExitStatus != 0)
        {
            error.WriteLine($"hvo run: exit status {result.ExitStatus}, the last command's, as a shell's");
        }
    }
}

/// <summary>An example's name and what it shows (<c>hvo run --list --json</c>).</summary>
internal sealed record ExampleInfo(string Name, string Description);
