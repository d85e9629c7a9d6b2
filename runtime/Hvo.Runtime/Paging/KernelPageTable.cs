using System;
using System.Runtime.CompilerServices;
using System.Threading;
using Hvo.Memory;

namespace Hvo.Paging;

/// <summary>Counts of what was done to a page table, by every CPU together.</summary>
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

    private long _tableFrames;

    /// <summary>Frames the tables allocated through walks hold now: pages taken less pages given back (two s390 fragments share one).</summary>
    public long TableFrames => Interlocked.Read(ref _tableFrames);

    internal void TableFramesTaken(int frames) => Interlocked.Add(ref _tableFrames, frames);

    internal void EntryWritten() => Interlocked.Increment(ref _entryWrites);

    internal void Flushed() => Interlocked.Increment(ref _tlbRangeFlushes);

    internal void TableAllocated() => Interlocked.Increment(ref _tablesAllocated);

    internal void TableFreed() => Interlocked.Increment(ref _tablesFreed);

    private long _invalidations;
    private long _cpuPauses;
    private long _pauseIpis;
    private long _pausedCpuSteps;

    /// <summary>
    /// Live entries made invalid so that a new one could follow (a break; on s390 an IPTE or IDTE,
    /// which purges every CPU's TLB): the cost of the invalidate and break-flush-make writers.
    /// </summary>
    public long Invalidations => Interlocked.Read(ref _invalidations);

    /// <summary>Times the other CPUs were parked (pause_remote_cpus, the pause-cpus writer).</summary>
    public long CpuPauses => Interlocked.Read(ref _cpuPauses);

    /// <summary>The pseudo-NMI IPIs those pauses sent: one per other CPU per pause.</summary>
    public long PauseIpis => Interlocked.Read(ref _pauseIpis);

    /// <summary>
    /// Pause time: for each pause, the page-table steps (entry stores and TLB flushes) made while it
    /// lasted times the CPUs parked through them. The model has no clock: a step is the unit.
    /// </summary>
    public long PausedCpuSteps => Interlocked.Read(ref _pausedCpuSteps);

    internal void Invalidated() => Interlocked.Increment(ref _invalidations);

    internal void Paused(int remoteCpus)
    {
        Interlocked.Increment(ref _cpuPauses);
        Interlocked.Add(ref _pauseIpis, remoteCpus);
    }

    internal void Resumed(long steps) => Interlocked.Add(ref _pausedCpuSteps, steps);
}

/// <summary>
/// init_mm.page_table_lock. A class of its own so that a test can hold CPUs at it (a subclass
/// whose <see cref="Enter"/> waits first) to force the race between two splitters.
/// </summary>
public class PageTableLock
{
    private readonly Lock _lock = new();

    public virtual void Enter() => _lock.Enter();

    public virtual void Exit() => _lock.Exit();
}

/// <summary>
/// The kernel page table (init_mm) of one architecture: a root table, the frames of every table
/// as real bytes in a <see cref="FrameStore"/>, the entry writer that changes live entries, and
/// the one page-table walk, generated for <typeparamref name="TArch"/>
/// (<see cref="IPagingArch.WalkRange"/>). Every traversal goes through <see cref="WalkRange"/>
/// with a visitor; translating one address, splitting a leaf and mapping a range are such walks.
/// </summary>
public sealed class KernelPageTable<TArch> where TArch : struct, IPagingArch
{
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
        _tables = frames.Tables;
        frames.OnDispose(() => _tables = default);
        _emptyEntries = new ulong[TArch.LevelCount];
        for (int level = 0; level < TArch.LevelCount; level++)
        {
            _emptyEntries[level] = TArch.EmptyEntryOf(level); // levels[].empty: s390's invalid entries; 0 elsewhere
        }

        var invalid = new ulong[TArch.Info.EmptyIsInvalidTable ? TArch.LastLevel : 0];
        for (int level = TArch.LastLevel; level >= 1 && invalid.Length > 0; level--)
        {
            // invalid_pte_table, invalid_pmd_table, ...: a table of empty level-`level` entries, which
            // every empty entry one level up points at (pmd_none compares with its address).
            if (!tableFrames.TryAllocate(level, out ulong shared))
            {
                throw new InvalidOperationException($"no frame for the shared table of empty level-{level} entries");
            }

            InitTable(shared, level);
            invalid[level - 1] = shared;
            _emptyEntries[level - 1] = TArch.MakeTable(level - 1, shared);
        }

