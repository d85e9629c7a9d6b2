using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace Hvo.Paging;

/// <summary>
/// Entry access for the generated walkers, without a bounds check. Safe because every index a
/// walker passes is masked by the level's index mask, and every table span is exactly one
/// table frame (entries-per-table entries), which is what the spec validator guarantees.
/// </summary>
public static class TableEntries
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ref ulong At(Span<ulong> table, int index)
    {
        Debug.Assert((uint)index < (uint)table.Length);
        return ref Unsafe.Add(ref MemoryMarshal.GetReference(table), index);
    }

    /// <summary>READ_ONCE of an entry another CPU may be publishing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Load(Span<ulong> table, int index) => Volatile.Read(ref At(table, index));
}
