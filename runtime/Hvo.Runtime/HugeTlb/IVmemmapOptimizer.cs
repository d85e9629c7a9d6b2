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

    /// <summary>hugetlb_vmemmap_optimize_folios: a batch of fresh pages (one by one where the policy does not batch).</summary>
    void OptimizeBatch(IReadOnlyList<HugePage> pages);

    /// <summary>hugetlb_vmemmap_restore: back the page's vmemmap with real pages again before it leaves the pool.</summary>
    RestoreResult Restore(HugePage page);
}
