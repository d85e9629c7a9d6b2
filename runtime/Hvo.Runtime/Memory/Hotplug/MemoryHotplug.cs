using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Hvo.Paging;

namespace Hvo.Memory.Hotplug;

/// <summary>
/// What memory offlining asks of the HugeTLB pool above the machine: dissolve_free_hugetlb_folios
/// over an isolated range. The pool registers itself (<see cref="MemoryHotplug{TArch}.HugePages"/>).
/// </summary>
public interface IHotplugHugePages
{
    /// <summary>
    /// Dissolve every free huge page with frames in [<paramref name="startPfn"/>, <paramref name="endPfn"/>),
    /// in address order, restoring its vmemmap first; stop at the first that cannot be dissolved: one
    /// still in use (<see cref="HotplugResult.Busy"/>), or one whose vmemmap cannot be restored, which
    /// stays in the pool as it was (<see cref="HotplugResult.NoMemory"/>).
    /// </summary>
    HotplugResult DissolveFreeHugePages(ulong startPfn, ulong endPfn);
}

/// <summary>
/// Memory hotplug on a machine (drivers/base/memory.c, mm/memory_hotplug.c): the memory blocks,
/// adding one (the x86 probe interface, or a memory device the firmware announces), onlining it into
/// a zone and offlining it. The memory a block can be added from is the machine's physical memory
/// above its boot memory (<see cref="MachineConfig.HotplugBytes"/>). Block ids are physical
/// (memoryN holds the pfns from N * block frames), so on a machine whose RAM starts above 0
/// (<see cref="MachineLayout.FirstPfn"/>) the first block's id is not 0.
/// </summary>
/// <remarks>
/// <para>Block size (memory_block_size_bytes): a memory section (the spec's <c>vmemmap.sectionShift</c>,
/// MIN_MEMORY_BLOCK_SIZE), except on x86-64 with 64 GiB or more of boot memory, where
/// probe_memory_block_size takes the largest power of two up to 2 GiB that the end of boot memory
/// is aligned to (the rule for a machine under a hypervisor, the usual place for memory hotplug;
/// bare metal takes 2 GiB outright).</para>
/// <para>Adding a block populates its struct pages at once, as vmemmap_populate does: leaves of the
/// spec's boot level, each a block from the page allocator on the block's node (falling back to base
/// pages), or, with memmap_on_memory, from the block's own first frames (an altmap); those frames
/// are the block's, marked VmemmapSelfHosted, and HVO leaves the huge pages they describe alone
/// from v6.0 (vmemmap_should_optimize). Offlining isolates the block, dissolves its free huge pages
/// and takes its frames out of the page allocator; anything unmovable in it makes it fail with
/// -EBUSY. Huge pages in use are not migrated: the machine has no user mappings to move, so they
/// make the offline fail with -EBUSY, as dissolve_free_hugetlb_folio does for a page still referenced.</para>
/// </remarks>
public sealed class MemoryHotplug<TArch> where TArch : struct, IPagingArch
{
    /// <summary>x86-64's MEM_SIZE_FOR_LARGE_BLOCK: below it, memory blocks are one section.</summary>
    public const ulong LargeBlockMemory = 64UL << 30;

    /// <summary>x86-64's MAX_BLOCK_SIZE.</summary>
    public const ulong MaxBlockBytes = 2UL << 30;

    private readonly Machine<TArch> _machine;
    private readonly MemoryBlock?[] _blocks; // by id, from _firstBlock
    private readonly ulong _firstBlock;
    private readonly Lock _lock = new(); // device_hotplug_lock
    private long _vmemmapFrames;
    private long _tableFrames;
    private int _devices;
    private readonly int _blockFramesShift;
    private bool _selfHosting;

