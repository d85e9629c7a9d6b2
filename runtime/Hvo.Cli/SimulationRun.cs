using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Lib;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Cli;

/// <summary>One simulation: boot, grow each requested pool, collect the report.</summary>
internal sealed class SimulationRun(MachineConfig config, HvoPolicy policy, bool hvoOn, (ulong Size, ulong Count)[] request) : IArchVisitor<SimulationReport>
{
    /// <summary>Fault injection, stepwise growth, Ctrl-C, progress and plot samples (SimulationHooks.cs).</summary>
    public SimulationHooks Hooks { get; init; } = new();

    public SimulationReport Visit<TArch>() where TArch : struct, IPagingArch
    {
        var clock = Stopwatch.StartNew();
        using Machine<TArch> machine = Machine<TArch>.Boot(config);
        double bootMs = clock.Elapsed.TotalMilliseconds;
        Hooks.Arm(machine);
        var optimizer = new HvoOptimizer<TArch>(machine, policy, new HvoSwitches(bootParameter: hvoOn));
        var pool = new HugeTlbPool<TArch>(machine, optimizer);
        clock.Restart();
        Hooks.Grow(pool, optimizer, request);

        double growMs = clock.Elapsed.TotalMilliseconds;
        SimulationReport report = SimulationReport.From(machine, pool, optimizer, bootMs, growMs);
        return report with { Hstates = [.. report.Hstates.Select(h => h with { Requested = Requested(h.PageSize) })] };
    }

    /// <summary>The last count asked for <paramref name="size"/> (as the last echo to nr_hugepages wins), or null.</summary>
    private ulong? Requested(ulong size)
    {
        ulong? last = null;
        foreach ((ulong s, ulong count) in request)
        {
            if (s == size)
            {
                last = count;
            }
        }

        return last;
    }
}

/// <param name="Requested">The nr_hugepages asked for, if any: the kernel grows the pool to what fits, so it may be more than <paramref name="NrHugepages"/>.</param>
internal sealed record HstateReport(ulong PageSize, ulong NrHugepages, ulong Free, ulong Surplus, ulong Optimized, ulong? Requested = null);

internal sealed record HvoReport(long VmemmapPagesFreed, long VmemmapPagesRestored, long PteTablesAllocated, long PmdsSplit, long OptimizeFailures, long RestoreFailures, long TlbFlushes, long NetBytesSaved)
{
    public long TlbRangeFlushes { get; init; }

    public long TlbFullFlushes { get; init; }

    public long BbmRetries { get; init; }

    public long BbmRetriesExhausted { get; init; }

    /// <summary>Break-before-make violations the checker reported (arm64; the checker runs where the spec requires BBM).</summary>
    public long BbmViolations { get; init; }

    public bool BbmChecked { get; init; }
}

