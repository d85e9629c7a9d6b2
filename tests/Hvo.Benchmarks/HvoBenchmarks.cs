using System;
using System.Collections.Generic;
using BenchmarkDotNet.Attributes;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Benchmarks;

/// <summary>
/// One huge page optimized and restored again (hugetlb_vmemmap_optimize + hugetlb_vmemmap_restore)
/// on a booted machine, in steady state: the vmemmap PMDs were split by the first round and stay
/// split, as in the kernel.
/// </summary>
[MemoryDiagnoser]
public class HvoBenchmarks
{
    private HvoRunner _runner = null!;

    [Params("x86_64", "arm64-4k")]
    public string Arch { get; set; } = "x86_64";

    [Params("2M", "1G")]
    public string Size { get; set; } = "2M";

    [Params("v5.14", "v6.7")]
    public string Policy { get; set; } = "v6.7";

    [GlobalSetup]
    public void Setup()
    {
        ulong size = Size == "1G" ? 1UL << 30 : 2UL << 20;
        _runner = ArchRegistry.Find(Arch)!.Accept(new HvoRunner.Factory(size, HvoPolicy.Find(Policy)!));
        _runner.OptimizeAndRestore(); // splits happen once; the benchmark measures what follows
    }

    [GlobalCleanup]
    public void Cleanup() => _runner.Dispose();

    [Benchmark]
    public RestoreResult OptimizeAndRestore() => _runner.OptimizeAndRestore();
}

public abstract class HvoRunner : IDisposable
{
    public abstract RestoreResult OptimizeAndRestore();

    public abstract void Dispose();

    public sealed class Factory(ulong size, HvoPolicy policy) : IArchVisitor<HvoRunner>
    {
        public HvoRunner Visit<TArch>() where TArch : struct, IPagingArch => new HvoRunner<TArch>(size, policy);
    }
}

public sealed class HvoRunner<TArch> : HvoRunner where TArch : struct, IPagingArch
{
    private readonly Machine<TArch> _machine;
    private readonly HvoOptimizer<TArch> _optimizer;
    private readonly HugePage _page;

    public HvoRunner(ulong size, HvoPolicy policy)
    {
        // The break-before-make checker stays off: on arm64 it reports (and formats) every remap,
        // which measures the checker, not HVO.
        _machine = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = 8UL << 30, CheckBreakBeforeMake = false });
        _optimizer = new HvoOptimizer<TArch>(_machine, policy);
        int order = (int)Math.Log2(size >> TArch.PageShift);
        ulong pfn;
        bool ok = order <= _machine.Layout.MaxOrder
            ? _machine.Pages.TryAllocPages(0, order, Gfp.Comp, AllocSite.HugePage, FrameOwner.HugePage, out pfn)
            : _machine.Pages.TryAllocContigPages(0, 1UL << order, Gfp.Kernel, AllocSite.HugePage, FrameOwner.HugePage, out pfn);
        if (!ok)
        {
            throw new InvalidOperationException("no huge page for the benchmark");
        }

        _page = new HugePage(pfn, order, 0, fromBoot: false);
        _machine.Compounds.Prep(_page);
    }

    public override RestoreResult OptimizeAndRestore()
    {
        _optimizer.Optimize(_page);
        if (!_page.VmemmapOptimized)
        {
            throw new InvalidOperationException("the page was not optimized");
        }

        return _optimizer.Restore(_page);
    }

    /// <summary>As <see cref="OptimizeAndRestore"/>, then free_pages_prepare's checks of the page (which end the compound page: prepared again after).</summary>
    public int OptimizeRestoreAndCheck()
    {
        OptimizeAndRestore();
        int bad = _machine.FreeChecks.Prepare(_page.HeadPfn, _page.Order);
        _machine.Compounds.Prep(_page);
        return bad;
    }

    public override void Dispose() => _machine.Dispose();
}
