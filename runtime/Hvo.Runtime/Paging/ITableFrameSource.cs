namespace Hvo.Paging;

/// <summary>
/// Where page-table frames come from: the boot allocator while the kernel maps memory at boot,
/// the page allocator (pte_alloc_one_kernel) afterwards. Allocation may fail: that is the
/// ENOMEM path of a split.
/// </summary>
public interface ITableFrameSource
{
    /// <summary>A frame for a table at <paramref name="level"/>, or false when none can be had.</summary>
    bool TryAllocate(int level, out ulong pfn);

    /// <summary>Give back a table frame that was never published.</summary>
    void Free(int level, ulong pfn);
}
