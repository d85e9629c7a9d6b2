using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Paging;

namespace Hvo.Memory;

/// <summary>
/// Where a simulated machine's memory lies: <see cref="Frames"/> frames of 2^<see cref="PageShift"/>
/// bytes from pfn <see cref="FirstPfn"/> (RAM starts above 0 on RISC-V boards), split into
/// <see cref="Nodes"/> NUMA nodes, each a contiguous range of frames whose boundaries are max-order
/// blocks (node k starts k * Frames / Nodes frames in, rounded down to 2^<see cref="MaxOrder"/>
/// frames), and every node holding the part of each zone of
/// <see cref="Zones"/> that falls in it (free_area_init: zone limits are physical addresses, so
/// on x86-64 node 0 holds DMA, DMA32 and the start of Normal, and higher nodes only Normal).
/// </summary>
/// <param name="PageShift">log2 of the base page size.</param>
/// <param name="Frames">Frames of the machine, from pfn <see cref="FirstPfn"/>.</param>
/// <param name="Nodes">NUMA nodes.</param>
/// <param name="Zones">The zones of every node, lowest first; the last one has no end.</param>
/// <param name="MaxOrder">The highest buddy order (the kernel's MAX_ORDER since 6.4, ARCH_FORCE_MAX_ORDER on arm64).</param>
public sealed record MachineLayout(int PageShift, ulong Frames, int Nodes, IReadOnlyList<ZoneSpec> Zones, int MaxOrder)
{
    public int PageShift { get; init; } = PageShift is >= 12 and <= 24
        ? PageShift
        : throw new ArgumentOutOfRangeException(nameof(PageShift), PageShift, "page shift must be 12..24");

    public int MaxOrder { get; init; } = MaxOrder is >= 0 and <= 20
        ? MaxOrder
        : throw new ArgumentOutOfRangeException(nameof(MaxOrder), MaxOrder, "max order must be 0..20");

    public ulong Frames { get; init; } = Frames > 0 && Frames <= 1UL << 40
        ? Frames
        : throw new ArgumentOutOfRangeException(nameof(Frames), Frames, "a machine has 1 to 2^40 frames");

    public int Nodes { get; init; } = Nodes >= 1 && (ulong)Nodes << MaxOrder <= Frames
        ? Nodes
        : throw new ArgumentOutOfRangeException(nameof(Nodes), Nodes, $"every node needs at least one order-{MaxOrder} block of the {Frames} frames");

    public IReadOnlyList<ZoneSpec> Zones { get; init; } = ValidZones(Zones);

    /// <summary>The first frame: where RAM starts, in frames; a multiple of a max-order block.</summary>
    public ulong FirstPfn
    {
        get => _firstPfn;
        init => _firstPfn = (value & (MaxOrderFrames - 1)) == 0 && value <= (1UL << 52) - Frames
            ? value
            : throw new ArgumentOutOfRangeException(nameof(FirstPfn), value, $"RAM must start on an order-{MaxOrder} block and end below pfn 2^52");
    }

    private readonly ulong _firstPfn;

    /// <summary>
    /// Ranges of frames in [<see cref="FirstPfn"/>, <see cref="EndPfn"/>) that are not RAM (the
    /// e820 map's holes and reserved ranges: a PC's PCI hole below 4 GiB, <c>memmap=nn$ss</c>),
    /// [start, end) in frames, sorted and disjoint: no struct pages, no memblock, no zone's present
    /// pages. <see cref="Frames"/> spans them; <see cref="RamFrames"/> does not.
    /// </summary>
    public IReadOnlyList<(ulong Start, ulong End)> Holes
    {
        get => _holes;
        init => _holes = ValidHoles(value);
    }

    private readonly (ulong Start, ulong End)[] _holes = [];

    /// <summary>
    /// Frames of RAM the firmware put above what the vmemmap can describe (a PC's hole moved them
    /// there): the kernel ignores them (sparse's mminit_validate_memmodel_limits clips every range to
    /// MAX_PHYSMEM_BITS), so they are not in <see cref="Frames"/>; 0 on every other machine.
    /// </summary>
    public ulong IgnoredFrames { get; init; }

    /// <summary>Frames of RAM: <see cref="Frames"/> less the <see cref="Holes"/>.</summary>
    public ulong RamFrames => Frames - HoleFrames(FirstPfn, EndPfn);

    /// <summary>Frames of the holes inside [<paramref name="start"/>, <paramref name="end"/>).</summary>
    public ulong HoleFrames(ulong start, ulong end)
    {
        ulong n = 0;
        foreach ((ulong s, ulong e) in _holes)
        {
            ulong lo = Math.Max(s, start), hi = Math.Min(e, end);
            n += hi > lo ? hi - lo : 0;
        }

        return n;
    }

