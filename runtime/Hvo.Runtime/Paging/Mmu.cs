using System;
using System.Threading;
using Hvo.Checks;
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
public sealed class Mmu<TArch> : IPageTableObserver where TArch : struct, IPagingArch
{
    private readonly KernelPageTable<TArch> _pageTable;
    private readonly IFrameContent? _content;
    private readonly ViolationLog _violations;
    [ThreadStatic]
    private static byte[]? t_scratch;
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

    /// <summary>Translate <paramref name="va"/> for <paramref name="cpu"/>, filling its TLB on a miss.</summary>
    public AccessFault Translate(int cpu, ulong va, bool write, out ulong physicalAddress)
    {
        ulong vpn = va >> TArch.PageShift;
        ulong offset = va & (TArch.PageSize - 1);
        Tlb tlb = Tlbs[cpu];
        if (tlb.TryLookup(vpn, out TlbEntry hit))
        {
            if (Strict)
            {
                CheckStillCurrent(cpu, va, hit);
            }
        }
        else
        {
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

                ref ulong slot = ref TableEntries.At(_pageTable.Frames.Table(w.TablePfn), w.Index);
                if (Interlocked.CompareExchange(ref slot, w.Entry | TArch.AccessFlag, w.Entry) == w.Entry)
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
            tlb.Insert(hit);
        }

        physicalAddress = (hit.Pfn << TArch.PageShift) | offset;
        if (write && !hit.Writable)
        {
            Interlocked.Increment(ref _writeFaults);
            return AccessFault.WriteProtect;
        }

        return AccessFault.None;
    }

    /// <summary>Read bytes at <paramref name="va"/> (inside one page) through the MMU.</summary>
    public AccessFault Read(int cpu, ulong va, Span<byte> destination)
    {
        CheckOnePage(va, destination.Length);
        AccessFault fault = Translate(cpu, va, write: false, out ulong pa);
        if (fault != AccessFault.None)
        {
            return fault;
        }

        ulong pfn = pa >> TArch.PageShift;
        int offset = (int)(pa & (TArch.PageSize - 1));
        FrameContents(pfn).Slice(offset, destination.Length).CopyTo(destination);
        return AccessFault.None;
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

    /// <summary>Write bytes at <paramref name="va"/> (inside one page) through the MMU; a read-only mapping traps.</summary>
    public AccessFault Write(int cpu, ulong va, ReadOnlySpan<byte> source)
    {
        CheckOnePage(va, source.Length);
        AccessFault fault = Translate(cpu, va, write: true, out ulong pa);
        if (fault != AccessFault.None)
        {
            return fault;
        }

        ulong pfn = pa >> TArch.PageShift;
        int offset = (int)(pa & (TArch.PageSize - 1));
        source.CopyTo(Materialize(pfn).Slice(offset));
        return AccessFault.None;
    }

    /// <summary>The frame's bytes for writing: deferred contents are filled in on first write.</summary>
    public Span<byte> Materialize(ulong pfn)
    {
        FrameStore frames = _pageTable.Frames;
        if (frames.IsMaterialized(pfn))
        {
            return frames.Write(pfn);
        }

        Span<byte> frame = frames.Write(pfn);
        if (_content is null || !_content.TryFill(pfn, frame))
        {
            frame.Clear();
        }

        return frame;
    }

    /// <summary>flush_tlb_all.</summary>
    public void FlushAll()
    {
        Interlocked.Increment(ref _fullFlushes);
        foreach (Tlb tlb in Tlbs)
        {
            tlb.InvalidateAll();
        }
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

    void IPageTableObserver.EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
    {
        // A TLB keeps what it cached until a flush: nothing to do here.
    }

    void IPageTableObserver.Flushed(ulong start, ulong end)
    {
        Interlocked.Increment(ref _rangeFlushes);
        ulong first = start >> TArch.PageShift;
        ulong last = (end - 1) >> TArch.PageShift;
        foreach (Tlb tlb in Tlbs)
        {
            tlb.Invalidate(first, last);
        }
    }

    private static ulong PagePfn(WalkResult w, ulong va) =>
        TArch.PfnOf(w.Level, w.Entry) + ((va & (TArch.LevelSize(w.Level) - 1)) >> TArch.PageShift);

    private void CheckStillCurrent(int cpu, ulong va, TlbEntry cached)
    {
        WalkResult w = _pageTable.Walk(va);
        bool same = w.IsLeaf && PagePfn(w, va) == cached.Pfn && TArch.IsWritable(w.Entry) == cached.Writable;
        if (!same)
        {
            _violations.Add(new Violation(ViolationKind.StaleTranslation, va,
                $"CPU {cpu} used a cached translation to frame 0x{cached.Pfn:x} ({(cached.Writable ? "RW" : "ro")}) after the page table changed " +
                $"to {(w.IsLeaf ? $"frame 0x{PagePfn(w, va):x} ({(TArch.IsWritable(w.Entry) ? "RW" : "ro")})" : "no mapping")} without a flush"));
        }
    }

    private static void CheckOnePage(ulong va, int length)
    {
        if (length < 0 || (ulong)length > TArch.PageSize - (va & (TArch.PageSize - 1)))
        {
            throw new ArgumentOutOfRangeException(nameof(length), $"an access of {length} bytes at 0x{va:x} crosses a page boundary");
        }
    }
}
