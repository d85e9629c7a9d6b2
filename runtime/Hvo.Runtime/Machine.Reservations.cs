using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Numerics;
using System.Text;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo;

/// <summary>
/// The memory map the firmware hands the kernel and the reservations the boot path makes in it
/// before memblock_free_all: the e820 table (a spec with <c>ramHole</c> boots with a PC's
/// firmware), crashkernel= (reserve_crashkernel), swiotlb's bounce buffer (swiotlb_init), and the
/// /proc/iomem view of it. docs/ARCHITECTURE.md §5.
/// </summary>
public sealed partial class Machine<TArch>
{
    /// <summary>IO_TLB_DEFAULT_SIZE: swiotlb's bounce buffer when the command line does not size it.</summary>
    public const ulong SwiotlbDefaultBytes = 64 * MachineConfig.MiB;

    /// <summary>ARCH_LOW_ADDRESS_LIMIT and CRASH_ADDR_LOW_MAX: the 4 GiB a 32-bit DMA mask reaches.</summary>
    private const ulong LowLimit = 4 * MachineConfig.GiB;

    /// <summary>Lines of <see cref="KernelLog"/> the boot itself printed (the memory map, the reservations, the memory summary).</summary>
    public int BootLogLines { get; private set; }

    /// <summary>The crash kernel's memory, [start, end) in frames, if crashkernel= reserved it.</summary>
    public (ulong Start, ulong End)? CrashKernel { get; private set; }

    /// <summary>swiotlb's bounce buffer (io_tlb_default_mem), [start, end) in frames, if it was allocated.</summary>
    public (ulong Start, ulong End)? Swiotlb { get; private set; }

    /// <summary>Whether the firmware is a PC's (the spec has <c>ramHole</c>): an e820 map, 16 MiB CRASH_ALIGN.</summary>
    public static bool PcFirmware => TArch.Info.RamHoleEnd != 0;

    /// <summary>
    /// The swiotlb buffer this machine gets: when its RAM reaches above 4 GiB (pci_swiotlb_detect) or
    /// swiotlb=,force, and not with swiotlb=noforce, <see cref="MachineConfig.SwiotlbBytes"/> or 64 MiB, rounded up to a whole segment of
    /// IO_TLB_SEGSIZE slots of 2 KiB (256 KiB) as swiotlb_adjust_size does.
    /// </summary>
    public ulong SwiotlbBytes
    {
        get
        {
            bool wanted = Config.SwiotlbForce ?? (Layout.EndPfn << TArch.PageShift) > LowLimit;
            ulong bytes = wanted ? Config.SwiotlbBytes ?? SwiotlbDefaultBytes : 0;
            const ulong segment = 128 * 2048;
            return (bytes + segment - 1) / segment * segment;
        }
    }

    /// <summary>The e820 table as the kernel prints it (e820__print_table): the RAM ranges usable, the holes between them reserved.</summary>
    private void LogMemoryMap()
    {
        if (!PcFirmware)
        {
            return;
        }

        Log("BIOS-provided physical RAM map:");
        ulong at = Layout.FirstPfn;
        foreach ((ulong start, ulong end) in Layout.RamRanges())
        {
            if (start > at)
            {
                Log(E820Line(at, start, "reserved"));
            }

            Log(E820Line(start, end, "usable"));
            at = end;
        }

        if (Layout.IgnoredFrames > 0)
        {
            // The firmware's map goes on; the kernel's memory model stops at MAX_PHYSMEM_BITS.
            ulong end = Layout.EndPfn + Layout.IgnoredFrames;
            Log(E820Line(Layout.EndPfn, end, "usable"));
            Log(string.Create(CultureInfo.InvariantCulture, $"[mem 0x{Layout.EndPfn << TArch.PageShift:x16}-0x{(end << TArch.PageShift) - 1:x16}] is above the {BitOperations.Log2(Layout.EndPfn << TArch.PageShift)}-bit physical address space the vmemmap describes (MAX_PHYSMEM_BITS): ignored"));
        }
    }

    private static string E820Line(ulong start, ulong end, string type) =>
        string.Create(CultureInfo.InvariantCulture, $"BIOS-e820: [mem 0x{start << TArch.PageShift:x16}-0x{(end << TArch.PageShift) - 1:x16}] {type}");

