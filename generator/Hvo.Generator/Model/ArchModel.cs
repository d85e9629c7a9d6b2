using Hvo.Generator.Helpers;

namespace Hvo.Generator.Model;

/// <summary>One page-table level, root first.</summary>
internal sealed record LevelModel(string Name, int Shift, int Bits, bool CanMapLeaf);

/// <summary>A descriptor kind: an entry is of this kind when <c>(e &amp; Mask) == Value</c>; <c>Make</c> builds one.</summary>
internal sealed record KindModel(ulong Mask, ulong Value, ulong Make);

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

    public int LastLevel => Levels.Count - 1;

    public ulong PfnMask => Bits.Range(PfnLo, PfnHi);
}
