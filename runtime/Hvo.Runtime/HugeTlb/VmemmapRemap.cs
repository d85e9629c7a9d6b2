using System;
using System.Collections.Generic;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// vmemmap_remap_pte over the page-table walk: a block on the way is split (vmemmap_pmd_entry,
/// split_vmemmap_huge_pmd); the first PTE of the walk is the page kept (reuse); every later one gives
/// its frame to the free list and maps the reuse frame read-only (the tails' struct pages are
/// identical, and a stray write now traps). With a fresh head copy (v6.2+) the reuse PTE itself
/// moves to the copy, writable, and the old head frame joins the free list too.
/// </summary>
internal struct RemapPteVisitor<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
{
    public List<ulong> Taken;
    public ulong ReusePfn;
    public bool HaveReuse;
    public ulong NewHeadPfn;
    public bool HasNewHead;

    /// <summary>v7.1: the zone's shared page of tail struct pages, which the tail PTEs map instead of the reuse page.</summary>
    public ulong TailPfn;
    public bool HasTail;

    /// <summary>PTEs visited (walk->nr_walked): what a rollback puts back.</summary>
    public int Walked;

    private VmemmapHole _hole;

    public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

    public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => _hole.Hole(ref ctx, e);

    public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        if (e.Level != TArch.LastLevel)
        {
            return WalkAction.Split;
        }

        Walked++;
        ulong pte = e.Entry;
        ulong updated;
        if (!HaveReuse)
        {
            HaveReuse = true;
            if (!HasNewHead)
            {
                ReusePfn = TArch.PfnOf(TArch.LastLevel, pte);
                return WalkAction.Continue;
            }

            Taken.Add(TArch.PfnOf(TArch.LastLevel, pte));
            ReusePfn = NewHeadPfn;
            updated = TArch.MakeLeaf(TArch.LastLevel, NewHeadPfn);
        }
        else
        {
            // PAGE_KERNEL_RO; where the architecture defines none (RISC-V, LoongArch) the generic
            // fallback is PAGE_KERNEL, and the tails stay writable (entry.readOnly.pageKernelRo).
            Taken.Add(TArch.PfnOf(TArch.LastLevel, pte));
            ulong tail = TArch.MakeLeaf(TArch.LastLevel, HasTail ? TailPfn : ReusePfn);
            updated = TArch.Info.PageKernelRo ? TArch.ToReadOnly(tail) : tail;
        }

        ctx.SetEntry(e.Level, e.TablePfn, e.Index, pte, updated, e.Addr);
        return WalkAction.Continue;
    }
}

/// <summary>
/// vmemmap_restore_pte: the first PTE is the reuse page and stays; every later one gets the next
/// frame of the list, filled with a copy of the page it maps now (the reuse page, or v7.1's shared
/// tail page; copy_page, and reset_struct_pages where that page holds the head, unless the policy
/// copies the mapped page as it is: v7.1, and 6.12.114's backport), mapped PAGE_KERNEL. Used both to restore an optimized
/// page and to roll back a remap that ran out of memory, with the frames it took.
/// </summary>
internal struct RestorePteVisitor<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
{
    public Machine<TArch> Machine;
    public List<ulong> Frames;
    public int Next;
    public ulong ReusePfn;
    public bool HaveReuse;

    /// <summary>reset_struct_pages' NR_RESET_STRUCT_PAGE (3, or 4 with the hugetlb fields in page[3]); 0 where restore resets nothing.</summary>
    public int ResetStructPages;

    private VmemmapHole _hole;
    private bool _copied;
    private ulong _lastSource;

    public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

    public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => _hole.Hole(ref ctx, e);

    public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        if (e.Level != TArch.LastLevel)
        {
            return WalkAction.Stop; // restoring a range that was never split: not an optimized page
        }

        if (!HaveReuse)
        {
            HaveReuse = true;
            ReusePfn = TArch.PfnOf(TArch.LastLevel, e.Entry);
            return WalkAction.Continue;
        }

        ulong frame = Frames[Next++];
        ulong source = TArch.PfnOf(TArch.LastLevel, e.Entry);

        // Every PTE after the first maps the same reuse (or shared tail) page: read it once a walk.
        Machine.CopyFrame(source, frame, e.Addr, ResetStructPages, sameAsLast: _copied && source == _lastSource);
        (_copied, _lastSource) = (true, source);

