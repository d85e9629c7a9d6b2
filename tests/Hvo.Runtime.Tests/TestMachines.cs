using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests;

/// <summary>Machines for a policy in tests: the entry writer it was written for, and CPUs that allow it.</summary>
public static class TestMachines
{
    /// <summary>The policy's entry writer; the kernel versions' policies write directly, as mainline does.</summary>
    public static EntryWriterKind WriterFor(HvoPolicy policy) => policy.RequiredWriter ?? EntryWriterKind.Direct;

    /// <summary>FEAT_BBM level 2 where the writer needs it, else none.</summary>
    public static int BbmLevelFor(HvoPolicy policy) => policy.RequiredWriter == EntryWriterKind.Bbml2 ? 2 : 0;

    /// <summary>Can a machine of <paramref name="arch"/> have the entry writer <paramref name="policy"/> needs (clear-AF needs an access flag)?</summary>
    public static bool CanRun(HvoPolicy policy, ArchInfo arch) =>
        new MachineConfig { EntryWriter = WriterFor(policy), BreakBeforeMakeLevel = BbmLevelFor(policy) }.EntryWriterProblem(arch) is null;

    /// <summary>A script run of <paramref name="policy"/> on the machine it was written for.</summary>
    public static ScenarioOptions Options(HvoPolicy policy) =>
        new() { Policy = policy, EntryWriter = WriterFor(policy), BbmLevel = BbmLevelFor(policy) };

    /// <summary>
    /// Free memory as the kernel has it, in bytes: MemFree (NR_FREE_PAGES, the buddy lists) plus the
    /// pages waiting on the per-CPU lists (/proc/zoneinfo's pagesets' count), which MemFree does not
    /// count. What the HVO arithmetic moves, whichever list a freed page waits on.
    /// </summary>
    public static ulong FreeBytes<TArch>(Machine<TArch> m) where TArch : struct, IPagingArch =>
        m.MemFreeBytes + ((ulong)m.Pages.PcpPages << TArch.PageShift);

    /// <summary>Free pages of node <paramref name="nid"/>: its zones' buddy pages and the pages on their per-CPU lists.</summary>
    public static long NodeFreePages<TArch>(Machine<TArch> m, int nid) where TArch : struct, IPagingArch =>
        m.Pages.NodeFreePages(nid) + m.Pages.Zones.Where(z => z.Node == nid && m.Pages.Cpus > 0)
            .Sum(z => Enumerable.Range(0, m.Pages.Cpus).Sum(cpu => (long)m.Pages.Pageset(z, cpu).Count));

    /// <summary>The <c>hvo</c> options that give <paramref name="policy"/> its machine (none for the kernel versions' policies).</summary>
    public static string[] CliArgs(HvoPolicy policy) => policy.RequiredWriter switch
    {
        null => [],
        EntryWriterKind.Bbml2 => ["--entry-writer", "bbml2", "--cpu", "bbml2"],
        { } w => ["--entry-writer", HvoPolicy.WriterName(w)],
    };
}
