using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// A bitmap over a large index space whose words are allocated a chunk at a time, on the first
/// bit set in the chunk: a mostly clear bitmap costs a reference per 2^15 bits. Chunks are kept
/// once allocated, so memory follows the most scattered state the bitmap has held, not its
/// length. Not thread-safe: its owner serialises writes (<see cref="GetAcquire"/> reads beside them).
/// </summary>
internal sealed class SparseBitmap
{
    private const int ChunkShift = 15;
    private const int WordsPerChunk = 1 << (ChunkShift - 6);
    private const ulong ChunkMask = (1UL << ChunkShift) - 1;

    private readonly ulong[]?[] _chunks;

    public SparseBitmap(ulong length)
    {
        Length = length;
        _chunks = new ulong[]?[(length + ChunkMask) >> ChunkShift];
    }

    public ulong Length { get; }

    private int _allocatedChunks;

    /// <summary>Chunks allocated so far: the bitmap's host memory is this times 4 KiB.</summary>
    public int AllocatedChunks => Volatile.Read(ref _allocatedChunks);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Get(ulong i)
    {
        ulong[]? chunk = _chunks[i >> ChunkShift];
        return chunk is not null && (chunk[(int)((i & ChunkMask) >> 6)] & (1UL << (int)i)) != 0;
    }

    /// <summary>
    /// <see cref="Get"/> for a reader that does not hold its owner's lock: the chunk and the word
    /// read with acquire semantics (a later read is not moved before it), the word whole.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool GetAcquire(ulong i)
    {
        ulong[]? chunk = Volatile.Read(ref _chunks[i >> ChunkShift]);
        return chunk is not null && (Volatile.Read(ref chunk[(int)((i & ChunkMask) >> 6)]) & (1UL << (int)i)) != 0;
    }

    /// <summary>Set bit <paramref name="i"/>; false if it was set already.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Set(ulong i)
    {
        ref ulong word = ref Word(i);
        ulong bit = 1UL << (int)i;
        bool wasClear = (word & bit) == 0;
        word |= bit;
        return wasClear;
    }

    /// <summary>
    /// Set or clear bit <paramref name="i"/> with one atomic read-modify-write of its word (a chunk
    /// made by compare-and-exchange), for writers that do not hold the owner's lock; every writer of
    /// such a bitmap must write this way. The bit's value before.
    /// </summary>
    public bool WriteAtomic(ulong i, bool value)
    {
        ref ulong[]? slot = ref _chunks[i >> ChunkShift];
        ulong[]? chunk = Volatile.Read(ref slot);
        if (chunk is null)
        {
            if (!value)
            {
                return false;
            }

            ulong[] made = new ulong[WordsPerChunk];
            chunk = Interlocked.CompareExchange(ref slot, made, null) ?? made;
            if (ReferenceEquals(chunk, made))
            {
                Interlocked.Increment(ref _allocatedChunks);
            }
        }

        ref ulong word = ref chunk[(int)((i & ChunkMask) >> 6)];
        ulong bit = 1UL << (int)i;
        return ((value ? Interlocked.Or(ref word, bit) : Interlocked.And(ref word, ~bit)) & bit) != 0;
    }

    /// <summary>Clear bit <paramref name="i"/>; false if it was clear already.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Clear(ulong i)
    {
        ulong[]? chunk = _chunks[i >> ChunkShift];
        if (chunk is null)
        {
            return false;
        }

        ref ulong word = ref chunk[(int)((i & ChunkMask) >> 6)];
        ulong bit = 1UL << (int)i;
        bool wasSet = (word & bit) != 0;
        word &= ~bit;
        return wasSet;
    }

    /// <summary>Set every bit of [<paramref name="lo"/>, <paramref name="hi"/>).</summary>
    public void SetRange(ulong lo, ulong hi)
    {
        while (lo < hi)
        {
            ulong wordEnd = Math.Min(hi, (lo | 63) + 1);
            Word(lo) |= Bits(lo, wordEnd);
            lo = wordEnd;
        }
    }

    /// <summary>Clear every bit of [<paramref name="lo"/>, <paramref name="hi"/>).</summary>
    public void ClearRange(ulong lo, ulong hi)
    {
        while (lo < hi)
        {
            ulong wordEnd = Math.Min(hi, (lo | 63) + 1);
            ulong[]? chunk = _chunks[lo >> ChunkShift];
            if (chunk is not null)
            {
                chunk[(int)((lo & ChunkMask) >> 6)] &= ~Bits(lo, wordEnd);
            }

            lo = wordEnd;
        }
    }

    /// <summary>Bits set in [<paramref name="lo"/>, <paramref name="hi"/>).</summary>
    public ulong Count(ulong lo, ulong hi)
    {
        ulong count = 0;
        while (lo < hi)
        {
            ulong[]? chunk = _chunks[lo >> ChunkShift];
            if (chunk is null)
            {
                lo = ((lo >> ChunkShift) + 1) << ChunkShift;
                continue;
            }

            ulong wordEnd = Math.Min(hi, (lo | 63) + 1);
            count += (ulong)BitOperations.PopCount(chunk[(int)((lo & ChunkMask) >> 6)] & Bits(lo, wordEnd));
            lo = wordEnd;
        }

        return count;
    }

    /// <summary>Whether any bit of [<paramref name="lo"/>, <paramref name="hi"/>) is set.</summary>
    public bool Any(ulong lo, ulong hi)
    {
        while (lo < hi)
        {
            ulong[]? chunk = _chunks[lo >> ChunkShift];
            if (chunk is null)
            {
                lo = ((lo >> ChunkShift) + 1) << ChunkShift;
                continue;
            }

            ulong wordEnd = Math.Min(hi, (lo | 63) + 1);
            if ((chunk[(int)((lo & ChunkMask) >> 6)] & Bits(lo, wordEnd)) != 0)
            {
                return true;
            }

            lo = wordEnd;
        }

        return false;
    }

    // The bits of [lo, end) within lo's word; end is at most the next word boundary.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Bits(ulong lo, ulong end)
    {
        int from = (int)(lo & 63);
        int count = (int)(end - lo);
        return count == 64 ? ulong.MaxValue : ((1UL << count) - 1) << from;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ref ulong Word(ulong i)
    {
        ref ulong[]? chunk = ref _chunks[i >> ChunkShift];
        chunk ??= NewChunk();
        return ref chunk[(int)((i & ChunkMask) >> 6)];
    }

    private ulong[] NewChunk()
    {
        _allocatedChunks++;
        return new ulong[WordsPerChunk];
    }
}