    /// <summary>
    /// reserve_crashkernel: crashkernel=SIZE from memblock below 4 GiB, top down, CRASH_ALIGN aligned
    /// (16 MiB on a PC, 2 MiB elsewhere), else anywhere; crashkernel=SIZE@OFFSET exactly there.
    /// </summary>
    private void ReserveCrashKernel()
    {
        ulong bytes = Config.CrashKernelBytes;
        if (bytes == 0)
        {
            return;
        }

        ulong frames = (bytes + TArch.PageSize - 1) >> TArch.PageShift;
        ulong align = (PcFirmware ? 16 * MachineConfig.MiB : 2 * MachineConfig.MiB) >> TArch.PageShift;
        ulong pfn;
        if (Config.CrashKernelBase is { } b)
        {
            pfn = b >> TArch.PageShift;
            if ((b & ((align << TArch.PageShift) - 1)) != 0 || pfn < Layout.FirstPfn || pfn + frames > Layout.EndPfn || !AllFree(pfn, frames))
            {
                Log("crashkernel reservation failed - memory is in use.");
                return;
            }

            Memblock.Reserve(pfn, frames, FrameOwner.Reserved);
        }
        else if (!Memblock.TryAllocBelow(0, frames, align, FrameOwner.Reserved, LowLimit >> TArch.PageShift, out pfn, fallbackToOtherNodes: true)
            && !Memblock.TryAlloc(0, frames, align, FrameOwner.Reserved, out pfn, fallbackToOtherNodes: true))
        {
            Log("crashkernel reservation failed - No suitable area found.");
            return;
        }

        CrashKernel = (pfn, pfn + frames);
        Log(string.Create(CultureInfo.InvariantCulture,
            $"Reserving {bytes >> 20}MB of memory at {(pfn << TArch.PageShift) >> 20}MB for crashkernel (System RAM: {(Layout.RamFrames << TArch.PageShift) >> 20}MB)"));
    }

    /// <summary>
    /// vfs_caches_init_early: the dentry and inode hash tables, from memblock (HASH_EARLY) on a
    /// machine of one node, sized by alloc_large_system_hash from the pages the kernel will manage
    /// (one bucket per 8 KiB and per 16 KiB of them, a power of two, at most 2^31 buckets or 1/16
    /// of memory) and logged as the kernel logs them. With more than one node the kernel takes them
    /// from vmalloc, spread over the nodes, later in boot (hashdist); Hvo leaves those out.
    /// </summary>
    private void AllocateSystemHashes()
    {
        if (Layout.Nodes > 1)
        {
            return;
        }

        // nr_kernel_pages: each zone's present pages less its struct pages. calc_memmap_size counts
        // the struct pages of the spanned range unless it spans more than a sixteenth beyond the
        // present pages (sparse memory: then only the present ones).
        ulong kernelPages = 0;
        for (int zone = 0; zone < Layout.Zones.Count; zone++)
        {
            (ulong start, ulong end) = Layout.ZoneLimits(zone);
            ulong spanned = end - start;
            ulong present = spanned - Layout.HoleFrames(start, end);
            ulong described = spanned > present + (present >> 4) ? present : spanned;
            ulong memmap = ((described * (ulong)TArch.StructPageBytes) + TArch.PageSize - 1) >> TArch.PageShift;
            kernelPages += present - Math.Min(present, memmap);
        }

        AllocateSystemHash("Dentry cache", kernelPages, scale: 13); // dhash_entries: hlist_bl_head buckets
        AllocateSystemHash("Inode-cache", kernelPages, scale: 14); // ihash_entries: hlist_head buckets
    }

    // alloc_large_system_hash with HASH_EARLY | HASH_ZERO, 8-byte buckets. Where memblock has no
    // room the kernel panics ("Failed to allocate %s hash table"); Hvo logs the line and boots on
    // without the table, so a machine described too small still gives its report.
    private void AllocateSystemHash(string name, ulong kernelPages, int scale)
    {
        const ulong bucket = 8;
        ulong entries = TArch.PageSize < MachineConfig.MiB ? (kernelPages + (MachineConfig.MiB / TArch.PageSize) - 1) / (MachineConfig.MiB / TArch.PageSize) * (MachineConfig.MiB / TArch.PageSize) : kernelPages;
        entries = scale > TArch.PageShift ? entries >> (scale - TArch.PageShift) : entries << (TArch.PageShift - scale);
        entries = Math.Max(entries, TArch.PageSize / bucket);
        entries = BitOperations.RoundUpToPowerOf2(entries);
        ulong max = Math.Min(((kernelPages << TArch.PageShift) >> 4) / bucket, 0x80000000UL);
        entries = Math.Min(entries, max);
        int log2 = BitOperations.Log2(entries);
        ulong bytes = bucket << log2;
        ulong frames = (bytes + TArch.PageSize - 1) >> TArch.PageShift;
        if (!Memblock.TryAlloc(0, frames, 1, FrameOwner.Reserved, out ulong pfn, fallbackToOtherNodes: true))
        {
            Log($"Failed to allocate {name} hash table");
            return;
        }

        _reservedAtBoot = [.. _reservedAtBoot.Append((Start: pfn, End: pfn + frames)).OrderBy(r => r.Start)];
        Log(string.Create(CultureInfo.InvariantCulture,
            $"{name} hash table entries: {1UL << log2} (order: {BitOperations.Log2(bytes) - TArch.PageShift}, {bytes} bytes, linear)"));
    }

