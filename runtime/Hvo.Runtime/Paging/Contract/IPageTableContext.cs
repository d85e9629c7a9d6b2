using System;

namespace Hvo.Paging;

/// <summary>
/// What the generated walkers need from the machine underneath: table frames as spans,
/// table allocation that may fail, and the kernel's primitives for changing a live table.
/// Implemented by small structs so that each call inlines into the specialized walker.
/// </summary>
public interface IPageTableContext
{
    /// <summary>The table frame <paramref name="pfn"/> as its entries.</summary>
    Span<ulong> Table(ulong pfn);

    /// <summary>
    /// pte_alloc_one_kernel (pmd_alloc, ...): a frame for a table of level-<paramref name="level"/> entries,
    /// every entry empty (<see cref="EmptyEntry"/>: zeroed, or pmd_init's invalid_pte_table pointers), or false (ENOMEM).
    /// </summary>
    bool TryAllocTable(int level, out ulong pfn);

    /// <summary>
    /// What an empty entry at <paramref name="level"/> holds (pmd_none): 0, or on a spec with entry.empty
    /// "invalidTable" (LoongArch) the table descriptor of the shared table of empty entries below it.
    /// </summary>
    ulong EmptyEntry(int level);

    /// <summary>pte_free_kernel: give back a table that was never published.</summary>
    void FreeTable(int level, ulong pfn);

    /// <summary>
    /// set_pte_at / pmd_populate_kernel on a live table: the only way an installed entry changes, by
    /// the machine's entry writer. True when the change still needs a TLB flush; false when the
    /// writer flushed it already (break, flush, make) or nothing could have cached the old entry.
    /// </summary>
    bool SetEntry(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va);

    /// <summary>spin_lock(&amp;init_mm.page_table_lock).</summary>
    void LockPageTable();

    /// <summary>spin_unlock(&amp;init_mm.page_table_lock).</summary>
    void UnlockPageTable();

    /// <summary>smp_wmb: a new table's entries are visible before the entry that publishes it.</summary>
    void WriteBarrier();

    /// <summary>flush_tlb_kernel_range.</summary>
    void FlushTlbRange(ulong start, ulong end);
}
