using System;
using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>What one scan of struct pages cost: how many it read, their bytes, and the scanning CPU's TLB misses.</summary>
/// <param name="StructPages">Struct pages read.</param>
/// <param name="Bytes">Their bytes: the vmemmap the scan covered.</param>
/// <param name="TlbMisses">Translations the scanning CPU's TLB did not hold: each a page-table walk.</param>
/// <param name="Faults">Struct pages whose translation faulted (none on a machine's RAM).</param>
public readonly record struct StructPageScanResult(ulong StructPages, ulong Bytes, long TlbMisses, long Faults)
{
    /// <summary>TLB misses per GiB of struct pages scanned.</summary>
    public double MissesPerGiB => Bytes == 0 ? 0 : TlbMisses * (double)(1UL << 30) / Bytes;
}

/// <summary>
/// A PFN walker's pass (compaction's isolate_migratepages_block, page_idle, memory offline's
/// scan: each reads the struct page of every pfn of a range) through one CPU's MMU, from a cold
/// TLB, counting that CPU's TLB misses (docs/ARCHITECTURE.md §5): one per block while the vmemmap
/// is mapped by blocks, one per page where it is split, whatever HVO's tails share (a TLB entry is
/// per virtual page).
/// </summary>
public static class StructPageScan
{
    /// <summary>Read the struct page of every pfn in [<paramref name="startPfn"/>, <paramref name="endPfn"/>) on <paramref name="cpu"/>.</summary>
    public static StructPageScanResult Run<TArch>(Machine<TArch> machine, ulong startPfn, ulong endPfn, int cpu = 0)
        where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(startPfn, endPfn);
        Tlb tlb = machine.Mmu.Tlbs[cpu];
        tlb.InvalidateAll(); // a cold start: what the scan costs, not what the run left cached
        long misses = tlb.Misses;
        StructPageScanResult r = Scan(machine, startPfn, endPfn, cpu);
        return r with { TlbMisses = tlb.Misses - misses };
    }

    // The reads of [startPfn, endPfn) on a TLB as it is; TlbMisses is left 0 for the caller to fill.
    private static StructPageScanResult Scan<TArch>(Machine<TArch> machine, ulong startPfn, ulong endPfn, int cpu)
        where TArch : struct, IPagingArch
    {
        long faults = 0;
        for (ulong pfn = startPfn; pfn < endPfn; pfn++)
        {
            if (machine.Mmu.Translate(cpu, machine.StructPageAddress(pfn), write: false, out _) != AccessFault.None)
            {
                faults++;
            }
        }

        ulong count = endPfn - startPfn;
        return new StructPageScanResult(count, count * (ulong)TArch.StructPageBytes, 0, faults);
    }

    /// <summary>
    /// Every struct page of the machine's boot RAM, range by range: a firmware hole (a PC's PCI hole)
    /// has no memmap, and a PFN walker skips it as pfn_valid says (one cold start for the whole scan).
    /// </summary>
    public static StructPageScanResult All<TArch>(Machine<TArch> machine, int cpu = 0)
        where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(machine);
        Tlb tlb = machine.Mmu.Tlbs[cpu];
        tlb.InvalidateAll();
        long misses = tlb.Misses;
        ulong pages = 0, bytes = 0;
        long faults = 0;
        foreach ((ulong start, ulong end) in machine.Layout.RamRanges())
        {
            StructPageScanResult r = Scan(machine, start, end, cpu);
            pages += r.StructPages;
            bytes += r.Bytes;
            faults += r.Faults;
        }

        return new StructPageScanResult(pages, bytes, tlb.Misses - misses, faults);
    }
}
