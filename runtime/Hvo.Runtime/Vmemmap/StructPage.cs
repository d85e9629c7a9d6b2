using System;
using System.Buffers.Binary;

namespace Hvo.Vmemmap;

/// <summary>
/// The simulated <c>struct page</c>: a real record in vmemmap bytes, read and written through the
/// MMU. The fields HVO's correctness depends on are at the kernel's offsets for a 64-byte struct
/// page on a 64-bit build: <c>flags</c> at 0, <c>compound_head</c> at 8 (bit 0 set in a tail),
/// the compound order in the first tail, <c>mapping</c> at 24, <c>_mapcount</c> at 48 and
/// <c>_refcount</c> at 52. Node and zone live in the top bits of <c>flags</c>, as the kernel keeps
/// them. A huge page's struct pages hold what prep_compound_page and the folio leave there and
/// what free_pages_prepare checks (<see cref="FreeCheck"/>): the order also in the first tail's
/// flags (folio_set_order's <c>_flags_1</c>), an empty <c>_deferred_list</c> in the second tail
/// (its <c>prev</c> overlaps <c>mapping</c>), the hugetlb cgroup pointer (NULL) in the third
/// tail's <c>mapping</c> from v6.15 (4eeec8c89a0c), and TAIL_MAPPING in every other tail.
/// </summary>
public static class StructPage
{
    public const int FlagsOffset = 0;
    public const int CompoundHeadOffset = 8;

    /// <summary>First tail page: compound order (folio's _folio_order byte in later kernels).</summary>
    public const int CompoundOrderOffset = 16;

    /// <summary>page->mapping (a tail's TAIL_MAPPING; page[2]'s _deferred_list.prev; page[3]'s _hugetlb_cgroup from v6.15).</summary>
    public const int MappingOffset = 24;

    /// <summary>page[2]'s _deferred_list (next at 16, prev at 24).</summary>
    public const int DeferredListOffset = 16;

    /// <summary>
    /// TAIL_MAPPING: 0x400 + POISON_POINTER_DELTA, with x86-64's CONFIG_ILLEGAL_POINTER_VALUE
    /// 0xdead000000000000 (the value 64-bit distributions build with).
    /// </summary>
    public const ulong TailMapping = 0xdead000000000400;

    /// <summary>The first tail that holds no folio field on any modelled version: page[4] (page[3] holds hugetlb's from v6.15).</summary>
    public const ulong FirstPlainTail = 4;

    public const int MapcountOffset = 48;
    public const int RefcountOffset = 52;

    /// <summary>Bytes of the fields above; the rest of a larger struct page stays zero.</summary>
    public const int MinimumSize = 56;

    // include/linux/page-flags.h (names; bit numbers are the simulator's, stable and documented here).
    // Bits 0 to 8 are the kernel's (enum pageflags), so the order folio_set_order puts in the first
    // tail's low byte reads as the flags it would in the kernel (order 9: locked|uptodate).
    public const ulong PgLocked = 1UL << 0;
    public const ulong PgWriteback = 1UL << 1;
    public const ulong PgReferenced = 1UL << 2;
    public const ulong PgUptodate = 1UL << 3;
    public const ulong PgDirty = 1UL << 4;
    public const ulong PgLru = 1UL << 5;
    public const ulong PgActive = 1UL << 8;
    public const ulong PgReserved = 1UL << 10;
    public const ulong PgHead = 1UL << 16;

    /// <summary>HPageVmemmapOptimized: a HugeTLB-private flag, kept in the head page's flags.</summary>
    public const ulong PgHugeVmemmapOptimized = 1UL << 24;

    private const int ZoneShift = 62;
    private const int NodeShift = 52;
    private const ulong NodeMask = 0x3ff;

