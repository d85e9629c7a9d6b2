using BenchmarkDotNet.Attributes;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Benchmarks;

/// <summary>
/// The buddy allocator on a 64 GiB x86-64 machine whose boot vmemmap (1 GiB, PMD-mapped) memblock
/// kept. An alloc+free pair from fresh free lists splits a max-order block down to the order and
/// merges it back up (the kernel's per-cpu lists would absorb most of that; they are not
/// modelled); the "warm" pair finds an order-0 page whose buddy is in use, so nothing splits or
/// merges.
/// </summary>
[MemoryDiagnoser]
public class AllocatorBenchmarks
{
    private PageAllocator _allocator = null!;
    private PageAllocator _warm = null!;

    [GlobalSetup]
    public void Setup()
    {
        _allocator = Boot();
        _warm = Boot();
        if (!_warm.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong a)
            || !_warm.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out _))
        {
            throw new System.InvalidOperationException("benchmark machine has no memory");
        }

        _warm.FreePages(a, 0, FrameOwner.Buddy);
    }

    [Benchmark(Baseline = true)]
    public ulong Order0AllocFree() => AllocFree(_allocator, 0, Gfp.Kernel, FrameOwner.Buddy);

    [Benchmark]
    public ulong Order0AllocFreeWarm() => AllocFree(_warm, 0, Gfp.Kernel, FrameOwner.Buddy);

    [Benchmark]
    public ulong Order9AllocFree() => AllocFree(_allocator, 9, Gfp.Comp, FrameOwner.HugePage);

    private static ulong AllocFree(PageAllocator allocator, int order, Gfp gfp, FrameOwner owner)
    {
        if (!allocator.TryAllocPages(0, order, gfp, AllocSite.Other, owner, out ulong pfn))
        {
            throw new System.InvalidOperationException("allocation failed");
        }

        allocator.FreePages(pfn, order, owner);
        return pfn;
    }

    private static PageAllocator Boot()
    {
        var layout = MachineLayout.For(ArchRegistry.Find("x86_64")!.Info, 64UL << 30);
        var memblock = new BootAllocator(layout, FrameOwnerTable.For(layout));
        ulong vmemmap = layout.Frames * 64 / layout.PageSize;
        for (ulong done = 0; done < vmemmap; done += 512)
        {
            if (!memblock.TryAlloc(0, 512, 512, FrameOwner.BootVmemmap, out _))
            {
                throw new System.InvalidOperationException("no room for the boot vmemmap");
            }
        }

        return new PageAllocator(memblock);
    }
}
