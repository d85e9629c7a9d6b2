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

    /// <summary>levels[].tableBytes: bytes of one table of this level; 0 where it is one page.</summary>
    public int TableBytes { get; init; }

    /// <summary>levels[].tableMake: the level's own table descriptor bits, or null for entry.kinds.table.make.</summary>
    public ulong? TableMake { get; init; }

    /// <summary>levels[].blockMake: the level's own block protection, or null for entry.kinds.block.make.</summary>
    public ulong? BlockMake { get; init; }

    /// <summary>levels[].empty: what an empty entry of this level holds (s390's invalid entries), or null for 0.</summary>
    public ulong? Empty { get; init; }

    /// <summary>
    /// levels[].fragmentsUntil: the release ("v6.7") before which this level's tables, smaller than a
    /// page, are handed out as fragments of one (s390 page_table_alloc, two 2 KiB page tables per
    /// 4 KiB page); null where each table takes pages of its own.
    /// </summary>
    public string? FragmentsUntil { get; init; }
}

/// <summary>
/// The spec's <c>replacement</c>: what the architecture allows when a live valid entry is to become
/// another valid entry (specs/README.md, docs/ARCHITECTURE.md §3).
/// </summary>
public enum ReplacementRule
{
    /// <summary>One store, then a TLB flush (x86-64, RISC-V, LoongArch).</summary>
    Store,

    /// <summary>
    /// arm64: a change of a live entry's output (other frames, or a block into a table) goes through an
    /// invalid entry and a TLB invalidation, unless FEAT_BBM level 2 holds and old and new are equivalent.
    /// </summary>
    BreakBeforeMake,

    /// <summary>
    /// s390: a valid entry is never overwritten by a different valid one; it is invalidated first (IPTE
    /// for a page-table entry, IDTE for a segment or region entry, each purging every CPU's TLB), or
    /// replaced by a compare-and-replace-with-purge instruction (CRDTE, CSPG). Commit 64e2f60f355e.
    /// </summary>
    Invalidate,
}

/// <summary>
/// How to recognise and build one kind of descriptor: <c>(e &amp; Mask) == Value</c> and, when
/// <see cref="Any"/> is not 0, at least one of its bits set (a RISC-V leaf: R, W or X); <c>Make</c> builds one.
/// </summary>
public sealed record DescriptorKind(ulong Mask, ulong Value, ulong Make)
{
    /// <summary>entry.kinds.*.any: bits of which at least one is set in this kind; 0 for none.</summary>
    public ulong Any { get; init; }