    /// <summary>Whether <paramref name="pfn"/> lies in one of the <see cref="Holes"/> (not RAM).</summary>
    public bool IsHole(ulong pfn)
    {
        foreach ((ulong s, ulong e) in _holes)
        {
            if (pfn >= s && pfn < e)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The RAM ranges, [start, end) in frames, lowest first: the machine less its holes (e820's usable ranges).</summary>
    public IEnumerable<(ulong Start, ulong End)> RamRanges()
    {
        ulong at = FirstPfn;
        foreach ((ulong s, ulong e) in _holes)
        {
            if (s > at)
            {
                yield return (at, s);
            }

            at = e;
        }

        if (at < EndPfn)
        {
            yield return (at, EndPfn);
        }
    }

    /// <summary>One past the last frame.</summary>
    public ulong EndPfn => FirstPfn + Frames;

    /// <summary>Bytes in a base page.</summary>
    public ulong PageSize => 1UL << PageShift;

    /// <summary>Frames in a max-order block.</summary>
    public ulong MaxOrderFrames => 1UL << MaxOrder;

    /// <summary>
    /// The highest buddy order for a page size: 10 (4 MiB blocks) for 4 KiB pages, 11 (32 MiB) for
    /// 16 KiB and 13 (512 MiB) for 64 KiB, as arm64's and LoongArch's ARCH_FORCE_MAX_ORDER
    /// defaults; 10, the generic MAX_ORDER, for anything else.
    /// </summary>
    public static int DefaultMaxOrder(int pageShift) => pageShift switch
    {
        14 => 11,
        16 => 13,
        _ => 10,
    };

    /// <summary>
    /// The layout of <paramref name="memoryBytes"/> of <paramref name="arch"/> memory over <paramref name="nodes"/> nodes,
    /// starting at physical address <paramref name="ramBase"/> (null: where the spec says RAM starts).
    /// </summary>
    public static MachineLayout For(ArchInfo arch, ulong memoryBytes, int nodes = 1, ulong? ramBase = null)
    {
        ArgumentNullException.ThrowIfNull(arch);
        ulong first = (ramBase ?? arch.RamBase) >> arch.PageShift;
        ulong frames = memoryBytes >> arch.PageShift;
        (ulong Start, ulong End)[] holes = [];
        if (PcHole(arch, memoryBytes, ramBase ?? arch.RamBase) is { } hole)
        {
            // The firmware's map (e820 on a PC): the RAM above the hole's start resumes at its end.
            holes = [(hole.Start >> arch.PageShift, hole.End >> arch.PageShift)];
            frames += holes[0].End - holes[0].Start;
        }

        // RAM the hole pushed past the vmemmap's reach (64 TiB on 4-level x86-64) is ignored.
        ulong describable = arch.DescribableBytes(ramBase ?? arch.RamBase) >> arch.PageShift;
        ulong ignored = holes.Length > 0 && frames > describable ? frames - describable : 0;
        return new MachineLayout(arch.PageShift, frames - ignored, nodes, arch.Zones, DefaultMaxOrder(arch.PageShift))
        {
            FirstPfn = first,
            Holes = holes,
            IgnoredFrames = ignored,
        };
    }

    /// <summary>
    /// The spec's ramHole where it applies to <paramref name="memoryBytes"/> of RAM from
    /// <paramref name="ramBase"/>: enough RAM (ramHole.from), starting below the hole; else null.
    /// </summary>
    public static (ulong Start, ulong End)? PcHole(ArchInfo arch, ulong memoryBytes, ulong ramBase)
    {
        ArgumentNullException.ThrowIfNull(arch);
        return arch.RamHoleEnd != 0 && memoryBytes >= arch.RamHoleFrom && ramBase < arch.RamHoleStart && ramBase + memoryBytes > arch.RamHoleStart
            ? (arch.RamHoleStart, arch.RamHoleEnd)
            : null;
    }

    /// <summary>First frame of node <paramref name="nid"/>.</summary>
    public ulong NodeStart(int nid)
    {
        CheckNode(nid);
        if (nid == 0)
        {
            return FirstPfn;
        }

        // numa=fake splits the RAM, not the holes: the frame nid/Nodes of the way through it.
        ulong offset = (ulong)((UInt128)(ulong)nid * RamFrames / (ulong)Nodes);
        ulong pfn = FirstPfn + offset;
        foreach ((ulong s, ulong e) in _holes)
        {
            if (pfn >= s)
            {
                pfn += e - s;
            }
        }

        return FirstPfn + ((pfn - FirstPfn) & ~(MaxOrderFrames - 1));
    }

    /// <summary>One past the last frame of node <paramref name="nid"/>.</summary>
    public ulong NodeEnd(int nid) => nid == Nodes - 1 ? EndPfn : NodeStart(nid + 1);

    /// <summary>Frames of node <paramref name="nid"/>: [start, end).</summary>
    public (ulong Start, ulong End) NodeRange(int nid) => (NodeStart(nid), NodeEnd(nid));

    /// <summary>The node a frame belongs to (pfn_to_nid).</summary>
    public int NodeOf(ulong pfn)
    {
        CheckPfn(pfn);
        if (Nodes == 1)
        {
            return 0;
        }

        // The guess in 64 bits where the product fits (always, below 2^54 frames and 1024 nodes):
        // a 128-bit division is a call, and this runs behind every struct page produced.
        ulong offset = pfn - FirstPfn;
        ulong guess = offset <= ulong.MaxValue / (ulong)Nodes ? offset * (ulong)Nodes / Frames : (ulong)((UInt128)offset * (ulong)Nodes / Frames);
        int nid = (int)Math.Min((ulong)Nodes - 1, guess);
        while (pfn < NodeStart(nid))
        {
            nid--;
        }

        while (pfn >= NodeEnd(nid))
        {
            nid++;
        }

        return nid;
    }

    /// <summary>Frames of zone <paramref name="zone"/> (an index into <see cref="Zones"/>) anywhere in the machine.</summary>
    public (ulong Start, ulong End) ZoneLimits(int zone)
    {
        if ((uint)zone >= (uint)Zones.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(zone), zone, $"the layout has {Zones.Count} zones");
        }

        ulong start = zone == 0 ? FirstPfn : LimitPfn(Zones[zone - 1]);
        return (start, LimitPfn(Zones[zone]));
    }

    /// <summary>Frames of zone <paramref name="zone"/> on node <paramref name="nid"/>: empty (start == end) when the node has none.</summary>
    public (ulong Start, ulong End) ZoneRange(int nid, int zone)
    {
        (ulong nodeStart, ulong nodeEnd) = NodeRange(nid);
        (ulong zoneStart, ulong zoneEnd) = ZoneLimits(zone);
        ulong start = Math.Clamp(zoneStart, nodeStart, nodeEnd);
        ulong end = Math.Clamp(zoneEnd, nodeStart, nodeEnd);
        return (start, Math.Max(start, end));
    }

    /// <summary>The zone index a frame belongs to (page_zonenum).</summary>
    public int ZoneOf(ulong pfn)
    {
        CheckPfn(pfn);
        for (int z = 0; z < Zones.Count - 1; z++)
        {
            if (pfn < LimitPfn(Zones[z])) // ZoneLimits(z).End
            {
                return z;
            }
        }

        return Zones.Count - 1;
    }

    public bool Equals(MachineLayout? other) =>
        other is not null && PageShift == other.PageShift && Frames == other.Frames && Nodes == other.Nodes
        && MaxOrder == other.MaxOrder && FirstPfn == other.FirstPfn && Zones.SequenceEqual(other.Zones) && Holes.SequenceEqual(other.Holes);

    public override int GetHashCode() => HashCode.Combine(PageShift, Frames, Nodes, MaxOrder, FirstPfn, Zones.Count);

    // A zone limit is a physical address; the machine's frames lie in [FirstPfn, EndPfn).
    private ulong LimitPfn(ZoneSpec zone) => zone.End is { } end ? Math.Clamp(end >> PageShift, FirstPfn, EndPfn) : EndPfn;

    // Small enough to inline behind every NodeOf and ZoneOf; the message is built apart.
    private void CheckPfn(ulong pfn)
    {
        if (pfn - FirstPfn >= Frames)
        {
            BadPfn(pfn);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void BadPfn(ulong pfn) =>
        throw new ArgumentOutOfRangeException(nameof(pfn), $"pfn 0x{pfn:x} is outside the machine's {Frames} frames from pfn 0x{FirstPfn:x}");

    private void CheckNode(int nid)
    {
        if ((uint)nid >= (uint)Nodes)
        {
            throw new ArgumentOutOfRangeException(nameof(nid), nid, $"the machine has {Nodes} nodes");
        }
    }

    private (ulong Start, ulong End)[] ValidHoles(IReadOnlyList<(ulong Start, ulong End)> holes)
    {
        ArgumentNullException.ThrowIfNull(holes);
        (ulong Start, ulong End)[] sorted = [.. holes.OrderBy(h => h.Start)];
        ulong at = FirstPfn;
        foreach ((ulong s, ulong e) in sorted)
        {
            if (s < at || e <= s || e > EndPfn || s == FirstPfn)
            {
                throw new ArgumentException($"hole [0x{s:x}, 0x{e:x}) must lie inside the machine's frames [0x{FirstPfn:x}, 0x{EndPfn:x}), after its first frame, without overlapping another", nameof(holes));
            }

            at = e;
        }

        return sorted;
    }

    private static IReadOnlyList<ZoneSpec> ValidZones(IReadOnlyList<ZoneSpec> zones)
    {
        ArgumentNullException.ThrowIfNull(zones);
        if (zones.Count == 0 || zones[^1].End is not null)
        {
            throw new ArgumentException("a layout needs at least one zone, the last one without an end (ZONE_NORMAL)", nameof(zones));
        }

        for (int z = 0; z < zones.Count - 1; z++)
        {
            if (zones[z].End is not { } end || (z > 0 && end <= zones[z - 1].End))
            {
                throw new ArgumentException($"zone {zones[z].Name} must end above the zone below it", nameof(zones));
            }
        }

        return zones;
    }
}