    internal MemoryHotplug(Machine<TArch> machine)
    {
        _machine = machine;
        MachineLayout layout = machine.Layout;
        BlockBytes = ProbeMemoryBlockSize(layout.EndPfn << TArch.PageShift);
        _blockFramesShift = System.Numerics.BitOperations.Log2(BlockFrames); // a power of two, as memory_block_size_bytes is
        _firstBlock = layout.FirstPfn / BlockFrames;
        _blocks = new MemoryBlock?[((machine.PhysicalEndPfn + BlockFrames - 1) / BlockFrames) - _firstBlock];
        AutoOnline = machine.Config.AutoOnlineBlocks;

        // memory_dev_init: a block, online, for every section present at boot; its zone if its
        // memory is one zone of one node (early_node_zone_for_memory_block), else none. A block
        // that RAM starts or ends inside has fewer present frames.
        for (ulong id = _firstBlock; id * BlockFrames < layout.EndPfn; id++)
        {
            ulong start = id * BlockFrames;
            ulong first = Math.Max(start, layout.FirstPfn);
            ulong present = Math.Min(start + BlockFrames, layout.EndPfn) - first;
            ulong last = first + present - 1;
            present -= layout.HoleFrames(first, last + 1);
            if (present == 0)
            {
                continue; // all of it in the firmware's hole: no section, no block
            }

            int node = layout.NodeOf(first) == layout.NodeOf(last) ? layout.NodeOf(first) : -1;
            int? zone = node >= 0 && layout.ZoneOf(first) == layout.ZoneOf(last) ? layout.ZoneOf(first) : null;
            _blocks[id - _firstBlock] = new MemoryBlock(id, start, BlockFrames, present, node, MemoryBlockState.Online, zone, hotAdded: false, selfHostedFrames: 0);
        }
    }

    /// <summary>memory_block_size_bytes.</summary>
    public ulong BlockBytes { get; }

    public ulong BlockFrames => BlockBytes >> TArch.PageShift;

    /// <summary>What a hot-added block becomes (auto_online_blocks; memhp_default_state=).</summary>
    public OnlineType AutoOnline { get; set; }

    /// <summary>The pool that dissolves free huge pages when a block goes offline; none on a bare machine.</summary>
    public IHotplugHugePages? HugePages { get; set; }

    /// <summary>Struct page frames populated for hot-added memory (from the page allocator or the blocks themselves).</summary>
    public long VmemmapFrames => Interlocked.Read(ref _vmemmapFrames);

    /// <summary>Page-table frames allocated to map the struct pages of hot-added memory.</summary>
    public long TableFrames => Interlocked.Read(ref _tableFrames);

    /// <summary>Every present memory block, by id.</summary>
    public IReadOnlyList<MemoryBlock> Blocks
    {
        get
        {
            lock (_lock)
            {
                return [.. _blocks.OfType<MemoryBlock>()];
            }
        }
    }

    /// <summary>memoryN: the block with id <paramref name="id"/>, if present.</summary>
    public MemoryBlock? Block(ulong id) => id >= _firstBlock && id - _firstBlock < (ulong)_blocks.Length ? Volatile.Read(ref _blocks[id - _firstBlock]) : null;

    /// <summary>The block <paramref name="pfn"/> lies in, if present.</summary>
    public MemoryBlock? BlockOf(ulong pfn) => Block(pfn >> _blockFramesShift); // behind every freed vmemmap frame: a shift, not a division

    /// <summary>
    /// mhp_supports_memmap_on_memory for one block: the parameter is on, the architecture has
    /// CONFIG_MHP_MEMMAP_ON_MEMORY (x86-64 here), the struct pages of a block fill whole pages,
    /// whole pageblocks and whole PMDs (arch_supports_memmap_on_memory), and leave some of it usable.
    /// </summary>
    public bool SupportsMemmapOnMemory
    {
        get
        {
            if (!_machine.Config.MemmapOnMemory || TArch.Info.Ptdump != PtdumpFormat.X86)
            {
                return false;
            }

            ulong bytes = BlockFrames * (ulong)TArch.StructPageBytes;
            ulong pageblock = 1UL << Math.Min(_machine.Layout.MaxOrder, TArch.LevelShift(TArch.LastLevel - 1) - TArch.PageShift);
            ulong frames = bytes >> TArch.PageShift;
            return bytes % TArch.PageSize == 0 && frames % pageblock == 0 && frames < BlockFrames
                && bytes % TArch.LevelSize(TArch.LastLevel - 1) == 0;
        }
    }

