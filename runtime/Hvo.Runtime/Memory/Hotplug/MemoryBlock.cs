namespace Hvo.Memory.Hotplug;

/// <summary>What a write to a memory block's <c>state</c> asks for (enum mmop, online_type_to_str).</summary>
public enum OnlineType
{
    /// <summary>"offline" (MMOP_OFFLINE).</summary>
    Offline,

    /// <summary>"online" (MMOP_ONLINE): the kernel picks the zone (zone_for_pfn_range's contig-zones policy).</summary>
    Online,

    /// <summary>"online_kernel" (MMOP_ONLINE_KERNEL): the block's kernel zone, usually ZONE_NORMAL.</summary>
    OnlineKernel,

    /// <summary>"online_movable" (MMOP_ONLINE_MOVABLE): ZONE_MOVABLE.</summary>
    OnlineMovable,
}

/// <summary>A memory block's state (enum memory_block_state; "going-offline" only exists while an offline runs).</summary>
public enum MemoryBlockState
{
    Online,
    Offline,
}

/// <summary>
/// What memory hotplug gives back (the kernel's return values, as the caller's errno): a write of
/// <c>state</c>, <c>online</c> or <c>probe</c> fails with it.
/// </summary>
public enum HotplugResult
{
    Ok,

    /// <summary>The block is in that state already: device_online and device_offline return 1 (a <c>state</c> write turns it into -EINVAL, an <c>online</c> write into success).</summary>
    Unchanged,

    /// <summary>-EINVAL: a misaligned address, a block already in the state asked for, one that spans zones, nodes or holes.</summary>
    Invalid,

    /// <summary>-EBUSY: a page that can be neither migrated nor freed (has_unmovable_pages), or a huge page still in use.</summary>
    Busy,

    /// <summary>-ENOMEM: no memory for the block's struct pages, or for a huge page's vmemmap when it is dissolved.</summary>
    NoMemory,

    /// <summary>-EEXIST: the range is present already (register_memory_resource).</summary>
    Exists,

    /// <summary>-E2BIG: the range is beyond the addressable physical memory (mhp_range_allowed) or, here, beyond the machine's.</summary>
    OutOfRange,

    /// <summary>
    /// -EINTR: offline_pages' migration loop ended by a fatal signal ("signal backoff"). The kernel
    /// retries a page that cannot move until then; nothing here frees memory meanwhile, so a pass
    /// that leaves a page unmoved ends the write as the user's Ctrl-C or timeout(1) would.
    /// </summary>
    Interrupted,
}

/// <summary>
/// One memory block (struct memory_block, /sys/devices/system/memory/memoryN): a
/// memory_block_size_bytes range of physical memory, onlined and offlined as a whole.
/// </summary>
public sealed class MemoryBlock
{
    internal MemoryBlock(ulong id, ulong startPfn, ulong frames, ulong presentFrames, int node, MemoryBlockState state, int? zone, bool hotAdded, ulong selfHostedFrames)
    {
        Id = id;
        StartPfn = startPfn;
        Frames = frames;
        PresentFrames = presentFrames;
        Node = node;
        State = state;
        Zone = zone;
        HotAdded = hotAdded;
        SelfHostedFrames = selfHostedFrames;
    }

    /// <summary>The block id: the start address over the block size (memoryN, phys_index).</summary>
    public ulong Id { get; }

    public ulong StartPfn { get; }

    /// <summary>Frames in a block (memory_block_size_bytes / PAGE_SIZE).</summary>
    public ulong Frames { get; }

    public ulong EndPfn => StartPfn + Frames;

    /// <summary>Frames of the block that exist: fewer than <see cref="Frames"/> for boot memory that starts or ends inside it (a hole: it cannot be offlined).</summary>
    public ulong PresentFrames { get; }

    /// <summary>The block's node (memory_add_physaddr_to_nid for a probed block); -1 when boot memory of several nodes shares it.</summary>
    public int Node { get; }

    public MemoryBlockState State { get; internal set; }

    /// <summary>The zone index it is online in (mem->zone); null when offline, or boot memory that spans zones or nodes ("none").</summary>
    public int? Zone { get; internal set; }

    /// <summary>Added after boot (probe, or a memory device).</summary>
    public bool HotAdded { get; }

    /// <summary>memmap_on_memory: the block's first frames hold its own struct pages (mem->altmap->free); 0 otherwise.</summary>
    public ulong SelfHostedFrames { get; }

    /// <summary>The frames its online range starts at: past its own struct pages.</summary>
    public ulong FirstUsablePfn => StartPfn + SelfHostedFrames;
}
