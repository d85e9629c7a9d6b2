using System;
using System.Threading;
using Hvo.Memory;

namespace Hvo.Paging;

/// <summary>Counts of what was done to a page table.</summary>
public sealed class PageTableCounters
{
    private long _entryWrites;
    private long _tlbRangeFlushes;
    private long _tablesAllocated;
    private long _tablesFreed;

    public long EntryWrites => Interlocked.Read(ref _entryWrites);

    /// <summary>flush_tlb_kernel_range calls.</summary>
    public long TlbRangeFlushes => Interlocked.Read(ref _tlbRangeFlushes);

    public long TablesAllocated => Interlocked.Read(ref _tablesAllocated);

    /// <summary>Tables given back unpublished (a lost split race).</summary>
    public long TablesFreed => Interlocked.Read(ref _tablesFreed);

    internal void EntryWritten() => Interlocked.Increment(ref _entryWrites);

    internal void Flushed() => Interlocked.Increment(ref _tlbRangeFlushes);

    internal void TableAllocated() => Interlocked.Increment(ref _tablesAllocated);

    internal void TableFreed() => Interlocked.Increment(ref _tablesFreed);
}

/// <summary>
/// The kernel page table (init_mm) of one architecture: a root table, the frames of every table
/// as real bytes in a <see cref="FrameStore"/>, and the operations the generated code provides,
/// specialized for <typeparamref name="TArch"/>.
/// </summary>
public sealed class KernelPageTable<TArch> where TArch : struct, IPagingArch
{
    private readonly Lock _pageTableLock = new();

    public KernelPageTable(FrameStore frames, ITableFrameSource tableFrames)
    {
        if (frames.PageShift != TArch.PageShift)
        {
            throw new ArgumentException($"frame store has {frames.PageSize}-byte frames but {TArch.Name} pages are {TArch.PageSize} bytes", nameof(frames));
        }

        Frames = frames;
        TableFrames = tableFrames;
        if (!tableFrames.TryAllocate(0, out ulong root))
        {
            throw new InvalidOperationException("no frame for the root page table");
        }

        RootPfn = root;
        frames.Write(root).Clear();
    }

    public FrameStore Frames { get; }

    public ITableFrameSource TableFrames { get; }

    public ulong RootPfn { get; }

    public PageTableCounters Counters { get; } = new();

    /// <summary>Sees every entry change and flush (TLB model, break-before-make checker); null for none.</summary>
    public IPageTableObserver? Observer { get; set; }

    /// <summary>
    /// Test only: runs on a splitter's CPU after it filled its new table and before it takes
    /// init_mm.page_table_lock to publish it, to hold two splitters there and force the race.
    /// </summary>
    internal Action? BeforePageTableLock { get; set; }

    /// <summary>The context the generated walkers run with.</summary>
    public Context Ctx => new(this);

    /// <summary>Translate <paramref name="va"/>: where translation ends, and whether at a leaf.</summary>
    public WalkResult Walk(ulong va)
    {
        Context ctx = Ctx;
        return TArch.Walk(ref ctx, RootPfn, va);
    }

    /// <summary>The physical address <paramref name="va"/> translates to, if it is mapped.</summary>
    public bool TryTranslate(ulong va, out ulong physicalAddress)
    {
        WalkResult w = Walk(va);
        if (!w.IsLeaf)
        {
            physicalAddress = 0;
            return false;
        }

        physicalAddress = (TArch.PfnOf(w.Level, w.Entry) << TArch.PageShift) + (va & (TArch.LevelSize(w.Level) - 1));
        return true;
    }

    public SplitStatus SplitLeaf(int level, ulong va, SplitFlags flags = SplitFlags.None)
    {
        Context ctx = Ctx;
        return TArch.SplitLeaf(ref ctx, RootPfn, level, va, flags);
    }

