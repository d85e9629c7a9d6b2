using System;
using System.Collections.Generic;
using System.Threading;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>
/// A compound page as its struct pages describe it: a head pfn, an order, and whether its tail
/// vmemmap pages are remapped (HPageVmemmapOptimized, a flag of the head struct page). The
/// HugeTLB pool's pages are compound pages with more state of their own.
/// </summary>
/// <remarks>
/// While the page is prepared (<see cref="CompoundPages{TArch}.Prep"/>) the object is a view:
/// its flag lives in the machine's flat table of compound pages, which every view of the same
/// page reads, so a pool of millions of pages needs no object per page (docs/ARCHITECTURE.md §5,
/// host cost). Two views of one page are equal.
/// </remarks>
public class CompoundPage : IEquatable<CompoundPage>
{
    private CompoundPageTable? _table;
    private bool _optimized;

    public CompoundPage(ulong headPfn, int order)
    {
        HeadPfn = headPfn;
        Order = order;
    }

    internal CompoundPage(CompoundPageTable table, ulong headPfn, int order)
        : this(headPfn, order) => _table = table;

    public ulong HeadPfn { get; }

    /// <summary>log2 of the base pages in the compound page.</summary>
    public int Order { get; }

    public ulong Frames => 1UL << Order;

    /// <summary>HPageVmemmapOptimized: set only when every tail vmemmap page was remapped and freed.</summary>
    public bool VmemmapOptimized
    {
        get => _table is { } t ? t.IsOptimized(HeadPfn, Order) : _optimized;
        set
        {
            if (_table is { } t)
            {
                t.SetOptimized(HeadPfn, Order, value);
            }
            else
            {
                _optimized = value;
            }
        }
    }

    public bool Equals(CompoundPage? other) => other is not null && other.GetType() == GetType() && other.HeadPfn == HeadPfn && other.Order == Order;

    public override bool Equals(object? obj) => Equals(obj as CompoundPage);

    public override int GetHashCode() => HashCode.Combine(HeadPfn, Order);

    /// <summary>The flag the object holds while it is not a view of a prepared page.</summary>
    internal bool OwnOptimized => _optimized;

    /// <summary>Prepared: the flag is read from <paramref name="table"/> from now on.</summary>
    internal void Attach(CompoundPageTable table) => _table = table;

    /// <summary>Destroyed: the flag comes back into the object.</summary>
    internal void Detach(bool optimized)
    {
        _optimized = optimized;
        _table = null;
    }

    /// <summary>A view of a prepared page: reads its flag from <paramref name="table"/> if the page is in it.</summary>
    internal void AttachIfPrepared(CompoundPageTable table)
    {
        if (_table is null && table.IsHead(HeadPfn, Order))
        {
            _table = table;
        }
    }
}

/// <summary>
/// The compound pages prepared on a machine, flat: per order, a bit per possible head (pfn &gt;&gt;
/// order) and a bit for HPageVmemmapOptimized, in chunks allocated where pages are. A bit each
/// rather than an object each, for the 16 million pages of 64 TiB. Head bits are written under one
/// lock, HPageVmemmapOptimized with an atomic update of its word (SetOptimized, no lock); reads (a
/// look-up of the page a pfn belongs to, HPageVmemmapOptimized) take none.
/// </summary>
/// <remarks>
/// Why a read without the lock is safe: head-bit writers are serialised by <see cref="Lock"/>, flag
/// writers update their word atomically (a compare-and-exchange, so two never lose each other's
/// bit), and each change is one aligned 64-bit store of a bitmap word (a torn word cannot be seen), of a chunk
/// reference to a zeroed array (.NET publishes a reference only after the object's contents), or
/// of <c>_byOrder</c>, which is replaced, never changed in place (a reader iterates the array it
/// read). A reader reads the head bit with acquire semantics and the flag after it, and
/// <see cref="CompoundPages{TArch}.Prep"/> stores the flag before the head bit with a full fence
/// between, so a reader that sees a head sees its flag. A reader racing a change sees the state
/// before it or after it, as the kernel's readers of a struct page's flags do (PageHead and
/// HPageVmemmapOptimized are read without a lock). The one mixed state, a head being destroyed
/// read with its flag already cleared, shows only for a page destroyed while optimized, which the
/// pool does not do (it restores a page's vmemmap before it frees or demotes it). Everything that
/// must see a consistent set (Count, preparing over a head, destroying) still holds the lock.
/// </remarks>
internal sealed class CompoundPageTable
{
    private readonly ulong _endPfn;
    private (int Order, SparseBitmap Heads, SparseBitmap Optimized)[] _byOrder = [];
    private long _count;

    public CompoundPageTable(ulong endPfn) => _endPfn = endPfn;

    public Lock Lock { get; } = new();

    public long Count => _count;

    public bool IsHead(ulong headPfn, int order) =>
        Find(order) is { } o && (headPfn >> order) < o.Heads.Length && o.Heads.GetAcquire(headPfn >> order);

