using Hvo.Generator.Helpers;

namespace Hvo.Generator.Model;

/// <summary>One page-table level, root first.</summary>
internal sealed record LevelModel(string Name, int Shift, int Bits, bool CanMapLeaf)
{
    /// <summary>levels[].tableBytes: the bytes of one table of this level (2^bits 8-byte entries); 0 for one page.</summary>
    public int TableBytes { get; init; }

    /// <summary>levels[].tableMake: this level's table descriptor bits (s390 _REGION3_ENTRY), or null for entry.kinds.table.make.</summary>
    public ulong? TableMake { get; init; }

    /// <summary>levels[].blockMake: this level's block protection (s390 REGION3_KERNEL), or null for entry.kinds.block.make.</summary>
    public ulong? BlockMake { get; init; }

    /// <summary>levels[].empty: what an empty entry of this level holds (s390 _SEGMENT_ENTRY_EMPTY), or null for 0.</summary>
    public ulong? Empty { get; init; }

    /// <summary>
    /// levels[].fragmentsUntil: the release ("v6.7") before which tables of this level, smaller than a
    /// page, are handed out as fragments of a page (s390 page_table_alloc); null where each takes a page.
    /// </summary>
    public string? FragmentsUntil { get; init; }
}

/// <summary>
/// A descriptor kind: an entry is of this kind when <c>(e &amp; Mask) == Value</c> and, when
/// <see cref="Any"/> is not 0, at least one of its bits is set; <c>Make</c> builds one.
/// </summary>
internal sealed record KindModel(ulong Mask, ulong Value, ulong Make)
{
    /// <summary>entry.kinds.*.any: bits of which at least one is set (RISC-V R|W|X in a leaf); 0 for none.</summary>
    public ulong Any { get; init; }

    public bool Matches(ulong entry) => (entry & Mask) == Value && (Any == 0 || (entry & Any) != 0);
}

internal sealed record ContiguousModel(int Level, int Count, int Bit);

/// <summary>A huge page size: a leaf at <c>Level</c>, or a run of <c>Count</c> of them.</summary>
internal sealed record HugeSizeModel(ulong Size, int Level, int Count);

/// <summary>A memory zone: physical addresses below <c>End</c> (0 for the last, open-ended zone).</summary>
internal sealed record ZoneModel(string Name, ulong End);

/// <summary>
/// A validated spec: only strings, numbers and equatable arrays, so the incremental pipeline
/// can tell an edit that changes generated code from one that does not.
/// </summary>
internal sealed record ArchModel(
    string Name,
    string TypeName,
    string Title,
    string SpecFile,
    int PageShift,
    int VaBits,
    EquatableArray<LevelModel> Levels,
    int PfnLo,
    int PfnHi,
    KindModel Table,
    KindModel? Block,
    KindModel Page,
    ulong ReadOnlyClear,
    ulong ReadOnlySet,
    EquatableArray<ContiguousModel> Contiguous,
    ulong VmemmapStart,
    ulong VmemmapSize,
    int StructPageBytes,
    int VmemmapBootLevel,
    int SectionShift,
    int LinearMapBits,
    EquatableArray<HugeSizeModel> HugePageSizes,
    EquatableArray<ZoneModel> Zones,
    bool BreakBeforeMake,
    string Ptdump)
{
    /// <summary>entry.accessFlag: the access flag bit (arm64 AF), 0 when the spec has none.</summary>
    public ulong AccessFlag { get; init; }

    /// <summary>
    /// entry.empty "invalidTable": an empty entry above the last level is a table descriptor of a
    /// shared table of empty entries (LoongArch invalid_pmd_table, invalid_pte_table), not 0.
    /// </summary>
    public bool EmptyIsInvalidTable { get; init; }

    /// <summary>entry.readOnly.pageKernelRo: the kernel defines PAGE_KERNEL_RO (false: it falls back to PAGE_KERNEL).</summary>
    public bool PageKernelRo { get; init; } = true;

    /// <summary>ramBase: the physical address where RAM starts on the usual machine.</summary>
    public ulong RamBase { get; init; }

    /// <summary>vmemmap.offsetByRamBase: the vmemmap starts with the struct page of the first RAM pfn.</summary>
    public bool VmemmapOffsetByRamBase { get; init; }

    /// <summary>ramHole.start: where the firmware's hole below 4 GiB starts (0: no hole).</summary>
    public ulong RamHoleStart { get; init; }

    /// <summary>ramHole.end: where RAM resumes above the hole.</summary>
    public ulong RamHoleEnd { get; init; }

    /// <summary>ramHole.from: the least RAM for which the firmware leaves the hole.</summary>
    public ulong RamHoleFrom { get; init; }

    /// <summary>mainlineHvo.since: the mainline release that enabled HVO for the architecture, or null.</summary>
    public string? MainlineHvoSince { get; init; }

    /// <summary>mainlineHvo.until: the mainline release that turned it off again, or null.</summary>
    public string? MainlineHvoUntil { get; init; }

    /// <summary>replacement: the architecture's rule for changing a live entry ("store", "breakBeforeMake", "invalidate").</summary>
    public string Replacement { get; init; } = "store";

    public int LastLevel => Levels.Count - 1;

    public ulong PfnMask => Bits.Range(PfnLo, PfnHi);
}
