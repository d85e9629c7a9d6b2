using Hvo.Vmemmap;

namespace Hvo.HugeTlb;

/// <summary>Where a huge page is in its life in the pool.</summary>
public enum HugePageState
{
    /// <summary>On its hstate's free list (hugepage_freelists), ready to be handed out.</summary>
    Free,

    /// <summary>Taken into use (mapped by a task, refcount held).</summary>
    InUse,
}

/// <summary>
/// One HugeTLB page (the kernel's folio of the hstate's order): its frames, its node, and the
/// flags the kernel keeps in the head struct page that the simulation keeps here too.
/// </summary>
public sealed class HugePage : CompoundPage
{
    public HugePage(ulong headPfn, int order, int node, bool fromBoot)
        : base(headPfn, order)
    {
        Node = node;
        FromBoot = fromBoot;
    }

    public int Node { get; }

    /// <summary>Allocated at boot from memblock (hugepages= on the command line).</summary>
    public bool FromBoot { get; }

    public HugePageState State { get; set; }

    /// <summary>Counted as surplus (HPageTemporary / over nr_hugepages) rather than persistent.</summary>
    public bool Surplus { get; set; }

    public override string ToString() => $"huge page 0x{HeadPfn:x} order {Order} node {Node}{(VmemmapOptimized ? " optimized" : string.Empty)}";
}