/// <summary>The report of DESIGN.md section 4: /proc/meminfo text plus HVO's counters, or one JSON object.</summary>
internal sealed partial record SimulationReport(
    string Arch, string Title, MachineConfig Config, string Policy, bool HvoEnabled, MemInfo MemInfo,
    HstateReport[] Hstates, HvoReport Hvo, double BootMs, double GrowMs, long HostFrameBytes)
{
    public string ToText()
    {
        var o = new StringWriter(CultureInfo.InvariantCulture);
        o.WriteLine($"hvo {Command}: {Arch} ({Title}), {CmdLine.FormatSize(Config.MemoryBytes)}, {Config.Nodes} node(s), policy {Policy}, HVO {(HvoEnabled ? "on" : "off")}");
        o.WriteLine($"booted in {BootMs:0} ms; {WorkLabel} in {GrowMs:0} ms; simulated frame bytes kept: {HostFrameBytes / 1024} kB");
        o.WriteLine();
        o.Write(MemInfo.Format());
        foreach (HstateReport h in Hstates.Where(h => h.NrHugepages > 0))
        {
            o.WriteLine($"hugepages-{h.PageSize / 1024}kB: nr_hugepages {h.NrHugepages}, free {h.Free}, surplus {h.Surplus}, vmemmap optimized {h.Optimized}");
        }

        foreach (HstateReport h in Hstates.Where(h => h.Requested > h.NrHugepages))
        {
            o.WriteLine($"hugepages-{h.PageSize / 1024}kB: asked for {h.Requested}, the pool grew to {h.NrHugepages}: no memory for more (as echo N > nr_hugepages, the kernel allocates what fits)");
        }

        o.WriteLine($"HVO vmemmap pages freed:    {Hvo.VmemmapPagesFreed,12}");
        o.WriteLine($"HVO vmemmap pages restored: {Hvo.VmemmapPagesRestored,12}");
        o.WriteLine($"HVO PTE tables allocated:   {Hvo.PteTablesAllocated,12}");
        o.WriteLine($"HVO PMDs split:             {Hvo.PmdsSplit,12}");
        o.WriteLine($"HVO optimizations failed:   {Hvo.OptimizeFailures,12}");
        o.WriteLine($"HVO restores failed:        {Hvo.RestoreFailures,12}");
        o.WriteLine($"HVO TLB flushes:            {Hvo.TlbFlushes,12}   (range {Hvo.TlbRangeFlushes}, full {Hvo.TlbFullFlushes})");
        o.WriteLine($"HVO net bytes saved:        {Hvo.NetBytesSaved,12}");
        if (Hvo.BbmRetries > 0 || Hvo.BbmRetriesExhausted > 0)
        {
            o.WriteLine($"HVO cmpxchg retries:        {Hvo.BbmRetries,12}   (pages rolled back: {Hvo.BbmRetriesExhausted})");
        }

        if (Hvo.BbmChecked)
        {
            o.WriteLine($"break-before-make violations: {Hvo.BbmViolations,10}");
        }
        return o.ToString();
    }

    public string ToJson()
    {
        var doc = new Dictionary<string, object>
        {
            ["arch"] = Arch,
            ["policy"] = Policy,
            ["hvoEnabled"] = HvoEnabled,
            ["meminfo"] = MemInfo.Fields.ToDictionary(kv => kv.Key, kv => kv.Value),
            ["hstates"] = Hstates.Select(h =>
            {
                var o = new Dictionary<string, object>
                {
                    ["pageSize"] = h.PageSize,
                    ["nrHugepages"] = h.NrHugepages,
                    ["free"] = h.Free,
                    ["surplus"] = h.Surplus,
                    ["optimized"] = h.Optimized,
                };
                if (h.Requested is { } asked)
                {
                    o["requested"] = asked; // simulate's --hugepages count: the pool may have grown to less
                }

                return o;
            }).ToArray(),
            ["hvo"] = new Dictionary<string, object>
            {
                ["vmemmapPagesFreed"] = Hvo.VmemmapPagesFreed,
                ["vmemmapPagesRestored"] = Hvo.VmemmapPagesRestored,
                ["pteTablesAllocated"] = Hvo.PteTablesAllocated,
                ["pmdsSplit"] = Hvo.PmdsSplit,
                ["optimizeFailures"] = Hvo.OptimizeFailures,
                ["restoreFailures"] = Hvo.RestoreFailures,
                ["tlbFlushes"] = Hvo.TlbFlushes,
                ["netBytesSaved"] = Hvo.NetBytesSaved,
                ["tlbRangeFlushes"] = Hvo.TlbRangeFlushes,
                ["tlbFullFlushes"] = Hvo.TlbFullFlushes,
                ["bbmRetries"] = Hvo.BbmRetries,
                ["bbmRetriesExhausted"] = Hvo.BbmRetriesExhausted,
            },
        };
        if (Hvo.BbmChecked)
        {
            doc["breakBeforeMakeViolations"] = Hvo.BbmViolations;
        }

        return JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }
}
