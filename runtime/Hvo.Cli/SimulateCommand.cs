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
        "  hvo simulate --policy v5.14 --json                  the seed's policy, one JSON object\n" +
        "  hvo simulate --arch arm64-4k --memory 256G --hugepages 2M:4096,1G:64 --nodes 2\n" +
        "  hvo simulate --policy v5.14 --batch                 v5.14 with v6.7's batched flushes: compare 'HVO TLB flushes'\n" +
        "  hvo simulate --batch off                            v6.7 page by page (hugetlb_vmemmap_optimize per page)\n" +
        "  hvo simulate --fail-alloc probability=10,times=-1,min-order=0,site=pte-table --seed 7\n" +
        "                                                      splits fail 10% of the time; the same seed replays the run\n" +
        "  hvo simulate --memory 8G --plot hvo.svg             curves over 64 writes and the vmemmap map, as SVG (or .png)";

    public static Command Build(TextWriter output, TextWriter error)
    {
        Option<string> arch = Options.Arch();
        var memory = new Option<string>("--memory") { Description = "Memory size, e.g. 64G.", DefaultValueFactory = _ => CmdLine.FormatSize(MachineConfig.DefaultMemoryBytes) };
        var nodes = new Option<int>("--nodes") { Description = "NUMA nodes (equal contiguous ranges).", DefaultValueFactory = _ => 1, CustomParser = ParseNodes };
        var ramBase = new Option<string?>("--ram-base") { Description = "Where RAM starts (a physical address, e.g. 0x80000000; a multiple of the memory section); default: the spec's ramBase (RISC-V 0x80000000, else 0). The boot line says mem=SIZE@START.", HelpName = "ADDRESS" };
        var hugepages = new Option<string?>("--hugepages") { Description = "SIZE:COUNT[,SIZE:COUNT...]; default: half of memory as pages of the default huge page size (the default hstate's, as /proc/sys/vm/nr_hugepages)." };
        var hvo = new Option<string>("--hvo") { Description = "on|off: hugetlb_free_vmemmap.", DefaultValueFactory = _ => "on" };
        Option<string> policy = Options.Policy();
        var batch = new Option<string?>("--batch")
        {
            Description = "Batch each write's pages as v6.7's hugetlb_vmemmap_optimize_folios does (split them all, one flush_tlb_all, remap them all, one flush_tlb_all); 'off' optimizes page by page (hugetlb_vmemmap_optimize, a range flush per split and per page) even under v6.7. Default: the policy's own (v6.7 and arm64-bbml2 batch, the others do not). Refused for arm64-bbm-fault and arm64-bbm-af, which break and flush every entry they change.",
            Arity = ArgumentArity.ZeroOrOne,
            HelpName = "on|off",
        };
        var failAlloc = new Option<string?>("--fail-alloc") { Description = $"fail_page_alloc knobs, key=value[,...]: {FaultSpec.Keys}; sites: {FaultSpec.SiteList}. ignore-gfp-wait and ignore-gfp-highmem start at N; the other knobs keep the kernel's defaults (times=1, min-order=1).", HelpName = "SPEC" };
        var seed = new Option<ulong>("--seed") { Description = "Seed of fail_page_alloc's draws: the same seed replays the same failures (default 0).", HelpName = "N" };
        var plot = new Option<string?>("--plot") { Description = $"Write a picture (FILE.svg or FILE.png): memory saved and PTE-table cost against the pool size, grown in {PlotWrites} writes of nr_hugepages, and the vmemmap's PMDs, split or still huge.", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object." };
        var machine = new MachineOptions();
        var command = new Command("simulate", "Boot a simulated machine, grow the HugeTLB pool with HVO and report memory and HVO counters.\n\n" + Examples)
        {
            arch, memory, nodes, ramBase, hugepages, hvo, policy, batch, failAlloc, seed, plot, json,
        };
        machine.AddTo(command);
        command.SetAction(p =>
        {
            ArchEntry entry = Options.FindArch(p.GetValue(arch)!);
            string memoryText = p.GetValue(memory)!;
            if (!Sizes.TryParse(memoryText, out ulong memoryBytes, out string sizeError) || memoryBytes == 0)
            {
                throw new UsageException($"--memory: {(memoryBytes == 0 && sizeError.Length == 0 ? $"'{memoryText}' is no memory" : sizeError)}; use {Sizes.Forms}");
            }

            // The boot line would round mem= down to pages; the report names the memory, so simulate takes only exact sizes.
            if (memoryBytes % entry.Info.PageSize != 0)
            {
                throw new UsageException($"--memory: {memoryText} is not a whole number of {CmdLine.FormatSize(entry.Info.PageSize)} pages");
            }

            ulong? start = null;
            if (p.GetValue(ramBase) is { } ramBaseText)
            {
                if (!Sizes.TryParse(ramBaseText, out ulong address, out string baseError))
                {
                    throw new UsageException($"--ram-base: {(baseError.Length == 0 ? $"'{ramBaseText}' is no address" : baseError)}; use {Sizes.Forms}");
                }

                if (new MachineConfig { RamBase = address }.RamBaseProblem(entry.Info) is { } where)
                {
                    throw new UsageException($"--ram-base: {ramBaseText}: {where}");
                }

                start = address;
            }

            int nodeCount = p.GetValue(nodes);
            if (MachineSize.Check(entry.Info, memoryBytes, nodeCount, ramBase: start) is { } why)
            {
                throw new UsageException($"--memory: {memoryText} {why}");
            }

            string hvoText = p.GetValue(hvo)!;
            bool hvoOn = hvoText switch
            {
                "on" => true,
                "off" => false,
                _ => throw new UsageException($"--hvo: '{hvoText}' is not on or off"),
            };
            HvoPolicy chosen = Options.FindPolicy(p.GetValue(policy)!);
            if (p.GetResult(batch) is not null)
            {
                chosen = WithBatching(chosen, p.GetValue(batch));
            }

            FaultSpec? faults = p.GetValue(failAlloc) is { } spec ? FaultSpec.Parse(spec) : null;
            string? plotPath = p.GetValue(plot);
            if (plotPath is not null)
            {
                PlotFile.Validate(plotPath);
            }

            var simulation = new SimulateScript(memoryBytes, nodeCount, hvoOn, ParseHugepages(p.GetValue(hugepages), entry.Info, memoryBytes), faults, plotPath is null ? 1 : PlotWrites) { RamBase = start };
            ulong total = simulation.TotalPages;

            using var cts = new CancellationTokenSource();
            using IDisposable ctrlC = LiveProgress.HookCtrlC(output, error, cts);
            ScenarioOptions options = machine.Apply(p, new ScenarioOptions { Policy = chosen, FaultSeed = p.GetValue(seed), Signal = cts.Token });
            MachineOptions.Check(options, entry.Info);
            RunResult result;
            try
            {
                result = LiveProgress.Run(
                    progress => simulation.Run(entry, options with { Progress = progress }, map: plotPath is not null),
                    total,
                    $"growing the HugeTLB pool to {total} pages",
                    LiveProgress.IsInteractive(output) ? LiveProgress.ErrorConsole() : null,
                    LiveProgress.Delay);
            }
            catch (ScriptError e)
            {
                // Only the boot line can fail once a script is built: the machine could not be booted.
                throw new UsageException($"--memory: {memoryText}: {e.Reason}");
            }

            SimulationReport report = result.Report;
            if (p.GetValue(json))
            {
                output.WriteLine(ReportJson.Render(report));
            }
            else if (TerminalReport.IsTerminal(output))
            {
                TerminalReport.Write(TerminalReport.OutputConsole(), output, report);
            }
            else
            {
                output.Write(ReportText.Render(report));
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
                    $"{report.Arch}, {CmdLine.FormatSize(memoryBytes)}",
                    [new GrowthSeries(label, result.Trace)],
                    [new VmemmapPicture(label, result.Map!)]);

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

        if (policy.RequiredWriter is EntryWriterKind.BreakFlushMake or EntryWriterKind.ClearAccessFlag)
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

    private static int ParseNodes(System.CommandLine.Parsing.ArgumentResult result)
    {
        string text = result.Tokens.Count == 0 ? string.Empty : result.Tokens[0].Value;
        if (int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && n >= 1 && n <= MachineSize.MaxNodes)
        {
            return n;
        }

        result.AddError($"--nodes: '{text}' is not a node count; use a whole number from 1 to {MachineSize.MaxNodes}");
        return 1;
    }

    internal static (ulong Size, ulong Count)[] ParseHugepages(string? text, ArchInfo a, ulong memory)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return SimulateScript.DefaultPages(a, memory);
        }

        return text.Split(',').Select(part =>
        {
            string[] kv = part.Split(':');
            if (kv.Length != 2)
            {
                throw new UsageException($"--hugepages: '{part}' is not SIZE:COUNT (e.g. 2M:1024); SIZE is {Sizes.Forms}");
            }

            if (!Sizes.TryParse(kv[0], out ulong size, out string sizeError))
            {
                throw new UsageException($"--hugepages: in '{part}' the SIZE {sizeError}; SIZE is {Sizes.Forms}");
            }

            if (!ulong.TryParse(kv[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong count))
            {
                throw new UsageException($"--hugepages: in '{part}' the COUNT '{kv[1]}' is not a number of pages; use a whole number from 0 to {ulong.MaxValue} (more than fit is allowed: the pool grows to what fits)");
            }

            if (!a.HugePageSizes.Any(h => h.Size == size))
            {
                throw new UsageException($"--hugepages: {CmdLine.FormatSize(size)} is not a huge page size of {a.Name}; use one of {string.Join(", ", a.HugePageSizes.Select(h => CmdLine.FormatSize(h.Size)))}");
            }

            return (size, count);
        }).ToArray();
    }
}
