using System;
using System.Collections.Generic;
using System.Threading;
using Hvo.Memory;

namespace Hvo.Paging;

/// <summary>Why an access did not complete.</summary>
public enum AccessFault
{
    None,

    /// <summary>Translation ended at an invalid entry.</summary>
    NotMapped,

    /// <summary>A write through a read-only mapping (PAGE_KERNEL_RO): trapped, recorded, nothing written.</summary>
    WriteProtect,

    /// <summary>
    /// arm64 Access flag fault: translation ended at a leaf with AF clear on a CPU that does not
    /// manage AF in hardware. Nothing was cached; the access may be retried.
    /// </summary>
    AccessFlag,
}

/// <summary>
/// The simulated MMU: translation through each CPU's TLB and the kernel page table, with the
/// permission check, and byte access to frames through it. Flushes reach it as a page-table
/// observer. In strict mode every TLB hit is checked against the page table, so use of a
/// stale translation (a change without a flush) is reported.
/// </summary>
/// <remarks>
/// <para>
/// SMP: CPUs may be real threads (<see cref="RunOn"/> says which CPU a thread is). Each access
/// (TLB look-up, page walk and fill, then the load or store) runs under its CPU's TLB lock, as one
/// instruction runs with no interrupt inside it. A flush (flush_tlb_kernel_range,
/// flush_tlb_all) invalidates every CPU's TLB under that CPU's lock before it returns: the
/// flushing CPU waits for each CPU to reach an instruction boundary, which is what waiting for
/// the shootdown IPI's acknowledgement gives the kernel (smp_call_function_many with wait).
/// The flusher does the invalidation itself rather than queueing it for the target to
/// acknowledge, so a CPU that makes no access (an idle CPU, or any CPU of a single-threaded
/// simulation) never holds a flush up, and an uncontended access costs one lock, as before.
/// A walk racing with a page-table change sees the old or the new entry (entries are read
/// with READ_ONCE semantics, <see cref="TableEntries.Load"/>), and the translation it caches
/// is then dropped by the flush that follows the change.
/// </para>
/// <para>
/// In strict mode a TLB hit that differs from the page table is a violation, unless another
/// thread changed that entry and has not flushed yet: that CPU is inside its change-then-flush
/// window, and using the old translation until the flush is what the hardware does (the kernel
/// keeps the old frame intact until after the flush). The free of a frame a TLB still reaches
/// is what <see cref="Machine{TArch}.CheckFrameUnreachable"/> reports.
/// </para>
/// </remarks>
public sealed class Mmu<TArch> : IPageTableObserver where TArch : struct, IPagingArch
{
    private readonly KernelPageTable<TArch> _pageTable;
    private readonly IFrameContent? _content;
    private readonly ViolationLog _violations;
    [ThreadStatic]
    private static byte[]? t_scratch;
    [ThreadStatic]
    private static Mmu<TArch>? t_cpuOwner;
    [ThreadStatic]
    private static int t_cpu;

    // Strict mode: last-level entries changed and not yet flushed, with the thread that changed them.
    private readonly Dictionary<ulong, int> _unflushed = new();
    // Live changes above the last level (a block broken or split, a table entry broken): the pages they covered.
    private readonly List<(ulong First, ulong Last, int Thread)> _unflushedBlocks = new();
    private readonly List<ulong> _flushedKeys = new();
    private readonly Lock _unflushedLock = new();
    private long _writeFaults;
    private long _translationFaults;
    private long _rangeFlushes;
    private long _fullFlushes;
    private long _accessFlagFaults;
    private long _accessFlagUpdates;

