namespace Hvo.Memory;

/// <summary>
/// Which kernel path asks for memory: the page allocator itself does not care, but fault
/// injection can be narrowed to some sites (docs/ARCHITECTURE.md §7.5: fail the PTE-table allocation of a
/// split, the restore allocation, the head-page copy, or the huge page itself).
/// </summary>
public enum AllocSite
{
    /// <summary>Anything else.</summary>
    Other,

    /// <summary>pte_alloc_one_kernel when a vmemmap PMD is split.</summary>
    PteTable,

    /// <summary>The vmemmap pages allocated by hugetlb_vmemmap_restore (alloc_vmemmap_page_list).</summary>
    VmemmapRestore,

    /// <summary>The fresh copy of the head vmemmap page (v6.2+).</summary>
    HeadPageCopy,

    /// <summary>v7.1: a zone's shared page of tail struct pages for one order (vmemmap_tails[]).</summary>
    VmemmapTail,

    /// <summary>
    /// Collapse-on-free (a policy no kernel has, docs/ARCHITECTURE.md §4): the PMD-aligned block that
    /// takes the 512 vmemmap pages of a split vmemmap PMD back under one leaf.
    /// </summary>
    VmemmapCollapse,

    /// <summary>A HugeTLB page itself (alloc_buddy_hugetlb_folio, alloc_contig_pages for gigantic pages).</summary>
    HugePage,
}
