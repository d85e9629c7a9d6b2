using System;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// struct hstate: one huge page size of the architecture, with its free lists per node
/// (hugepage_freelists), the pages in use (hugepage_activelist), the pool counters globally and
/// per node, and the round-robin positions (next_nid_to_alloc, next_nid_to_free) that persist
/// between writes. The counters are the kernel's: surplus is a count per node, not a property of
/// particular pages (<see cref="HugePage.Surplus"/> is the pool's per-page view of it). Only
/// <see cref="HugeTlbPool{TArch}"/> changes an hstate.
/// </summary>
public sealed class Hstate<TArch> where TArch : struct, IPagingArch
{
    private readonly HugePageTable _pages; // the free lists and every page's state, flat
    private readonly HashSet<HugePage>[] _active;
    private readonly HashSet<HugePage>[] _surplusPages;
    private readonly ulong[] _nrHugePagesNode;
    private readonly ulong[] _freeHugePagesNode;
    private readonly ulong[] _surplusHugePagesNode;

    /// <param name="index">hstate_index.</param>
    /// <param name="size">The huge page size in bytes.</param>
    /// <param name="nodes">The machine's nodes.</param>
    /// <param name="maxOrder">The buddy allocator's largest order (larger sizes are gigantic).</param>
    /// <param name="endPfn">One past the last pfn a page may have.</param>
    /// <param name="attach">Makes a page view read HPageVmemmapOptimized from the machine's compound pages.</param>
    internal Hstate(int index, ulong size, int nodes, int maxOrder, ulong endPfn, Action<Vmemmap.CompoundPage>? attach)
    {
        if (!BitOperations.IsPow2(size) || size <= TArch.PageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, $"a huge page is a power of two larger than the {TArch.PageSize}-byte page");
        }

        Index = index;
        Size = size;
        Order = BitOperations.Log2(size) - TArch.PageShift;
        IsGigantic = Order > maxOrder;
        Nodes = nodes;
        _pages = new HugePageTable(Order, endPfn, nodes, attach);
        _active = new HashSet<HugePage>[nodes];
        _surplusPages = new HashSet<HugePage>[nodes];
        for (int nid = 0; nid < nodes; nid++)
        {
            _active[nid] = [];
            _surplusPages[nid] = [];
        }

