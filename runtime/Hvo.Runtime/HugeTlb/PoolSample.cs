using System;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// The pool and HVO's balance at one moment: huge pages in every pool, vmemmap bytes HVO keeps
/// freed (freed less restored), and bytes of PTE tables its splits allocated. The points a plot of
/// memory saved and page-table cost against the pool size is drawn from.
/// </summary>
public readonly record struct PoolSample(ulong HugePages, long SavedBytes, long PageTableBytes)
{
    public static PoolSample Of<TArch>(HugeTlbPool<TArch> pool, HvoOptimizer<TArch> optimizer) where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(optimizer);
        HvoCounters c = optimizer.Total;
        ulong pages = 0;
        foreach (Hstate<TArch> h in pool.Hstates)
        {
            pages += pool.NrHugepages(h);
        }

        return new PoolSample(pages, (c.VmemmapPagesFreed - c.VmemmapPagesRestored) * (long)TArch.PageSize, c.PteTableFrames * (long)TArch.PageSize);
    }
}
