using System.CommandLine;
using System.IO;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo run SCRIPT</c>: a scenario in the kernel's shell vocabulary (a boot line, echo into and
/// cat of kernel files), its transcript, then the report of the machine it left.
/// </summary>
internal static class RunCommand
{
    public const string Example =
        "Example:\n" +
        "  hvo run grow-shrink                        an example shipped with hvo (hvo run --list)\n" +
        "  hvo run --arch arm64-4k --policy v5.18 my.hvo --json\n" +
        "  printf 'boot mem=4G\\necho 512 > /proc/sys/vm/nr_hugepages\\ncat /proc/meminfo\\n' | hvo run -";

    public static Command Build(TextReader input, TextWriter output)
    {
        var script = new Argument<string?>("SCRIPT") { Description = "A script file, - for standard input, or the name of an example.", Arity = ArgumentArity.ZeroOrOne };
        var arch = Options.Arch();
        var policy = Options.Policy();
        var json = new Option<bool>("--json") { Description = "After the transcript, print the report as one JSON object." };
        var list = new Option<bool>("--list") { Description = "List the examples shipped with hvo." };
        var quiet = new Option<bool>("--no-echo") { Description = "Print only what the commands print, not the commands, comments and blank lines." };
        var machine = new MachineOptions();
        var command = new Command("run",
            "Run a scenario written as a user types it at a root shell: 'boot' with a kernel command line (mem=, numa=fake=N, " +
            "hugepagesz=, hugepages=, default_hugepagesz=, hugetlb_free_vmemmap=), then 'echo VALUE > FILE' and 'cat FILE' on " +
            "/proc/meminfo, /proc/sys/vm/nr_hugepages, /sys/kernel/mm/hugepages/..., /sys/devices/system/node/nodeK/..., " +
            "/proc/sys/vm/hugetlb_optimize_vmemmap, .../demote, /sys/kernel/debug/kernel_page_tables and " +
            "/sys/kernel/debug/fail_page_alloc/* and /proc/self/fail-nth, and '#' comments. A refused write prints the shell's error and the script goes on; " +
            "a syntax error prints file:line:column and nothing runs.\n\n" + Example)
        {
            script, arch, policy, json, list, quiet,
        };
        machine.AddTo(command);
        command.SetAction(p =>
        {
            if (p.GetValue(list))
            {
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
            ScenarioOptions options = machine.Apply(p, new ScenarioOptions { Policy = chosen, EchoCommands = !p.GetValue(quiet) });
            MachineOptions.Check(options, entry.Info);
            SimulationReport report = entry.Accept(new ScenarioRunner<RunResult>(parsed, options, output, RunReporter.ForScript())).Report;
            output.WriteLine();
            if (p.GetValue(json))
            {
                output.WriteLine(ReportJson.Render(report));
            }
            else
            {
                output.Write(ReportText.Render(report));
            }

            return 0;
        });
        return command;
    }
}
