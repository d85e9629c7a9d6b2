using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>How many vmemmap pages HVO keeps per huge page: HUGETLB_VMEMMAP_RESERVE_PAGES.</summary>
public static class VmemmapReserve
{
    /// <summary>v5.14: the head vmemmap page and the first tail page are kept.</summary>
    public const int V5_14 = 2;

    /// <summary>v5.18 onward: only the head vmemmap page is kept; later tails map it ("fake heads").</summary>
    public const int V5_18 = 1;
}

/// <summary>
/// The struct pages behind one huge page size, from the spec's arithmetic: a huge page of size S
/// has S / PAGE_SIZE struct pages, which fill S / PAGE_SIZE * sizeof(struct page) / PAGE_SIZE
/// vmemmap pages.
/// </summary>
public readonly record struct HugePageVmemmap(ulong HugePageSize, ulong PageSize, ulong StructPageBytes)
{
    public ulong StructPages => HugePageSize / PageSize;

    public ulong VmemmapBytes => StructPages * StructPageBytes;

    /// <summary>Whole vmemmap pages (rounded down, as the kernel's shift does).</summary>
    public ulong VmemmapPages => VmemmapBytes / PageSize;

    /// <summary>hugetlb_vmemmap_optimizable: more vmemmap pages than the reserve.</summary>
    public bool IsOptimizable(int reserve) => VmemmapPages > (ulong)reserve;

    /// <summary>Vmemmap pages HVO gives back per huge page with <paramref name="reserve"/> kept.</summary>
    public ulong FreedPages(int reserve) => IsOptimizable(reserve) ? VmemmapPages - (ulong)reserve : 0;

    public static HugePageVmemmap For(ArchInfo arch, ulong hugePageSize) =>
        new(hugePageSize, arch.PageSize, (ulong)arch.StructPageBytes);

    public static HugePageVmemmap For<TArch>(ulong hugePageSize) where TArch : struct, IPagingArch =>
        new(hugePageSize, TArch.PageSize, (ulong)TArch.StructPageBytes);
}
