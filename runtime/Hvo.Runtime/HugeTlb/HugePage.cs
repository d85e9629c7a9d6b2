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
/// <remarks>
/// A page of a pool is a view: its state and its place on the lists live in its hstate's flat
/// table (<see cref="HugePageTable"/>), its HPageVmemmapOptimized in the machine's table of
/// compound pages, so the pool holds no object per page (docs/ARCHITECTURE.md §5, host cost).
/// The views of one page are equal and read the same state. A page made with the public
/// constructor keeps its state in itself until its hstate takes it in.
/// </remarks>
public sealed class HugePage : CompoundPage
{
    private HugePageTable? _pool;
    private HugePageFlags _own; // InUse and Surplus while no table holds them

    public HugePage(ulong headPfn, int order, int node, bool fromBoot)
        : base(headPfn, order)
    {
        Node = node;
        FromBoot = fromBoot;
    }

    internal HugePage(HugePageTable pool, ulong headPfn, int order, int node, bool fromBoot)
        : this(headPfn, order, node, fromBoot) => _pool = pool;

    public int Node { get; }

    /// <summary>Allocated at boot from memblock (hugepages= on the command line).</summary>
    public bool FromBoot { get; }

    public HugePageState State
    {
        get => Has(HugePageFlags.InUse) ? HugePageState.InUse : HugePageState.Free;
        internal set => Set(HugePageFlags.InUse, value == HugePageState.InUse);
    }

    /// <summary>Counted as surplus (HPageTemporary / over nr_hugepages) rather than persistent.</summary>
    public bool Surplus
    {
        get => Has(HugePageFlags.Surplus);
        internal set => Set(HugePageFlags.Surplus, value);
    }

    /// <summary>The hstate's table this page's state lives in, once taken in.</summary>
    internal HugePageTable? Pool => _pool;

    /// <summary>The flags the page held before a table took it in.</summary>
    internal HugePageFlags OwnFlags => _own | (FromBoot ? HugePageFlags.FromBoot : 0);

    /// <summary>Taken into <paramref name="pool"/>: the state is read from there from now on.</summary>
    internal void Attach(HugePageTable pool) => _pool = pool;

    public override string ToString() => $"huge page 0x{HeadPfn:x} order {Order} node {Node}{(VmemmapOptimized ? " optimized" : string.Empty)}";

    private bool Has(HugePageFlags flag) => _pool is { } p ? p.Has(HeadPfn, flag) : (_own & flag) != 0;

    private void Set(HugePageFlags flag, bool on)
    {
        if (_pool is { } p)
        {
            p.Set(HeadPfn, flag, on);
        }
        else
        {
            _own = on ? _own | flag : _own & ~flag;
        }
    }
}