    /// <summary>
    /// A write of <paramref name="physAddr"/> to /sys/devices/system/memory/probe (probe_store): an
    /// address not aligned to the block size is -EINVAL; otherwise __add_memory of one block on
    /// memory_add_physaddr_to_nid's node, without memmap_on_memory (MHP_NONE).
    /// </summary>
    public HotplugResult Probe(ulong physAddr)
    {
        if (physAddr % BlockBytes != 0)
        {
            return HotplugResult.Invalid;
        }

        return AddMemory(physAddr, PhysAddrToNid(physAddr), memmapOnMemory: false);
    }

    /// <summary>
    /// The firmware announces a memory device of one block at <paramref name="physAddr"/> (an ACPI
    /// PNP0C80 device, as QEMU's <c>device_add pc-dimm</c> makes): acpi_memory_enable_device adds
    /// it on <paramref name="node"/> (else memory_add_physaddr_to_nid's), with MHP_MEMMAP_ON_MEMORY
    /// when <see cref="SupportsMemmapOnMemory"/>. A failure is logged as the driver logs it.
    /// </summary>
    public HotplugResult AddMemoryDevice(ulong physAddr, int? node = null)
    {
        int device = Interlocked.Increment(ref _devices) - 1;
        int nid = node ?? PhysAddrToNid(physAddr);
        HotplugResult r = nid >= _machine.Layout.Nodes || nid < 0
            ? HotplugResult.Invalid
            : AddMemory(physAddr, nid, SupportsMemmapOnMemory);
        if (r != HotplugResult.Ok)
        {
            _machine.Log(string.Create(CultureInfo.InvariantCulture, $"acpi PNP0C80:{device:x2}: add_memory failed"));
        }

        return r;
    }

    /// <summary>
    /// device_online through memory_subsys_online: <see cref="HotplugResult.Unchanged"/> for a block
    /// online already; otherwise online_pages into the zone zone_for_pfn_range picks for
    /// <paramref name="type"/> (<see cref="ZoneFor"/>), its struct pages initialized for that zone
    /// (memmap_init_range).
    /// </summary>
    public HotplugResult Online(MemoryBlock block, OnlineType type = OnlineType.Online)
    {
        ArgumentNullException.ThrowIfNull(block);
        lock (_lock)
        {
            if (block.State == MemoryBlockState.Online)
            {
                return HotplugResult.Unchanged;
            }

            Zone zone = ZoneFor(block, type == OnlineType.Offline ? OnlineType.Online : type);
            _machine.Pages.OnlinePages(zone, block.StartPfn, block.SelfHostedFrames, block.EndPfn);
            block.State = MemoryBlockState.Online;
            block.Zone = zone.Index;
            _machine.Compounds.Rewrite(block.StartPfn, block.Frames);
            return HotplugResult.Ok;
        }
    }

    /// <summary>
    /// device_offline through memory_subsys_offline and offline_pages: <see cref="HotplugResult.Unchanged"/>
    /// for a block offline already; -EINVAL for one spanning zones, nodes or holes; then the usable
    /// range is isolated (-EBUSY if something in it can be neither migrated nor freed), its movable
    /// pages (shmem) migrated elsewhere (-EINTR when one cannot be: see <see cref="HotplugResult.Interrupted"/>),
    /// its free huge pages dissolved (the pool's errno if one cannot be), and its frames taken out of
    /// the page allocator. On failure everything isolated goes back, what migrated stays where it
    /// went: the block stays online.
    /// </summary>
    public HotplugResult Offline(MemoryBlock block)
    {
        ArgumentNullException.ThrowIfNull(block);
        lock (_lock)
        {
            if (block.State == MemoryBlockState.Offline)
            {
                return HotplugResult.Unchanged;
            }

            if (block.Zone is null || block.PresentFrames < block.Frames)
            {
                return HotplugResult.Invalid; // memory_block_offline: no single zone; offline_pages: "memory holes"
            }

            PageAllocator pages = _machine.Pages;
            if (!pages.TryIsolate(block.FirstUsablePfn, block.EndPfn, out _))
            {
                return HotplugResult.Busy; // "failure to isolate range"
            }

            // scan_movable_pages and do_migrate_range until no movable page is left; the kernel
            // retries a page that cannot move until a fatal signal ("signal backoff").
            HotplugResult r = pages.MigrateIsolatedPages() ? HotplugResult.Ok : HotplugResult.Interrupted;
            if (r == HotplugResult.Ok)
            {
                r = HugePages?.DissolveFreeHugePages(block.FirstUsablePfn, block.EndPfn) ?? HotplugResult.Ok;
            }

            if (r == HotplugResult.Ok && !pages.IsolatedRangeIsFree)
            {
                r = HotplugResult.Busy; // huge pages nobody here can dissolve
            }

            if (r != HotplugResult.Ok)
            {
                pages.UndoIsolate();
                return r;
            }

            pages.OfflineIsolatedPages(block.SelfHostedFrames);
            block.State = MemoryBlockState.Offline;
            block.Zone = null;
            return HotplugResult.Ok;
        }
    }