    public RemapWalkResult RemapWalk<TVisitor>(ulong start, ulong end, ref TVisitor visitor, RemapWalkFlags flags = RemapWalkFlags.None)
        where TVisitor : struct, IRemapPteVisitor
    {
        Context ctx = new(this, breakBeforeMake: (flags & RemapWalkFlags.BreakBeforeMake) != 0);
        if ((flags & RemapWalkFlags.BreakBeforeMake) != 0)
        {
            // The break's flush covers a split: nothing can cache the invalid entry before the table.
            flags |= RemapWalkFlags.NoTlbFlushOnSplit;
        }

        return Reference is null
            ? TArch.RemapWalk(ref ctx, RootPfn, start, end, ref visitor, flags)
            : Reference.RemapWalk(ref ctx, RootPfn, start, end, ref visitor, flags);
    }

    /// <summary>
    /// cmpxchg on a live entry: install <paramref name="newEntry"/> only if the entry still holds
    /// <paramref name="expected"/> (a CPU setting the access flag in hardware makes it fail). Observers
    /// hear of the change once it happened, with <paramref name="expected"/> as the old entry.
    /// </summary>
    public bool CompareExchangeEntry(int level, ulong tablePfn, int index, ulong expected, ulong newEntry, ulong va)
    {
        if (Interlocked.CompareExchange(ref TableEntries.At(Frames.Table(tablePfn), index), newEntry, expected) != expected)
        {
            return false;
        }

        Observer?.EntryChanging(level, tablePfn, index, expected, newEntry, va);
        Counters.EntryWritten();
        return true;
    }

    /// <summary>
    /// When set, range walks run the interpreted reference walker instead of the generated one:
    /// the same machine, driven by the spec read at run time, for comparing the two.
    /// </summary>
    public Reference.ReferenceWalker? Reference { get; set; }

    /// <summary>
    /// Map [<paramref name="va"/>, +<paramref name="size"/>) to the frames from <paramref name="pfn"/> with
    /// <c>PAGE_KERNEL</c> leaves at <paramref name="leafLevel"/>, allocating tables on the way
    /// (vmemmap_populate's shape). False when a table cannot be allocated; tables installed
    /// before that stay, as the kernel's do.
    /// </summary>
    public bool TryMap(ulong va, ulong pfn, ulong size, int leafLevel)
    {
        if (!TArch.LevelCanMapLeaf(leafLevel))
        {
            throw new ArgumentOutOfRangeException(nameof(leafLevel), leafLevel, $"{TArch.Name} level {leafLevel} cannot hold a leaf");
        }

        ulong leafSize = TArch.LevelSize(leafLevel);
        if (((va | size | (pfn << TArch.PageShift)) & (leafSize - 1)) != 0)
        {
            throw new ArgumentException($"range and frame must be aligned to the {leafSize}-byte leaf size");
        }

        Context ctx = Ctx;
        for (ulong offset = 0; offset < size; offset += leafSize)
        {
            ulong addr = va + offset;
            ulong table = RootPfn;
            for (int level = 0; level < leafLevel; level++)
            {
                int index = TArch.IndexOf(level, addr);
                ulong entry = TableEntries.Load(Frames.Table(table), index);
                if (!TArch.IsTable(level, entry))
                {
                    if (TArch.IsValid(level, entry))
                    {
                        throw new InvalidOperationException($"0x{addr:x} is already mapped by a leaf at level {level}");
                    }

                    if (!ctx.TryAllocTable(level + 1, out ulong child))
                    {
                        return false;
                    }

                    ulong table0 = TArch.MakeTable(child);
                    ctx.SetEntry(level, table, index, entry, table0, addr);
                    entry = table0;
                }

                table = TArch.PfnOf(level, entry);
            }

            int leafIndex = TArch.IndexOf(leafLevel, addr);
            ulong old = TableEntries.Load(Frames.Table(table), leafIndex);
            ctx.SetEntry(leafLevel, table, leafIndex, old, TArch.MakeLeaf(leafLevel, pfn + (offset >> TArch.PageShift)), addr);
        }

        return true;
    }

