using System;

namespace Hvo.Memory;

/// <summary>
/// A map from a large index space (pfns, or pfns shifted by an order) to values, as chunks of a
/// flat array allocated on the first value set in them: 8 bytes a slot where the indexes are
/// dense (a pool of millions of huge pages), a reference per 4096 slots where nothing ever was, and
/// no rehash that doubles memory while it grows. Chunks are kept once allocated (as
/// <see cref="SparseBitmap"/>'s), so a value set and removed over and over allocates nothing.
/// <c>default(T)</c> is "no value" (a null reference, address 0). Not thread-safe: its owner
/// serialises writes; a read beside them sees a slot before or after a write (a slot of a type
/// the runtime reads whole, such as <c>ulong</c> on a 64-bit host).
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

    /// <summary>Slots holding a value.</summary>
    public long Count { get; private set; }

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
        T[] chunk = _chunks[c] ??= new T[1 << ChunkShift];
        ref T slot = ref chunk[(int)(i & ChunkMask)];
        if (IsEmpty(slot))
        {
            Count++;
        }

        slot = value;
    }

    /// <summary>Clear slot <paramref name="i"/>; false if it held nothing.</summary>
    public bool Remove(ulong i)
    {
        T[]? chunk = i < Length ? _chunks[i >> ChunkShift] : null;
        if (chunk is null || IsEmpty(chunk[(int)(i & ChunkMask)]))
        {
            return false;
        }

        chunk[(int)(i & ChunkMask)] = default!;
        Count--;
        return true;
    }

    private static bool IsEmpty(T value) => System.Collections.Generic.EqualityComparer<T>.Default.Equals(value, default!);
}
