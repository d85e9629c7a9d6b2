using System;

namespace Hvo.Memory;

/// <summary>
/// Get-free-pages flags: how an allocation may be served. <see cref="Kernel"/> (no flag) is
/// GFP_KERNEL: any zone up to ZONE_NORMAL, on the requested node first and then the others.
/// </summary>
[Flags]
public enum Gfp
{
    /// <summary>GFP_KERNEL.</summary>
    Kernel = 0,

    /// <summary>__GFP_THISNODE: only the requested node's zones, no fallback to other nodes.</summary>
    ThisNode = 1 << 0,

    /// <summary>
    /// __GFP_NORETRY: give up after one round of direct reclaim instead of retrying and invoking
    /// the OOM killer. Nothing is reclaimable in this simulator, so that round makes no progress and
    /// the per-CPU lists are not drained (__alloc_pages_direct_reclaim drains them only after
    /// progress): such a request fails with the pages on the lists unseen. A request without it
    /// drains the lists and tries once more, in place of the OOM killer, which is not modelled
    /// (PageAllocator.TryAllocPages). Restore-style callers carry it; the fault-injection filter
    /// can select them by it.
    /// </summary>
    NoRetry = 1 << 1,

    /// <summary>__GFP_NOWARN: a failure is not reported (warn_alloc); counted apart.</summary>
    NoWarn = 1 << 2,

    /// <summary>__GFP_COMP: a compound page; split_page refuses it.</summary>
    Comp = 1 << 3,

    /// <summary>__GFP_DMA32: zones up to ZONE_DMA32 (ZONE_NORMAL where the architecture has none).</summary>
    Dma32 = 1 << 4,

    /// <summary>__GFP_DMA: zones up to ZONE_DMA (ZONE_NORMAL where the architecture has none).</summary>
    Dma = 1 << 5,

    /// <summary>
    /// __GFP_MOVABLE: the page can be migrated, so ZONE_MOVABLE may serve it (first, as the highest
    /// zone): GFP_HIGHUSER_MOVABLE, what HugeTLB asks for a size it can migrate (htlb_alloc_mask).
    /// </summary>
    Movable = 1 << 6,
}