    /// <summary>
    /// Map [<paramref name="va"/>, +<paramref name="size"/>) to the frames from <paramref name="pfn"/>, each
    /// piece with the largest leaf the spec allows there (both addresses aligned to it, and it fits).
    /// </summary>
    public bool TryMapLargest(ulong va, ulong pfn, ulong size)
    {
        ulong pa = pfn << TArch.PageShift;
        if (((va | pa | size) & (TArch.PageSize - 1)) != 0)
        {
            throw new ArgumentException("range and frame must be page aligned");
        }

        for (ulong offset = 0; offset < size;)
        {
            int level = TArch.LastLevel;
            for (int l = 0; l < TArch.LastLevel; l++)
            {
                ulong leaf = TArch.LevelSize(l);
                if (TArch.LevelCanMapLeaf(l) && ((va + offset) & (leaf - 1)) == 0 && ((pa + offset) & (leaf - 1)) == 0 && size - offset >= leaf)
                {
                    level = l;
                    break;
                }
            }

            ulong bytes = TArch.LevelSize(level);
            if (!TryMap(va + offset, pfn + (offset >> TArch.PageShift), bytes, level))
            {
                return false;
            }

            offset += bytes;
        }

        return true;
    }

    /// <summary>The page table's side of the generated walkers: one small struct, inlined into them.</summary>
    public readonly struct Context : IPageTableContext
    {
        private readonly KernelPageTable<TArch> _pt;
        private readonly FrameStore _frames;
        private readonly TableView _tables;
        private readonly bool _breakBeforeMake;

        public Context(KernelPageTable<TArch> pageTable)
            : this(pageTable, breakBeforeMake: false)
        {
        }

        /// <param name="breakBeforeMake">Make every change of a live entry's output address, or of a block into a table, go through an invalid entry and a flush.</param>
        public Context(KernelPageTable<TArch> pageTable, bool breakBeforeMake)
        {
            _pt = pageTable;
            _frames = pageTable.Frames;
            _tables = pageTable.Frames.Tables;
            _breakBeforeMake = breakBeforeMake;
        }

        public Span<ulong> Table(ulong pfn) => _tables.Table(pfn);

        public bool TryAllocTable(int level, out ulong pfn)
        {
            if (!_pt.TableFrames.TryAllocate(level, out pfn))
            {
                return false;
            }

            _frames.Write(pfn).Clear();
            _pt.Counters.TableAllocated();
            return true;
        }

        public void FreeTable(int level, ulong pfn)
        {
            _pt.Frames.Discard(pfn);
            _pt.TableFrames.Free(level, pfn);
            _pt.Counters.TableFreed();
        }

        public void SetEntry(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
        {
            if (_breakBeforeMake && TArch.IsValid(level, oldEntry) && TArch.IsValid(level, newEntry) &&
                (TArch.IsTable(level, oldEntry) != TArch.IsTable(level, newEntry) || TArch.PfnOf(level, oldEntry) != TArch.PfnOf(level, newEntry)))
            {
                // vmemmap_update_pte / vmemmap_update_pmd on arm64 (Nanyong Sun, 2024): under
                // init_mm.page_table_lock, break (invalid entry), flush what it mapped, make. A CPU
                // that translates meanwhile faults; the fault handler waits on the lock, then retries.
                ulong size = TArch.LevelSize(level);
                ulong start = va & ~(size - 1);
                LockPageTable();
                try
                {
                    Store(level, tablePfn, index, oldEntry, 0, va);
                    FlushTlbRange(start, start + size);
                    Store(level, tablePfn, index, 0, newEntry, va);
                }
                finally
                {
                    UnlockPageTable();
                }

                return;
            }

            Store(level, tablePfn, index, oldEntry, newEntry, va);
        }

        private void Store(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
        {
            _pt.Observer?.EntryChanging(level, tablePfn, index, oldEntry, newEntry, va);
            Volatile.Write(ref TableEntries.At(_pt.Frames.Table(tablePfn), index), newEntry);
            _pt.Counters.EntryWritten();
        }

        public void LockPageTable()
        {
            _pt.BeforePageTableLock?.Invoke();
            _pt._pageTableLock.Enter();
        }

        public void UnlockPageTable() => _pt._pageTableLock.Exit();

        public void WriteBarrier() => Interlocked.MemoryBarrier();

        public void FlushTlbRange(ulong start, ulong end)
        {
            _pt.Counters.Flushed();
            _pt.Observer?.Flushed(start, end);
        }
    }
}