    /// <summary>
    /// zone_for_pfn_range with the default contig-zones policy and no movable_node: online_kernel
    /// takes the lowest zone below ZONE_NORMAL whose span meets the block, else ZONE_NORMAL
    /// (default_kernel_zone_for_pfn); online_movable ZONE_MOVABLE; online the one of the two whose
    /// span meets the block if only one does, else the kernel zone (default_zone_for_pfn).
    /// </summary>
    public Zone ZoneFor(MemoryBlock block, OnlineType type)
    {
        ArgumentNullException.ThrowIfNull(block);
        PageAllocator pages = _machine.Pages;
        int nid = Math.Max(block.Node, 0);
        Zone movable = pages.GetZone(nid, pages.MovableZone);
        Zone kernel = pages.GetZone(nid, pages.MovableZone - 1);
        for (int z = 0; z < pages.MovableZone - 1; z++)
        {
            if (Intersects(pages.GetZone(nid, z), block))
            {
                kernel = pages.GetZone(nid, z);
                break;
            }
        }

        return type switch
        {
            OnlineType.OnlineKernel => kernel,
            OnlineType.OnlineMovable => movable,
            _ => Intersects(kernel, block) ^ Intersects(movable, block) && Intersects(movable, block) ? movable : kernel,
        };
    }

    /// <summary>
    /// valid_zones: an online block's zone ("none" when it spans several); for an offline one the
    /// zone onlining would pick, then the kernel zone and ZONE_MOVABLE where they differ from it.
    /// </summary>
    public string ValidZones(MemoryBlock block)
    {
        ArgumentNullException.ThrowIfNull(block);
        PageAllocator pages = _machine.Pages;
        if (block.State == MemoryBlockState.Online)
        {
            return block.Zone is { } z ? pages.GetZone(Math.Max(block.Node, 0), z).Name : "none";
        }

        Zone chosen = ZoneFor(block, OnlineType.Online);
        var names = new List<string> { chosen.Name };
        foreach (OnlineType t in new[] { OnlineType.OnlineKernel, OnlineType.OnlineMovable })
        {
            Zone other = ZoneFor(block, t);
            if (other != chosen)
            {
                names.Add(other.Name);
            }
        }

        return string.Join(' ', names);
    }

    /// <summary>Whether vmemmap frame <paramref name="frame"/> holds struct pages of its own block (PageVmemmapSelfHosted).</summary>
    public bool IsSelfHostedVmemmap(ulong frame) =>
        AnySelfHosted && BlockOf(frame) is { SelfHostedFrames: > 0 } b && frame >= b.StartPfn && frame < b.FirstUsablePfn;

    /// <summary>
    /// Some block was ever added with its own struct pages (memmap_on_memory): until then no frame
    /// is self-hosted, and the checks behind every freed vmemmap frame and every page HVO considers
    /// answer without a look-up.
    /// </summary>
    public bool AnySelfHosted => Volatile.Read(ref _selfHosting);

    /// <summary>
    /// memory_add_physaddr_to_nid (x86): the node whose memory holds the address, else the first
    /// node's (numa_meminfo's first block).
    /// </summary>
    private int PhysAddrToNid(ulong physAddr)
    {
        ulong pfn = physAddr >> TArch.PageShift;
        return pfn >= _machine.Layout.FirstPfn && pfn < _machine.Layout.EndPfn ? _machine.Layout.NodeOf(pfn) : 0;
    }