    public bool Matches(ulong entry) => (entry & Mask) == Value && (Any == 0 || (entry & Any) != 0);
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
        IReadOnlyList<ZoneSpec> zones, bool breakBeforeMake, PtdumpFormat ptdump, ReplacementRule replacement = ReplacementRule.Store)
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
        Replacement = breakBeforeMake && replacement == ReplacementRule.Store ? ReplacementRule.BreakBeforeMake : replacement;
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

    /// <summary>replacement: the rule for changing a live entry, which the checker holds every step to.</summary>
    public ReplacementRule Replacement { get; }

    public PtdumpFormat Ptdump { get; }

    /// <summary>log2 of the pages a table of <paramref name="level"/> takes (levels[].tableBytes; one page at least).</summary>
    public int TableOrder(int level)
    {
        int bytes = Math.Max(Levels[level].TableBytes, 1 << PageShift), order = 0;
        while ((1L << (PageShift + order)) < bytes)
        {
            order++;
        }

        return order;
    }

    /// <summary>
    /// The address bits inside a page at which a table of <paramref name="level"/> may start, which the
    /// entry above holds beside the frame (s390: 0x800, _SEGMENT_ENTRY_ORIGIN ~0x7ff); 0 where tables
    /// start on a page (every level without levels[].fragmentsUntil).
    /// </summary>
    public ulong OriginInPage(int level)
    {
        LevelInfo l = Levels[level];
        return l.FragmentsUntil is null || l.TableBytes == 0 || l.TableBytes >= 1 << PageShift || PfnLo != PageShift
            ? 0
            : ((1UL << PageShift) - 1) & ~((ulong)l.TableBytes - 1);
    }

    /// <summary>The number of tables of <paramref name="level"/> one page holds as fragments: 1 where tables are not fragments.</summary>
    public int FragmentsPerPage(int level) => OriginInPage(level) == 0 ? 1 : (1 << PageShift) / Levels[level].TableBytes;

    /// <summary>What an empty entry of <paramref name="level"/> holds when the spec says so per level (levels[].empty), else 0.</summary>
    public ulong EmptyEntryOf(int level) => Levels[level].Empty ?? 0;

    /// <summary>entry.accessFlag: the descriptor's access flag (arm64 AF, bit 10); 0 when the spec has none.</summary>
    public ulong AccessFlag { get; init; }

    /// <summary>
    /// entry.empty "invalidTable": an empty entry above the last level is the table descriptor of a
    /// shared table of empty entries one level down (LoongArch invalid_pmd_table, invalid_pte_table),
    /// not 0. The page table holds those tables; a walk takes such an entry for a hole (pmd_none).
    /// </summary>
    public bool EmptyIsInvalidTable { get; init; }

    /// <summary>
    /// entry.readOnly.pageKernelRo: the kernel defines PAGE_KERNEL_RO (the readOnly bits). False where
    /// it does not (RISC-V, LoongArch): PAGE_KERNEL_RO is then PAGE_KERNEL, and HVO maps the tail
    /// vmemmap pages writable.
    /// </summary>
    public bool PageKernelRo { get; init; } = true;

    /// <summary>ramBase: where RAM starts on the usual machine (RISC-V: 0x80000000); a machine may say otherwise.</summary>
    public ulong RamBase { get; init; }

    /// <summary>
    /// vmemmap.offsetByRamBase: the vmemmap begins with the struct page of the first RAM pfn
    /// (RISC-V phys_ram_base, arm64 memstart_addr) instead of pfn 0.
    /// </summary>
    public bool VmemmapOffsetByRamBase { get; init; }

    /// <summary>
    /// ramHole.start: where the firmware's memory hole below 4 GiB starts (a PC's 32-bit PCI hole:
    /// 3 GiB on QEMU's pc machine); 0 where the spec has none. See <see cref="RamHoleFrom"/>.
    /// </summary>
    public ulong RamHoleStart { get; init; }

    /// <summary>ramHole.end: where the RAM the hole displaced resumes (4 GiB on a PC).</summary>
    public ulong RamHoleEnd { get; init; }

    /// <summary>
    /// ramHole.from: the least RAM for which the firmware leaves the hole (QEMU's pc machine: 3.5 GiB;
    /// a smaller machine keeps all its RAM below 4 GiB).
    /// </summary>
    public ulong RamHoleFrom { get; init; }

    /// <summary>mainlineHvo.since: the mainline release that enabled HVO here (ARCH_WANT_OPTIMIZE_HUGETLB_VMEMMAP), or null.</summary>
    public string? MainlineHvoSince { get; init; }

    /// <summary>mainlineHvo.until: the mainline release that turned it off again, or null while it is on.</summary>
    public string? MainlineHvoUntil { get; init; }

    /// <summary>Does mainline, as of the newest release modelled, enable HVO for this architecture?</summary>
    public bool MainlineHvo => MainlineHvoSince is not null && MainlineHvoUntil is null;

    /// <summary>Frames the vmemmap describes: VMEMMAP_SIZE / sizeof(struct page).</summary>
    public ulong VmemmapFrames => VmemmapSize / (ulong)StructPageBytes;

    /// <summary>
    /// The first pfn whose struct page the vmemmap holds for a machine whose RAM starts at
    /// <paramref name="ramBase"/>: that RAM's first pfn where the vmemmap is offset by it, else 0.
    /// </summary>
    public ulong VmemmapFirstPfn(ulong ramBase) => VmemmapOffsetByRamBase ? ramBase >> PageShift : 0;

    /// <summary>
    /// The most memory a machine whose RAM starts at <paramref name="ramBase"/> can have with this
    /// vmemmap: the frames it describes from <see cref="VmemmapFirstPfn"/> on, less any below the RAM.
    /// </summary>
    public ulong DescribableBytes(ulong ramBase)
    {
        ulong first = VmemmapFirstPfn(ramBase), ramPfn = ramBase >> PageShift;
        ulong frames = ramPfn - first >= VmemmapFrames ? 0 : VmemmapFrames - (ramPfn - first);
        return frames > ulong.MaxValue >> PageShift ? ulong.MaxValue : frames << PageShift;
    }

    public override string ToString() => Name;
}
