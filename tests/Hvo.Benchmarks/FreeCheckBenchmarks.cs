using BenchmarkDotNet.Attributes;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Benchmarks;

/// <summary>
/// What free_pages_prepare's struct-page checks (Vmemmap/FreePageChecks.cs) add to freeing an HVO
/// page: optimize and restore, with and without the checks of the restored struct pages (which
/// end the compound page; it is prepared again for the next round). Compare as a ratio in one run.
/// </summary>
[MemoryDiagnoser]
public class FreeCheckBenchmarks
{
    private HvoRunner<Arch.X86_64> _runner = null!;

    [GlobalSetup]
    public void Setup()
    {
        _runner = new HvoRunner<Arch.X86_64>(2UL << 20, HvoPolicy.Find("v6.12.111")!);
        _runner.OptimizeAndRestore();
    }

    [GlobalCleanup]
    public void Cleanup() => _runner.Dispose();

    [Benchmark(Baseline = true)]
    public RestoreResult OptimizeAndRestore() => _runner.OptimizeAndRestore();

    [Benchmark]
    public int OptimizeRestoreAndCheck() => _runner.OptimizeRestoreAndCheck();
}