    // Only a prepared head carries the flag: a view kept past Destroy reads false (head bit first, as the readers' order says).
    public bool IsOptimized(ulong headPfn, int order) =>
        Find(order) is { } o && (headPfn >> order) < o.Optimized.Length && o.Heads.GetAcquire(headPfn >> order) && o.Optimized.GetAcquire(headPfn >> order);

    /// <summary>
    /// HPageVmemmapOptimized of a prepared page, without the lock: the flag bitmaps are written only
    /// with atomic read-modify-writes (<see cref="SparseBitmap.WriteAtomic"/>), so a change here and
    /// one under the lock to another page's bit of the same word both land; one page is worked on by
    /// one CPU at a time, as the kernel's folio is. The lock only when the order has no bitmaps yet.
    /// </summary>
    public void SetOptimized(ulong headPfn, int order, bool value)
    {
        if (Find(order) is { } o)
        {
            o.Optimized.WriteAtomic(headPfn >> order, value);
            return;
        }

        lock (Lock)
        {
            SetOptimizedLocked(headPfn, order, value);
        }
    }

    public void SetOptimizedLocked(ulong headPfn, int order, bool value) => Bits(order).Optimized.WriteAtomic(headPfn >> order, value);

    /// <summary>The page <paramref name="pfn"/> belongs to (no lock needed: see the remarks).</summary>
    public bool TryFind(ulong pfn, out ulong head, out int order, out bool optimized)
    {
        foreach ((int o, SparseBitmap heads, SparseBitmap opt) in Volatile.Read(ref _byOrder))
        {
            if ((pfn >> o) < heads.Length && heads.GetAcquire(pfn >> o))
            {
                (head, order, optimized) = ((pfn >> o) << o, o, opt.GetAcquire(pfn >> o));
                return true;
            }
        }

        (head, order, optimized) = (0, 0, false);
        return false;
    }

    /// <summary>Add a head (caller holds the lock); false if one is there.</summary>
    public bool AddLocked(ulong headPfn, int order)
    {
        bool added = Bits(order).Heads.Set(headPfn >> order);
        _count += added ? 1 : 0;
        return added;
    }

    /// <summary>Remove a head and its flag (caller holds the lock); the flag it had.</summary>
    public bool RemoveLocked(ulong headPfn, int order)
    {
        (int _, SparseBitmap heads, SparseBitmap optimized) = Bits(order);
        _count -= heads.Clear(headPfn >> order) ? 1 : 0;
        return optimized.WriteAtomic(headPfn >> order, false);
    }

    private (int Order, SparseBitmap Heads, SparseBitmap Optimized)? Find(int order)
    {
        foreach ((int Order, SparseBitmap Heads, SparseBitmap Optimized) o in Volatile.Read(ref _byOrder))
        {
            if (o.Order == order)
            {
                return o;
            }
        }

        return null;
    }

    // The bitmaps of an order, made on first use.
    private (int Order, SparseBitmap Heads, SparseBitmap Optimized) Bits(int order)
    {
        if (Find(order) is { } o)
        {
            return o;
        }

        ulong length = (_endPfn >> order) + 1;
        (int, SparseBitmap, SparseBitmap) made = (order, new SparseBitmap(length), new SparseBitmap(length));
        Volatile.Write(ref _byOrder, [.. _byOrder, made]);
        return made;
    }
}

/// <summary>
/// prep_compound_page and its undoing for huge pages, on the struct pages in vmemmap bytes.
/// A vmemmap frame that holds bytes is written for real; one still deferred (a boot vmemmap
/// frame nobody wrote) gets the compound contents from <see cref="Origin"/> when it is read, so
/// preparing half a million 2 MiB pages does not copy 16 GiB of identical tails.
/// </summary>
public sealed class CompoundPages<TArch> where TArch : struct, IPagingArch
{
    private readonly Machine<TArch> _machine;
    private readonly CompoundPageTable _table;

    public CompoundPages(Machine<TArch> machine)
    {
        _machine = machine;
        _table = new CompoundPageTable(machine.PhysicalEndPfn);
    }

    public int Count
    {
        get
        {
            lock (_table.Lock)
            {
                return (int)_table.Count;
            }
        }
    }

    /// <summary>The huge page <paramref name="pfn"/> belongs to, if it was prepared as a compound page: a view of it.</summary>
    public bool TryGetPage(ulong pfn, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out CompoundPage? page)
    {
        bool found = _table.TryFind(pfn, out ulong head, out int order, out _);
        page = found ? new CompoundPage(_table, head, order) : null;
        return found;
    }

    /// <summary>The compound page <paramref name="pfn"/> belongs to, if it was prepared as one.</summary>
    public bool TryGetHead(ulong pfn, out ulong head, out int order) => _table.TryFind(pfn, out head, out order, out _);

    /// <summary>HPageVmemmapOptimized of the prepared page at <paramref name="headPfn"/> of <paramref name="order"/>; false if there is none.</summary>
    public bool IsVmemmapOptimized(ulong headPfn, int order) => _table.IsOptimized(headPfn, order);

