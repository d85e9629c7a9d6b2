using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace Hvo.Cli.Reports;

/// <summary>
/// Reports as CSV (RFC 4180: a header line, one line per run, fields quoted when they hold a comma
/// or a quote), for <c>hvo compare --csv</c> and <c>hvo sweep --csv</c>: the machine, the policy,
/// HVO's counters and their bytes, meminfo's totals, and per huge page size its pool. Sizes are in
/// bytes, meminfo's in kB as the kernel gives them.
/// </summary>
internal static class ReportCsv
{
    /// <param name="leading">Columns a command puts first (a sweep's point), with one value per report.</param>
    public static void Write(TextWriter output, IReadOnlyList<SimulationReport> reports, IReadOnlyList<(string Name, IReadOnlyList<string> Values)>? leading = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(reports);
        leading ??= [];
        ulong[] sizes = [.. reports.SelectMany(r => r.Hstates.Select(h => h.PageSize)).Distinct().Order()];
        var header = leading.Select(c => c.Name).Concat(Columns.Select(c => c.Name))
            .Concat(sizes.SelectMany(s => new[] { $"nrHugepages_{s >> 10}kB", $"surplus_{s >> 10}kB", $"optimized_{s >> 10}kB", $"requested_{s >> 10}kB" }));
        output.WriteLine(string.Join(',', header.Select(Field)));
        for (int i = 0; i < reports.Count; i++)
        {
            SimulationReport r = reports[i];
            IEnumerable<string> pools = sizes.SelectMany(s => r.Hstates.FirstOrDefault(h => h.PageSize == s) is { } h
                ? new[] { N(h.NrHugepages), N(h.Surplus), N(h.Optimized), h.Requested is { } q ? N(q) : string.Empty }
                : new[] { string.Empty, string.Empty, string.Empty, string.Empty });
            int row = i;
            output.WriteLine(string.Join(',', leading.Select(c => c.Values[row]).Concat(Columns.Select(c => c.Value(r))).Concat(pools).Select(Field)));
        }
    }

    private static readonly (string Name, Func<SimulationReport, string> Value)[] Columns =
    [
        ("arch", r => r.Arch),
        ("policy", r => r.Policy),
        ("memoryBytes", r => N(r.MemoryBytes)),
        ("nodes", r => N((ulong)r.Nodes)),
        ("hvoEnabled", r => r.HvoEnabled ? "true" : "false"),
        ("netBytesSaved", r => N(r.Hvo.NetBytesSaved)),
        ("vmemmapPagesFreed", r => N(r.Hvo.VmemmapPagesFreed)),
        ("vmemmapPagesRestored", r => N(r.Hvo.VmemmapPagesRestored)),
        ("pteTablesAllocated", r => N(r.Hvo.PteTablesAllocated)),
        ("pteTableBytes", r => N(r.Hvo.PteTableBytes(r.PageSize))),
        ("pmdsSplit", r => N(r.Hvo.PmdsSplit)),
        ("tlbFlushes", r => N(r.Hvo.TlbFlushes)),
        ("tlbRangeFlushes", r => N(r.Hvo.TlbRangeFlushes)),
        ("tlbFullFlushes", r => N(r.Hvo.TlbFullFlushes)),
        ("sharedTailPages", r => N(r.Hvo.SharedTailPages)),
        ("gracePeriods", r => N(r.Hvo.GracePeriods)),
        ("entryInvalidations", r => N(r.Hvo.EntryInvalidations)),
        ("cpuPauses", r => N(r.Hvo.CpuPauses)),
        ("pauseIpis", r => N(r.Hvo.PauseIpis)),
        ("pausedCpuSteps", r => N(r.Hvo.PausedCpuSteps)),
        ("structPagesInitializedAtBoot", r => N(r.StructPagesInitializedAtBoot)),
        ("optimizeFailures", r => N(r.Hvo.OptimizeFailures)),
        ("restoreFailures", r => N(r.Hvo.RestoreFailures)),
        ("breakBeforeMakeViolations", r => r.BreakBeforeMakeViolations is { } v ? N(v) : string.Empty),
        ("MemTotal_kB", r => N(r.MemInfo.MemTotalKb)),
        ("MemFree_kB", r => N(r.MemInfo.MemFreeKb)),
        ("shellErrors", r => N((ulong)r.ShellErrors)),
    ];

    private static string N(ulong n) => n.ToString(CultureInfo.InvariantCulture);

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Field(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
}
