namespace Hvo;

/// <summary>What to boot: memory, NUMA nodes, CPUs, and which checkers run.</summary>
public sealed record MachineConfig
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;

    /// <summary>The memory of a machine nobody sized: a boot line without <c>mem=</c>, <c>hvo simulate</c> without <c>--memory</c>.</summary>
    public const ulong DefaultMemoryBytes = 64 * GiB;

    /// <summary>Physical memory (mem=).</summary>
    public ulong MemoryBytes { get; init; } = DefaultMemoryBytes;

    /// <summary>
    /// Physical memory above <see cref="MemoryBytes"/> that is not present at boot: what <c>mem=</c>
    /// left out of a larger machine, which memory hotplug can add, a memory block at a time
    /// (<see cref="Memory.Hotplug.MemoryHotplug{TArch}"/>). 0: none.
    /// </summary>
    public ulong HotplugBytes { get; init; }

    /// <summary>
    /// memory_hotplug.memmap_on_memory as the kernel ended up with it: a memory device's hot-added
    /// blocks keep their struct pages in their own first pages (an altmap), where the architecture
    /// and the block size allow it (mhp_supports_memmap_on_memory). Whether a kernel version honours
    /// the boot parameter next to HVO is the caller's to decide.
    /// </summary>
    public bool MemmapOnMemory { get; init; }

    /// <summary>What a hot-added memory block becomes (memhp_default_state=, /sys/devices/system/memory/auto_online_blocks): offline by default.</summary>
    public Memory.Hotplug.OnlineType AutoOnlineBlocks { get; init; } = Memory.Hotplug.OnlineType.Offline;

    /// <summary>NUMA nodes (numa=fake=N): equal contiguous ranges.</summary>
    public int Nodes { get; init; } = 1;

    /// <summary>Simulated CPUs, each with its own TLB; CPU c sits on node c % Nodes.</summary>
    public int Cpus { get; init; } = 2;

    /// <summary>
    /// Per-CPU page lists for order-0 pages (<see cref="Memory.PageAllocator.SetupPerCpuPageset"/>), as
    /// every kernel has them: on by default. Pages on them are free but not in MemFree, so MemFree
    /// plus the lists' pages is what moves by the HVO arithmetic. Off (Hvo's boot parameter
    /// <c>hvo.pcp=off</c>), order-0 pages go straight to and from the buddy lists.
    /// </summary>
    public bool PerCpuPageLists { get; init; } = true;

    /// <summary>
    /// What the kernel itself allocates from the page allocator while it boots, between mm_init and
    /// the first userspace process (slab caches, kernel stacks, vmalloc areas, per-CPU chunks), taken
    /// at boot as GFP_KERNEL order-0 pages (unmovable) on the boot CPU's node. Default
    /// <see cref="DefaultBootKernelBytes"/>; 0 boots with none (Hvo's boot parameter
    /// <c>hvo.bootmem=SIZE</c> sets it). README, "The kernel's own memory at boot".
    /// </summary>
    public ulong BootKernelBytes { get; init; } = DefaultBootKernelBytes;

    /// <summary>
    /// Measured on Debian's 6.1.192 in QEMU (x86-64, 4 GiB, 2 CPUs), /proc/meminfo and
    /// /proc/zoneinfo read by the first process: MemTotal − MemFree = 41,100 kB, of which the pages
    /// waiting on the per-CPU lists (3,045 pages: 12,180 kB, which Hvo's own lists account for) and
    /// the unpacked initramfs (Shmem: 1,940 kB) are not the kernel's own: 26,980 kB (Slab 15,648,
    /// VmallocUsed 5,628, KernelStack 880, Percpu 520 and the rest).
    /// </summary>
    public const ulong DefaultBootKernelBytes = 26_980UL * 1024;

    /// <summary>
    /// Host threads for work the kernel spreads over CPUs at boot (hugetlb_pages_alloc_boot's padata
    /// job); 0: one per host processor (<see cref="System.Environment.ProcessorCount"/>). The results
    /// do not depend on it (docs/ARCHITECTURE.md, boot-time huge pages). Default 1: on the 2-core
    /// machine a second thread did not pay (README, Bench).
    /// </summary>
    public int HostThreads { get; init; } = 1;

    /// <summary>
    /// Where RAM starts (the physical address of its first byte; a machine's firmware says, as a
    /// device tree's memory node does); null: where the spec says it usually starts (ramBase:
    /// 0x80000000 on RISC-V, 0 elsewhere). A multiple of the memory section (SECTION_SIZE_BITS).
    /// </summary>
    public ulong? RamBase { get; init; }

    /// <summary>Firmware-reserved memory at the start of RAM (the BIOS area below 1 MiB on x86, OpenSBI on RISC-V).</summary>
    public ulong FirmwareReservedBytes { get; init; } = 1 * MiB;

    /// <summary>The kernel image, reserved by memblock at <see cref="KernelImageStart"/>.</summary>
    public ulong KernelImageBytes { get; init; } = 32 * MiB;

    /// <summary>Where the kernel image lies, counted from the start of RAM.</summary>
    public ulong KernelImageStart { get; init; } = 16 * MiB;

    /// <summary>Where RAM starts on <paramref name="arch"/>: <see cref="RamBase"/>, or the spec's ramBase.</summary>
    public ulong RamBaseFor(Paging.ArchInfo arch)
    {
        System.ArgumentNullException.ThrowIfNull(arch);
        return RamBase ?? arch.RamBase;
    }

    /// <summary>Why RAM cannot start where this machine says on <paramref name="arch"/>, or null.</summary>
    public string? RamBaseProblem(Paging.ArchInfo arch)
    {
        ulong ramBase = RamBaseFor(arch);
        ulong section = 1UL << arch.SectionShift;
        if ((ramBase & (section - 1)) != 0)
        {
            return $"RAM at 0x{ramBase:x} does not start on a {section >> 20} MiB memory section of {arch.Name} (SECTION_SIZE_BITS {arch.SectionShift})";
        }

        return arch.DescribableBytes(ramBase) == 0
            ? $"RAM at 0x{ramBase:x} lies outside what {arch.Name}'s vmemmap describes"
            : null;
    }

    /// <summary>
    /// swiotlb's bounce buffer (swiotlb=N, N slots of 2 KiB): null for IO_TLB_DEFAULT_SIZE (64 MiB).
    /// Allocated only when RAM reaches above 4 GiB (x86's pci_swiotlb_detect: max_possible_pfn above
    /// MAX_DMA32_PFN; arm64 and RISC-V likewise only for RAM their DMA zone cannot reach) unless
    /// <see cref="SwiotlbForce"/> says otherwise; by memblock below 4 GiB, top down (memblock_alloc_low).
    /// </summary>
    public ulong? SwiotlbBytes { get; init; }

    /// <summary>swiotlb=,force (true: the buffer even where RAM stays below 4 GiB) or swiotlb=noforce (false: none); null: the kernel's choice.</summary>
    public bool? SwiotlbForce { get; init; }

    /// <summary>transparent_hugepage=: THP's mode at boot (the Kconfig default: always); while enabled khugepaged raises min_free_kbytes (set_recommended_min_free_kbytes).</summary>
    public Memory.ThpMode TransparentHugepages { get; init; } = Memory.ThpMode.Always;

    /// <summary>crashkernel=: memory kept for a kdump kernel; 0 for none.</summary>
    public ulong CrashKernelBytes { get; init; }

    /// <summary>crashkernel=SIZE@OFFSET: where it lies; null: memblock finds it below 4 GiB, top down (reserve_crashkernel).</summary>
    public ulong? CrashKernelBase { get; init; }

    /// <summary>More memblock reservations (memmap=nn$ss): (physical start, bytes).</summary>
    public System.Collections.Generic.IReadOnlyList<(ulong Start, ulong Bytes)> Reserved { get; init; } = [];

    /// <summary>
    /// Strict mode: every TLB hit is checked against the page table, and every frame freed is
    /// checked against the TLBs and against a reverse map of the page table. For tests.
    /// </summary>
    public bool Strict { get; init; }

    /// <summary>
    /// page_poison: a vmemmap frame HVO frees is filled with <see cref="Machine{TArch}.PagePoison"/>
    /// (0xaa, the kernel's PAGE_POISON) instead of being discarded, so a CPU that still reads it
    /// through a stale translation sees wrong bytes. Null: in strict mode.
    /// </summary>
    public bool? PagePoisoning { get; init; }

    /// <summary>Run the break-before-make checker; null: when the architecture requires it.</summary>
    public bool? CheckBreakBeforeMake { get; init; }

    /// <summary>
    /// The CPUs' FEAT_BBM level (ID_AA64MMFR2_EL1.BBM): 0 or 1 keeps the full break-before-make rule;
    /// 2 lets the checker accept a direct change between equivalent mappings (same bytes at the old and
    /// new output address, same attributes but read-only; a block to a table mapping exactly what it
    /// did). A CPU feature, not part of the architecture spec.
    /// </summary>
    public int BreakBeforeMakeLevel { get; init; }

    /// <summary>
    /// How the kernel changes a live page-table entry on this machine (the arch code around set_pte_at
    /// and pmd_populate_kernel); null for the machine's own choice, <see cref="DefaultEntryWriter"/>.
    /// <see cref="EntryWriterKind.Bbml2"/> needs <see cref="BreakBeforeMakeLevel"/> 2;
    /// <see cref="EntryWriterKind.ClearAccessFlag"/> needs a spec with <c>entry.accessFlag</c>.
    /// </summary>
    public Paging.EntryWriterKind? EntryWriter { get; init; }

    /// <summary>Rounds of flush and compare-and-exchange after the first before the clear-access-flag writer gives up.</summary>
    public int AccessFlagRetries { get; init; } = 3;

    /// <summary>
    /// FEAT_HAFDBS: the CPUs set a leaf's access flag in hardware on a translation instead of taking an
    /// Access flag fault. Only matters for specs with <c>entry.accessFlag</c>.
    /// </summary>
    public bool HardwareAccessFlag { get; init; }

    /// <summary>
    /// The entry writer this machine uses on <paramref name="arch"/>: <see cref="EntryWriter"/> if set;
    /// else, where the architecture requires break-before-make and the CPUs have FEAT_BBM level 2,
    /// <see cref="Paging.EntryWriterKind.Bbml2"/>; else <see cref="Paging.EntryWriterKind.Direct"/>, which
    /// is what mainline does on every architecture (and what arm64's rule forbids).
    /// </summary>
    public Paging.EntryWriterKind DefaultEntryWriter(Paging.ArchInfo arch)
    {
        System.ArgumentNullException.ThrowIfNull(arch);
        return EntryWriter ?? (arch.BreakBeforeMake && BreakBeforeMakeLevel >= 2 ? Paging.EntryWriterKind.Bbml2 : Paging.EntryWriterKind.Direct);
    }

    /// <summary>Why this machine cannot boot with its entry writer on <paramref name="arch"/>, or null.</summary>
    public string? EntryWriterProblem(Paging.ArchInfo arch) => DefaultEntryWriter(arch) switch
    {
        Paging.EntryWriterKind.Bbml2 when BreakBeforeMakeLevel < 2 =>
            $"the FEAT_BBM level 2 entry writer needs CPUs with FEAT_BBM level 2; these have level {BreakBeforeMakeLevel}",
        Paging.EntryWriterKind.ClearAccessFlag when arch.AccessFlag == 0 =>
            $"the clear-access-flag entry writer needs an access flag in {arch.Name}'s entries (spec key entry.accessFlag)",
        _ => null,
    };

    /// <summary>
    /// page_table_alloc hands out the tables of a level with levels[].fragmentsUntil as fragments of a
    /// page (s390 before v6.7: two 2 KiB page tables per 4 KiB page, the second half listed until
    /// asked for, the page freed when both halves are). Whether the kernel version simulated is older
    /// than the spec's release is the caller's to decide. Default false: each table takes pages of its own.
    /// </summary>
    public bool PageTableFragments { get; init; }

    /// <summary>Map the boot vmemmap with blocks where the spec says so; false forces base pages.</summary>
    public bool VmemmapBlocks { get; init; } = true;
}
