using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo host</c>: this machine's kernel, memory and HugeTLB pools (<see cref="HostFacts"/>),
/// mapped to the closest spec and kernel version, and the same pools simulated: what HVO saves here
/// now, and what it would save if it were on (or why it cannot be).
/// </summary>
internal static class HostCommand
{
    public static Command Build(TextWriter output, TextWriter error)
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var root = new Option<string>("--root") { Description = "Read the machine's files under this directory instead of / (for tests).", Hidden = true, DefaultValueFactory = _ => "/" };
        var command = new Command("host",
            "Read this machine (uname, /proc/meminfo, /proc/cmdline, /proc/sys/vm, /sys/kernel/mm/hugepages, /sys/devices/system/node, the kernel's config), " +
            "map it to the closest spec and kernel version, simulate its HugeTLB pools and report what HVO saves here now and would save if it were on, or why it cannot.\n\n" +
            "Example:\n  hvo host\n  hvo host --json | jq .ifEnabled.hvo.netBytesSaved")
        {
            json, root,
        };
        command.SetAction(p =>
        {
            string dir = p.GetValue(root)!;
            if (!Directory.Exists(dir))
            {
                throw new UsageException($"--root: '{dir}' is not a directory");
            }

            HostReport report = Analyse(HostFacts.Read(dir));
            if (p.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(report, HostJsonContext.Default.HostReport));
            }
            else
            {
                WriteText(output, report);
            }

            return 0;
        });
        return command;
    }

    /// <summary>The host's facts, its spec and policy, and the simulations of its pools.</summary>
    internal static HostReport Analyse(HostFacts f)
    {
        var notes = new List<string>(f.Notes);
        var kernel = new HostKernel(f.Machine, f.Release);
        ArchEntry? arch = Spec(f, out string specWhy);
        HvoPolicy? policy = Policy(f.Version, out string policyWhy);
        HostPool[] pools = [.. f.Pools];
        var hvo = new HostHvo(f.Built, f.Sysctl ?? f.BootParameter ?? f.DefaultOn, HvoSource(f));
        var result = new HostReport(kernel, arch?.Name, specWhy, policy?.Name ?? HvoPolicy.Kernel[0].Name, policyWhy, f.MemoryBytes, f.MemorySource, f.Nodes,
            [.. pools.Select(x => new HostPoolReport(x.Size, x.Total, x.Surplus, x.PerNode.Count > 0 ? x.PerNode : null))], hvo, null, null, string.Empty, notes);
        if (arch is null)
        {
            return result with { Verdict = specWhy };
        }

        if (f.MemoryBytes is not { } memory)
        {
            return result with { Verdict = "the machine's memory could not be read (no memory blocks, no MemTotal): nothing to simulate" };
        }

        memory -= memory % arch.Info.PageSize;
        if (MachineSize.Check(arch.Info, memory, f.Nodes) is { } bad)
        {
            return result with { Verdict = $"{CmdLine.FormatSize(memory)} on {f.Nodes} node(s) {bad}: it cannot be simulated" };
        }

        HostPool[] simulated = [.. pools.Where(x => arch.Info.HugePageSizes.Any(h => h.Size == x.Size) && x.Total > 0)];
        foreach (HostPool skipped in pools.Where(x => x.Total > 0 && !simulated.Contains(x)))
        {
            notes.Add($"hugepages-{skipped.Size >> 10}kB: {arch.Name}'s spec has no such size; its {skipped.Total} pages are not simulated");
        }

        bool asIs = simulated.Length > 0;
        HostPool[] whatIf = asIs ? simulated : [.. SimulateScript.DefaultPages(arch.Info, memory).Select(x => new HostPool(x.Size, x.Count, 0, []))];
        HvoPolicy run = policy ?? HvoPolicy.Kernel[0];
        string why = WhyNot(f, arch.Info, policy);
        SimulationReport? now = null;
        if (why.Length == 0 && asIs)
        {
            now = Simulate(arch, run, f, memory, simulated, hvo: true);
        }

        SimulationReport ifEnabled = now ?? Simulate(arch, run, f, memory, whatIf, hvo: true);
        ifEnabled = Options.Complete(ifEnabled, arch.Info, 0, json: false);
        string verdict = (asIs, why.Length == 0) switch
        {
            (true, true) => $"HVO is on: it saves {Units.Size(ifEnabled.Hvo.NetBytesSaved)} here now (if the pages were allocated while it was on)",
            (true, false) => $"HVO saves nothing here now: {why}; on, it would save {Units.Size(ifEnabled.Hvo.NetBytesSaved)}",
            (false, _) => $"no HugeTLB pages here, so HVO saves nothing now{(why.Length > 0 ? $", and {why}" : string.Empty)}; with half of memory as {CmdLine.FormatSize(whatIf[0].Size)} pages and HVO on it would save {Units.Size(ifEnabled.Hvo.NetBytesSaved)}",
        };
        return result with { Now = now, IfEnabled = ifEnabled, WhatIfPools = !asIs, Verdict = verdict };
    }

    /// <summary>Why HVO does not run here now ("" when it does): the kernel, the build, the switch.</summary>
    private static string WhyNot(HostFacts f, ArchInfo arch, HvoPolicy? policy)
    {
        if (f.Version is { } v && policy is null)
        {
            return $"Linux {v.Major}.{v.Minor} predates HVO (it came with {HvoPolicy.Kernel[0].Name})";
        }

        if (f.Built == false)
        {
            return arch.BreakBeforeMake
                ? "HVO is not built into this kernel (CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP is not set; on arm64 mainline turned it off, commit 060a2c92d1b6, as its remaps break break-before-make)"
                : "HVO is not built into this kernel (CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP is not set)";
        }

        if ((arch.StructPageBytes & (arch.StructPageBytes - 1)) != 0)
        {
            return $"a {arch.StructPageBytes}-byte struct page is not a power of two, which HVO needs";
        }

        bool? on = f.Sysctl ?? f.BootParameter ?? f.DefaultOn;
        return on switch
        {
            true => string.Empty,
            false => $"HVO is off here: {HvoSource(f)}",
            null => "whether HVO is on cannot be read (no vm.hugetlb_optimize_vmemmap, no hugetlb_free_vmemmap=, no kernel config)",
        };
    }

    private static string HvoSource(HostFacts f) =>
        f.Sysctl is { } s ? $"vm.hugetlb_optimize_vmemmap = {(s ? 1 : 0)}"
        : f.BootParameter is { } b ? $"hugetlb_free_vmemmap={(b ? "on" : "off")} on the command line"
        : f.DefaultOn is { } d ? $"the build default, CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON {(d ? "=y" : "not set")}"
        : "unknown";

    /// <summary>
    /// The spec of this machine: uname's machine names the family (x86_64, arm64, ...), and of its
    /// specs the one whose default huge page size is meminfo's Hugepagesize (arm64's granule), with
    /// 5-level paging where the kernel uses it.
    /// </summary>
    private static ArchEntry? Spec(HostFacts f, out string why)
    {
        string? family = f.Machine switch
        {
            null => null,
            "aarch64" or "arm64" => "arm64",
            var m => m,
        };
        ArchEntry[] candidates = family is null ? [] : [.. ArchRegistry.All.Where(e => e.Name == family || e.Name.StartsWith(family + "-", StringComparison.Ordinal))];
        if (candidates.Length == 0)
        {
            why = family is null
                ? "the machine's architecture could not be read (uname's machine: /proc/sys/kernel/arch)"
                : $"this machine is {f.Machine}, and hvo has no spec for it; specs: {string.Join(", ", ArchRegistry.Names)}";
            return null;
        }

        ArchEntry[] sized = f.DefaultHugePageSize is { } size ? [.. candidates.Where(e => HugeTlbCommandLine.ArchDefaultSize(e.Info) == size)] : candidates;
        if (sized.Length == 0)
        {
            why = $"no {family} spec has a default huge page size of {CmdLine.FormatSize(f.DefaultHugePageSize!.Value)} (meminfo's Hugepagesize); specs: {string.Join(", ", candidates.Select(c => c.Name))}";
            return null;
        }

        ArchEntry pick = sized.OrderBy(e => e.Info.Levels.Count == 5 == f.FiveLevel ? 0 : 1).ThenBy(e => e.Name.Length).First();
        why = $"uname says {f.Machine}{(f.DefaultHugePageSize is { } s ? $", Hugepagesize {s >> 10} kB" : string.Empty)}{(pick.Info.Levels.Count == 5 ? ", 5-level paging" : string.Empty)}";
        return pick;
    }

    /// <summary>
    /// The policy of a kernel MAJOR.MINOR: its own release's (<see cref="HvoPolicy.Find"/>, every
    /// release from <see cref="KernelVersion.First"/> to <see cref="KernelVersion.Last"/>); a newer
    /// kernel behaves as the newest modelled; null before the first (no HVO).
    /// </summary>
    internal static HvoPolicy? Policy((int Major, int Minor)? version, out string why)
    {
        if (version is not { } v)
        {
            why = "the kernel release could not be read: the first HVO kernel's policy is assumed";
            return null;
        }

        if (HvoPolicy.Find($"v{v.Major}.{v.Minor}") is { Version: not null } own)
        {
            why = $"Linux {v.Major}.{v.Minor} is {own.Name}";
            return own;
        }

        var release = new KernelVersion(v.Major, v.Minor);
        HvoPolicy? before = HvoPolicy.Versions.LastOrDefault(p => p.Version <= release);
        why = before is null
            ? $"Linux {v.Major}.{v.Minor} predates HVO"
            : $"Linux {v.Major}.{v.Minor} behaves as {before.Name}, the newest kernel version modelled";
        return before;
    }

    /// <summary>The host's pools on a simulated machine of its memory and nodes, with its boot-time HugeTLB parameters.</summary>
    private static SimulationReport Simulate(ArchEntry arch, HvoPolicy policy, HostFacts f, ulong memory, IReadOnlyList<HostPool> pools, bool hvo)
    {
        var script = new ScriptBuilder("host");
        var boot = new List<string> { "mem=" + CmdLine.FormatSize(memory) };
        if (f.Nodes > 1)
        {
            boot.Add($"numa=fake={f.Nodes}");
        }

        boot.Add("hugetlb_free_vmemmap=" + (hvo ? "on" : "off"));
        boot.AddRange(f.HugeTlbParameters.Where(w => !w.Any(char.IsWhiteSpace)));
        try
        {
            script.Boot(boot);
        }
        catch (ScriptError)
        {
            script = new ScriptBuilder("host");
            script.Boot(boot.Take(f.Nodes > 1 ? 3 : 2)); // the host's parameters are not ones the model takes: boot without them
        }

        foreach (HostPool pool in pools)
        {
            if (pool.PerNode.Count > 1)
            {
                for (int nid = 0; nid < pool.PerNode.Count; nid++)
                {
                    script.Echo(pool.PerNode[nid].ToString(CultureInfo.InvariantCulture), $"/sys/devices/system/node/node{nid}/hugepages/hugepages-{pool.Size >> 10}kB/nr_hugepages");
                }
            }
            else
            {
                script.Echo(pool.Total.ToString(CultureInfo.InvariantCulture), SimulateScript.NrHugepagesPath(pool.Size));
            }
        }

        var reporter = new RunReporter("host", "pools rebuilt", map: false, RunReporter.Changes, pools.ToDictionary(x => x.Size, x => x.Total));
        return arch.Accept(new ScenarioRunner<RunResult>(script.Build(), new ScenarioOptions { Policy = policy, EchoCommands = false }, TextWriter.Null, reporter)).Report;
    }

    private static void WriteText(TextWriter o, HostReport r)
    {
        o.WriteLine($"hvo host: Linux {r.Kernel.Release ?? "(release unknown)"} on {r.Kernel.Machine ?? "(machine unknown)"}");
        o.WriteLine($"  spec:    {r.Spec ?? "none"} ({r.SpecReason})");
        o.WriteLine($"  policy:  {r.Policy} ({r.PolicyReason})");
        o.WriteLine($"  memory:  {(r.MemoryBytes is { } m ? CmdLine.FormatSize(m) : "unknown")}{(r.MemorySource.Length > 0 ? $" ({r.MemorySource})" : string.Empty)}, {r.Nodes} node(s)");
        o.WriteLine($"  pools:   {(r.Pools.Count == 0 ? "none" : string.Join(", ", r.Pools.Select(p => $"hugepages-{p.PageSize >> 10}kB {p.NrHugepages}{(p.Surplus > 0 ? $" ({p.Surplus} surplus)" : string.Empty)}")))}");
        o.WriteLine($"  HVO:     built in: {(r.Hvo.BuiltIn is { } b ? b ? "yes" : "no" : "unknown (no kernel config)")}; on now: {(r.Hvo.OnNow is { } n ? n ? "yes" : "no" : "unknown")} ({r.Hvo.Source})");
        o.WriteLine();
        o.WriteLine(r.Verdict);
        if (r.IfEnabled is { } e)
        {
            o.WriteLine();
            o.WriteLine(r.WhatIfPools ? "simulated, HVO on, half of memory as pages of the default size:" : r.Now is null ? "simulated with HVO on, the same pools:" : "simulated, the same pools:");
            o.Write(ReportText.Pool(e));
            o.Write(ReportText.Counters(e));
            o.Write(ReportText.BreakBeforeMake(e));
        }

        foreach (string note in r.Notes)
        {
            o.WriteLine($"note: {note}");
        }
    }
}

internal sealed record HostKernel(string? Machine, string? Release);

internal sealed record HostHvo(bool? BuiltIn, bool? OnNow, string Source);

internal sealed record HostPoolReport(ulong PageSize, ulong NrHugepages, ulong Surplus, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<ulong>? PerNode);

/// <summary><c>hvo host</c>'s report: what was read, what it maps to, the simulations, the verdict in words, and the notes on what could not be read.</summary>
internal sealed record HostReport(
    HostKernel Kernel,
    string? Spec,
    string SpecReason,
    string Policy,
    string PolicyReason,
    ulong? MemoryBytes,
    string MemorySource,
    int Nodes,
    IReadOnlyList<HostPoolReport> Pools,
    HostHvo Hvo,
    SimulationReport? Now,
    SimulationReport? IfEnabled,
    string Verdict,
    IReadOnlyList<string> Notes)
{
    /// <summary>The host has no pools: the simulation is of simulate's default (half of memory as the default size's pages).</summary>
    public bool WhatIfPools { get; init; }
}

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(HostReport))]
internal sealed partial class HostJsonContext : JsonSerializerContext;
