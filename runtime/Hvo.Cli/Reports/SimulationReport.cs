using System.Collections.Generic;
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
    long EntryInvalidations,
    long CpuPauses,
    long PauseIpis,
    long PausedCpuSteps,
    [property: JsonIgnore] long BbmViolations,
    [property: JsonIgnore] bool BbmChecked,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] CollapseReport? Collapse = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? PteTableFrames = null)
{
    /// <summary>
    /// What the split PTE tables cost: a page each, or, where the kernel packs them as fragments
    /// (<see cref="PteTableFrames"/>, s390 before v6.7), the pages they hold.
    /// </summary>
    public long PteTableBytes(ulong pageSize) => (PteTableFrames ?? PteTablesAllocated) * (long)pageSize;
}

/// <summary>
/// Collapse-on-free's counters, for a policy that collapses (<c>VERSION+collapse</c>): PTE tables
/// given back (PMDs made leaves again), bytes copied into the new blocks, the flushes that took, and
/// collapsible PMDs left split for want of a block.
/// </summary>
internal sealed record CollapseReport(long PteTablesRecovered, long BytesCopied, long TlbFlushes, long Failures);

/// <summary>
/// <c>--tlb-reach</c>: one scan of every struct page of boot memory through the MMU from a cold TLB
/// (<see cref="Vmemmap.StructPageScan"/>): struct pages read, their bytes, TLB misses, and misses per GiB of struct pages.
/// </summary>
internal sealed record TlbReachReport(ulong StructPages, ulong Bytes, long TlbMisses, long MissesPerGiB)
{
    public static TlbReachReport Of<TArch>(Machine<TArch> machine)
        where TArch : struct, IPagingArch
    {
        Vmemmap.StructPageScanResult r = Vmemmap.StructPageScan.All(machine);
        return new TlbReachReport(r.StructPages, r.Bytes, r.TlbMisses, (long)System.Math.Round(r.MissesPerGiB));
    }
}

/// <summary>One change of a live entry the break-before-make checker reported: where, which entry, from what to what, in which kernel step, and why it breaks the rule.</summary>
internal sealed record BbmFinding(string Address, string Level, string OldEntry, string NewEntry, string Step, string Rule)
{
    public static BbmFinding Of(Violation v) => new(
        $"0x{v.Address:x16}",
        v.Change?.Level ?? string.Empty,
        v.Change is { } c ? $"0x{c.OldEntry:x16}" : string.Empty,
        v.Change is { } d ? $"0x{d.NewEntry:x16}" : string.Empty,
        v.Change?.Step ?? string.Empty,
        v.Change?.What ?? v.Detail);
}

/// <summary>A policy that keeps break-before-make on this architecture, and the options that give it its entry writer.</summary>
internal sealed record SafePolicy(string Policy, string Options);

/// <summary>A statement of <c>hvo run</c>'s script as it ran.</summary>
internal sealed record TranscriptEntry(string Location, string Command, string Output, int Status);

/// <summary>A command of <c>hvo run</c>'s script that failed with nothing testing it.</summary>
internal sealed record FailedCommandReport(string Location, string Command, int Status);

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
    /// <summary>The checker's count where it ran (the JSON key <c>breakBeforeMakeViolations</c>, after the counters), else null.</summary>
    [JsonPropertyOrder(1)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? BreakBeforeMakeViolations => Hvo.BbmChecked ? Hvo.BbmViolations : null;

    /// <summary>The checker's findings, in the order they happened (all, or the first <c>--violations N</c>); null where it did not run.</summary>
    [JsonPropertyOrder(2)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<BbmFinding>? BreakBeforeMakeFindings { get; init; }

    /// <summary>Where the checker ran: the policies whose entry writer keeps the rule on this architecture, with the options that give it.</summary>
    [JsonPropertyOrder(3)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<SafePolicy>? BreakBeforeMakeSafePolicies { get; init; }

    /// <summary>Ctrl-C stopped the run: the pool grew less than asked because of it, not for want of memory.</summary>
    [JsonPropertyOrder(4)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Interrupted { get; init; }

    /// <summary><c>hvo run</c>: the script's exit status, as a shell's (the last command's).</summary>
    [JsonPropertyOrder(5)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? ExitStatus { get; init; }

    /// <summary><c>hvo run</c>: the commands that failed with nothing testing them.</summary>
    [JsonPropertyOrder(6)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<FailedCommandReport>? FailedCommands { get; init; }

    /// <summary><c>hvo run --json</c>: each statement, what it printed and its status (the transcript, which stays off standard output).</summary>
    [JsonPropertyOrder(7)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<TranscriptEntry>? Transcript { get; init; }

    /// <summary><c>--tlb-reach</c>: the TLB misses of one scan of every struct page; null when not asked for.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public TlbReachReport? TlbReach { get; init; }

    /// <summary>
    /// What free_pages_prepare refused (bad_page): the compound pages kept off the free lists, the
    /// memory they hold, and the reports; null (left out of the JSON) when there were none.
    /// </summary>
    [JsonPropertyOrder(8)]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public BadPagesReport? BadPages { get; init; }

    /// <summary>All the checker's findings, kept for <see cref="BreakBeforeMakeFindings"/> and the text report.</summary>
    [JsonIgnore]
    public IReadOnlyList<BbmFinding> AllFindings { get; init; } = [];

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
            [.. pool.Hstates.Select(h => new HstateReport(h.Size, h.NrHugePages, h.FreeHugePages, h.SurplusHugePages, (ulong)pool.OptimizedPages(h)))],
            new HvoReport(
                c.VmemmapPagesFreed, c.VmemmapPagesRestored, c.PteTablesAllocated, c.PmdsSplit, c.OptimizeFailures, c.RestoreFailures, c.TlbFlushes, c.NetBytesSaved(TArch.PageSize),
                c.TlbRangeFlushes, c.TlbFullFlushes, c.BbmRetries, c.BbmRetriesExhausted, c.SharedTailPages, c.GracePeriods,
                machine.PageTable.Counters.Invalidations, machine.PageTable.Counters.CpuPauses, machine.PageTable.Counters.PauseIpis, machine.PageTable.Counters.PausedCpuSteps,
                machine.Violations.CountOf(ViolationKind.BreakBeforeMake),
                machine.BreakBeforeMake is not null,
                optimizer.Policy.CollapseOnFree ? new CollapseReport(c.PmdsCollapsed, c.CollapseBytesCopied, c.CollapseFlushes, c.CollapseFailures) : null,
                machine.PageTable.IsFragmented(TArch.LastLevel) ? c.PteTableFrames : null),
            shellErrors,
            bootMs,
            workMs,
            machine.Frames.MaterializedBytes,
            machine.StructPagesInitializedAtBoot,
            MemoryBlocksReport.Of(machine))
        {
            BadPages = machine.Pages.BadPageLeaks is { Count: > 0 } leaks
                ? new BadPagesReport(leaks.Count, leaks.Sum(l => (1L << l.Order) * (long)TArch.PageSize / 1024), machine.FreeChecks.Reports)
                : null,
            AllFindings = machine.BreakBeforeMake is null
                ? []
                : [.. machine.Violations.Snapshot().Where(v => v.Kind == ViolationKind.BreakBeforeMake).Select(BbmFinding.Of)],
        };
    }
}

/// <summary>bad_page's toll: compound pages whose free was refused, the kB they hold (lost to MemFree for good), and the reports made (printed or suppressed).</summary>
internal sealed record BadPagesReport(int Pages, long LostKb, long Reports);
