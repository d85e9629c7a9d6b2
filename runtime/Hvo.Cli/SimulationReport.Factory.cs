using System.Collections.Generic;
using System.Linq;
using Hvo.Cli.Plots;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Cli;

/// <summary>The one place a report is built from a machine, its pool and its HVO policy: <c>simulate</c>, <c>run</c> and <c>compare</c> all use it.</summary>
internal sealed partial record SimulationReport
{
    /// <summary>The command the report's first line names.</summary>
    public string Command { get; init; } = "simulate";

    /// <summary>What the second line says the time after boot went to.</summary>
    public string WorkLabel { get; init; } = "pool grown";

    /// <summary>Shell errors a script printed (refused opens and writes, unreadable files); 0 for simulate.</summary>
    public int ShellErrors { get; init; }

    /// <summary>The report of the machine as it is now: meminfo, every hstate, HVO's counters, and whether new pages are optimized.</summary>
    public static SimulationReport From<TArch>(Machine<TArch> machine, HugeTlbPool<TArch> pool, HvoOptimizer<TArch> optimizer, double bootMs, double workMs)
        where TArch : struct, IPagingArch
    {
        HvoCounters c = optimizer.Total;
        return new SimulationReport(
            TArch.Name,
            TArch.Info.Title,
            machine.Config,
            optimizer.Policy.Name,
            optimizer.Switches.EnabledNow,
            pool.MemInfo(),
            [.. pool.Hstates.Select(h => new HstateReport(h.Size, h.NrHugePages, h.FreeHugePages, h.SurplusHugePages, (ulong)pool.Pages(h).Count(p => p.VmemmapOptimized)))],
            new HvoReport(c.VmemmapPagesFreed, c.VmemmapPagesRestored, c.PteTablesAllocated, c.PmdsSplit, c.OptimizeFailures, c.RestoreFailures, c.TlbFlushes, c.NetBytesSaved(TArch.PageSize))
            {
                TlbRangeFlushes = c.TlbRangeFlushes,
                TlbFullFlushes = c.TlbFullFlushes,
                BbmRetries = c.BbmRetries,
                BbmRetriesExhausted = c.BbmRetriesExhausted,
                BbmViolations = machine.Violations.CountOf(global::Hvo.Paging.ViolationKind.BreakBeforeMake),
                BbmChecked = machine.BreakBeforeMake is not null,
            },
            bootMs,
            workMs,
            machine.Frames.MaterializedBytes);
    }
}

/// <summary>The report of a finished script (<c>hvo run</c>, <c>hvo compare</c>).</summary>
internal class ScriptReporter : IScenarioReporter<SimulationReport>
{
    public static ScriptReporter Instance { get; } = new();

    public virtual SimulationReport Report<TArch>(ScenarioSession<TArch> session)
        where TArch : struct, IPagingArch =>
        SimulationReport.From(session.Machine, session.Pool, session.Optimizer, session.BootMs, session.RunMs) with
        {
            Command = "run",
            WorkLabel = "script ran",
            ShellErrors = session.ShellErrors,
        };
}

/// <summary>The script's report, and what <c>--plot</c> draws of the run: its trace and the vmemmap's leaves at the end.</summary>
internal sealed class PlottingScriptReporter : ScriptReporter
{
    public List<(GrowthSeries Series, VmemmapPicture Map)> Plots { get; } = [];

    public override SimulationReport Report<TArch>(ScenarioSession<TArch> session)
    {
        SimulationReport report = base.Report(session);
        string label = $"{report.Arch} {report.Policy}";
        Plots.Add((
            new GrowthSeries(label, [.. session.Trace.Select(GrowthPoint.Of)]),
            new VmemmapPicture(label, VmemmapLeafMap.Of(session.Machine, session.Pool))));
        return report;
    }
}
