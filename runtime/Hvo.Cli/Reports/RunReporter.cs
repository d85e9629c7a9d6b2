using System.Collections.Generic;
using System.Linq;
using Hvo.Cli.Plots;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli.Reports;

/// <summary>What a command keeps of a finished script: its report, and what <c>--plot</c> and Ctrl-C need.</summary>
/// <param name="Interrupted">A pending signal cut the growth short or stopped the script (<see cref="ScenarioSession{TArch}.Interrupted"/>).</param>
/// <param name="PagesAllocated">Fresh huge pages the writes of nr_hugepages allocated.</param>
/// <param name="StatementsRun">Statements run, the boot line included.</param>
/// <param name="Trace">The pool and HVO's balance after boot and after each write that changed them.</param>
/// <param name="Map">The vmemmap's leaves at the end, when asked for (a walk of every leaf).</param>
internal sealed record RunResult(SimulationReport Report, bool Interrupted, ulong PagesAllocated, int StatementsRun, IReadOnlyList<GrowthPoint> Trace, VmemmapLeafMap? Map);

/// <summary>
/// The one place a finished script becomes a <see cref="RunResult"/>, for <c>simulate</c>,
/// <c>run</c> and <c>compare</c>: <paramref name="command"/> and <paramref name="workLabel"/> are
/// what the report's heading says, <paramref name="requested"/> what simulate asked of each size.
/// </summary>
internal sealed class RunReporter(string command, string workLabel, bool map, IReadOnlyDictionary<ulong, ulong>? requested = null) : IScenarioReporter<RunResult>
{
    /// <summary>A script's report (<c>hvo run</c>, <c>hvo compare</c>), with the vmemmap's map when <paramref name="map"/>.</summary>
    public static RunReporter ForScript(bool map = false) => new("run", "script ran", map);

    public RunResult Report<TArch>(ScenarioSession<TArch> session)
        where TArch : struct, IPagingArch
    {
        SimulationReport report = SimulationReport.Of(command, workLabel, session.Machine, session.Pool, session.Optimizer, session.ShellErrors, session.BootMs, session.RunMs);
        if (requested is not null)
        {
            report = report with { Hstates = [.. report.Hstates.Select(h => h with { Requested = requested.TryGetValue(h.PageSize, out ulong n) ? n : null })] };
        }

        return new RunResult(
            report,
            session.Interrupted,
            session.PagesAllocated,
            session.StatementsRun,
            [.. session.Trace.Select(GrowthPoint.Of)],
            map ? VmemmapLeafMap.Of(session.Machine, session.Pool) : null);
    }
}
