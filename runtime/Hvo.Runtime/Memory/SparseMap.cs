using System;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// A map from a large index space (pfns, or pfns shifted by an order) to values, as chunks of a
/// flat array allocated on the first value set in them: 8 bytes a slot where the indexes are
/// dense (a pool of millions of huge pages), a reference per 4096 slots where nothing ever was, and
/// no rehash that doubles memory while it grows. Chunks are kept once allocated (as
/// <see cref="SparseBitmap"/>'s), so a value set and removed over and over allocates nothing.
/// <c>default(T)</c> is "no value" (a null reference, address 0). Writers of different slots need
/// no lock: a chunk is published with a compare-and-exchange (a writer that loses uses the
/// winner's), and a slot is one store. Writers of the same slot must be ordered by their caller
/// (a frame's slot is written by whoever owns the frame, and frames change hands under the page
/// allocator's lock). A read beside a write sees the slot before or after it (a slot of a type the
/// runtime reads whole, such as <c>ulong</c> on a 64-bit host).
/// </summary>
internal sealed class SparseMap<T>
{
    private const int ChunkShift = 12;
    private const ulong ChunkMask = (1UL << ChunkShift) - 1;

    private readonly T[]?[] _chunks;

    public SparseMap(ulong length)
    {
        Length = length;
        ulong chunks = (length + ChunkMask) >> ChunkShift;
        _chunks = new T[]?[chunks];
    }

    public ulong Length { get; }

    /// <summary>Slots holding a value (counted: a report's number, not a fast path's).</summary>
    public long Count
    {
        get
        {
            long count = 0;
            foreach (T[]? chunk in _chunks)
            {
                for (int i = 0; chunk is not null && i < chunk.Length; i++)
                {
                    count += IsEmpty(chunk[i]) ? 0 : 1;
                }
            }

            return count;
        }
    }

    public bool TryGetValue(ulong i, out T value)
    {
        T[]? chunk = i < Length ? _chunks[i >> ChunkShift] : null;
        value = chunk is null ? default! : chunk[(int)(i & ChunkMask)];
        return chunk is not null && !IsEmpty(value);
    }

    /// <summary>Set slot <paramref name="i"/> to <paramref name="value"/> (not the default).</summary>
    public void Set(ulong i, T value)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(i, Length);
        if (IsEmpty(value))
        {
            throw new ArgumentException("the empty value is no value: Remove instead", nameof(value));
        }

        ulong c = i >> ChunkShift;
        T[] chunk = Volatile.Read(ref _chunks[c]) ?? NewChunk(c);
        chunk[(int)(i & ChunkMask)] = value; // ordered before a later release (the PTE that maps the frame)
    }

    /// <summary>Clear slot <paramref name="i"/>; false if it held nothing.</summary>
    public bool Remove(ulong i)
    {
        T[]? chunk = i < Length ? Volatile.Read(ref _chunks[i >> ChunkShift]) : null;
        if (chunk is null || IsEmpty(chunk[(int)(i & ChunkMask)]))
        {
            return false;
        }

        chunk[(int)(i & ChunkMask)] = default!;
        return true;
    }

    // The chunk of slots c * 2^ChunkShift on, made by this writer or by one that raced it.
    private T[] NewChunk(ulong c)
    {
        T[] made = new T[1 << ChunkShift];
        return Interlocked.CompareExchange(ref _chunks[c], made, null) ?? made;
    }

    private static bool IsEmpty(T value) => System.Collections.Generic.EqualityComparer<T>.Default.Equals(value, default!);
}
