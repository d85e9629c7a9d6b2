using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace Hvo.Paging;

/// <summary>
/// Entry access for page-table frames. <see cref="At"/> and <see cref="Load"/> skip the bounds check
/// and are internal to the generated walk: every index it passes is masked by its level's index
/// mask, and every table span is one whole table frame (entries-per-table entries), which the spec
/// validator guarantees. Everything else reads and writes through the checked accessors, so an
/// index from outside can never reach past a frame.
/// </summary>
public static class TableEntries
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ref ulong At(Span<ulong> table, int index)
    {
        Debug.Assert((uint)index < (uint)table.Length);
        return ref Unsafe.Add(ref MemoryMarshal.GetReference(table), index);
    }

    /// <summary>READ_ONCE of an entry another CPU may be publishing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Load(Span<ulong> table, int index) => Volatile.Read(ref At(table, index));

    /// <summary>The entry <paramref name="index"/> of <paramref name="table"/>; an index outside the table throws.</summary>
    public static ref ulong Checked(Span<ulong> table, int index)
    {
        if ((uint)index >= (uint)table.Length)
        {
            Throw(index, table.Length);
        }

        return ref Unsafe.Add(ref MemoryMarshal.GetReference(table), index);
    }

    /// <summary>READ_ONCE of entry <paramref name="index"/>, checked.</summary>
    public static ulong Read(Span<ulong> table, int index) => Volatile.Read(ref Checked(table, index));

    private static void Throw(int index, int entries) =>
        throw new ArgumentOutOfRangeException(nameof(index), index, $"a table has {entries} entries");
}
