using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Cli.Plots;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli.Reports;

/// <summary>What a command keeps of a finished script: its report, and what <c>--plot</c> and Ctrl-C need.</summary>
/// <param name="Interrupted">A pending signal cut the growth short or stopped the script (<see cref="ScenarioSession{TArch}.Interrupted"/>).</param>
/// <param name="PagesAllocated">Fresh huge pages the writes of nr_hugepages allocated.</param>
/// <param name="Trace">The points the command plots: the pool and HVO's balance before the commands and after the writes it chose.</param>
/// <param name="Map">The vmemmap's leaves at the end, when asked for (a walk of every leaf).</param>
internal sealed record RunResult(SimulationReport Report, bool Interrupted, ulong PagesAllocated, IReadOnlyList<GrowthPoint> Trace, VmemmapLeafMap? Map)
{
    /// <summary>The script's exit status, as a shell's.</summary>
    public int ExitStatus { get; init; }

    /// <summary>The commands that failed with nothing testing them.</summary>
    public IReadOnlyList<FailedCommand> Failed { get; init; } = [];

    /// <summary>set -e (or set -u) stopped the script.</summary>
    public bool Stopped { get; init; }

    /// <summary>The statements as they ran, with what each printed.</summary>
    public IReadOnlyList<StatementRun> Ran { get; init; } = [];
}

/// <summary>
/// The one place a finished script becomes a <see cref="RunResult"/>, for <c>simulate</c>,
/// <c>run</c> and <c>compare</c>: <paramref name="command"/> and <paramref name="workLabel"/> are
/// what the report's heading says, <paramref name="points"/> picks the plotted points of the
/// session's trace, <paramref name="requested"/> is what simulate asked of each size.
/// </summary>
internal sealed class RunReporter(
    string command, string workLabel, bool map, Func<IReadOnlyList<TracePoint>, IEnumerable<(int Step, PoolSample Sample)>> points, IReadOnlyDictionary<ulong, ulong>? requested = null)
    : IScenarioReporter<RunResult>
{
    /// <summary>A script's report (<c>hvo run</c>, <c>hvo compare</c>), its trace's <see cref="Changes"/>, and the vmemmap's map when <paramref name="map"/>.</summary>
    public static RunReporter ForScript(bool map = false) => new("run", "script ran", map, Changes);

    /// <summary>The point before the commands and each one that differs from the one before it: the writes that changed the pool or HVO's balance, each with its step (the write's number).</summary>
    public static IEnumerable<(int Step, PoolSample Sample)> Changes(IReadOnlyList<TracePoint> trace)
    {
        ArgumentNullException.ThrowIfNull(trace);
        for (int i = 0; i < trace.Count; i++)
        {
            if (i == 0 || trace[i].Sample != trace[i - 1].Sample)
            {
                yield return (i, trace[i].Sample);
            }
        }
    }

    public RunResult Report<TArch>(ScenarioSession<TArch> session)
        where TArch : struct, IPagingArch
    {
        SimulationReport report = SimulationReport.Of(command, workLabel, session.Machine, session.Pool, session.Optimizer, session.ShellErrors, session.BootMs, session.RunMs)
            with { Interrupted = session.Interrupted, TlbReach = session.Options.TlbReach ? TlbReachReport.Of(session.Machine) : null };
        if (requested is not null)
        {
            report = report with { Hstates = [.. report.Hstates.Select(h => h with { Requested = requested.TryGetValue(h.PageSize, out ulong n) ? n : null })] };
        }

        return new RunResult(
            report,
            session.Interrupted,
            session.PagesAllocated,
            [.. points(session.Trace).Select(p => GrowthPoint.Of(p.Sample, p.Step))],
            map ? VmemmapLeafMap.Of(session.Machine, session.Pool) : null)
        {
            ExitStatus = session.ExitStatus,
            Failed = session.Shell.Failed,
            Stopped = session.Shell.Stopped,
            Ran = session.Ran,
        };
    }
}
