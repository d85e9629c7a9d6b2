using System.Linq;
using System.Text.Json.Serialization;
using Hvo.HugeTlb;
using Hvo.Memory.Hotplug;
using Hvo.Paging;

namespace Hvo.Cli.Reports;

/// <summary>One hstate: its counts, and what simulate's <c>--hugepages</c> asked for it, if it did.</summary>
/// <param name="Requested">The nr_hugepages asked for, if any: the kernel grows the pool to what fits, so it may be more than <paramref name="NrHugepages"/>.</param>
internal sealed record HstateReport(
    ulong PageSize,
    ulong NrHugepages,
    ulong Free,
    ulong Surplus,
    ulong Optimized,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ulong? Requested = null);

/// <summary>HVO's counters (<see cref="HvoCounters"/>) and the break-before-make checker's count.</summary>
/// <param name="BbmViolations">Break-before-make violations the checker reported (arm64; the checker runs where the spec requires BBM).</param>
/// <param name="BbmChecked">The checker ran.</param>
internal sealed record HvoReport(
    long VmemmapPagesFreed,
    long VmemmapPagesRestored,
    long PteTablesAllocated,
    long PmdsSplit,
    long OptimizeFailures,
    long RestoreFailures,
    long TlbFlushes,
    long NetBytesSaved,
    long TlbRangeFlushes,
    long TlbFullFlushes,
    long BbmRetries,
    long BbmRetriesExhausted,
    long SharedTailPages,
    long GracePeriods,
    [property: JsonIgnore] long BbmViolations,
    [property: JsonIgnore] bool BbmChecked);

/// <summary>
/// Memory hotplug's state, when a script changed it (a block added, or one offline): the block
/// size, blocks online (of which in ZONE_MOVABLE) and offline, blocks added since boot (of which
/// holding their own struct pages, memmap_on_memory).
/// </summary>
internal sealed record MemoryBlocksReport(ulong BlockSize, int Online, int Movable, int Offline, int HotAdded, int SelfHosted)
{
    public static MemoryBlocksReport? Of<TArch>(Machine<TArch> machine)
        where TArch : struct, IPagingArch
    {
        var blocks = machine.Hotplug.Blocks;
        if (!blocks.Any(b => b.HotAdded || b.State == MemoryBlockState.Offline))
        {
            return null;
        }

        return new MemoryBlocksReport(
            machine.Hotplug.BlockBytes,
            blocks.Count(b => b.State == MemoryBlockState.Online),
            blocks.Count(b => b.Zone == machine.Pages.MovableZone),
            blocks.Count(b => b.State == MemoryBlockState.Offline),
            blocks.Count(b => b.HotAdded),
            blocks.Count(b => b.SelfHostedFrames > 0));
    }
}

/// <summary>
/// The report of docs/ARCHITECTURE.md §6, as data: the machine, the policy, /proc/meminfo, every
/// hstate, HVO's counters and what the run took. Rendered, never read back: as text
/// (<see cref="ReportText"/>), on a terminal (<see cref="TerminalReport"/>), as JSON
/// (<see cref="ReportJson"/>) and as a column of <c>hvo compare</c>'s table.
/// </summary>
/// <param name="Command">The command the heading names (<c>simulate</c>, <c>run</c>).</param>
/// <param name="WorkLabel">What the heading says the time after boot went to.</param>
/// <param name="PageSize">The architecture's base page, the unit of the vmemmap and PTE-table counters.</param>
/// <param name="ShellErrors">Opens and writes the kernel refused and unreadable files: each printed a shell error.</param>
/// <param name="HostFrameBytes">Host memory the simulated frames kept.</param>
internal sealed record SimulationReport(
    [property: JsonIgnore] string Command,
    [property: JsonIgnore] string WorkLabel,
    string Arch,
    [property: JsonIgnore] string Title,
    [property: JsonIgnore] ulong PageSize,
    [property: JsonIgnore] ulong MemoryBytes,
    [property: JsonIgnore] int Nodes,
    string Policy,
    bool HvoEnabled,
    [property: JsonPropertyName("meminfo"), JsonConverter(typeof(MemInfoJsonConverter))] MemInfo MemInfo,
    HstateReport[] Hstates,
    HvoReport Hvo,
    [property: JsonIgnore] int ShellErrors,
    [property: JsonIgnore] double BootMs,
    [property: JsonIgnore] double WorkMs,
    [property: JsonIgnore] long HostFrameBytes,
    [property: JsonIgnore] ulong StructPagesInitializedAtBoot = 0,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] MemoryBlocksReport? MemoryBlocks = null)
{
    /// <summary>The checker's count where it ran (the JSON key <c>breakBeforeMakeViolations</c>, last), else null.</summary>
    [JsonPropertyOrder(1)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? BreakBeforeMakeViolations => Hvo.BbmChecked ? Hvo.BbmViolations : null;

    /// <summary>The report of a machine as it is now: meminfo, every hstate, HVO's counters, and whether new pages are optimized.</summary>
    public static SimulationReport Of<TArch>(
        string command, string workLabel, Machine<TArch> machine, HugeTlbPool<TArch> pool, HvoOptimizer<TArch> optimizer,
        int shellErrors, double bootMs, double workMs)
        where TArch : struct, IPagingArch
    {
        HvoCounters c = optimizer.Total;
        return new SimulationReport(
            command,
            workLabel,
            TArch.Name,
            TArch.Info.Title,
            TArch.PageSize,
            machine.Config.MemoryBytes,
            machine.Config.Nodes,
            optimizer.Policy.Name,
            optimizer.Switches.EnabledNow,
            pool.MemInfo(),
            [.. pool.Hstates.Select(h => new HstateReport(h.Size, h.NrHugePages, h.FreeHugePages, h.SurplusHugePages, (ulong)pool.Pages(h).Count(p => p.VmemmapOptimized)))],
            new HvoReport(
                c.VmemmapPagesFreed, c.VmemmapPagesRestored, c.PteTablesAllocated, c.PmdsSplit, c.OptimizeFailures, c.RestoreFailures, c.TlbFlushes, c.NetBytesSaved(TArch.PageSize),
                c.TlbRangeFlushes, c.TlbFullFlushes, c.BbmRetries, c.BbmRetriesExhausted, c.SharedTailPages, c.GracePeriods,
                machine.Violations.CountOf(global::Hvo.Paging.ViolationKind.BreakBeforeMake),
                machine.BreakBeforeMake is not null),
            shellErrors,
            bootMs,
            workMs,
            machine.Frames.MaterializedBytes,
            machine.StructPagesInitializedAtBoot,
            MemoryBlocksReport.Of(machine));
    }
}