    /// <summary>
    /// __add_memory of one block: register_memory_resource (beyond MAX_PHYSMEM_BITS, or the
    /// machine's memory, -E2BIG; a range already present -EEXIST), check_hotplug_memory_range
    /// (-EINVAL unless block-aligned), then the block's struct pages (-ENOMEM, undone, if they or
    /// their page tables cannot be had), the block offline, and onlined if auto_online_blocks says so.
    /// </summary>
    private HotplugResult AddMemory(ulong physAddr, int nid, bool memmapOnMemory)
    {
        lock (_lock)
        {
            ulong maxPhys = TArch.Info.LinearMapBits is { } bits && bits < 64 ? 1UL << bits : ulong.MaxValue;
            ulong end = physAddr + BlockBytes;
            if (end < physAddr || end > maxPhys)
            {
                _machine.Log(string.Create(CultureInfo.InvariantCulture,
                    $"Hotplug memory [{Hex(physAddr)}-{Hex(end)}] exceeds maximum addressable range [{Hex(0)}-{Hex(maxPhys - 1)}]"));
                return HotplugResult.OutOfRange;
            }

            ulong start = physAddr >> TArch.PageShift;
            if (start < _machine.Layout.FirstPfn || end >> TArch.PageShift > _machine.PhysicalEndPfn)
            {
                return HotplugResult.OutOfRange; // no memory there on this machine (below its RAM, or above all of it)
            }

            for (ulong pfn = start; pfn < start + BlockFrames; pfn++)
            {
                if (_machine.Owners[pfn] != FrameOwner.Absent || (pfn < _machine.Layout.EndPfn && _machine.Layout.IsHole(pfn)))
                {
                    return HotplugResult.Exists;
                }
            }

            if (start % BlockFrames != 0)
            {
                return HotplugResult.Invalid; // check_hotplug_memory_range
            }

            ulong selfHosted = memmapOnMemory ? (BlockFrames * (ulong)TArch.StructPageBytes) >> TArch.PageShift : 0;
            if (!PopulateMemmap(start, nid, selfHosted))
            {
                return HotplugResult.NoMemory;
            }

            _machine.Owners.Transfer(start + selfHosted, BlockFrames - selfHosted, FrameOwner.Absent, FrameOwner.Offline);
            var block = new MemoryBlock(start / BlockFrames, start, BlockFrames, BlockFrames, nid, MemoryBlockState.Offline, zone: null, hotAdded: true, selfHosted);
            if (selfHosted > 0)
            {
                Volatile.Write(ref _selfHosting, true); // before the block is seen
            }

            Volatile.Write(ref _blocks[block.Id - _firstBlock], block);
            if (AutoOnline != OnlineType.Offline)
            {
                Online(block, AutoOnline); // online_memory_block: a failure is not retried
            }

            return HotplugResult.Ok;
        }
    }

