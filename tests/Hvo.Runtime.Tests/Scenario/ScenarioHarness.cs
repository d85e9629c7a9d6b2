using System.Collections.Generic;
using System.IO;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>HVO's counters at the end of a script.</summary>
internal sealed record CounterValues(long Freed, long Restored, long Tables, long Splits, long OptimizeFailures, long RestoreFailures, long Flushes, long OptimizedPages, long NetBytes, long TableFrames);

/// <summary>What a script left: its transcript, the shell errors it printed, broken invariants, counters and the files read at the end.</summary>
internal sealed record ScenarioOutcome(
    string Transcript, int ShellErrors, IReadOnlyList<string> Invariants, CounterValues Counters, MemInfo MemInfo,
    ArchInfo Arch, HvoPolicy Policy, IReadOnlyDictionary<string, string> Files, long SharedTails = 0, long GracePeriods = 0, ulong StructPagesInitialized = 0)
{
    /// <summary>The script's exit status, as a shell's.</summary>
    public int ExitStatus { get; init; }

    /// <summary>Commands that failed with nothing testing them.</summary>
    public IReadOnlyList<FailedCommand> Failed { get; init; } = [];

    /// <summary>What the shell printed for the user beside the transcript (hints).</summary>
    public string Diagnostics { get; init; } = string.Empty;

    /// <summary>The pool's samples: before the commands and after each write.</summary>
    public IReadOnlyList<TracePoint> Trace { get; init; } = [];

    /// <summary>Pages on the per-CPU lists at the end (/proc/zoneinfo's pagesets), which MemFree does not count.</summary>
    public long PcpPages { get; init; }

    /// <summary>Free memory in kB: MemFree plus the pages on the per-CPU lists.</summary>
    public ulong FreeKb => MemInfo.MemFreeKb + ((ulong)PcpPages * Arch.PageSize / 1024);
}

/// <summary>Runs scripts on the architecture of the registry named, without the command line.</summary>
internal static class ScenarioHarness
{
    public const ulong GiB = 1UL << 30;

    /// <summary>Run <paramref name="text"/> on <paramref name="arch"/>; without a boot line the machine has 1 GiB.</summary>
    public static ScenarioOutcome Run(string arch, string text, HvoPolicy? policy = null, bool echo = false, params string[] readAtEnd)
    {
        Script script = ScriptParser.Parse(text, "test.hvo");
        var options = TestMachines.Options(policy ?? HvoPolicy.Newest) with { EchoCommands = echo, DefaultMemoryBytes = GiB };
        return Run(arch, script, options, readAtEnd);
    }

    public static ScenarioOutcome Run(string arch, Script script, ScenarioOptions options, params string[] readAtEnd)
    {
        var output = new StringWriter { NewLine = "\n" };
        var diagnostics = new StringWriter { NewLine = "\n" };
        ScenarioOutcome o = Archs.Run(arch, new ScenarioRunner<ScenarioOutcome>(script, options with { Diagnostics = diagnostics }, output, new Probe(output, readAtEnd)));
        return o with { Diagnostics = diagnostics.ToString() };
    }

    /// <summary>The transcript's lines (no final empty one).</summary>
    public static string[] Lines(this ScenarioOutcome o) => o.Transcript.Split('\n')[..^1];

    private sealed class Probe(StringWriter output, string[] reads) : IScenarioReporter<ScenarioOutcome>
    {
        public ScenarioOutcome Report<TArch>(ScenarioSession<TArch> session)
            where TArch : struct, IPagingArch
        {
            HvoCounters c = session.Optimizer.Total;
            var files = new Dictionary<string, string>();
            foreach (string path in reads)
            {
                files[path] = session.Files.Read(path, out string text) == Errno.None ? text : "<" + session.Files.Read(path, out _) + ">";
            }

            return new ScenarioOutcome(
                output.ToString(),
                session.ShellErrors,
                session.Invariants(),
                new CounterValues(c.VmemmapPagesFreed, c.VmemmapPagesRestored, c.PteTablesAllocated, c.PmdsSplit, c.OptimizeFailures, c.RestoreFailures, c.TlbFlushes, c.OptimizedPages, c.NetBytesSaved(TArch.PageSize), c.PteTableFrames),
                session.Pool.MemInfo(),
                TArch.Info,
                session.Optimizer.Policy,
                files,
                c.SharedTailPages,
                c.GracePeriods,
                session.Machine.StructPagesInitializedAtBoot)
            {
                PcpPages = session.Machine.Pages.PcpPages,
                ExitStatus = session.ExitStatus,
                Failed = session.Shell.Failed,
                Trace = session.Trace,
            };
        }
    }
}
