using System.Runtime.CompilerServices;

namespace Hvo.Paging;

/// <summary>
/// Where a page table lies, as the walk, its visitors and the entry writers pass it (the
/// <c>tablePfn</c> of <see cref="PageWalkEntry"/>, <see cref="IPageTableContext"/>): its frame number,
/// and for a table smaller than a page handed out as a fragment of one (s390's 2 KiB page tables
/// before v6.7, page_table_alloc; levels[].fragmentsUntil), the entry of the frame it starts at, in
/// the bits above any frame number. A table that starts on a page is its pfn (offset 0), so on every
/// other architecture, and on s390 from v6.7, a reference is a pfn.
/// </summary>
public static class TableRef
{
    /// <summary>The lowest bit of the entry offset; frame numbers stay below it.</summary>
    public const int OffsetShift = 48;

    /// <summary>The frame-number bits of a reference.</summary>
    public const ulong PfnMask = (1UL << OffsetShift) - 1;

    /// <summary>The table that starts at entry <paramref name="entryOffset"/> of frame <paramref name="pfn"/>.</summary>
    public static ulong Of(ulong pfn, int entryOffset) => pfn | ((ulong)entryOffset << OffsetShift);

    /// <summary>The frame the table lies in.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Pfn(ulong table) => table & PfnMask;

    /// <summary>The entry of its frame the table starts at (0 for a table that starts on a page).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int EntryOffset(ulong table) => (int)(table >> OffsetShift);
}