    /// <summary>
    /// vmemmap_populate for a hot-added block: leaves of the spec's boot level over its struct pages,
    /// each from the block's first frames (altmap) or a block of the page allocator on the node
    /// (vmemmap_alloc_block: GFP_KERNEL, other nodes allowed), falling back to base pages
    /// (vmemmap_populate_basepages) where none can be had. A block from the page allocator is split
    /// into pages at once: split_vmemmap_huge_pmd would split it when HVO first remaps there. The
    /// frames hold the struct pages at their address until written (deferred, as boot's). On failure
    /// what was mapped is unmapped and freed, and PTE tables left empty go too.
    /// </summary>
    private bool PopulateMemmap(ulong startPfn, int nid, ulong selfHosted)
    {
        int level = _machine.Config.VmemmapBlocks ? TArch.VmemmapBootLevel : TArch.LastLevel;
        ulong leaf = TArch.LevelSize(level);
        ulong vaStart = _machine.StructPageAddress(startPfn);
        ulong vaEnd = _machine.StructPageAddress(startPfn + BlockFrames);
        long tableFramesBefore = _machine.PageTable.Counters.TableFrames;
        var mapped = new List<(ulong Va, ulong Pfn, ulong Frames)>();
        ulong altmapNext = startPfn;
        bool ok = true;
        if (selfHosted > 0)
        {
            _machine.Owners.Transfer(startPfn, selfHosted, FrameOwner.Absent, FrameOwner.RuntimeVmemmap);
        }

        for (ulong va = vaStart & ~(leaf - 1); ok && va < vaEnd; va += leaf)
        {
            WalkResult w = _machine.PageTable.Walk(va);
            if (w.IsLeaf)
            {
                continue; // vmemmap_verify: memory below filled this leaf already
            }

            // pmd_none: a leaf of the boot level, from the altmap (no fallback) or the page allocator.
            ulong frames = leaf >> TArch.PageShift;
            int order = System.Numerics.BitOperations.Log2(frames);
            if (level < TArch.LastLevel && w.Level <= level)
            {
                if (selfHosted > 0)
                {
                    ok = Map(va, altmapNext, frames, level, mapped);
                    altmapNext += frames;
                    continue;
                }

                if (order <= _machine.Pages.MaxOrder
                    && _machine.Pages.TryAllocPages(nid, order, Gfp.Kernel | Gfp.NoWarn, AllocSite.Other, FrameOwner.RuntimeVmemmap, out ulong block))
                {
                    _machine.Pages.SplitPage(block, order);
                    ok = Map(va, block, frames, level, mapped) || FreeFrames(block, frames);
                    continue;
                }
            }

            // vmemmap_populate_basepages: a page at a time, into the table that is there if one is.
            for (ulong page = va; ok && page < va + leaf; page += TArch.PageSize)
            {
                if (_machine.PageTable.Walk(page).IsLeaf)
                {
                    continue;
                }

                if (selfHosted > 0)
                {
                    ok = Map(page, altmapNext++, 1, TArch.LastLevel, mapped);
                    continue;
                }

                ok = _machine.Pages.TryAllocPages(nid, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.RuntimeVmemmap, out ulong pfn)
                    && (Map(page, pfn, 1, TArch.LastLevel, mapped) || FreeFrames(pfn, 1));
            }
        }

        Interlocked.Add(ref _tableFrames, _machine.PageTable.Counters.TableFrames - tableFramesBefore); // pages: fragments share one
        if (!ok)
        {
            Unpopulate(mapped, startPfn, selfHosted);
            return false;
        }

        Interlocked.Add(ref _vmemmapFrames, mapped.Sum(m => (long)m.Frames));
        return true;
    }

    // Map one leaf of struct pages, and say what its frames hold until written.
    private bool Map(ulong va, ulong pfn, ulong frames, int level, List<(ulong Va, ulong Pfn, ulong Frames)> mapped)
    {
        if (!_machine.PageTable.TryMap(va, pfn, frames << TArch.PageShift, level))
        {
            return false;
        }

        for (ulong f = 0; f < frames; f++)
        {
            _machine.BootVmemmap.AddDeferredCopy(pfn + f, va + (f << TArch.PageShift));
        }

        mapped.Add((va, pfn, frames));
        return true;
    }

    // Give back page-allocator frames a failed map did not use; always false (the populate failed).
    private bool FreeFrames(ulong pfn, ulong frames)
    {
        for (ulong f = 0; f < frames; f++)
        {
            _machine.Pages.FreePages(pfn + f, 0, FrameOwner.RuntimeVmemmap);
        }

        return false;
    }

    // section_deactivate after a failed populate: unmap, flush, free what was allocated.
    private void Unpopulate(List<(ulong Va, ulong Pfn, ulong Frames)> mapped, ulong startPfn, ulong selfHosted)
    {
        foreach ((ulong va, ulong pfn, ulong frames) in mapped)
        {
            var unmap = new UnmapVisitor();
            PageWalkResult r = _machine.PageTable.WalkRange(va, va + (frames << TArch.PageShift), ref unmap, PageWalkFlags.None, "vmemmap_free");
            if (!r.Done)
            {
                throw new InvalidOperationException($"vmemmap_free at 0x{va:x}: the walk ended {r.Status}");
            }

            _machine.PageTable.Ctx().FlushTlbRange(va, va + (frames << TArch.PageShift));
            for (ulong f = 0; f < frames; f++)
            {
                _machine.BootVmemmap.ForgetCopy(pfn + f);
                if (selfHosted == 0)
                {
                    _machine.Pages.FreePages(pfn + f, 0, FrameOwner.RuntimeVmemmap);
                }
            }
        }

        if (selfHosted > 0)
        {
            _machine.Owners.Transfer(startPfn, selfHosted, FrameOwner.RuntimeVmemmap, FrameOwner.Absent);
        }

        FreeEmptyPteTables(_machine.StructPageAddress(startPfn), _machine.StructPageAddress(startPfn + BlockFrames));
    }