    public Mmu(KernelPageTable<TArch> pageTable, int cpus, ViolationLog violations, IFrameContent? content = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cpus, 1);
        _pageTable = pageTable;
        _violations = violations;
        _content = content;
        Tlbs = new Tlb[cpus];
        for (int i = 0; i < cpus; i++)
        {
            Tlbs[i] = new Tlb(i);
        }
    }

    public Tlb[] Tlbs { get; }

    /// <summary>Check each TLB hit against the page table and report stale translations.</summary>
    public bool Strict { get; set; }

    public long WriteFaults => Interlocked.Read(ref _writeFaults);

    public long TranslationFaults => Interlocked.Read(ref _translationFaults);

    /// <summary>
    /// FEAT_HAFDBS: a translation through a leaf with the access flag clear sets it atomically in the
    /// descriptor (and fails, to walk again, if the descriptor changed meanwhile); without it such a
    /// translation takes an Access flag fault. Only for specs with an access flag.
    /// </summary>
    public bool HardwareAccessFlag { get; set; }

    /// <summary>Access flag faults taken (no hardware AF management).</summary>
    public long AccessFlagFaults => Interlocked.Read(ref _accessFlagFaults);

    /// <summary>Access flags set by the hardware on a translation.</summary>
    public long AccessFlagUpdates => Interlocked.Read(ref _accessFlagUpdates);

    /// <summary>flush_tlb_kernel_range broadcasts seen.</summary>
    public long RangeFlushes => Interlocked.Read(ref _rangeFlushes);

    /// <summary>flush_tlb_all broadcasts.</summary>
    public long FullFlushes => Interlocked.Read(ref _fullFlushes);

    /// <summary>
    /// Test only, a deliberately broken shootdown: a flush invalidates only the flushing CPU's
    /// TLB (the thread's CPU, <see cref="RunOn"/>; CPU 0 otherwise), as a kernel that forgot the
    /// IPI would. Other CPUs keep their stale translations.
    /// </summary>
    internal bool LocalFlushOnly { get; set; }

    /// <summary>
    /// The calling thread runs as CPU <paramref name="cpu"/> (smp_processor_id) until the scope is
    /// disposed; scopes nest.
    /// </summary>
    public CpuScope RunOn(int cpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(cpu, Tlbs.Length);
        var scope = new CpuScope(t_cpuOwner, t_cpu);
        t_cpuOwner = this;
        t_cpu = cpu;
        return scope;
    }

    /// <summary>Move a thread that entered a CPU to another one; disposing its scope still puts back what was before it.</summary>
    internal void MoveThreadCpu(int cpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(cpu, Tlbs.Length);
        t_cpu = cpu;
    }

    /// <summary>The CPU the calling thread runs as, if it entered one with <see cref="RunOn"/>.</summary>
    public bool TryGetThreadCpu(out int cpu)
    {
        cpu = t_cpu;
        return ReferenceEquals(t_cpuOwner, this);
    }

    /// <summary>Translate <paramref name="va"/> for <paramref name="cpu"/>, filling its TLB on a miss.</summary>
    public AccessFault Translate(int cpu, ulong va, bool write, out ulong physicalAddress)
    {
        Tlb tlb = Tlbs[cpu];
        tlb.BeginAccess();
        try
        {
            return TranslateLocked(tlb, va, write, out physicalAddress);
        }
        finally
        {
            tlb.EndAccess();
        }
    }

    /// <summary>Read bytes at <paramref name="va"/> (inside one page) through the MMU: one access, no flush lands inside it.</summary>
    public AccessFault Read(int cpu, ulong va, Span<byte> destination)
    {
        CheckOnePage(va, destination.Length);
        Tlb tlb = Tlbs[cpu];
        tlb.BeginAccess();
        try
        {
            AccessFault fault = TranslateLocked(tlb, va, write: false, out ulong pa);
            if (fault != AccessFault.None)
            {
                return fault;
            }

            ulong pfn = pa >> TArch.PageShift;
            int offset = (int)(pa & (TArch.PageSize - 1));
            FrameContents(pfn).Slice(offset, destination.Length).CopyTo(destination);
            return AccessFault.None;
        }
        finally
        {
            tlb.EndAccess();
        }
    }

    /// <summary>
    /// What frame <paramref name="pfn"/> holds: its bytes if written, else its deferred contents
    /// (produced into a per-thread buffer, valid until this thread's next call), else zeroes.
    /// </summary>
    public ReadOnlySpan<byte> FrameContents(ulong pfn)
    {
        FrameStore frames = _pageTable.Frames;
        if (!frames.IsMaterialized(pfn) && _content is not null)
        {
            byte[] scratch = t_scratch is { } s && s.Length >= frames.PageSize ? s : (t_scratch = new byte[frames.PageSize]);
            Span<byte> frame = scratch.AsSpan(0, frames.PageSize);
            if (_content.TryFill(pfn, frame))
            {
                return frame;
            }
        }

        return frames.Read(pfn);
    }

    /// <summary>Do frames <paramref name="a"/> and <paramref name="b"/> hold the same bytes (deferred contents included)?</summary>
    public bool SameBytes(ulong a, ulong b)
    {
        byte[] first = System.Buffers.ArrayPool<byte>.Shared.Rent(_pageTable.Frames.PageSize);
        try
        {
            Span<byte> copy = first.AsSpan(0, _pageTable.Frames.PageSize);
            FrameContents(a).CopyTo(copy);
            return copy.SequenceEqual(FrameContents(b));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(first);
        }
    }

    /// <summary>Write bytes at <paramref name="va"/> (inside one page) through the MMU; a read-only mapping traps.</summary>
    public AccessFault Write(int cpu, ulong va, ReadOnlySpan<byte> source)
    {
        CheckOnePage(va, source.Length);
        Tlb tlb = Tlbs[cpu];
        tlb.BeginAccess();
        try
        {
            AccessFault fault = TranslateLocked(tlb, va, write: true, out ulong pa);
            if (fault != AccessFault.None)
            {
                return fault;
            }

            ulong pfn = pa >> TArch.PageShift;
            int offset = (int)(pa & (TArch.PageSize - 1));
            source.CopyTo(Materialize(pfn).Slice(offset));
            return AccessFault.None;
        }
        finally
        {
            tlb.EndAccess();
        }
    }

    /// <summary>
    /// The frame's bytes for writing: deferred contents are filled in on first write, before the
    /// frame counts as written, so a concurrent reader sees them either way.
    /// </summary>
    public Span<byte> Materialize(ulong pfn)
    {
        FrameStore frames = _pageTable.Frames;
        if (!frames.IsMaterialized(pfn))
        {
            Span<byte> unmarked = frames.Unmarked(pfn);
            if (_content is null || !_content.TryFill(pfn, unmarked))
            {
                unmarked.Clear();
            }
        }

        return frames.Write(pfn);
    }

    /// <summary>flush_tlb_all: every CPU's TLB, each invalidated between two of its accesses, before this returns.</summary>
    public void FlushAll()
    {
        Interlocked.Increment(ref _fullFlushes);
        if (LocalFlushOnly)
        {
            FlushingCpuTlb().InvalidateAll();
        }
        else
        {
            foreach (Tlb tlb in Tlbs)
            {
                tlb.InvalidateAll();
            }
        }

        Flushed(0, ulong.MaxValue >> TArch.PageShift);
    }

    /// <summary>Can some CPU's TLB still reach <paramref name="pfn"/>?</summary>
    public bool TlbReaches(ulong pfn, out int cpu, out ulong va)
    {
        foreach (Tlb tlb in Tlbs)
        {
            if (tlb.Reaches(pfn, out ulong vpn))
            {
                cpu = tlb.Cpu;
                va = vpn << TArch.PageShift;
                return true;
            }
        }

        cpu = -1;
        va = 0;
        return false;
    }

    void IPageTableObserver.EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step)
    {
        // A TLB keeps what it cached until a flush. Strict mode remembers who changed a live PTE, so
        // that another CPU using the old translation before that flush is not taken for a missing
        // flush. (An invalid entry was never cached: making it valid needs no record.)
        if (Strict && TArch.IsValid(level, oldEntry))
        {
            lock (_unflushedLock)
            {
                if (level == TArch.LastLevel)
                {
                    _unflushed[va >> TArch.PageShift] = Environment.CurrentManagedThreadId;
                }
                else
                {
                    // A block or a table entry: every page under it may be cached (break-before-make
                    // on a PMD, a split): remember the range until a flush covers it.
                    ulong size = TArch.LevelSize(level);
                    ulong first = (va & ~(size - 1)) >> TArch.PageShift;
                    _unflushedBlocks.Add((first, first + (size >> TArch.PageShift) - 1, Environment.CurrentManagedThreadId));
                }
            }
        }
    }

    void IPageTableObserver.Flushed(ulong start, ulong end)
    {
        Interlocked.Increment(ref _rangeFlushes);
        ulong first = start >> TArch.PageShift;
        ulong last = (end - 1) >> TArch.PageShift;
        if (LocalFlushOnly)
        {
            FlushingCpuTlb().Invalidate(first, last);
        }
        else
        {
            foreach (Tlb tlb in Tlbs)
            {
                tlb.Invalidate(first, last);
            }
        }

        Flushed(first, last);
    }

    // Strict mode: the changes [first, last] are flushed (after the TLBs were, so a hit that
    // still sees a change's old translation finds it pending).
    private void Flushed(ulong first, ulong last)
    {
        if (!Strict)
        {
            return;
        }

        lock (_unflushedLock)
        {
            // A loop, not RemoveAll with a lambda: the lambda's closure would be allocated on every
            // call, strict or not (README, Bench: nothing allocated per operation).
            for (int i = _unflushedBlocks.Count - 1; i >= 0; i--)
            {
                if (_unflushedBlocks[i].First >= first && _unflushedBlocks[i].Last <= last)
                {
                    _unflushedBlocks.RemoveAt(i);
                }
            }
            if (_unflushed.Count == 0)
            {
                return;
            }

            if (last - first < (ulong)_unflushed.Count)
            {
                for (ulong vpn = first; vpn <= last; vpn++)
                {
                    _unflushed.Remove(vpn);
                }

                return;
            }

            _flushedKeys.Clear();
            foreach (ulong vpn in _unflushed.Keys)
            {
                if (vpn >= first && vpn <= last)
                {
                    _flushedKeys.Add(vpn);
                }
            }

            foreach (ulong vpn in _flushedKeys)
            {
                _unflushed.Remove(vpn);
            }
        }
    }

    private Tlb FlushingCpuTlb() => Tlbs[TryGetThreadCpu(out int cpu) ? cpu : 0];

    private AccessFault TranslateLocked(Tlb tlb, ulong va, bool write, out ulong physicalAddress)
    {
        ulong vpn = va >> TArch.PageShift;
        ulong offset = va & (TArch.PageSize - 1);
        if (tlb.LookupLocked(vpn, out TlbEntry hit))
        {
            if (Strict)
            {
                CheckStillCurrent(tlb.Cpu, va, hit);
            }
        }
        else
        {
            // The hardware walker: no lock, each entry read once (READ_ONCE).
            WalkResult w = _pageTable.Walk(va);
            if (!w.IsLeaf)
            {
                Interlocked.Increment(ref _translationFaults);
                physicalAddress = 0;
                return AccessFault.NotMapped;
            }

            // A TLB never caches a translation with the access flag clear: fault, or set it first.
            while (TArch.AccessFlag != 0 && (w.Entry & TArch.AccessFlag) == 0)
            {
                if (!HardwareAccessFlag)
                {
                    Interlocked.Increment(ref _accessFlagFaults);
                    physicalAddress = 0;
                    return AccessFault.AccessFlag;
                }

                if (_pageTable.HardwareSetAccessFlag(w))
                {
                    Interlocked.Increment(ref _accessFlagUpdates);
                    w = w with { Entry = w.Entry | TArch.AccessFlag };
                    break;
                }

                // The descriptor changed under the hardware update: translate again.
                w = _pageTable.Walk(va);
                if (!w.IsLeaf)
                {
                    Interlocked.Increment(ref _translationFaults);
                    physicalAddress = 0;
                    return AccessFault.NotMapped;
                }
            }

            hit = new TlbEntry(vpn, PagePfn(w, va), TArch.IsWritable(w.Entry), w.Level);
            if (w.Level == TArch.LastLevel)
            {
                tlb.InsertLocked(hit);
            }
            else
            {
                // A block: one entry for all of it.
                ulong pages = TArch.LevelSize(w.Level) >> TArch.PageShift;
                tlb.InsertLocked(new TlbEntry(vpn & ~(pages - 1), TArch.PfnOf(w.Level, w.Entry), hit.Writable, w.Level) { Pages = pages });
            }
        }

        physicalAddress = (hit.Pfn << TArch.PageShift) | offset;
        if (write && !hit.Writable)
        {
            Interlocked.Increment(ref _writeFaults);
            return AccessFault.WriteProtect;
        }

        return AccessFault.None;
    }

    private static ulong PagePfn(WalkResult w, ulong va) =>
        TArch.PfnOf(w.Level, w.Entry) + ((va & (TArch.LevelSize(w.Level) - 1)) >> TArch.PageShift);

    private void CheckStillCurrent(int cpu, ulong va, TlbEntry cached)
    {
        WalkResult w = _pageTable.Walk(va);
        bool same = w.IsLeaf && PagePfn(w, va) == cached.Pfn && TArch.IsWritable(w.Entry) == cached.Writable;
        if (same || ChangedByAnotherThreadNotYetFlushed(va))
        {
            return;
        }

        _violations.Add(new Violation(ViolationKind.StaleTranslation, va,
            $"CPU {cpu} used a cached translation to frame 0x{cached.Pfn:x} ({(cached.Writable ? "RW" : "ro")}) after the page table changed " +
            $"to {(w.IsLeaf ? $"frame 0x{PagePfn(w, va):x} ({(TArch.IsWritable(w.Entry) ? "RW" : "ro")})" : "no mapping")} without a flush"));
    }

    private bool ChangedByAnotherThreadNotYetFlushed(ulong va)
    {
        lock (_unflushedLock)
        {
            ulong vpn = va >> TArch.PageShift;
            int me = Environment.CurrentManagedThreadId;
            if (_unflushed.TryGetValue(vpn, out int thread) && thread != me)
            {
                return true;
            }

            foreach ((ulong first, ulong last, int changer) in _unflushedBlocks)
            {
                if (vpn >= first && vpn <= last && changer != me)
                {
                    return true;
                }
            }

            return false;
        }
    }

    private static void CheckOnePage(ulong va, int length)
    {
        if (length < 0 || (ulong)length > TArch.PageSize - (va & (TArch.PageSize - 1)))
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"an access of {length} bytes at 0x{va:x} crosses a page boundary");
        }
    }

    /// <summary>Puts back the calling thread's previous CPU (<see cref="RunOn"/>).</summary>
    public readonly struct CpuScope : IDisposable
    {
        private readonly Mmu<TArch>? _previousOwner;
        private readonly int _previousCpu;

        internal CpuScope(Mmu<TArch>? previousOwner, int previousCpu)
        {
            _previousOwner = previousOwner;
            _previousCpu = previousCpu;
        }

        public void Dispose()
        {
            t_cpuOwner = _previousOwner;
            t_cpu = _previousCpu;
        }
    }
}