    /// <summary>
    /// <paramref name="page"/> reads its HPageVmemmapOptimized from the table when it is prepared:
    /// what a view made from flat storage (the pool's lists) does before it is handed out.
    /// </summary>
    public void Attach(CompoundPage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        page.AttachIfPrepared(_table);
    }

    /// <summary>prep_new_hugetlb_folio: the page's struct pages become a compound page.</summary>
    public void Prep(CompoundPage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        lock (_table.Lock)
        {
            if (_table.TryFind(page.HeadPfn, out ulong head, out _, out _) && head == page.HeadPfn)
            {
                throw new ArgumentException($"a compound page at pfn 0x{page.HeadPfn:x} was prepared already", nameof(page));
            }

            // The flag before the head, fenced: a reader without the lock that sees the head sees its flag.
            _table.SetOptimizedLocked(page.HeadPfn, page.Order, page.OwnOptimized);
            Interlocked.MemoryBarrier();
            _table.AddLocked(page.HeadPfn, page.Order);
            page.Attach(_table);
        }

        RewriteWrittenFrames(page);
    }

    /// <summary>__update_and_free_hugetlb_folio / destroy_compound: back to plain free pages.</summary>
    public void Destroy(CompoundPage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        lock (_table.Lock)
        {
            page.Detach(_table.RemoveLocked(page.HeadPfn, page.Order));
        }

        RewriteWrittenFrames(page);
    }

    /// <summary>What an unwritten struct page of <paramref name="pfn"/> holds now.</summary>
    public StructPageOrigin Origin(StructPageOrigin boot, ulong pfn) => TryOrigin(boot, pfn, out StructPageOrigin o) ? o : boot;

    /// <summary><see cref="Origin"/> when <paramref name="pfn"/> lies in a prepared compound page (never reserved, whatever <paramref name="boot"/> says); false otherwise.</summary>
    public bool TryOrigin(StructPageOrigin boot, ulong pfn, out StructPageOrigin origin)
    {
        bool found = _table.TryFind(pfn, out ulong head, out int order, out bool optimized);
        origin = found ? boot with { Reserved = false, CompoundHead = head, CompoundOrder = order, VmemmapOptimized = optimized } : boot;
        return found;
    }

    /// <summary>
    /// The struct pages of [<paramref name="pfn"/>, +<paramref name="frames"/>) become what they
    /// hold now (node, zone, compound page): memmap_init_range when memory is onlined into a zone.
    /// </summary>
    public void Rewrite(ulong pfn, ulong frames) => RewriteWrittenFrames(pfn, frames);

    // Frames holding bytes are rewritten with what the struct pages are now; deferred ones follow Origin by themselves.
    private void RewriteWrittenFrames(CompoundPage page) => RewriteWrittenFrames(page.HeadPfn, page.Frames);

    private void RewriteWrittenFrames(ulong pfn, ulong frames)
    {
        ulong start = _machine.StructPageAddress(pfn);
        ulong end = _machine.StructPageAddress(pfn + frames);
        var rewrite = new RewriteVisitor(_machine, start, end);
        PageWalkResult r = _machine.PageTable.WalkRange(start & ~(TArch.PageSize - 1), end, ref rewrite);
        if (!r.Done)
        {
            throw new InvalidOperationException($"the vmemmap at 0x{r.StoppedAt:x} is not mapped");
        }
    }

    /// <summary>Each vmemmap page of [start, end) whose frame holds bytes gets the struct pages it holds now.</summary>
    private readonly struct RewriteVisitor(Machine<TArch> machine, ulong start, ulong end) : IPageWalkVisitor
    {
        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            // A boot block maps many of these vmemmap pages at once: one leaf, its frames in order.
            ulong leafStart = e.Addr & ~(TArch.LevelSize(e.Level) - 1);
            ulong frame = TArch.PfnOf(e.Level, e.Entry) + ((e.Addr - leafStart) >> TArch.PageShift);
            for (ulong va = e.Addr, pages = Pages(e); pages > 0; va += TArch.PageSize, frame++, pages--)
            {
                if (machine.Frames.IsMaterialized(frame) || !machine.BootVmemmap.TryGetVirtualAddress(frame, out _))
                {
                    // Only this page's struct pages: a small huge page shares its vmemmap frame with others.
                    ulong from = Math.Max(va, start);
                    ulong to = Math.Min(va + TArch.PageSize, end);
                    Span<byte> bytes = machine.Mmu.Materialize(frame).Slice((int)(from - va), (int)(to - from));
                    machine.BootVmemmap.FillStructPages(from, bytes);
                }
            }

            return WalkAction.Continue;
        }

        public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;

        /// <summary>The vmemmap pages [e.Addr, e.Next) touches (the last may be partly in the range).</summary>
        private static ulong Pages(PageWalkEntry e)
        {
            ulong span = e.Next - e.Addr;
            return (span >> TArch.PageShift) + ((span & (TArch.PageSize - 1)) != 0 ? 1UL : 0);
        }
    }
}