    /// <summary>
    /// What memmap_init / __init_single_page leave in the struct page of <paramref name="pfn"/>:
    /// node and zone in the flags, no mapping, _mapcount -1; a reserved frame keeps PG_reserved
    /// and a reference; a free frame has refcount 0 after __free_pages_core.
    /// </summary>
    public static void Initialize(Span<byte> page, int node, int zone, bool reserved)
    {
        page.Clear();
        ulong flags = ((ulong)zone << ZoneShift) | (((ulong)node & NodeMask) << NodeShift) | (reserved ? PgReserved : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(page[FlagsOffset..], flags);
        BinaryPrimitives.WriteInt32LittleEndian(page[MapcountOffset..], -1);
        BinaryPrimitives.WriteInt32LittleEndian(page[RefcountOffset..], reserved ? 1 : 0);
    }

    public static ulong Flags(ReadOnlySpan<byte> page) => BinaryPrimitives.ReadUInt64LittleEndian(page[FlagsOffset..]);

    public static void SetFlags(Span<byte> page, ulong flags) => BinaryPrimitives.WriteUInt64LittleEndian(page[FlagsOffset..], flags);

    /// <summary>
    /// Whether <see cref="InitializeCompound"/> writes tail <paramref name="index"/> as it writes
    /// every tail from <see cref="FirstPlainTail"/> on (prep_compound_tail and nothing else): tail 3
    /// too unless the folio keeps its hugetlb fields there.
    /// </summary>
    public static bool IsPlainTail(ulong index, bool hugetlbPage3) => index >= FirstPlainTail || (index == 3 && !hugetlbPage3);

    /// <summary>
    /// What prep_compound_page leaves in the struct page at <paramref name="index"/> of a compound
    /// page of <paramref name="order"/> whose head struct page is at <paramref name="headAddress"/>:
    /// the head gets PG_head, every tail points at the head with bit 0 set, and the first tail
    /// records the order. Refcounts are 0 (a free huge page's refcount is frozen at 0).
    /// </summary>
    /// <param name="mask">
    /// v7.1's encoding (compound_info as a mask, for a power-of-two struct page): a tail holds
    /// the mask that, applied to its own address, gives the head's, so every tail of an order is
    /// identical whatever page it belongs to. False: the head's address (compound_head).
    /// </param>
    /// <param name="hugetlbPage3">v6.15 (4eeec8c89a0c): page[3] holds the folio's hugetlb fields, its mapping the NULL cgroup pointer.</param>
    public static void InitializeCompound(Span<byte> page, int node, int zone, ulong index, ulong headAddress, int order, bool mask = false, bool hugetlbPage3 = false)
    {
        Initialize(page, node, zone, reserved: false);
        if (index == 0)
        {
            SetFlags(page, Flags(page) | PgHead);
            return;
        }

        BinaryPrimitives.WriteUInt64LittleEndian(page[CompoundHeadOffset..], TailCompoundInfo(headAddress, order, page.Length, mask));
        if (index == 1)
        {
            // folio_set_order: the order in _flags_1's low byte (and the model's own order byte).
            SetFlags(page, Flags(page) | (byte)order);
            page[CompoundOrderOffset] = (byte)order;
        }
        else if (index == 2 && order > 1)
        {
            // prep_compound_head: INIT_LIST_HEAD(&folio->_deferred_list), pointing at itself.
            ulong list = headAddress + (2 * (ulong)page.Length) + DeferredListOffset;
            BinaryPrimitives.WriteUInt64LittleEndian(page[DeferredListOffset..], list);
            BinaryPrimitives.WriteUInt64LittleEndian(page[MappingOffset..], list);
        }
        else if (index != 3 || !hugetlbPage3)
        {
            // prep_compound_tail.
            BinaryPrimitives.WriteUInt64LittleEndian(page[MappingOffset..], TailMapping);
        }
    }

    public static ulong Mapping(ReadOnlySpan<byte> page) => BinaryPrimitives.ReadUInt64LittleEndian(page[MappingOffset..]);

    /// <summary>
    /// PAGE_FLAGS_CHECK_AT_FREE, of the flags the model keeps: a page with any of them set is bad
    /// when freed (free_page_is_bad).
    /// </summary>
    public const ulong FlagsCheckAtFree = PgLocked | PgWriteback | PgLru | PgActive | PgReserved;

    /// <summary>PAGE_FLAGS_SECOND's low byte: the order folio_set_order keeps in the first tail, cleared from it at free.</summary>
    public const ulong FlagsSecond = 0xff;

    /// <summary>The named flags of <paramref name="flags"/> and its node and zone, as dump_page prints them: <c>locked|uptodate|node=0|zone=1</c>.</summary>
    public static string FlagNames(ulong flags)
    {
        var names = new System.Collections.Generic.List<string>();
        foreach ((ulong bit, string name) in FlagTable)
        {
            if ((flags & bit) != 0)
            {
                names.Add(name);
            }
        }

        names.Add(System.FormattableString.Invariant($"node={(flags >> NodeShift) & NodeMask}"));
        names.Add(System.FormattableString.Invariant($"zone={flags >> ZoneShift}"));
        return string.Join('|', names);
    }

    /// <summary>
    /// The first field in which <paramref name="read"/> differs from <paramref name="expected"/>, as
    /// "field: is X, should be Y", or null when they are the same.
    /// </summary>
    public static string? FirstDifference(ReadOnlySpan<byte> read, ReadOnlySpan<byte> expected)
    {
        if (Flags(read) != Flags(expected))
        {
            return System.FormattableString.Invariant($"flags: is 0x{Flags(read):x}({FlagNames(Flags(read))}), should be 0x{Flags(expected):x}({FlagNames(Flags(expected))})");
        }

        if (CompoundHead(read) != CompoundHead(expected))
        {
            return System.FormattableString.Invariant($"compound_head: is 0x{CompoundHead(read):x}, should be 0x{CompoundHead(expected):x}{((CompoundHead(expected) & 1) != 0 ? " (the head's struct page | 1: a tail)" : string.Empty)}");
        }

        if (Mapping(read) != Mapping(expected))
        {
            return System.FormattableString.Invariant($"mapping: is 0x{Mapping(read):x}, should be 0x{Mapping(expected):x}{(Mapping(expected) == TailMapping ? " (TAIL_MAPPING)" : string.Empty)}");
        }

        if (Mapcount(read) != Mapcount(expected))
        {
            return System.FormattableString.Invariant($"_mapcount: is {Mapcount(read)}, should be {Mapcount(expected)}");
        }

        if (Refcount(read) != Refcount(expected))
        {
            return System.FormattableString.Invariant($"_refcount: is {Refcount(read)}, should be {Refcount(expected)}");
        }

        for (int i = 0; i < read.Length && i < expected.Length; i++)
        {
            if (read[i] != expected[i])
            {
                return System.FormattableString.Invariant($"byte {i}: is 0x{read[i]:x2}, should be 0x{expected[i]:x2}");
            }
        }

        return null;
    }

    private static readonly (ulong Bit, string Name)[] FlagTable =
    [
        (PgLocked, "locked"), (PgWriteback, "writeback"), (PgReferenced, "referenced"), (PgUptodate, "uptodate"), (PgDirty, "dirty"),
        (PgLru, "lru"), (PgActive, "active"), (PgReserved, "reserved"), (PgHead, "head"), (PgHugeVmemmapOptimized, "hugetlb_vmemmap_optimized"),
    ];

    /// <summary>
    /// What a tail's compound_head (compound_info) holds, bit 0 set: the head struct page's address,
    /// or with <paramref name="mask"/> (v7.1) <see cref="CompoundInfoMask"/>.
    /// </summary>
    public static ulong TailCompoundInfo(ulong headAddress, int order, int structPageBytes, bool mask) =>
        (mask ? CompoundInfoMask(order, structPageBytes) : headAddress) | 1;

    /// <summary>v7.1's compound_info of a tail of <paramref name="order"/>: the address bits above the head struct page's natural alignment.</summary>
    public static ulong CompoundInfoMask(int order, int structPageBytes) => ~((1UL << (order + System.Numerics.BitOperations.Log2((uint)structPageBytes))) - 1);

    public static int Node(ReadOnlySpan<byte> page) => (int)((Flags(page) >> NodeShift) & NodeMask);

    public static int Zone(ReadOnlySpan<byte> page) => (int)(Flags(page) >> ZoneShift);

    public static int Refcount(ReadOnlySpan<byte> page) => BinaryPrimitives.ReadInt32LittleEndian(page[RefcountOffset..]);

    public static int Mapcount(ReadOnlySpan<byte> page) => BinaryPrimitives.ReadInt32LittleEndian(page[MapcountOffset..]);

    /// <summary>compound_head: the head's struct page address with bit 0 set, or 0 when not a tail.</summary>
    public static ulong CompoundHead(ReadOnlySpan<byte> page) => BinaryPrimitives.ReadUInt64LittleEndian(page[CompoundHeadOffset..]);
}
