using System.IO;
using System.Text;
using BenchmarkDotNet.Attributes;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Benchmarks;

/// <summary>
/// Whole scripts as `hvo run` runs them (x86_64, no echo, output discarded): what a user waits for.
/// Each invocation boots a machine, so these take seconds: run them with `--job dry` (one launch,
/// one iteration) or `--job short`, and compare rows as ratios within one run (README, Bench).
/// </summary>
[MemoryDiagnoser]
public class ScenarioBenchmarks
{
    private Script _fiveCycles = null!;
    private Script _fill = null!;

    /// <summary>The policies whose restore paths differ: v5.14's copy, v5.18's reset, v6.2's head copy, v6.7's batches, 6.12.114's unreset head copy, v7.1's shared tail.</summary>
    [Params("v5.14", "v5.18", "v6.2", "v6.7", "v6.12.114", "v7.1")]
    public string Policy { get; set; } = "v6.7";

    [GlobalSetup]
    public void Setup()
    {
        // boot mem=64G, then five grow/shrink cycles of 16000 2 MiB pages: host memory must not grow with the cycles.
        var five = new StringBuilder("boot mem=64G\n");
        for (int i = 0; i < 5; i++)
        {
            five.Append("echo 16000 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\n");
        }

        _fiveCycles = ScriptParser.Parse(five.ToString(), "five-cycles.hvo");

        // The 1 TiB fill: 500 000 2 MiB pages in one write (one batch from v6.7).
        _fill = ScriptParser.Parse("boot mem=1T\necho 500000 > /proc/sys/vm/nr_hugepages\n", "fill-1t.hvo");
    }

    [Benchmark]
    public ulong FiveCycles() => Run(_fiveCycles);

    [Benchmark]
    public ulong Fill1T() => Run(_fill);

    private ulong Run(Script script)
    {
        var options = new ScenarioOptions { Policy = HvoPolicy.Find(Policy)!, EchoCommands = false };
        return ArchRegistry.Find("x86_64")!.Accept(new ScenarioRunner<ulong>(script, options, TextWriter.Null, new Total()));
    }

    /// <summary>HugePages_Total at the end, so the run cannot be optimized away (<see cref="BootAllocBenchmarks"/> too).</summary>
    internal sealed class Total : IScenarioReporter<ulong>
    {
        public ulong Report<TArch>(ScenarioSession<TArch> session)
            where TArch : struct, IPagingArch => session.Pool.MemInfo().HugePagesTotal;
    }
}
