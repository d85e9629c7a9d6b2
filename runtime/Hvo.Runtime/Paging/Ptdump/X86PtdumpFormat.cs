using System.Collections.Generic;
using System.Text;

namespace Hvo.Paging.Ptdump;

/// <summary>
/// arch/x86/mm/dump_pagetables.c, as read from /sys/kernel/debug/kernel_page_tables:
/// <code>
/// ---[ Vmemmap ]---
/// 0xffffea0000000000-0xffffea0000200000           2M     RW         PSE     GLB NX pmd
/// 0xffffea0000200000-0xffffea0000400000           2M     RW                 GLB NX pte
/// 0xffffea0000400000-0xffffea0040000000        1020M                               pmd
/// </code>
/// <c>"0x%016lx-0x%016lx   %9lu%c "</c> with the size in the largest of B/K/M/G/T/P/E that keeps
/// it whole, then printk_prot's columns (30 blanks for a non-present run) and the level name.
/// </summary>
/// <remarks>
/// The level name is the spec's, which for the x86 specs is the kernel's level_name[] at the
/// walker's real depth: with p4d folded (4-level paging) a hole in the root table is reported at
/// depth 0, "pgd" (mm/pagewalk.c real_depth).
/// </remarks>
public readonly struct X86PtdumpFormat : IPtdumpFormat
{
    // arch/x86/include/asm/pgtable_types.h
    private const ulong PagePresent = 1UL << 0;
    private const ulong PageRw = 1UL << 1;
    private const ulong PageUser = 1UL << 2;
    private const ulong PagePwt = 1UL << 3;
    private const ulong PagePcd = 1UL << 4;
    private const ulong PagePse = 1UL << 7;
    private const ulong PagePat = 1UL << 7;
    private const ulong PageGlobal = 1UL << 8;
    private const ulong PagePatLarge = 1UL << 12;
    private const ulong PageNx = 1UL << 63;

    /// <summary>
    /// note_page: <c>new_prot = val &amp; PTE_FLAGS_MASK</c>, every bit but the physical frame
    /// field (PTE_PFN_MASK, the spec's <c>entry.pfn</c>).
    /// </summary>
    public static ulong Prot<TArch>(int level, ulong entry)
        where TArch : struct, IPagingArch => entry & ~TArch.PfnMask;

    /// <summary>address_markers[VMEMMAP_START_NR]; the next marker lies beyond the region.</summary>
    public static IReadOnlyList<AddressMarker> VmemmapMarkers<TArch>()
        where TArch : struct, IPagingArch => [new AddressMarker(TArch.VmemmapStart, "Vmemmap")];

    public static void AppendRun<TArch>(StringBuilder text, PtdumpRun run)
        where TArch : struct, IPagingArch
    {
        PtdumpText.AppendRange(text, run.Start, run.End);
        PtdumpText.AppendSize(text, run.Size, "BKMGTPE");
        text.Append(' ');
        PrintkProt<TArch>(text, run.Prot, run.Level);
    }

    /// <summary>printk_prot: one column per attribute, then the level name.</summary>
    private static void PrintkProt<TArch>(StringBuilder text, ulong pr, int level)
        where TArch : struct, IPagingArch
    {
        bool pteLevel = level == TArch.LastLevel;
        if ((pr & PagePresent) == 0)
        {
            text.Append(' ', 30);
        }
        else
        {
            text.Append((pr & PageUser) != 0 ? "USR " : "    ");
            text.Append((pr & PageRw) != 0 ? "RW " : "ro ");
            text.Append((pr & PagePwt) != 0 ? "PWT " : "    ");
            text.Append((pr & PagePcd) != 0 ? "PCD " : "    ");

            // Bit 7 is PSE above the PTE level and PAT at it; a large page keeps PAT in bit 12.
            // That bit lies inside PTE_PFN_MASK, so note_page has already masked it out of
            // pr and, as in the kernel, PAT never shows for a pmd or pud.
            text.Append(!pteLevel && (pr & PagePse) != 0 ? "PSE " : "    ");
            bool pat = pteLevel
                ? (pr & PagePat) != 0
                : TArch.LevelCanMapLeaf(level) && (pr & PagePatLarge) != 0;
            text.Append(pat ? "PAT " : "    ");
            text.Append((pr & PageGlobal) != 0 ? "GLB " : "    ");
            text.Append((pr & PageNx) != 0 ? "NX " : "x  ");
        }

        text.Append(TArch.Info.Levels[level].Name).Append('\n');
    }
}
