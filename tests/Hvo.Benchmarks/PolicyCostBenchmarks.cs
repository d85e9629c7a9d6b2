using BenchmarkDotNet.Attributes;
using Hvo.HugeTlb;

namespace Hvo.Benchmarks;

/// <summary>
/// One optimize+restore of an x86_64 2 MiB page (its vmemmap PMD split already) under each
/// milestone that changed what the two calls do: v5.14 (the seed), v5.18 (one page kept,
/// reset_struct_pages), v6.2 (a fresh head copy), v6.7 (batching, not used by a single page),
/// v6.12 (a grace period when optimizing), v7.1 (the shared tail page, no grace period).
/// Compare each row with v5.14 as a ratio in one run; MemoryDiagnoser's Allocated column must
/// read 0 B (README, Bench).
/// </summary>
[MemoryDiagnoser]
public class PolicyCostBenchmarks
{
    private HvoRunner<Arch.X86_64> _runner = null!;

    [Params("v5.14", "v5.18", "v6.2", "v6.7", "v6.12", "v7.1")]
    public string Policy { get; set; } = "v5.14";

    [GlobalSetup]
    public void Setup()
    {
        _runner = new HvoRunner<Arch.X86_64>(2UL << 20, HvoPolicy.Find(Policy)!);
        _runner.OptimizeAndRestore(); // the split happens once; the benchmark measures what follows
    }

    [GlobalCleanup]
    public void Cleanup() => _runner.Dispose();

    [Benchmark]
    public RestoreResult OptimizeAndRestore() => _runner.OptimizeAndRestore();
}
