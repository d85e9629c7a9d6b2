using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo simulate</c>'s options as the script the scenario layer runs: a boot line
/// (<c>mem=</c>, or <c>mem=SIZE@START</c> with <see cref="RamBase"/>, <c>numa=fake=</c>, <c>hugetlb_free_vmemmap=</c>), the fault-injection writes of
/// <c>--fail-alloc</c>, then for each <c>--hugepages</c> size the writes of its sysfs nr_hugepages:
/// one, or <paramref name="Writes"/> growing to the count in equal steps, as a user's loop of echo
/// would. <c>hvo compare</c> without a script runs <see cref="Default"/>.
/// </summary>
/// <param name="Pages">Each size asked for and its count, in order: the last count of a size wins, as the last echo does.</param>
internal sealed record SimulateScript(ulong MemoryBytes, int Nodes, bool? Hvo, IReadOnlyList<(ulong Size, ulong Count)> Pages, FaultSpec? Faults, int Writes = 1)
{
    /// <summary>The file name the script's locations carry.</summary>
    public const string File = "simulate";

    /// <summary>--ram-base: where RAM starts; null: where the spec puts it.</summary>
    public ulong? RamBase { get; init; }

    /// <summary>
    /// simulate with no options: <see cref="MachineConfig.DefaultMemoryBytes"/> on one node, half of
    /// it as pages of <paramref name="arch"/>'s default huge page size.
    /// </summary>
    public static SimulateScript Default(ArchInfo arch) =>
        new(MachineConfig.DefaultMemoryBytes, 1, null, DefaultPages(arch, MachineConfig.DefaultMemoryBytes), null);

    /// <summary>Half of <paramref name="memory"/> as pages of the default hstate's size (HugeTlbCommandLine.ArchDefaultSize, HPAGE_SIZE).</summary>
    public static (ulong Size, ulong Count)[] DefaultPages(ArchInfo arch, ulong memory)
    {
        ulong size = HugeTlbCommandLine.ArchDefaultSize(arch);
        return [(size, memory / 2 / size)];
    }

    /// <summary>The sysfs nr_hugepages of one size (hstate_attrs).</summary>
    public static string NrHugepagesPath(ulong size) => $"/sys/kernel/mm/hugepages/hugepages-{size >> 10}kB/nr_hugepages";

    /// <summary>Pages all sizes ask for together (the progress bar's end), at most 2^64 - 1.</summary>
    public ulong TotalPages => Pages.Aggregate(0UL, (sum, r) => sum > ulong.MaxValue - r.Count ? ulong.MaxValue : sum + r.Count);

    /// <summary>
    /// The pages HVO will optimize if all are had: those of sizes the policy can optimize, when HVO is
    /// on (the progress bar's second end); without --hvo, the build default (<paramref name="hvoDefaultOn"/>) decides.
    /// </summary>
    public ulong OptimizablePages(ArchInfo arch, HvoPolicy policy, bool hvoDefaultOn = true)
    {
        ArgumentNullException.ThrowIfNull(arch);
        ArgumentNullException.ThrowIfNull(policy);
        return !(Hvo ?? hvoDefaultOn) ? 0 : Requested.Where(r => global::Hvo.Vmemmap.HugePageVmemmap.For(arch, r.Key).IsOptimizable(policy.ReservePages))
            .Aggregate(0UL, (sum, r) => sum > ulong.MaxValue - r.Value ? ulong.MaxValue : sum + r.Value);
    }

    /// <summary>The count asked for each size: the last one given, as the last echo to nr_hugepages wins.</summary>
    public IReadOnlyDictionary<ulong, ulong> Requested => Pages.GroupBy(p => p.Size).ToDictionary(g => g.Key, g => g.Last().Count);

    public Script Build()
    {
        var script = new ScriptBuilder(File);
        var boot = new List<string> { "mem=" + CmdLine.FormatSize(MemoryBytes) + (RamBase is { } start ? $"@0x{start:x}" : string.Empty) };
        if (Nodes > 1)
        {
            boot.Add($"numa=fake={Nodes}");
        }

        if (Hvo is { } on)
        {
            boot.Add("hugetlb_free_vmemmap=" + (on ? "on" : "off"));
        }

        script.Boot(boot);
        foreach ((string path, string value) in Faults?.Writes ?? [])
        {
            script.Echo(value, path);
        }

        foreach ((ulong size, ulong count) in Pages)
        {
            ulong previous = ulong.MaxValue;
            for (int i = 1; i <= Writes; i++)
            {
                ulong target = (ulong)((UInt128)count * (ulong)i / (ulong)Writes);
                if (target != previous)
                {
                    script.Echo(target.ToString(CultureInfo.InvariantCulture), NrHugepagesPath(size));
                    previous = target;
                }
            }
        }

        return script.Build();
    }

    /// <summary>
    /// Run the script on <paramref name="arch"/> with <paramref name="options"/> (the policy, the
    /// seed, Ctrl-C and progress; the site filter is <see cref="Faults"/>'s): the report, headed as
    /// simulate's and with the counts asked for; the plotted points, one before growing and one
    /// after each write of nr_hugepages that ran; the vmemmap's map when <paramref name="map"/>.
    /// </summary>
    public RunResult Run(ArchEntry arch, ScenarioOptions options, bool map = false)
    {
        ArgumentNullException.ThrowIfNull(arch);
        var reporter = new RunReporter("simulate", "pool grown", map, trace => trace.Select((p, i) => (Point: p, Step: i)).Where(x => x.Point.Written is null || x.Point.Written.EndsWith("/nr_hugepages", StringComparison.Ordinal)).Select(x => (x.Step, x.Point.Sample)), Requested);
        return arch.Accept(new ScenarioRunner<RunResult>(Build(), options with { EchoCommands = false, FaultSites = Faults?.Sites }, TextWriter.Null, reporter));
    }
}
