using System;
using System.Buffers.Binary;

namespace Hvo.Vmemmap;

/// <summary>
/// The simulated <c>struct page</c>: a real record in vmemmap bytes, read and written through the
/// MMU. The fields HVO's correctness depends on are at the kernel's offsets for a 64-byte struct
/// page on a 64-bit build: <c>flags</c> at 0, <c>compound_head</c> at 8 (bit 0 set in a tail),
/// the compound order in the first tail, <c>_mapcount</c> at 48 and <c>_refcount</c> at 52.
/// Node and zone live in the top bits of <c>flags</c>, as the kernel keeps them.
/// </summary>
public static class StructPage
{
    public const int FlagsOffset = 0;
    public const int CompoundHeadOffset = 8;

    /// <summary>First tail page: compound order (folio's _folio_order byte in later kernels).</summary>
    public const int CompoundOrderOffset = 16;

    public const int MapcountOffset = 48;
    public const int RefcountOffset = 52;

    /// <summary>Bytes of the fields above; the rest of a larger struct page stays zero.</summary>
    public const int MinimumSize = 56;

    // include/linux/page-flags.h (names; bit numbers are the simulator's, stable and documented here).
    public const ulong PgLocked = 1UL << 0;
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
    public static void InitializeCompound(Span<byte> page, int node, int zone, ulong index, ulong headAddress, int order, bool mask = false)
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
            page[CompoundOrderOffset] = (byte)order;
        }
    }

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
