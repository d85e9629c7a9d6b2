using System.Collections.Generic;
using System.IO;
using System.Linq;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Memory.Hotplug;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Hotplug;

/// <summary>A memory block as a test sees it at the end of a script.</summary>
internal sealed record BlockView(ulong Id, ulong StartPfn, string State, string ValidZones, ulong SelfHostedFrames, bool HotAdded);

/// <summary>A pool page as a test sees it at the end of a script.</summary>
internal sealed record PageView(ulong HeadPfn, ulong Frames, bool Optimized, bool InUse);

/// <summary>What a script left, with what memory hotplug and both invariant checkers say.</summary>
internal sealed record HotplugOutcome(
    string Transcript,
    int ShellErrors,
    IReadOnlyList<string> Invariants,
    MemInfo MemInfo,
    CounterValues Counters,
    IReadOnlyDictionary<string, string> Files,
    ArchInfo Arch,
    ulong BlockFrames,
    IReadOnlyList<BlockView> Blocks,
    IReadOnlyList<PageView> Pages,
    long HotplugVmemmapFrames,
    long HotplugTableFrames,
    long OfflineFrames,
    long AbsentFrames,
    IReadOnlyList<string> KernelLog,
    IReadOnlyList<string> Notes,
    long PcpPages)
{
    /// <summary>Free memory in kB: MemFree plus the pages on the per-CPU lists, which MemFree does not count.</summary>
    public ulong FreeKb => MemInfo.MemFreeKb + ((ulong)PcpPages * Arch.PageSize / 1024);

    /// <summary>meminfo with MemFree counting the per-CPU lists' pages too (<see cref="FreeKb"/>).</summary>
    public MemInfo FreeMemInfo => MemInfo with { MemFreeKb = FreeKb };

    public BlockView Block(ulong id) => Blocks.Single(b => b.Id == id);

    /// <summary>Pool pages with frames in block <paramref name="id"/>.</summary>
    public IEnumerable<PageView> PagesIn(ulong id) =>
        Pages.Where(p => p.HeadPfn < (id + 1) * BlockFrames && p.HeadPfn + p.Frames > id * BlockFrames);

    public string[] Lines => Transcript.Split('\n')[..^1];
}

/// <summary>Work a test does on the booted session after the script, before the outcome is taken (notes say what it saw).</summary>
internal interface IHotplugStep
{
    void Run<TArch>(ScenarioSession<TArch> session, List<string> notes) where TArch : struct, IPagingArch;
}

/// <summary>
/// Runs a script on a machine of <paramref name="machineBytes"/> whose boot line's <c>mem=</c> leaves
/// the rest to hot-add, in strict mode, and checks the session's invariants and every one of
/// docs/ARCHITECTURE.md §8 (<see cref="Invariants{TArch}"/>) at the end.
/// </summary>
internal static class HotplugRig
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;

    public static HotplugOutcome Run(string arch, string text, HvoPolicy? policy = null, ulong machineBytes = 2 * GiB, IHotplugStep? step = null, params string[] readAtEnd)
    {
        Script script = ScriptParser.Parse(text, "hotplug.hvo");
        var options = TestMachines.Options(policy ?? HvoPolicy.Newest) with { EchoCommands = false, DefaultMemoryBytes = machineBytes, Strict = true };
        var output = new StringWriter { NewLine = "\n" };
        return Archs.Run(arch, new ScenarioRunner<HotplugOutcome>(script, options, output, new Reporter(output, step, readAtEnd)));
    }

    private sealed class Reporter(StringWriter output, IHotplugStep? step, string[] reads) : IScenarioReporter<HotplugOutcome>
    {
        public HotplugOutcome Report<TArch>(ScenarioSession<TArch> session)
            where TArch : struct, IPagingArch
        {
            var notes = new List<string>();
            step?.Run(session, notes);
            var files = new Dictionary<string, string>();
            foreach (string path in reads)
            {
                Errno e = session.Files.Read(path, out string text);
                files[path] = e == Errno.None ? text : "<" + e + ">";
            }

            Machine<TArch> m = session.Machine;
            MemoryHotplug<TArch> hp = m.Hotplug;
            List<string> broken = [.. session.Invariants(), .. new Invariants<TArch>(m, session.Pool).CheckAll()];
            HvoCounters c = session.Optimizer.Total;
            return new HotplugOutcome(
                output.ToString(),
                session.ShellErrors,
                broken,
                session.Pool.MemInfo(),
                new CounterValues(c.VmemmapPagesFreed, c.VmemmapPagesRestored, c.PteTablesAllocated, c.PmdsSplit, c.OptimizeFailures, c.RestoreFailures, c.TlbFlushes, c.OptimizedPages, c.NetBytesSaved(TArch.PageSize), c.PteTableFrames),
                files,
                TArch.Info,
                hp.BlockFrames,
                [.. hp.Blocks.Select(b => new BlockView(b.Id, b.StartPfn, b.State.ToString(), hp.ValidZones(b), b.SelfHostedFrames, b.HotAdded))],
                [.. session.Pool.Hstates.SelectMany(session.Pool.Pages).Select(p => new PageView(p.HeadPfn, p.Frames, p.VmemmapOptimized, p.State == HugePageState.InUse))],
                hp.VmemmapFrames,
                hp.TableFrames,
                m.Owners.Count(FrameOwner.Offline),
                m.Owners.Count(FrameOwner.Absent),
                session.KernelLog,
                notes,
                m.Pages.PcpPages);
        }
    }
}
