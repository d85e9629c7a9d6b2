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
    private HugePageState _state;
    private bool _surplus;

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
        get => _pool is { } p ? p.StateOf(HeadPfn) : _state;
        internal set
        {
            if (_pool is { } p)
            {
                p.SetState(HeadPfn, value);
            }
            else
            {
                _state = value;
            }
        }
    }

    /// <summary>Counted as surplus (HPageTemporary / over nr_hugepages) rather than persistent.</summary>
    public bool Surplus
    {
        get => _pool is { } p ? p.IsSurplus(HeadPfn) : _surplus;
        internal set
        {
            if (_pool is { } p)
            {
                p.SetSurplus(HeadPfn, value);
            }
            else
            {
                _surplus = value;
            }
        }
    }

    /// <summary>The hstate's table this page's state lives in, once taken in.</summary>
    internal HugePageTable? Pool => _pool;

    internal HugePageState OwnState => _state;

    internal bool OwnSurplus => _surplus;

    /// <summary>Taken into <paramref name="pool"/>: the state is read from there from now on.</summary>
    internal void Attach(HugePageTable pool) => _pool = pool;

    public override string ToString() => $"huge page 0x{HeadPfn:x} order {Order} node {Node}{(VmemmapOptimized ? " optimized" : string.Empty)}";
}
