using System.IO;
using BenchmarkDotNet.Attributes;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Benchmarks;

/// <summary>
/// Boot-time huge pages (hugepages= on the boot line) under v6.13's parallel allocation
/// (hugetlb_pages_alloc_boot), on 1 and 2 host threads: the ratio of the rows is the scaling
/// (README, Bench). Each invocation boots a 1 TiB machine: run with `--job dry` or `--job short`.
/// </summary>
[MemoryDiagnoser]
public class BootAllocBenchmarks
{
    private Script _boot = null!;

    [Params(1, 2)]
    public int HostThreads { get; set; } = 1;

    [GlobalSetup]
    public void Setup() => _boot = ScriptParser.Parse("boot mem=1T hugepages=500000\n", "boot-1t.hvo");

    [Benchmark]
    public ulong Boot1T()
    {
        var options = new ScenarioOptions { Policy = HvoPolicy.Find("v6.13")!, EchoCommands = false, HostThreads = HostThreads };
        return ArchRegistry.Find("x86_64")!.Accept(new ScenarioRunner<ulong>(_boot, options, TextWriter.Null, new ScenarioBenchmarks.Total()));
    }
}