        // smp_wmb: the copy is visible before the PTE that maps it. Every entry writer stores the
        // entry with release semantics (Volatile.Write, or a compare-exchange), which orders the
        // copy's stores before it: no full fence is needed on top.
        ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, TArch.MakeLeaf(TArch.LastLevel, frame), e.Addr);
        return WalkAction.Continue;
    }
}

/// <summary>vmemmap_remap_split (v6.7's split pass): split every block of the range, visit no PTE.</summary>
internal struct SplitPmdVisitor<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
{
    private VmemmapHole _hole;

    public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
        e.Level + 1 < TArch.LastLevel ? WalkAction.Descend : WalkAction.Continue;

    public readonly WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
        e.Level < TArch.LastLevel ? WalkAction.Split : WalkAction.Continue;

    public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => _hole.Hole(ref ctx, e);
}

/// <summary>
/// A hole met by a vmemmap walk. The vmemmap of a huge page is always mapped, but a writer that
/// breaks before it makes (<see cref="EntryWriterKind.BreakFlushMake"/>, and
/// <see cref="EntryWriterKind.ClearAccessFlag"/> for a block) leaves an entry invalid for a moment
/// while another CPU splits the block that maps this range too, under init_mm.page_table_lock. As the fault handler of that scheme does, wait for the lock and read the
/// entry again; a hole still there then is a real one, and the walk stops.
/// </summary>
internal struct VmemmapHole
{
    private ulong _addr;
    private int _level;
    private bool _waited;

    public WalkAction Hole<TCtx>(ref TCtx ctx, in PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        if (_waited && _addr == e.Addr && _level == e.Level)
        {
            return WalkAction.Stop;
        }

        (_waited, _addr, _level) = (true, e.Addr, e.Level);
        ctx.LockPageTable();
        ctx.UnlockPageTable();
        return WalkAction.Again;
    }
}

/// <summary>A flush owed before vmemmap frames can be freed: a range, everything, or (default) nothing.</summary>
public readonly record struct TlbFlush(ulong Start, ulong End, bool All)
{
    public static TlbFlush Everything => new(0, 0, true);
}

/// <summary>
/// One call's frame lists (the kernel keeps them on the stack: vmemmap_pages, the restore list).
/// Reused per thread so a steady state allocates nothing; a nested call gets its own.
/// </summary>
internal sealed class VmemmapPageLists : IDisposable
{
    [ThreadStatic]
    private static VmemmapPageLists? t_spare;

    /// <summary>The frames the remap unmapped, in walk order: what a rollback puts back.</summary>
    public readonly List<ulong> Taken = new();

    /// <summary>Frames to free once the flush is done.</summary>
    public readonly VmemmapFrameList ToFree = new();

    /// <summary>Frames allocated for a restore.</summary>
    public readonly List<ulong> Restore = new();

    /// <summary>
    /// alloc_vmemmap_page_list: <paramref name="count"/> pages on <paramref name="node"/> into <see cref="Restore"/>
    /// (GFP_KERNEL | __GFP_NORETRY | __GFP_THISNODE); all or nothing.
    /// </summary>
    public bool TryAllocRestore(PageAllocator pages, int node, int count)
    {
        if (pages.TryAllocOrder0Pages(node, Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, count, Restore) == count)
        {
            return true;
        }

        foreach (ulong taken in Restore)
        {
            pages.FreePages(taken, 0, FrameOwner.RuntimeVmemmap);
        }

        Restore.Clear();
        return false;
    }

    public static VmemmapPageLists Rent()
    {
        VmemmapPageLists? s = t_spare;
        t_spare = null;
        return s ?? new VmemmapPageLists();
    }

    /// <summary>Back to this thread's spare, emptied.</summary>
    public void Dispose()
    {
        Taken.Clear();
        ToFree.Clear();
        Restore.Clear();
        t_spare = this;
    }
}

/// <summary>
/// Vmemmap frames to free once a flush is done (the kernel's vmemmap_pages list, which costs it
/// nothing: it is threaded through the freed pages' own struct pages). Kept in order as runs of
/// consecutive frames: a batch of a million pages frees about seven million frames, mostly whole
/// boot vmemmap blocks in a row, so the list holds a few runs instead of an entry per frame.
/// </summary>
public sealed class VmemmapFrameList
{
    // A run is one word: its first frame above RunBits, its length below. The words sit in one list
    // up to a chunk's worth, then in whole chunks: a batch of 16 million pages (64 TiB) keeps its
    // 16 million runs in 128 MiB, with no doubling copy as it grows.
    private const int RunBits = 20;
    private const ulong MaxRun = (1UL << RunBits) - 1;
    private const int ChunkShift = 16;
    private const int ChunkMask = (1 << ChunkShift) - 1;

