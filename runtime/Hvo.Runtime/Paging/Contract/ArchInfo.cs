using System;
using System.Collections.Generic;

namespace Hvo.Paging;

/// <summary>One level of a page table, root first.</summary>
/// <param name="Name">The kernel's name for the level (pgd, p4d, pud, pmd, pte).</param>
/// <param name="Shift">Lowest virtual address bit the level's index covers.</param>
/// <param name="Bits">Number of index bits.</param>
/// <param name="CanMapLeaf">A block (or, at the last level, a page) may live here.</param>
public sealed record LevelInfo(string Name, int Shift, int Bits, bool CanMapLeaf)
{
    public ulong Size => 1UL << Shift;
    public int Entries => 1 << Bits;
}

/// <summary>How to recognise and build one kind of descriptor: <c>(e &amp; Mask) == Value</c>; <c>Make</c> builds one.</summary>
public sealed record DescriptorKind(ulong Mask, ulong Value, ulong Make)
{
    public bool Matches(ulong entry) => (entry & Mask) == Value;
}

/// <summary>A run of <c>Count</c> entries at a level marked with the contiguous hint bit (arm64).</summary>
public sealed record ContiguousRun(int Level, int Count, int Bit);

/// <summary>
/// A huge page size of the architecture: a leaf of <see cref="Level"/>, or a contiguous run of
/// <see cref="ContiguousCount"/> such leaves (1 when it is a plain leaf).
/// </summary>
public readonly record struct HugePageSizeInfo(ulong Size, int Level, int ContiguousCount);

/// <summary>A memory zone of every node: physical addresses below <see cref="End"/>, or the rest of memory when null.</summary>
public sealed record ZoneSpec(string Name, ulong? End);

/// <summary>Which kernel's kernel_page_tables format the architecture's ptdump follows.</summary>
public enum PtdumpFormat
{
    Generic,
    X86,
    Arm64,
}

/// <summary>
/// An architecture spec as data, emitted by the generator beside the specialized code. The
/// reference model interprets it; the CLI prints it.
/// </summary>
public sealed class ArchInfo
{
    public ArchInfo(
        string name, string title, string specFile, int pageShift, int vaBits,
        IReadOnlyList<LevelInfo> levels, int pfnLo, int pfnHi,
        DescriptorKind table, DescriptorKind? block, DescriptorKind page,
        ulong readOnlyClear, ulong readOnlySet, IReadOnlyList<ContiguousRun> contiguous,
        ulong vmemmapStart, ulong vmemmapSize, int structPageBytes, int vmemmapBootLevel,
        int sectionShift, int? linearMapBits, IReadOnlyList<HugePageSizeInfo> hugePageSizes,
        IReadOnlyList<ZoneSpec> zones, bool breakBeforeMake, PtdumpFormat ptdump)
    {
        Name = name;
        Title = title;
        SpecFile = specFile;
        PageShift = pageShift;
        VaBits = vaBits;
        Levels = levels;
        PfnLo = pfnLo;
        PfnHi = pfnHi;
        Table = table;
        Block = block;
        Page = page;
        ReadOnlyClear = readOnlyClear;
        ReadOnlySet = readOnlySet;
        Contiguous = contiguous;
        VmemmapStart = vmemmapStart;
        VmemmapSize = vmemmapSize;
        StructPageBytes = structPageBytes;
        VmemmapBootLevel = vmemmapBootLevel;
        SectionShift = sectionShift;
        LinearMapBits = linearMapBits;
        HugePageSizes = hugePageSizes;
        Zones = zones;
        BreakBeforeMake = breakBeforeMake;
        Ptdump = ptdump;
    }

    public string Name { get; }
    public string Title { get; }

    /// <summary>File name of the spec under <c>specs/</c>.</summary>
    public string SpecFile { get; }

    public int PageShift { get; }
    public ulong PageSize => 1UL << PageShift;
    public int VaBits { get; }
    public IReadOnlyList<LevelInfo> Levels { get; }
    public int LastLevel => Levels.Count - 1;
    public int PfnLo { get; }
    public int PfnHi { get; }
    public ulong PfnMask => (PfnHi == 63 ? ulong.MaxValue : (1UL << (PfnHi + 1)) - 1) & ~((1UL << PfnLo) - 1);
    public DescriptorKind Table { get; }
    public DescriptorKind? Block { get; }
    public DescriptorKind Page { get; }
    public ulong ReadOnlyClear { get; }
    public ulong ReadOnlySet { get; }
    public IReadOnlyList<ContiguousRun> Contiguous { get; }
    public ulong VmemmapStart { get; }
    public ulong VmemmapSize { get; }
    public int StructPageBytes { get; }
    public int VmemmapBootLevel { get; }
    public int SectionShift { get; }
    public int? LinearMapBits { get; }
    public IReadOnlyList<HugePageSizeInfo> HugePageSizes { get; }

    /// <summary>The zones of each node, lowest first (ZONE_DMA, ZONE_DMA32, ZONE_NORMAL).</summary>
    public IReadOnlyList<ZoneSpec> Zones { get; }
    public bool BreakBeforeMake { get; }
    public PtdumpFormat Ptdump { get; }

    /// <summary>entry.accessFlag: the descriptor's access flag (arm64 AF, bit 10); 0 when the spec has none.</summary>
    public ulong AccessFlag { get; init; }

    public override string ToString() => Name;
}
