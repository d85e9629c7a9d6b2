using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Hvo.Paging.Ptdump;

/// <summary>
/// arch/arm64/mm/ptdump.c, as read from /sys/kernel/debug/kernel_page_tables:
/// <code>
/// ---[ vmemmap start ]---
/// 0xfffffdffc0000000-0xfffffdffc0200000           2M PMD       RW NX SHD AF        BLK UXN    MEM/NORMAL
/// 0xfffffdffc0200000-0xfffffdffc0400000           2M PTE       RW NX SHD AF            UXN    MEM/NORMAL
/// 0xfffffdffc0400000-0xfffffe0000000000        1020M PMD
/// ---[ vmemmap end ]---
/// </code>
/// <c>"0x%016lx-0x%016lx   %9lu%c %s"</c> with the size in the largest of K/M/G/T/P/E that keeps
/// it whole and the level name, then, for a run whose prot is not 0, <c>" %s"</c> for each of
/// pte_bits[] in order: the set or clear string, nothing where an AttrIndx value does not match.
/// </summary>
/// <remarks>
/// The level name is pg_level[].name at the walker's real depth: the spec's level name in capitals
/// (PGD, PUD, PMD, PTE), which for a 3-level configuration (16K, 64K) is PGD, PMD, PTE as the
/// kernel prints it with pud folded. Descriptor bits are those of
/// arch/arm64/include/asm/pgtable-hwdef.h; MT_* are the v5.13+ MAIR indices of asm/memory.h.
/// DBM (bit 51, PTE_WRITE) is in none of pte_bits[], so a read-only remap of a PAGE_KERNEL
/// entry breaks a run through PTE_RDONLY alone.
/// </remarks>
public readonly struct Arm64PtdumpFormat : IPtdumpFormat
{
    private const ulong PteValid = 1UL << 0;
    private const ulong PteTableBit = 1UL << 1;
    private const ulong PteUser = 1UL << 6;
    private const ulong PteRdonly = 1UL << 7;
    private const ulong PteShared = 3UL << 8;
    private const ulong PteAf = 1UL << 10;
    private const ulong PteNg = 1UL << 11;
    private const ulong PteGp = 1UL << 50;
    private const ulong PteCont = 1UL << 52;
    private const ulong PtePxn = 1UL << 53;
    private const ulong PteUxn = 1UL << 54;
    private const ulong PteAttrIndxMask = 7UL << 2;

    private const ulong MtNormal = 0;
    private const ulong MtNormalTagged = 1;
    private const ulong MtNormalNc = 2;
    private const ulong MtDeviceNGnRnE = 3;
    private const ulong MtDeviceNGnRE = 4;

    /// <summary>pte_bits[]: mask, value, the string when it matches, the string when not (none: print nothing).</summary>
    private static readonly ProtBits[] s_pteBits =
    [
        new(PteValid, PteValid, " ", "F"),
        new(PteUser, PteUser, "USR", "   "),
        new(PteRdonly, PteRdonly, "ro", "RW"),
        new(PtePxn, PtePxn, "NX", "x "),
        new(PteShared, PteShared, "SHD", "   "),
        new(PteAf, PteAf, "AF", "  "),
        new(PteNg, PteNg, "NG", "  "),
        new(PteCont, PteCont, "CON", "   "),
        new(PteTableBit, PteTableBit, "   ", "BLK"),
        new(PteUxn, PteUxn, "UXN", "   "),
        new(PteGp, PteGp, "GP", "  "),
        new(PteAttrIndxMask, AttrIndx(MtDeviceNGnRnE), "DEVICE/nGnRnE", null),
        new(PteAttrIndxMask, AttrIndx(MtDeviceNGnRE), "DEVICE/nGnRE", null),
        new(PteAttrIndxMask, AttrIndx(MtNormalNc), "MEM/NORMAL-NC", null),
        new(PteAttrIndxMask, AttrIndx(MtNormal), "MEM/NORMAL", null),
        new(PteAttrIndxMask, AttrIndx(MtNormalTagged), "MEM/NORMAL-TAGGED", null),
    ];

    /// <summary>pg_level[].mask, as ptdump_initialize builds it: every bit some pte_bits[] entry tests.</summary>
    private static readonly ulong s_mask = MaskOf(s_pteBits);

    /// <summary>note_page: <c>prot = val &amp; pg_level[level].mask</c>.</summary>
    public static ulong Prot<TArch>(int level, ulong entry)
        where TArch : struct, IPagingArch => entry & s_mask;

    /// <summary>address_markers[]: "vmemmap start" at VMEMMAP_START, "vmemmap end" at VMEMMAP_START + VMEMMAP_SIZE.</summary>
    public static IReadOnlyList<AddressMarker> VmemmapMarkers<TArch>()
        where TArch : struct, IPagingArch =>
    [
        new AddressMarker(TArch.VmemmapStart, "vmemmap start"),
        new AddressMarker(TArch.VmemmapStart + TArch.VmemmapSize, "vmemmap end"),
    ];

    public static void AppendRun<TArch>(StringBuilder text, PtdumpRun run)
        where TArch : struct, IPagingArch
    {
        PtdumpText.AppendRange(text, run.Start, run.End);
        PtdumpText.AppendSize(text, run.Size >> 10, "KMGTPE");
        text.Append(' ').Append(LevelNames<TArch>.Upper[run.Level]);
        if (run.Prot != 0)
        {
            DumpProt(text, run.Prot);
        }

        text.Append('\n');
    }

    /// <summary>dump_prot.</summary>
    private static void DumpProt(StringBuilder text, ulong prot)
    {
        foreach (ProtBits bits in s_pteBits)
        {
            string? s = (prot & bits.Mask) == bits.Value ? bits.Set : bits.Clear;
            if (s is not null)
            {
                text.Append(' ').Append(s);
            }
        }
    }

    private static ulong AttrIndx(ulong memoryType) => memoryType << 2;

    private static ulong MaskOf(ProtBits[] bits)
    {
        ulong mask = 0;
        foreach (ProtBits b in bits)
        {
            mask |= b.Mask;
        }

        return mask;
    }

    /// <summary>pg_level[].name: the spec's level names in capitals, made once per architecture.</summary>
    private static class LevelNames<TArch>
        where TArch : struct, IPagingArch
    {
        public static readonly string[] Upper = [.. TArch.Info.Levels.Select(l => l.Name.ToUpperInvariant())];
    }

    private readonly record struct ProtBits(ulong Mask, ulong Value, string Set, string? Clear);
}
