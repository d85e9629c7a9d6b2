using System;
using System.Collections.Generic;
using Hvo.Vmemmap;

namespace Hvo.HugeTlb;

/// <summary>
/// An hstate's pages, flat: a record per possible page (head pfn &gt;&gt; order) with its node,
/// its flags and its links, in chunks allocated where pages are, and the free lists
/// (hugepage_freelists) as intrusive doubly linked lists through the records, as the kernel links
/// folios through folio-&gt;lru: list_add puts a page at the head, the head is dequeued first, and
/// list_del takes one out anywhere. Sized for the 16 million pages of 64 TiB, where an object
/// and a list slot per page cost a gigabyte. <see cref="HugePage"/> objects are views made on
/// demand. Only its <see cref="Hstate{TArch}"/> changes it, under the pool's lock.
/// </summary>
internal sealed class HugePageTable
{
    private const int ChunkShift = 12;
    private const ulong ChunkMask = (1UL << ChunkShift) - 1;
    private const uint None = uint.MaxValue;

    private readonly Slot[]?[] _chunks;
    private readonly int _order;
    private readonly uint[] _freeHead;
    private readonly int[] _freeCount;
    private readonly Action<CompoundPage>? _attach;

    /// <param name="order">The hstate's order.</param>
    /// <param name="endPfn">One past the last pfn a page may have.</param>
    /// <param name="nodes">Nodes of the machine: a free list each.</param>
    /// <param name="attach">Makes a view read HPageVmemmapOptimized from the machine's compound pages.</param>
    public HugePageTable(int order, ulong endPfn, int nodes, Action<CompoundPage>? attach)
    {
        ulong slots = (endPfn >> order) + 1;
        if (slots >= None)
        {
            throw new ArgumentOutOfRangeException(nameof(endPfn), endPfn, $"more than {None - 1} pages of order {order}");
        }

        _order = order;
        _chunks = new Slot[]?[(slots + ChunkMask) >> ChunkShift];
        _freeHead = new uint[nodes];
        _freeCount = new int[nodes];
        Array.Fill(_freeHead, None);
        _attach = attach;
    }

    public int FreeCount(int nid) => _freeCount[nid];

    /// <summary>enqueue_hugetlb_folio's list_add: <paramref name="page"/> at the head of its node's free list.</summary>
    public void PushFree(HugePage page) => Push(TakeIn(page));

    /// <summary>
    /// <see cref="PushFree"/> for a fresh page nobody holds a view of (a write's batch): its record
    /// made from its head and node, no object.
    /// </summary>
    public void PushFresh(ulong headPfn, int node)
    {
        uint i = Index(headPfn);
        Init(i, node, 0);
        Push(i);
    }

    private void Push(uint i)
    {
        ref Slot s = ref At(i);
        if ((s.Flags & HugePageFlags.OnFreeList) != 0)
        {
            throw new InvalidOperationException($"the page at pfn 0x{(ulong)i << _order:x} is on a free list already");
        }

        int nid = s.Node;
        s.Flags = (s.Flags | HugePageFlags.OnFreeList) & ~HugePageFlags.InUse;
        s.Prev = None;
        s.Next = _freeHead[nid];
        if (s.Next != None)
        {
            At(s.Next).Prev = i;
        }

        _freeHead[nid] = i;
        _freeCount[nid]++;
    }

    /// <summary>The head of the node's free list, taken off it; null when the list is empty.</summary>
    public HugePage? PopFree(int nid)
    {
        uint i = _freeHead[nid];
        if (i == None)
        {
            return null;
        }

        Unlink(i);
        return View(i);
    }

    /// <summary>list_del of a page on a free list; false if it is not on one of this table's.</summary>
    public bool RemoveFree(HugePage page)
    {
        if (!ReferenceEquals(page.Pool, this))
        {
            return false;
        }

        uint i = Index(page.HeadPfn);
        if ((At(i).Flags & HugePageFlags.OnFreeList) == 0)
        {
            return false;
        }

        Unlink(i);
        return true;
    }