        InvalidTables = invalid;
        InitTable(root, 0); // pgd_init
    }

    // What an empty entry holds at each level (pmd_none): 0, or the shared invalid table's descriptor.
    private readonly ulong[] _emptyEntries;

    // The frame store's tables, for the walk's hot path: the store's base never moves. Empty once the
    // store is disposed, so that a walk then throws ObjectDisposedException at its first table.
    private TableView _tables;

    /// <summary>A context that only reads, for look-ups (benchmarks compare the walk itself with it).</summary>
    internal ReadContext ReadOnlyContext => new(this);

    public FrameStore Frames { get; }

    public ITableFrameSource TableFrames { get; }

    public ulong RootPfn { get; }

    /// <summary>
    /// entry.empty "invalidTable" (LoongArch): the shared tables of empty entries, one per level below
    /// the root (element i holds level-(i+1) entries), which every empty entry above points at. Empty otherwise.
    /// </summary>
    public System.Collections.Generic.IReadOnlyList<ulong> InvalidTables { get; }

    public PageTableCounters Counters { get; } = new();

    /// <summary>Sees every entry change and flush (TLB model, break-before-make checker); null for none.</summary>
    public IPageTableObserver? Observer { get; set; }

    /// <summary>How live entries change (<see cref="EntryWriterKind"/>); the machine sets it from its architecture and CPUs.</summary>
    public EntryWriter<TArch> Writer { get; set; } = EntryWriter<TArch>.Direct;

    /// <summary>init_mm.page_table_lock.</summary>
    public PageTableLock Lock { get; set; } = new();

    /// <summary>
    /// When set, walks run the interpreted reference walk instead of the generated one: the same
    /// machine, driven by the spec read at run time, for comparing the two.
    /// </summary>
    public Reference.ReferenceWalker? Reference { get; set; }

    /// <summary>A context for walks and for changing entries by hand.</summary>
    /// <param name="flags">The walk's flags.</param>
    /// <param name="step">The kernel step its changes belong to, for observers' reports (split_vmemmap_huge_pmd, vmemmap_remap_pte, ...).</param>
    public Context Ctx(PageWalkFlags flags = PageWalkFlags.None, string? step = null)
    {
        ObjectDisposedException.ThrowIf(Frames.IsDisposed, Frames);
        return new(this, flags, step);
    }

    /// <summary>
    /// walk_page_range over [<paramref name="start"/>, <paramref name="end"/>) (end 0: to the top of the
    /// address space) with <paramref name="visitor"/>; the result says how it ended and what it changed.
    /// </summary>
    public PageWalkResult WalkRange<TVisitor>(ulong start, ulong end, ref TVisitor visitor, PageWalkFlags flags = PageWalkFlags.None, string? step = null)
        where TVisitor : struct, IPageWalkVisitor
    {
        Context ctx = new(this, flags, step);
        PageWalkResult r = Reference is null
            ? TArch.WalkRange(ref ctx, RootPfn, start, end, ref visitor, flags)
            : InterpretedWalkRange(ref ctx, start, end, ref visitor, flags);
        PageWalkStatus status = Writer.Finish(ref ctx, r.Status);
        return ctx.Tally(status == r.Status ? r : r with { Status = status });
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private PageWalkResult InterpretedWalkRange<TVisitor>(ref Context ctx, ulong start, ulong end, ref TVisitor visitor, PageWalkFlags flags)
        where TVisitor : struct, IPageWalkVisitor =>
        Reference!.WalkRange(ref ctx, RootPfn, start, end, ref visitor, flags);

    /// <summary>
    /// Translate <paramref name="va"/>: where translation ends, and whether at a leaf. The walk over
    /// one address, with a context that only reads (the MMU's hot path: a TLB miss).
    /// </summary>
    [SkipLocalsInit]
    public WalkResult Walk(ulong va)
    {
        if (Reference is not null)
        {
            return InterpretedWalk(va);
        }

        var ctx = new ReadContext(this);
        Unsafe.SkipInit(out LookupVisitor lookup); // a walk over one address always ends at a leaf or a hole
        TArch.WalkRange(ref ctx, RootPfn, va, va + 1, ref lookup, PageWalkFlags.None);
        return lookup.Result;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private WalkResult InterpretedWalk(ulong va)
    {
        var ctx = new ReadContext(this);
        var lookup = default(LookupVisitor);
        Reference!.WalkRange(ref ctx, RootPfn, va, va + 1, ref lookup, PageWalkFlags.None);
        return lookup.Result;
    }

    /// <summary>
    /// The entry at <paramref name="level"/> on the way to <paramref name="va"/> (pmd_offset and friends),
    /// or where the way ends above it (a leaf or a hole: then <see cref="WalkResult.Level"/> is smaller).
    /// <see cref="WalkResult.IsLeaf"/> says whether the entry found is a leaf.
    /// </summary>
    public WalkResult EntryAt(int level, ulong va)
    {
        var at = new EntryAtVisitor { Level = level };
        WalkRange(va, va + 1, ref at);
        return at.Result;
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

    /// <summary>
    /// Split the leaf at <paramref name="level"/> that maps <paramref name="va"/> into a table one level
    /// down mapping the same frames (split_vmemmap_huge_pmd): the walk over that address, splitting
    /// where it meets the leaf.
    /// </summary>
    public SplitStatus SplitLeaf(int level, ulong va, PageWalkFlags flags = PageWalkFlags.None)
    {
        var split = new SplitVisitor { Level = level };
        PageWalkResult r = WalkRange(va, va + 1, ref split, flags);
        return r.Status == PageWalkStatus.NoMemory ? SplitStatus.NoMemory
            : r.Splits > 0 ? SplitStatus.Split
            : r.RacesLost > 0 ? SplitStatus.LostRace
            : split.Found;
    }

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

        if (size == 0)
        {
            return true;
        }

        var populate = new PopulateVisitor { LeafLevel = leafLevel, Va = va, Pfn = pfn };
        WalkRange(va, va + size, ref populate);
        if (populate.AlreadyMappedAt is { } level)
        {
            throw new InvalidOperationException($"0x{populate.AlreadyMappedVa:x} is already mapped by a leaf at level {level}");
        }

        return !populate.OutOfMemory;
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

    /// <summary>
    /// page_table_alloc hands out tables of the levels with levels[].fragmentsUntil as fragments of a
    /// page (s390 before v6.7, commit d08d4e7cd6bf: two 2 KiB page tables per 4 KiB page); false: each
    /// table takes pages of its own. The machine sets it from <see cref="MachineConfig.PageTableFragments"/>
    /// before the first table below the root is allocated.
    /// </summary>
    public bool Fragments { get; set; }

    // mm->context.pgtable_list, per level: frames with a fragment free, the most recently listed last
    // (list_add puts a page first, page_table_alloc takes the first). _fragmentsInUse: for every frame
    // holding fragments, which are handed out (the kernel's AA bits in page->_refcount).
    private readonly System.Collections.Generic.List<ulong>[] _partial = new System.Collections.Generic.List<ulong>[TArch.LevelCount];
    private readonly System.Collections.Generic.Dictionary<ulong, ulong> _fragmentsInUse = [];
    private readonly Lock _fragmentLock = new();

    /// <summary>Are tables of <paramref name="level"/> fragments of a page on this page table?</summary>
    public bool IsFragmented(int level) => Fragments && TArch.Info.FragmentsPerPage(level) > 1;

    /// <summary>Tables handed out as fragments now, and the frames holding them.</summary>
    public (long Tables, long Frames) FragmentsInUse()
    {
        lock (_fragmentLock)
        {
            long tables = 0;
            foreach (ulong used in _fragmentsInUse.Values)
            {
                tables += System.Numerics.BitOperations.PopCount(used);
            }

            return (tables, _fragmentsInUse.Count);
        }
    }

    /// <summary>
    /// page_table_alloc for a fragmented level: a free fragment of a listed page if there is one, else a
    /// fresh page (both halves set empty, as its memset64 of _PAGE_INVALID does) whose first fragment is
    /// handed out while the page is listed for the rest. <paramref name="freshFrame"/>: a page was allocated.
    /// </summary>
    private bool TryAllocFragment(int level, out ulong table, out bool freshFrame)
    {
        int perPage = TArch.Info.FragmentsPerPage(level), entries = TArch.EntriesPerTable(level);
        lock (_fragmentLock)
        {
            System.Collections.Generic.List<ulong> partial = _partial[level] ??= [];
            if (partial.Count > 0)
            {
                ulong pfn = partial[^1];
                ulong used = _fragmentsInUse[pfn];
                int free = System.Numerics.BitOperations.TrailingZeroCount(~used);
                used |= 1UL << free;
                _fragmentsInUse[pfn] = used;
                if (System.Numerics.BitOperations.PopCount(used) == perPage)
                {
                    partial.RemoveAt(partial.Count - 1); // list_del: no fragment left
                }

                table = TableRef.Of(pfn, free * entries);
                freshFrame = false;
                InitFragment(table, level); // the model's tables start empty, whatever the half held before
                return true;
            }
        }

        // alloc_page outside the list's lock, as the kernel does.
        if (!TableFrames.TryAllocate(level, out ulong fresh))
        {
            table = 0;
            freshFrame = false;
            return false;
        }

        InitTable(fresh, level);
        lock (_fragmentLock)
        {
            _fragmentsInUse[fresh] = 1;
            (_partial[level] ??= []).Add(fresh);
        }

        table = TableRef.Of(fresh, 0);
        freshFrame = true;
        return true;
    }

    /// <summary>
    /// page_table_free for a fragment: the page goes back to the page allocator only when none of its
    /// fragments is handed out; until then it is listed for page_table_alloc. True when the page was freed.
    /// </summary>
    private bool FreeFragment(int level, ulong table)
    {
        ulong pfn = TableRef.Pfn(table);
        int fragment = TableRef.EntryOffset(table) / TArch.EntriesPerTable(level);
        lock (_fragmentLock)
        {
            if (!_fragmentsInUse.TryGetValue(pfn, out ulong used) || (used & (1UL << fragment)) == 0)
            {
                throw new InvalidOperationException($"page_table_free: fragment {fragment} of frame 0x{pfn:x} is not handed out");
            }

            System.Collections.Generic.List<ulong> partial = _partial[level]!;
            bool wasFull = System.Numerics.BitOperations.PopCount(used) == TArch.Info.FragmentsPerPage(level);
            used &= ~(1UL << fragment);
            if (used != 0)
            {
                _fragmentsInUse[pfn] = used;
                if (wasFull)
                {
                    partial.Add(pfn); // list_add: a fragment is free again
                }

                return false;
            }

            _fragmentsInUse.Remove(pfn);
            partial.Remove(pfn); // list_del
        }

        Frames.Discard(pfn);
        TableFrames.Free(level, pfn);
        return true;
    }

    /// <summary>A fragment's entries, all empty.</summary>
    private void InitFragment(ulong table, int level)
    {
        Frames.Write(TableRef.Pfn(table)); // the frame is materialized (it is: its other fragment is in use)
        Entries(table)[..TArch.EntriesPerTable(level)].Fill(_emptyEntries[level]);
    }

    /// <summary>The entries of the table <paramref name="table"/> (a <see cref="TableRef"/>), read through the frame store.</summary>
    internal Span<ulong> Entries(ulong table) => Frames.Table(TableRef.Pfn(table), TableRef.EntryOffset(table));

    /// <summary>A new table of level-<paramref name="level"/> entries, all empty: zeroed, or pointing at the shared invalid table below (pgd_init, pud_init, pmd_init).</summary>
    private void InitTable(ulong pfn, int level)
    {
        // Every frame of the table (s390: four for a region or segment table).
        for (ulong i = 0; i < 1UL << TArch.TableOrder(level); i++)
        {
            Span<byte> bytes = Frames.Write(pfn + i);
            if (_emptyEntries[level] == 0)
            {
                bytes.Clear();
            }
            else
            {
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes).Fill(_emptyEntries[level]);
            }
        }
    }

    /// <summary>
    /// The MMU sets a leaf's access flag (FEAT_HAFDBS): an atomic update of the entry the translation
    /// of <paramref name="w"/> ended at, failing if the entry changed since it was read.
    /// </summary>
    internal bool HardwareSetAccessFlag(in WalkResult w)
    {
        ref ulong slot = ref TableEntries.Checked(Entries(w.TablePfn), w.Index);
        return Interlocked.CompareExchange(ref slot, w.Entry | TArch.AccessFlag, w.Entry) == w.Entry;
    }

    /// <summary>
    /// The page table's side of the walk: table frames, table allocation, and every change of a live
    /// entry through the <see cref="Writer"/>, counted for this walk alone. A mutable struct passed
    /// by reference through the walk, so each call inlines into the specialized code.
    /// </summary>
    public struct Context : IPageTableContext
    {
        private readonly KernelPageTable<TArch> _pt;
        private int _entriesWritten;
        private int _tablesAllocated;
        private int _rangeFlushes;
        private int _tableFrames;
        private ulong _unflushedStart;
        private ulong _unflushedEnd;

        internal Context(KernelPageTable<TArch> pageTable, PageWalkFlags flags, string? step)
        {
            _pt = pageTable;
            Tables = pageTable._tables;
            Flags = flags;
            Step = step;
            _entriesWritten = 0;
            _tablesAllocated = 0;
            _rangeFlushes = 0;
            _tableFrames = 0;
            _unflushedStart = ulong.MaxValue;
            _unflushedEnd = 0;
            Retries = 0;
            Deferred = null;
            _pausedCpus = -1;
            _pauseStart = 0;
        }

        private int _pausedCpus;
        private int _pauseStart;

        /// <summary>The other CPUs are parked for this walk (pause-cpus writer).</summary>
        internal readonly bool Paused => _pausedCpus >= 0;

        /// <summary>A live entry was made invalid so that a new one can follow.</summary>
        internal readonly void Invalidated() => _pt.Counters.Invalidated();

        /// <summary>pause_remote_cpus: <paramref name="remoteCpus"/> CPUs parked by one IPI each until <see cref="Resume"/>.</summary>
        internal void Pause(int remoteCpus)
        {
            _pausedCpus = remoteCpus;
            _pauseStart = _entriesWritten + _rangeFlushes;
            _pt.Counters.Paused(remoteCpus);
        }

        /// <summary>resume_remote_cpus: the pause's time is the steps made during it, for each parked CPU.</summary>
        internal void Resume()
        {
            if (_pausedCpus < 0)
            {
                return;
            }

            _pt.Counters.Resumed((long)(_entriesWritten + _rangeFlushes - _pauseStart) * _pausedCpus);
            _pausedCpus = -1;
        }

        /// <summary>The walk's flags.</summary>
        public PageWalkFlags Flags { get; }

        /// <summary>The kernel step this walk's changes belong to, for observers' reports.</summary>
        public string? Step { get; }

        internal TableView Tables { get; }

        /// <summary>Changes the entry writer made again (a CPU used the old entry meanwhile).</summary>
        internal int Retries;

        /// <summary>Changes the entry writer makes when the walk is over.</summary>
        internal EntryWriter<TArch>.Rounds? Deferred;

        /// <summary>The table <paramref name="pfn"/> (a <see cref="TableRef"/>: a frame, or a fragment of one) as entries.</summary>
        public readonly Span<ulong> Table(ulong pfn) => Tables.Table(TableRef.Pfn(pfn), TableRef.EntryOffset(pfn));

        /// <summary>Frames the walk took for tables less those it gave back (a fragment taken from a listed page costs none).</summary>
        public readonly int TableFrames => _tableFrames;

        public bool TryAllocTable(int level, out ulong pfn)
        {
            if (_pt.IsFragmented(level))
            {
                if (!_pt.TryAllocFragment(level, out pfn, out bool fresh))
                {
                    return false;
                }

                _tableFrames += fresh ? 1 : 0;
                _pt.Counters.TableFramesTaken(fresh ? 1 : 0);
            }
            else
            {
                if (!_pt.TableFrames.TryAllocate(level, out pfn))
                {
                    return false;
                }

                _pt.InitTable(pfn, level);
                _tableFrames += 1 << TArch.TableOrder(level);
                _pt.Counters.TableFramesTaken(1 << TArch.TableOrder(level));
            }

            _pt.Counters.TableAllocated();
            _tablesAllocated++;
            return true;
        }

        public readonly ulong EmptyEntry(int level) => _pt._emptyEntries[level];

        public void FreeTable(int level, ulong pfn)
        {
            if (_pt.IsFragmented(level))
            {
                int freed = _pt.FreeFragment(level, pfn) ? 1 : 0;
                _tableFrames -= freed;
                _pt.Counters.TableFramesTaken(-freed);
            }
            else
            {
                for (ulong i = 0; i < 1UL << TArch.TableOrder(level); i++)
                {
                    _pt.Frames.Discard(pfn + i);
                }

                _pt.TableFrames.Free(level, pfn);
                _tableFrames -= 1 << TArch.TableOrder(level);
                _pt.Counters.TableFramesTaken(-(1 << TArch.TableOrder(level)));
            }

            _pt.Counters.TableFreed();
        }

        /// <summary>Change a live entry, as the machine's entry writer does; the index is checked against the table.</summary>
        public bool SetEntry(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
        {
            if ((uint)index >= (uint)TArch.EntriesPerTable(level))
            {
                // A table view may span more slots than the level has entries (s390's 256-entry page tables).
                throw new ArgumentOutOfRangeException(nameof(index), index, $"a level-{level} table has {TArch.EntriesPerTable(level)} entries");
            }

            if (!_pt.Writer.Set(ref this, level, tablePfn, index, oldEntry, newEntry, va))
            {
                return false;
            }

            ulong size = TArch.LevelSize(level);
            ulong start = va & ~(size - 1);
            _unflushedStart = Math.Min(_unflushedStart, start);
            _unflushedEnd = Math.Max(_unflushedEnd, start + size);
            return true;
        }

        public readonly void LockPageTable() => _pt.Lock.Enter();

        public readonly void UnlockPageTable() => _pt.Lock.Exit();

        public readonly void WriteBarrier() => Interlocked.MemoryBarrier();

        public void FlushTlbRange(ulong start, ulong end)
        {
            _rangeFlushes++;
            _pt.Counters.Flushed();
            _pt.Observer?.Flushed(start, end);
            if (start <= _unflushedStart && end >= _unflushedEnd)
            {
                _unflushedStart = ulong.MaxValue;
                _unflushedEnd = 0;
            }
        }

        /// <summary>The entry, read once (READ_ONCE); the index is checked.</summary>
        internal readonly ulong Load(ulong tablePfn, int index) => TableEntries.Read(Table(tablePfn), index);

        /// <summary>One store into a live table, seen by the observers first: the entry writers' primitive.</summary>
        internal void Store(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
        {
            ref ulong slot = ref TableEntries.Checked(Table(tablePfn), index);
            _pt.Observer?.EntryChanging(level, tablePfn, index, oldEntry, newEntry, va, Step);
            Volatile.Write(ref slot, newEntry);
            _pt.Counters.EntryWritten();
            _entriesWritten++;
        }

        /// <summary>
        /// cmpxchg on a live entry: install <paramref name="newEntry"/> only if the entry still holds
        /// <paramref name="expected"/> (a CPU setting the access flag in hardware makes it fail).
        /// Observers hear of the change once it happened, with <paramref name="expected"/> as the old entry.
        /// </summary>
        internal bool CompareExchange(int level, ulong tablePfn, int index, ulong expected, ulong newEntry, ulong va)
        {
            ref ulong slot = ref TableEntries.Checked(Table(tablePfn), index);
            if (Interlocked.CompareExchange(ref slot, newEntry, expected) != expected)
            {
                return false;
            }

            _pt.Observer?.EntryChanging(level, tablePfn, index, expected, newEntry, va, Step);
            _pt.Counters.EntryWritten();
            _entriesWritten++;
            return true;
        }

        /// <summary>The walk's result with what this context counted.</summary>
        internal readonly PageWalkResult Tally(PageWalkResult r) => r with
        {
            EntriesWritten = _entriesWritten,
            TablesAllocated = _tablesAllocated,
            TableFrames = _tableFrames,
            RangeFlushes = _rangeFlushes,
            Retries = Retries,
            NeedsFlush = _unflushedStart < _unflushedEnd,
        };
    }

    /// <summary>
    /// A walk that only reads: the tables and nothing else. A look-up's context, so that a TLB miss
    /// carries none of the writer's state; anything that would change the table is a bug.
    /// </summary>
    internal readonly unsafe struct ReadContext(KernelPageTable<TArch> pageTable) : IPageTableContext
    {
        // The page table's view, less its geometry: the page size is the architecture's constant.
        private readonly byte* _pfnZero = pageTable._tables.PfnZero;
        private readonly ulong _first = pageTable._tables.First;
        private readonly ulong _frames = pageTable._tables.Frames;
        private readonly ulong[] _empty = pageTable._emptyEntries;

        public Span<ulong> Table(ulong pfn) => TableView.Table(_pfnZero, _first, _frames, TArch.PageShift, TArch.MaxTableEntries, TableRef.Pfn(pfn), TableRef.EntryOffset(pfn));

        // The generated walk asks for its own levels only (0 to LastLevel), and the array has one
        // entry per level: no bounds check on the look-up's path.
        public ulong EmptyEntry(int level) => Unsafe.Add(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(_empty), level);

        public bool TryAllocTable(int level, out ulong pfn) => throw ReadOnly();

        public void FreeTable(int level, ulong pfn) => throw ReadOnly();

        public bool SetEntry(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va) => throw ReadOnly();

        public void LockPageTable() => throw ReadOnly();

        public void UnlockPageTable() => throw ReadOnly();

        public void WriteBarrier()
        {
        }

        public void FlushTlbRange(ulong start, ulong end) => throw ReadOnly();

        private static InvalidOperationException ReadOnly() => new("a look-up does not change the page table");
    }

    /// <summary>The translation of one address: down to where it ends (tables exist only above the last level).</summary>
    internal struct LookupVisitor : IPageWalkVisitor
    {
        public WalkResult Result;

        static bool IPageWalkVisitor.OneAddress => true;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => Found(out Result, e, leaf: true);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => Found(out Result, e, leaf: false);

        /// <summary>Where a walk over one address ends: record the entry, stop.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static WalkAction Found(out WalkResult result, PageWalkEntry e, bool leaf)
        {
            result = new WalkResult(e.Level, e.TablePfn, e.Index, e.Entry, leaf);
            return WalkAction.Stop;
        }
    }

    /// <summary>Down to <see cref="Level"/> at most; the entry where it stops.</summary>
    private struct EntryAtVisitor : IPageWalkVisitor
    {
        public int Level;
        public WalkResult Result;

        static bool IPageWalkVisitor.OneAddress => true;

        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
            e.Level < Level ? WalkAction.Descend : LookupVisitor.Found(out Result, e, leaf: false);

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => LookupVisitor.Found(out Result, e, leaf: true);

        public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => LookupVisitor.Found(out Result, e, leaf: false);
    }

    /// <summary>Down to <see cref="Level"/>; split the leaf there.</summary>
    private struct SplitVisitor : IPageWalkVisitor
    {
        public int Level;
        public SplitStatus Found;
        private bool _splitting;

        static bool IPageWalkVisitor.OneAddress => true;

        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            if (e.Level < Level)
            {
                return WalkAction.Descend;
            }

            Found = _splitting ? SplitStatus.Split : SplitStatus.NotLeaf;
            return WalkAction.Stop;
        }

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            if (e.Level != Level || e.Level == TArch.LastLevel)
            {
                Found = SplitStatus.NotMapped; // a larger leaf covers it, or a page: nothing to split here
                return WalkAction.Stop;
            }

            _splitting = true;
            return WalkAction.Split;
        }

        public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            Found = SplitStatus.NotMapped;
            return WalkAction.Stop;
        }
    }

    /// <summary>vmemmap_populate's shape: a table for every hole above the leaf level, a leaf at it.</summary>
    private struct PopulateVisitor : IPageWalkVisitor
    {
        public int LeafLevel;
        public ulong Va;
        public ulong Pfn;
        public bool OutOfMemory;
        public int? AlreadyMappedAt;
        public ulong AlreadyMappedVa;

        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
            e.Level < LeafLevel ? WalkAction.Descend : MapLeaf(ref ctx, e);

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            if (e.Level < LeafLevel)
            {
                AlreadyMappedAt = e.Level;
                AlreadyMappedVa = e.Addr;
                return WalkAction.Stop;
            }

            return MapLeaf(ref ctx, e);
        }

        public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            if (e.Level == LeafLevel)
            {
                return MapLeaf(ref ctx, e);
            }

            if (!ctx.TryAllocTable(e.Level + 1, out ulong child))
            {
                OutOfMemory = true;
                return WalkAction.Stop;
            }

            ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, TArch.MakeTable(e.Level, child), e.Addr);
            return WalkAction.Again; // a table now: descend into it
        }

        private readonly WalkAction MapLeaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, TArch.MakeLeaf(e.Level, Pfn + ((e.Addr - Va) >> TArch.PageShift)), e.Addr);
            return WalkAction.Continue;
        }
    }
}
