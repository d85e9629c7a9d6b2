namespace Hvo.Memory;

/// <summary>Who a physical frame belongs to. Every frame has exactly one owner.</summary>
public enum FrameOwner : byte
{
    /// <summary>In a buddy allocator's free lists.</summary>
    Free,

    /// <summary>Reserved at boot and never handed to the page allocator (firmware, kernel image, memblock allocations).</summary>
    Reserved,

    /// <summary>Allocated from the page allocator for some other kernel use.</summary>
    Buddy,

    /// <summary>Data of a HugeTLB page.</summary>
    HugePage,

    /// <summary>Vmemmap (struct page) frames populated at boot from the boot allocator.</summary>
    BootVmemmap,

    /// <summary>Vmemmap frames allocated at run time (restore, head-page copy).</summary>
    RuntimeVmemmap,

    /// <summary>A kernel page-table frame.</summary>
    PageTable,

    /// <summary>
    /// Physical memory the kernel was not given: above <c>mem=</c> at boot, and not hot-added since
    /// (no memory section, no struct pages).
    /// </summary>
    Absent,

    /// <summary>Present memory of an offline memory block: its struct pages exist, the page allocator does not manage it.</summary>
    Offline,

    /// <summary>
    /// A block whose free free_pages_prepare refused (bad_page): the kernel keeps it off the free
    /// lists for good, so it is neither free nor anyone's (PageAllocator.BadPageLeaks).
    /// </summary>
    BadPage,

    /// <summary>A page of a tmpfs file (shmem, /dev/shm): movable, counted in Shmem.</summary>
    Shmem,
}
