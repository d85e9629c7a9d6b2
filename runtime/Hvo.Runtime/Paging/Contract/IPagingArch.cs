using System;

namespace Hvo.Paging;

/// <summary>
/// One architecture's kernel page-table format, as generated from a spec file
/// (<c>specs/NAME.json</c>). Every member is static so that runtime code written as
/// <c>Machine&lt;TArch&gt; where TArch : struct, IPagingArch</c> is specialized by the JIT:
/// constants fold, the level switches collapse, and nothing is called virtually.
/// Levels are numbered root first: 0 is the root (pgd), <see cref="LastLevel"/> holds PTEs.
/// </summary>
public interface IPagingArch
{
    /// <summary>The spec's <c>name</c>: the CLI's <c>--arch</c> value.</summary>
    static abstract string Name { get; }

    /// <summary>The spec, as data: what the reference model interprets and the CLI prints.</summary>
    static abstract ArchInfo Info { get; }

    static abstract int PageShift { get; }
    static abstract ulong PageSize { get; }
    static abstract int VaBits { get; }
    static abstract int LevelCount { get; }
    static abstract int LastLevel { get; }

    /// <summary>Bits of the output-address field (<c>entry.pfn</c>).</summary>
    static abstract ulong PfnMask { get; }

    static abstract int LevelShift(int level);
    static abstract int LevelBits(int level);

    /// <summary>Bytes one entry at <paramref name="level"/> maps (PMD_SIZE at the pmd level).</summary>
    static abstract ulong LevelSize(int level);

    static abstract int EntriesPerTable(int level);

    /// <summary>Index of <paramref name="va"/> in the table at <paramref name="level"/> (pmd_index and friends).</summary>
    static abstract int IndexOf(int level, ulong va);

    /// <summary>True for any descriptor the MMU accepts at this level (pmd_present and friends).</summary>
    static abstract bool IsValid(int level, ulong entry);

    /// <summary>A pointer to a next-level table; never true at the last level.</summary>
    static abstract bool IsTable(int level, ulong entry);

    /// <summary>A block (pmd_leaf / pud_leaf) or, at the last level, a page descriptor.</summary>
    static abstract bool IsLeaf(int level, ulong entry);

    /// <summary>May a leaf live at this level (a spec level with <c>leaf: true</c>, or the last level)?</summary>
    static abstract bool LevelCanMapLeaf(int level);

    /// <summary>The frame a table descriptor points at, or the first frame a leaf maps (pmd_pfn, pte_pfn).</summary>
    static abstract ulong PfnOf(int level, ulong entry);

    /// <summary>
    /// A kernel table descriptor, for an entry at <paramref name="level"/>, of the table at
    /// <paramref name="tablePfn"/> (pmd_populate_kernel; s390's differ by level).
    /// </summary>
    static abstract ulong MakeTable(int level, ulong tablePfn);

    /// <summary>log2 of the pages one table of <paramref name="level"/> takes (s390 region and segment tables: 2).</summary>
    static abstract int TableOrder(int level);

    /// <summary>The 8-byte slots a table view spans: the largest table's pages in entries.</summary>
    static abstract int MaxTableEntries { get; }

    /// <summary>What an empty entry of <paramref name="level"/> holds by the spec's levels[].empty (s390), else 0.</summary>
    static abstract ulong EmptyEntryOf(int level);

    /// <summary>A <c>PAGE_KERNEL</c> leaf at <paramref name="level"/> (a block above the last level).</summary>
    static abstract ulong MakeLeaf(int level, ulong pfn);

    /// <summary><c>PAGE_KERNEL</c> -> <c>PAGE_KERNEL_RO</c>, keeping the frame.</summary>
    static abstract ulong ToReadOnly(ulong entry);

    /// <summary>Do the entry's permission bits allow a write (as <c>PAGE_KERNEL</c> has them)?</summary>
    static abstract bool IsWritable(ulong entry);

    /// <summary>Replace the frame of a leaf, keeping its protections.</summary>
    static abstract ulong WithPfn(int level, ulong entry, ulong pfn);

    static abstract ulong VmemmapStart { get; }
    static abstract ulong VmemmapSize { get; }
    static abstract int StructPageBytes { get; }
    static abstract int SectionShift { get; }

    /// <summary>The level whose leaves map the vmemmap at boot (the last level for base pages).</summary>
    static abstract int VmemmapBootLevel { get; }

    /// <summary>arm64: a live valid entry may not be replaced without an invalid entry and a flush between.</summary>
    static abstract bool BreakBeforeMake { get; }

    /// <summary>The architecture's rule for changing a live valid entry into another (spec key replacement).</summary>
    static abstract ReplacementRule Replacement { get; }

    /// <summary>
    /// The access flag of a leaf (arm64 AF, spec key entry.accessFlag), 0 when the architecture has none.
    /// A translation through a leaf with it clear takes an access-flag fault, or the hardware sets
    /// it atomically (FEAT_HAFDBS); the kernel's own mappings (PAGE_KERNEL) have it set.
    /// </summary>
    static abstract ulong AccessFlag { get; }

    static abstract ReadOnlySpan<HugePageSizeInfo> HugePageSizes { get; }

    /// <summary>
    /// The page-table walk (walk_page_range): every entry of the table at <paramref name="rootPfn"/>
    /// that covers [<paramref name="start"/>, <paramref name="end"/>) goes to <paramref name="visitor"/>,
    /// in address order, one level after another where it descends; <paramref name="end"/> 0 is the
    /// top of the address space. Every traversal of a page table is this walk with a visitor:
    /// translating one address, populating, splitting, remapping, dumping, checking.
    /// </summary>
    static abstract PageWalkResult WalkRange<TCtx, TVisitor>(ref TCtx ctx, ulong rootPfn, ulong start, ulong end, ref TVisitor visitor, PageWalkFlags flags)
        where TCtx : struct, IPageTableContext
        where TVisitor : struct, IPageWalkVisitor;
}