    // remove_pagetable's free_pte_table: a table of PTEs the unmapping left empty is unhooked from
    // its PMD, flushed, and freed, so that a later populate can map a PMD leaf there again. Tables
    // above stay, as empty upper tables cost the next populate nothing.
    private void FreeEmptyPteTables(ulong vaStart, ulong vaEnd)
    {
        int pmdLevel = TArch.LastLevel - 1;
        ulong span = TArch.LevelSize(pmdLevel);
        for (ulong va = vaStart & ~(span - 1); va < vaEnd; va += span)
        {
            var count = new PteCountVisitor { PmdLevel = pmdLevel };
            _machine.PageTable.WalkRange(va, va + span, ref count);
            if (!count.SawTable || count.Ptes > 0)
            {
                continue;
            }

            var unhook = new UnhookTableVisitor { PmdLevel = pmdLevel };
            _machine.PageTable.WalkRange(va, va + span, ref unhook, PageWalkFlags.None, "free_pte_table");
            KernelPageTable<TArch>.Context ctx = _machine.PageTable.Ctx();
            ctx.FlushTlbRange(va, va + span);
            ctx.FreeTable(TArch.LastLevel, unhook.PteTable);
            Interlocked.Add(ref _tableFrames, ctx.TableFrames); // -1, or 0 for a fragment whose page holds another
        }
    }

    private ulong ProbeMemoryBlockSize(ulong bootEnd)
    {
        ulong min = 1UL << TArch.SectionShift;
        if (TArch.Info.Ptdump != PtdumpFormat.X86 || bootEnd < LargeBlockMemory)
        {
            return min;
        }

        ulong bz = MaxBlockBytes;
        while (bz > min && bootEnd % bz != 0)
        {
            bz >>= 1;
        }

        return bz;
    }

    private static bool Intersects(Zone zone, MemoryBlock block) =>
        zone.SpannedPages > 0 && block.StartPfn < zone.EndPfn && block.EndPfn > zone.StartPfn;

    // printk's %#llx: no 0x for zero.
    private static string Hex(ulong value) => value == 0 ? "0" : "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>Counts the valid PTEs under one PMD entry, and says whether it points at a table.</summary>
    private struct PteCountVisitor : IPageWalkVisitor
    {
        public int PmdLevel;
        public bool SawTable;
        public int Ptes;

        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            SawTable |= e.Level == PmdLevel;
            return WalkAction.Descend;
        }

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            Ptes += e.Level == TArch.LastLevel ? 1 : 0;
            return WalkAction.Continue;
        }

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Continue;
    }

    /// <summary>Clears the PMD entry that points at an empty table of PTEs, keeping the table's frame for the caller to free after the flush.</summary>
    private struct UnhookTableVisitor : IPageWalkVisitor
    {
        public int PmdLevel;
        public ulong PteTable;

        public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            if (e.Level != PmdLevel)
            {
                return WalkAction.Descend;
            }

            PteTable = TArch.PfnOf(e.Level, e.Entry);
            ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, ctx.EmptyEntry(e.Level), e.Addr);
            return WalkAction.Continue;
        }

        public readonly WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Continue;

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Continue;
    }

    /// <summary>Clears the leaves of a range (vmemmap_free's unmapping), leaving the tables.</summary>
    private struct UnmapVisitor : IPageWalkVisitor
    {
        public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

        public readonly WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, ctx.EmptyEntry(e.Level), e.Addr);
            return WalkAction.Continue;
        }

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Continue;
    }
}
