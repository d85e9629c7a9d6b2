namespace Hvo.Paging;

/// <summary>
/// Sees every change to a live kernel page table and every TLB flush: the TLB model, the
/// break-before-make checker and the strict-mode reverse map hang off this. Only writes and
/// flushes reach it; the walkers' read path never does.
/// </summary>
public interface IPageTableObserver
{
    /// <summary>
    /// An installed entry is about to change from <paramref name="oldEntry"/> to <paramref name="newEntry"/>,
    /// as part of the kernel step <paramref name="step"/> (null when the caller named none).
    /// </summary>
    void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step);

    /// <summary>flush_tlb_kernel_range(<paramref name="start"/>, <paramref name="end"/>) ran.</summary>
    void Flushed(ulong start, ulong end);
}
