using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// The bytes of simulated physical memory, kept only for frames something wrote: page-table
/// frames and vmemmap frames. A frame nobody wrote reads as zeroes and costs no host memory,
/// so a 1 TiB machine costs what its page tables and struct pages cost.
/// </summary>
/// <remarks>
/// This is one of the few places with pointers. Each materialized frame is one
/// zeroed native block of exactly <see cref="PageSize"/> bytes, owned by this store until
/// <see cref="Discard"/> or <see cref="Dispose"/>; a span over it is valid while the frame is
/// materialized, which the machine's owner table guarantees for every frame it hands out.
/// </remarks>
public sealed unsafe class FrameStore : IDisposable
{
    private const int ChunkShift = 16;
    private const ulong ChunkMask = (1UL << ChunkShift) - 1;

    private readonly nint[]?[] _chunks;
    private readonly nint _zeroFrame;
    private long _materialized;
    private bool _disposed;

    public FrameStore(ulong frames, int pageShift)
    {
        if (pageShift is < 10 or > 24)
        {
            throw new ArgumentOutOfRangeException(nameof(pageShift), pageShift, "page shift must be 10..24");
        }

        Frames = frames;
        PageShift = pageShift;
        PageSize = 1 << pageShift;
        _chunks = new nint[]?[(frames + ChunkMask) >> ChunkShift];
        _zeroFrame = (nint)NativeMemory.AlignedAlloc((nuint)PageSize, 64);
        NativeMemory.Clear((void*)_zeroFrame, (nuint)PageSize);
    }

    ~FrameStore() => Release();

    public ulong Frames { get; }

    public int PageShift { get; }

    public int PageSize { get; }

    /// <summary>Frames that hold bytes now.</summary>
    public long MaterializedFrames => Interlocked.Read(ref _materialized);

    /// <summary>Host bytes spent on frame contents.</summary>
    public long MaterializedBytes => MaterializedFrames * PageSize;

    public bool IsMaterialized(ulong pfn) => Slot(pfn) != 0;

    /// <summary>The frame's bytes for reading: zeroes if nobody wrote it.</summary>
    public ReadOnlySpan<byte> Read(ulong pfn)
    {
        nint p = Slot(pfn);
        return new ReadOnlySpan<byte>((void*)(p != 0 ? p : _zeroFrame), PageSize);
    }

    /// <summary>The frame's bytes for writing, materialized (zeroed) on first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Write(ulong pfn) => new((void*)Materialize(pfn), PageSize);

    /// <summary>A page-table frame as its 8-byte entries, materialized on first use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<ulong> Table(ulong pfn) => new((void*)Materialize(pfn), PageSize >> 3);

    /// <summary>Forget the frame's bytes: it reads as zeroes again and costs nothing.</summary>
    public void Discard(ulong pfn)
    {
        nint[]? chunk = _chunks[ChunkOf(pfn)];
        if (chunk is null)
        {
            return;
        }

        nint p = Interlocked.Exchange(ref chunk[pfn & ChunkMask], 0);
        if (p != 0)
        {
            NativeMemory.AlignedFree((void*)p);
            Interlocked.Decrement(ref _materialized);
        }
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nint Materialize(ulong pfn)
    {
        nint[]? chunk = _chunks[ChunkOf(pfn)];
        if (chunk is not null)
        {
            nint p = chunk[pfn & ChunkMask];
            if (p != 0)
            {
                return p;
            }
        }

        return MaterializeSlow(pfn);
    }

    private nint MaterializeSlow(ulong pfn)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ref nint[]? chunkRef = ref _chunks[ChunkOf(pfn)];
        nint[] chunk = chunkRef ?? Interlocked.CompareExchange(ref chunkRef, new nint[1 << ChunkShift], null) ?? chunkRef!;
        ref nint slot = ref chunk[pfn & ChunkMask];
        if (slot != 0)
        {
            return slot;
        }

        nint fresh = (nint)NativeMemory.AlignedAlloc((nuint)PageSize, 64);
        NativeMemory.Clear((void*)fresh, (nuint)PageSize);
        nint existing = Interlocked.CompareExchange(ref slot, fresh, 0);
        if (existing != 0)
        {
            NativeMemory.AlignedFree((void*)fresh);
            return existing;
        }

        Interlocked.Increment(ref _materialized);
        return fresh;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nint Slot(ulong pfn)
    {
        nint[]? chunk = _chunks[ChunkOf(pfn)];
        return chunk is null ? 0 : Volatile.Read(ref chunk[pfn & ChunkMask]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long ChunkOf(ulong pfn)
    {
        if (pfn >= Frames)
        {
            ThrowOutOfRange(pfn);
        }

        return (long)(pfn >> ChunkShift);
    }

    private void ThrowOutOfRange(ulong pfn) =>
        throw new ArgumentOutOfRangeException(nameof(pfn), $"pfn 0x{pfn:x} is beyond the machine's {Frames} frames");

    private void Release()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        foreach (nint[]? chunk in _chunks)
        {
            if (chunk is null)
            {
                continue;
            }

            foreach (nint p in chunk)
            {
                if (p != 0)
                {
                    NativeMemory.AlignedFree((void*)p);
                }
            }
        }

        NativeMemory.AlignedFree((void*)_zeroFrame);
    }
}
