namespace Hvo.Paging;

/// <summary>Where a translation of one virtual address ended.</summary>
public readonly record struct WalkResult(int Level, ulong TablePfn, int Index, ulong Entry, bool IsLeaf)
{
    /// <summary>Translation ended at an entry the MMU would fault on.</summary>
    public bool IsFault => !IsLeaf;
}

/// <summary>Result of splitting one leaf.</summary>
public enum SplitStatus
{
    /// <summary>The leaf was replaced by a filled table.</summary>
    Split,

    /// <summary>The entry was a leaf when read, but another splitter published its table first; ours was freed.</summary>
    LostRace,

    /// <summary>The entry is a table already: nothing to do.</summary>
    NotLeaf,

    /// <summary>The table could not be allocated (-ENOMEM); nothing changed.</summary>
    NoMemory,

    /// <summary>No valid entry at that level covers the address.</summary>
    NotMapped,
}

[System.Flags]
public enum SplitFlags
{
    None = 0,

    /// <summary>VMEMMAP_SPLIT_NO_TLB_FLUSH: the caller flushes once for a whole batch.</summary>
    NoTlbFlush = 1,
}

[System.Flags]
public enum RemapWalkFlags
{
    None = 0,

    /// <summary>Do not flush after each split (v6.7 batching: one flush for the whole batch).</summary>
    NoTlbFlushOnSplit = 1,

    /// <summary>Split leaves only; visit no PTE (vmemmap_remap_split).</summary>
    SplitOnly = 2,

    /// <summary>
    /// arm64 break-before-make (vmemmap_update_pmd / vmemmap_update_pte in Nanyong Sun's 2024 series):
    /// every change of a live entry's output address, or of a block into a table, goes through an
    /// invalid entry and a TLB flush of what it maps; readers that fault meanwhile retry. The page
    /// table's context does it, so the generated walk is unchanged; a split needs no flush after.
    /// </summary>
    BreakBeforeMake = 4,
}

public enum RemapWalkStatus
{
    Ok,

    /// <summary>A table for a split could not be allocated (-ENOMEM); the walk stopped there.</summary>
    NoMemory,

    /// <summary>Part of the range is not mapped at all (-EINVAL in the kernel, which never expects it).</summary>
    NotMapped,

    /// <summary>Start and end must be page aligned with start &lt; end.</summary>
    InvalidRange,
}

/// <summary>What one range walk did.</summary>
public readonly record struct RemapWalkResult(RemapWalkStatus Status, int Splits, int RacesLost, ulong StoppedAt)
{
    public bool Ok => Status == RemapWalkStatus.Ok;
}

/// <summary>
/// The per-PTE callback of a range walk (the kernel's <c>walk-&gt;remap_pte</c>): optimize,
/// restore and rollback are visitors over the one walk. Returns the entry to install; when it
/// returns <paramref name="pte"/> unchanged nothing is written.
/// </summary>
public interface IRemapPteVisitor
{
    ulong RemapPte(ulong addr, ulong pte);
}

/// <summary>Running totals of one range walk, kept by the generated level functions.</summary>
public struct RemapWalkStats
{
    public int Splits;
    public int RacesLost;
    public ulong StoppedAt;
}