    private readonly List<ulong> _first = [];
    private readonly List<ulong[]> _chunks = [];
    private int _runs;

    /// <summary>Frames held.</summary>
    public int Count { get; private set; }

    /// <summary>The frames as runs of consecutive frames, in the order they were added.</summary>
    internal RunList Runs => new(this);

    public void Add(ulong pfn)
    {
        if (pfn >> (64 - RunBits) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(pfn), pfn, $"a frame number is below 2^{64 - RunBits}");
        }

        if (_runs > 0)
        {
            ref ulong last = ref Run(_runs - 1);
            ulong count = last & MaxRun;
            if ((last >> RunBits) + count == pfn && count < MaxRun)
            {
                last++;
                Count++;
                return;
            }
        }

        ulong run = (pfn << RunBits) | 1;
        if (_runs <= ChunkMask)
        {
            _first.Add(run);
        }
        else
        {
            if ((_runs & ChunkMask) == 0 && (_runs >> ChunkShift) > _chunks.Count)
            {
                _chunks.Add(new ulong[1 << ChunkShift]);
            }

            _chunks[(_runs >> ChunkShift) - 1][_runs & ChunkMask] = run;
        }

        _runs++;
        Count++;
    }

    public void AddRange(List<ulong> frames)
    {
        ArgumentNullException.ThrowIfNull(frames);
        foreach (ulong pfn in System.Runtime.InteropServices.CollectionsMarshal.AsSpan(frames))
        {
            Add(pfn);
        }
    }

    /// <summary>The frames in the order they were added into <paramref name="destination"/> (at least <see cref="Count"/> long), run by run.</summary>
    public void CopyTo(Span<ulong> destination)
    {
        int n = 0;
        for (int i = 0; i < _runs; i++)
        {
            ulong run = Run(i);
            for (ulong pfn = run >> RunBits, end = pfn + (run & MaxRun); pfn < end; pfn++)
            {
                destination[n++] = pfn;
            }
        }
    }

    /// <summary>Empty again, keeping its chunks for the next batch (as a list keeps its capacity).</summary>
    public void Clear()
    {
        _first.Clear();
        _runs = 0;
        Count = 0;
    }

    /// <summary>The frames in the order they were added.</summary>
    public Enumerator GetEnumerator() => new(this);

    private ref ulong Run(int i) =>
        ref i <= ChunkMask ? ref System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_first)[i] : ref _chunks[(i >> ChunkShift) - 1][i & ChunkMask];

    /// <summary>The runs, in the order they were added (a run longer than a word holds is several).</summary>
    internal readonly struct RunList(VmemmapFrameList list)
    {
        public RunEnumerator GetEnumerator() => new(list);
    }

    /// <summary>Walks the runs, allocating nothing.</summary>
    internal struct RunEnumerator(VmemmapFrameList list)
    {
        private int _run = -1;

        public (ulong Start, ulong Count) Current { get; private set; }

        public bool MoveNext()
        {
            if (++_run >= list._runs)
            {
                return false;
            }

            ulong run = list.Run(_run);
            Current = (run >> RunBits, run & MaxRun);
            return true;
        }
    }

    /// <summary>Walks the runs frame by frame, allocating nothing.</summary>
    public struct Enumerator
    {
        private readonly VmemmapFrameList _list;
        private int _run;
        private ulong _next;
        private ulong _start;
        private ulong _count;

        internal Enumerator(VmemmapFrameList list)
        {
            _list = list;
            _run = -1;
            _next = 0;
            _start = 0;
            _count = 0;
            Current = 0;
        }

        public ulong Current { get; private set; }

        public bool MoveNext()
        {
            while (_run < 0 || _next == _count)
            {
                if (++_run >= _list._runs)
                {
                    return false;
                }

                ulong run = _list.Run(_run);
                (_start, _count, _next) = (run >> RunBits, run & MaxRun, 0);
            }

            Current = _start + _next++;
            return true;
        }
    }
}
