using System.Collections.Generic;

namespace Hvo.HugeTlb;

/// <summary>Result of restoring a page's vmemmap.</summary>
public enum RestoreResult
{
    /// <summary>The vmemmap is fully backed again (or never was optimized).</summary>
    Ok,

    /// <summary>-ENOMEM: the pages could not be allocated; the page stays optimized and cannot be freed.</summary>
    NoMemory,
}

/// <summary>
/// The HVO policy as the HugeTLB pool sees it (mm/hugetlb_vmemmap.c's entry points). The pool
/// calls it after preparing a fresh page and before giving a page back to the buddy allocator.
/// </summary>
public interface IVmemmapOptimizer
{
    /// <summary>The policy's name: the kernel version it follows ("v5.14", "v6.7", ...).</summary>
    string Name { get; }

    /// <summary>
    /// hugetlb_vmemmap_optimize: free the page's tail vmemmap pages if HVO is enabled now, the
    /// size is optimizable and the page is not optimized yet. On failure the page stays fully
    /// backed and unoptimized; the policy counts why.
    /// </summary>
    void Optimize(HugePage page);

    /// <summary>
    /// v6.7's prep_and_add_allocated_folios: the pool allocates all the pages of a write (or of a
    /// boot-time request) first and hands them over as one batch. When false, as before v6.7, each
    /// page is optimized and added to the pool as soon as it is allocated, so the vmemmap it frees
    /// counts toward the watermark of the same write's next allocation.
    /// </summary>
    bool OptimizesInBatches { get; }

    /// <summary>
    /// fde1c4ecf916 (v6.7): memblock leaves a boot-time gigantic page's tail struct pages
    /// uninitialized; hugetlb initializes only those of the head vmemmap page when HVO then
    /// optimizes the page, all of them when it does not.
    /// </summary>
    bool SkipsBootTailInit => false;

    /// <summary>hugetlb_vmemmap_optimize_folios: a batch of fresh pages (one by one where the policy does not batch).</summary>
    void OptimizeBatch(IReadOnlyList<HugePage> pages);

    /// <summary>
    /// hugetlb_vmemmap_restore: back the page's vmemmap with real pages again before it leaves the
    /// pool. <paramref name="inBatch"/>: one of a batch that <see cref="SynchronizeBeforeRestoring"/> began.
    /// </summary>
    RestoreResult Restore(HugePage page, bool inBatch = false);

    /// <summary>
    /// The page's frames went back to the page allocator (after <see cref="Restore"/>): where the
    /// policy collapses on free, the split vmemmap PMDs of its struct pages that hold no optimized
    /// page any more become leaves again (<see cref="HvoPolicy.CollapseOnFree"/>). No kernel does this.
    /// </summary>
    void PageFreed(HugePage page)
    {
    }

    /// <summary>What hugetlb_vmemmap_restore_folios does once before restoring a batch (a grace period, v6.10 to v7.0).</summary>
    void SynchronizeBeforeRestoring(IReadOnlyList<HugePage> pages)
    {
    }

    /// <summary>
    /// What hugetlb_vmemmap_restore_folios does once it stops, having restored <paramref name="restored"/>
    /// pages of its batch (<see cref="Restore"/> with inBatch): from v6.7, whose restores in a batch
    /// leave their flush (VMEMMAP_REMAP_NO_TLB_FLUSH), one flush_tlb_all when any was restored.
    /// </summary>
    void FinishRestoring(int restored)
    {
    }
}
