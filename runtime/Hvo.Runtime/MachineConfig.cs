namespace Hvo;

/// <summary>What to boot: memory, NUMA nodes, CPUs, and which checkers run.</summary>
public sealed record MachineConfig
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;

    /// <summary>Physical memory (mem=).</summary>
    public ulong MemoryBytes { get; init; } = 64 * GiB;

    /// <summary>NUMA nodes (numa=fake=N): equal contiguous ranges.</summary>
    public int Nodes { get; init; } = 1;

    /// <summary>Simulated CPUs, each with its own TLB; CPU c sits on node c % Nodes.</summary>
    public int Cpus { get; init; } = 2;

    /// <summary>Firmware-reserved memory at physical address 0 (the BIOS area below 1 MiB on x86).</summary>
    public ulong FirmwareReservedBytes { get; init; } = 1 * MiB;

    /// <summary>The kernel image, reserved by memblock at <see cref="KernelImageStart"/>.</summary>
    public ulong KernelImageBytes { get; init; } = 32 * MiB;

    public ulong KernelImageStart { get; init; } = 16 * MiB;

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
    /// FEAT_HAFDBS: the CPUs set a leaf's access flag in hardware on a translation instead of taking an
    /// Access flag fault. Only matters for specs with <c>entry.accessFlag</c>.
    /// </summary>
    public bool HardwareAccessFlag { get; init; }

    /// <summary>Map the boot vmemmap with blocks where the spec says so; false forces base pages.</summary>
    public bool VmemmapBlocks { get; init; } = true;
}