    /// <summary>The node's free list from its head.</summary>
    public IEnumerable<HugePage> FreeList(int nid)
    {
        for (uint i = _freeHead[nid]; i != None; i = At(i).Next)
        {
            yield return View(i);
        }
    }

    /// <summary>The head pfns of the node's free list from its head: no view made.</summary>
    public IEnumerable<ulong> FreeHeads(int nid)
    {
        for (uint i = _freeHead[nid]; i != None; i = At(i).Next)
        {
            yield return (ulong)i << _order;
        }
    }

    /// <summary>Start keeping <paramref name="page"/>'s state here (what it held so far comes along).</summary>
    public uint TakeIn(HugePage page)
    {
        uint i = Index(page.HeadPfn);
        if (ReferenceEquals(page.Pool, this))
        {
            return i;
        }

        if (page.Pool is not null)
        {
            throw new InvalidOperationException($"{page} belongs to another hstate");
        }

        Init(i, page.Node, page.OwnFlags);
        page.Attach(this);
        return i;
    }

    // A new record for the page at index i, on no list.
    private void Init(uint i, int node, HugePageFlags flags)
    {
        ref Slot s = ref Chunk(i)[(int)(i & ChunkMask)];
        if ((s.Flags & HugePageFlags.OnFreeList) != 0)
        {
            throw new InvalidOperationException($"another page at pfn 0x{(ulong)i << _order:x} is on a free list");
        }

        s = new Slot { Prev = None, Next = None, Node = checked((ushort)node), Flags = flags };
    }

    public bool Has(ulong headPfn, HugePageFlags flag) => (At(Index(headPfn)).Flags & flag) != 0;

    public void Set(ulong headPfn, HugePageFlags flag, bool on)
    {
        ref Slot s = ref At(Index(headPfn));
        s.Flags = on ? s.Flags | flag : s.Flags & ~flag;
    }

    private void Unlink(uint i)
    {
        ref Slot s = ref At(i);
        int nid = s.Node;
        if (s.Prev != None)
        {
            At(s.Prev).Next = s.Next;
        }
        else
        {
            _freeHead[nid] = s.Next;
        }

        if (s.Next != None)
        {
            At(s.Next).Prev = s.Prev;
        }

        s.Prev = s.Next = None;
        s.Flags &= ~HugePageFlags.OnFreeList;
        _freeCount[nid]--;
    }

    private HugePage View(uint i)
    {
        ref Slot s = ref At(i);
        var page = new HugePage(this, (ulong)i << _order, _order, s.Node, (s.Flags & HugePageFlags.FromBoot) != 0);
        _attach?.Invoke(page);
        return page;
    }

    private uint Index(ulong headPfn)
    {
        ulong i = headPfn >> _order;
        if (i >= (ulong)_chunks.Length << ChunkShift)
        {
            throw new ArgumentOutOfRangeException(nameof(headPfn), headPfn, "past the machine's last pfn");
        }

        return (uint)i;
    }

    // The record of a page taken in (its chunk exists).
    private ref Slot At(uint i) => ref _chunks[i >> ChunkShift]![(int)(i & ChunkMask)];

    private Slot[] Chunk(uint i) => _chunks[i >> ChunkShift] ??= new Slot[1 << ChunkShift];

    // 12 bytes a page: links to the previous and next page on its list, its node and flags.
    private struct Slot
    {
        public uint Prev;
        public uint Next;
        public ushort Node;
        public HugePageFlags Flags;
    }
}

/// <summary>A huge page's flags, in its hstate's table (or in a page no table holds yet).</summary>
[Flags]
internal enum HugePageFlags : byte
{
    /// <summary>Allocated at boot from memblock.</summary>
    FromBoot = 1,

    /// <summary>HugePageState.InUse; clear: Free.</summary>
    InUse = 2,

    /// <summary>Counted as surplus.</summary>
    Surplus = 4,

    /// <summary>On its node's free list.</summary>
    OnFreeList = 8,
}