        _nrHugePagesNode = new ulong[nodes];
        _freeHugePagesNode = new ulong[nodes];
        _surplusHugePagesNode = new ulong[nodes];
    }

    /// <summary>hstate_index: position in the pool's hstates, smallest size first.</summary>
    public int Index { get; }

    /// <summary>huge_page_size, in bytes.</summary>
    public ulong Size { get; }

    /// <summary>huge_page_order: log2 of the base pages in one huge page.</summary>
    public int Order { get; }

    /// <summary>pages_per_huge_page.</summary>
    public ulong Frames => 1UL << Order;

    public ulong SizeKb => Size >> 10;

    /// <summary>The sysfs directory name: <c>hugepages-2048kB</c>.</summary>
    public string Name => string.Create(CultureInfo.InvariantCulture, $"hugepages-{SizeKb}kB");

    /// <summary>hstate_is_gigantic: larger than the buddy allocator's largest block; allocated as a contiguous range.</summary>
    public bool IsGigantic { get; }

    public int Nodes { get; }

    /// <summary>demote_order's hstate: the next smaller size, or null when there is none (no demote file).</summary>
    public Hstate<TArch>? DemoteTarget { get; internal set; }

    /// <summary>max_huge_pages: the persistent count of the last resize, what /proc/sys/vm/nr_hugepages reads.</summary>
    public ulong MaxHugePages { get; internal set; }

    /// <summary>nr_huge_pages: every page of the pool, surplus included (sysfs nr_hugepages, HugePages_Total).</summary>
    public ulong NrHugePages { get; private set; }

    /// <summary>free_huge_pages: pages on the free lists.</summary>
    public ulong FreeHugePages { get; private set; }

    /// <summary>surplus_huge_pages: pages over the persistent pool size, freed when they become free.</summary>
    public ulong SurplusHugePages { get; private set; }

    /// <summary>resv_huge_pages: reservations are not modelled, so always 0.</summary>
    public ulong ResvHugePages => 0;

    /// <summary>nr_overcommit_huge_pages: how many surplus pages allocations may add.</summary>
    public ulong NrOvercommitHugePages { get; internal set; }

    /// <summary>persistent_huge_pages: nr_huge_pages - surplus_huge_pages.</summary>
    public ulong PersistentHugePages => NrHugePages - SurplusHugePages;

    /// <summary>next_nid_to_alloc: where the next interleaved allocation starts.</summary>
    public int NextNidToAlloc { get; internal set; }

    /// <summary>next_nid_to_free: where the next interleaved free starts.</summary>
    public int NextNidToFree { get; internal set; }

    /// <summary>nr_huge_pages_node[nid].</summary>
    public ulong NrHugePagesNode(int nid) => _nrHugePagesNode[CheckNode(nid)];

    /// <summary>free_huge_pages_node[nid].</summary>
    public ulong FreeHugePagesNode(int nid) => _freeHugePagesNode[CheckNode(nid)];

    /// <summary>surplus_huge_pages_node[nid].</summary>
    public ulong SurplusHugePagesNode(int nid) => _surplusHugePagesNode[CheckNode(nid)];

    /// <summary>hugepage_freelists[nid], head (the next page dequeued) first.</summary>
    public IEnumerable<HugePage> FreeList(int nid) => _pages.FreeList(CheckNode(nid));

    /// <summary>The head pfns of hugepage_freelists[nid], head first: <see cref="FreeList"/> without a view per page.</summary>
    internal IEnumerable<ulong> FreeHeads(int nid) => _pages.FreeHeads(CheckNode(nid));

    /// <summary>The pages of node <paramref name="nid"/> taken into use.</summary>
    public IReadOnlyCollection<HugePage> Active(int nid) => _active[CheckNode(nid)];

    public override string ToString() => Name;

    /// <summary>hugetlb_add_hstate's node positions; first_memory_node is 0.</summary>
    internal void ResetNodePositions() => (NextNidToAlloc, NextNidToFree) = (0, 0);

    /// <summary>hstate_next_node_to_alloc: the node to try now (only <paramref name="only"/> when given), advancing the position.</summary>
    internal int NextNodeToAlloc(int? only)
    {
        int nid = only ?? NextNidToAlloc;
        NextNidToAlloc = only ?? (nid + 1) % Nodes;
        return nid;
    }

    /// <summary>hstate_next_node_to_free: as <see cref="NextNodeToAlloc"/> for the free position.</summary>
    internal int NextNodeToFree(int? only)
    {
        int nid = only ?? NextNidToFree;
        NextNidToFree = only ?? (nid + 1) % Nodes;
        return nid;
    }

    internal int FreeCount(int nid) => _pages.FreeCount(nid);

    /// <summary>enqueue_hugetlb_folio: to the head of its node's free list.</summary>
    internal void Enqueue(HugePage page)
    {
        _pages.PushFree(page); // also HugePageState.Free
        FreeHugePages++;
        _freeHugePagesNode[page.Node]++;
    }

    /// <summary><see cref="Enqueue"/> of a fresh page of a write's batch, by its head pfn: no view made.</summary>
    internal void EnqueueFresh(ulong headPfn, int node)
    {
        _pages.PushFresh(headPfn, node);
        FreeHugePages++;
        _freeHugePagesNode[node]++;
    }

    /// <summary>dequeue_hugetlb_folio_node_exact: the head of the node's free list, off the list.</summary>
    internal HugePage? DequeueHead(int nid)
    {
        if (_pages.PopFree(nid) is not { } page)
        {
            return null;
        }

        FreeHugePages--;
        _freeHugePagesNode[nid]--;
        return page;
    }

    /// <summary>A free page taken off its node's free list wherever it is (list_del); false if it is not on it.</summary>
    internal bool RemoveFree(HugePage page)
    {
        if (page.State != HugePageState.Free || !_pages.RemoveFree(page))
        {
            return false;
        }

        FreeHugePages--;
        _freeHugePagesNode[page.Node]--;
        return true;
    }

    internal void AddActive(HugePage page)
    {
        _pages.TakeIn(page);
        _active[page.Node].Add(page);
        page.State = HugePageState.InUse;
    }

    internal bool RemoveActive(HugePage page) => _active[page.Node].Remove(page);

    /// <summary>The accounting half of add_hugetlb_folio / __prep_account_new_huge_page.</summary>
    internal void AccountAdded(int nid, bool surplus)
    {
        NrHugePages++;
        _nrHugePagesNode[nid]++;
        if (surplus)
        {
            AdjustSurplus(nid, 1);
        }
    }

    /// <summary>The accounting half of remove_hugetlb_folio.</summary>
    internal void AccountRemoved(int nid, bool surplus)
    {
        NrHugePages--;
        _nrHugePagesNode[nid]--;
        if (surplus)
        {
            AdjustSurplus(nid, -1);
        }
    }

    internal void AdjustSurplus(int nid, int delta)
    {
        SurplusHugePages = delta > 0 ? SurplusHugePages + 1 : SurplusHugePages - 1;
        _surplusHugePagesNode[nid] = delta > 0 ? _surplusHugePagesNode[nid] + 1 : _surplusHugePagesNode[nid] - 1;
    }

    /// <summary>
    /// Keep <see cref="HugePage.Surplus"/> in step with surplus_huge_pages_node[nid]: as many of
    /// the node's pages flagged as the counter says (or all of them, where the kernel's per-node
    /// counter runs ahead of the node's pages), flagging or clearing <paramref name="prefer"/>
    /// first (a page of the pool), then pages in use before free ones (those are what a shrink below the pages in use
    /// turns surplus). Call after a page left the pool with its flag cleared.
    /// </summary>
    internal void SyncSurplusFlags(int nid, HugePage? prefer = null)
    {
        HashSet<HugePage> flagged = _surplusPages[nid];
        ulong pages = (ulong)(_pages.FreeCount(nid) + _active[nid].Count);
        ulong target = Math.Min(_surplusHugePagesNode[nid], pages);
        while ((ulong)flagged.Count < target)
        {
            HugePage page = prefer is { Surplus: false } && prefer.Node == nid ? prefer : FindUnflagged(nid);
            page.Surplus = true;
            flagged.Add(page);
        }

        while ((ulong)flagged.Count > target)
        {
            HugePage page = prefer is { Surplus: true } && flagged.Contains(prefer) ? prefer : First(flagged);
            page.Surplus = false;
            flagged.Remove(page);
        }
    }

    /// <summary>A page leaves the pool: it stops counting among the node's flagged pages.</summary>
    internal void ForgetSurplusFlag(HugePage page)
    {
        if (page.Surplus)
        {
            page.Surplus = false;
            _surplusPages[page.Node].Remove(page);
        }
    }

    // Pages in use first, then the free list from its head.
    private HugePage FindUnflagged(int nid)
    {
        foreach (HugePage page in _active[nid])
        {
            if (!page.Surplus)
            {
                return page;
            }
        }

        foreach (HugePage page in _pages.FreeList(nid))
        {
            if (!page.Surplus)
            {
                return page;
            }
        }

        throw new InvalidOperationException($"{Name}: node {nid} has no page left to count as surplus");
    }

    private static HugePage First(HashSet<HugePage> set)
    {
        foreach (HugePage page in set)
        {
            return page;
        }

        throw new InvalidOperationException("no flagged page");
    }

    private int CheckNode(int nid)
    {
        if ((uint)nid >= (uint)Nodes)
        {
            throw new ArgumentOutOfRangeException(nameof(nid), nid, $"the machine has {Nodes} nodes");
        }

        return nid;
    }
}