    /// <summary>swiotlb_init: the bounce buffer from memblock below 4 GiB, top down (memblock_alloc_low), page aligned.</summary>
    private void AllocateSwiotlb()
    {
        ulong bytes = SwiotlbBytes;
        if (bytes == 0)
        {
            return;
        }

        ulong frames = (bytes + TArch.PageSize - 1) >> TArch.PageShift;
        if (!Memblock.TryAllocBelow(0, frames, 1, FrameOwner.Reserved, LowLimit >> TArch.PageShift, out ulong pfn, fallbackToOtherNodes: true))
        {
            Log(string.Create(CultureInfo.InvariantCulture, $"swiotlb_init_remap: Failed to allocate {bytes} bytes tlb structure"));
            return;
        }

        Swiotlb = (pfn, pfn + frames);
        Log(string.Create(CultureInfo.InvariantCulture,
            $"software IO TLB: mapped [mem 0x{pfn << TArch.PageShift:x16}-0x{(pfn + frames) << TArch.PageShift:x16}] ({bytes >> 20}MB)"));
    }

    /// <summary>mem_init_print_info: the managed and present memory once memblock_free_all has run.</summary>
    private void LogMemoryInfo()
    {
        long present = 0;
        foreach (Zone z in Pages.Zones)
        {
            present += z.PresentPages;
        }

        long managed = Pages.ManagedPages;
        ulong k = TArch.PageSize >> 10;
        Log(string.Create(CultureInfo.InvariantCulture,
            $"Memory: {(ulong)managed * k}K/{(ulong)present * k}K available ({(ulong)(present - managed) * k}K reserved, 0K cma-reserved)"));
        BootLogLines = KernelLog.Count;
    }

    private bool AllFree(ulong pfn, ulong frames)
    {
        for (ulong p = pfn; p < pfn + frames; p++)
        {
            if (Owners[p] != FrameOwner.Free)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// /proc/iomem as root reads it: each range of RAM "System RAM" (boot memory's and every present
    /// hot-added block's, merged where adjacent), the crash kernel's memory inside it.
    /// </summary>
    public string IoMem()
    {
        var ram = new List<(ulong Start, ulong End)>();
        foreach ((ulong start, ulong end) in Layout.RamRanges())
        {
            ram.Add((start, end));
        }

        foreach (Memory.Hotplug.MemoryBlock block in Hotplug.Blocks)
        {
            if (block.HotAdded)
            {
                ram.Add((block.StartPfn, block.StartPfn + block.Frames));
            }
        }

        ram.Sort();
        var text = new StringBuilder();
        (ulong Start, ulong End)? current = null;
        foreach ((ulong start, ulong end) in ram)
        {
            if (current is { } c && c.End == start)
            {
                current = (c.Start, end);
                continue;
            }

            Emit(current);
            current = (start, end);
        }

        Emit(current);
        return text.ToString();

        void Emit((ulong Start, ulong End)? range)
        {
            if (range is not { } r)
            {
                return;
            }

            text.Append(IoMemLine(r.Start, r.End, "System RAM", 0));
            if (CrashKernel is { } ck && ck.Start >= r.Start && ck.End <= r.End)
            {
                text.Append(IoMemLine(ck.Start, ck.End, "Crash kernel", 1));
            }
        }
    }

    // r_show: two blanks a level, addresses in at least 8 hex digits.
    private static string IoMemLine(ulong start, ulong end, string name, int depth) =>
        string.Create(CultureInfo.InvariantCulture, $"{new string(' ', 2 * depth)}{start << TArch.PageShift:x8}-{(end << TArch.PageShift) - 1:x8} : {name}\n");
}
