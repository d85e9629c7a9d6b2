using System;
using System.Diagnostics.CodeAnalysis;

namespace Hvo.Paging;

/// <summary>What a visitor tells the walk to do next (the kernel's <c>walk-&gt;action</c>).</summary>
public enum WalkAction : byte
{
    /// <summary>Go on with the next entry; for a table entry, without walking its table (ACTION_CONTINUE).</summary>
    Continue,

    /// <summary>A table entry: walk the entries of its table (ACTION_SUBTREE).</summary>
    Descend,

    /// <summary>
    /// A block above the last level: replace it by a table mapping the same frames
    /// (split_vmemmap_huge_pmd), then visit the entry again, now a table.
    /// </summary>
    Split,

    /// <summary>Read the entry again and visit it again: the visitor changed it (ACTION_AGAIN).</summary>
    Again,

    /// <summary>End the walk here.</summary>
    Stop,
}

/// <summary>One entry a walk meets: where it is and the part of the range it covers.</summary>
/// <param name="Level">The table's level, 0 for the root.</param>
/// <param name="TablePfn">The frame of the table holding the entry.</param>
/// <param name="Index">The entry's index in that table.</param>
/// <param name="Entry">The entry as read (READ_ONCE).</param>
/// <param name="Addr">The first address of the range the entry covers.</param>
/// <param name="Next">The address after that part: the entry's end or the walk's, whichever comes first (0: the top of the address space).</param>
public readonly record struct PageWalkEntry(int Level, ulong TablePfn, int Index, ulong Entry, ulong Addr, ulong Next);

/// <summary>
/// The callbacks of a page-table walk, in the shape of the kernel's <c>struct mm_walk_ops</c>:
/// every entry of the range goes to exactly one of them, in address order. A visitor is a struct,
/// so the generated walk is specialized for it and each call inlines. It may change the page table
/// through <paramref name="ctx"/> (the entry writer decides how a live entry changes).
/// </summary>
public interface IPageWalkVisitor
{
    /// <summary>A valid entry pointing at a next-level table (pgd_entry ... pmd_entry): <see cref="WalkAction.Descend"/> to walk it.</summary>
    WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext;

    /// <summary>A block above the last level, or a page at the last (pte_entry): <see cref="WalkAction.Split"/> splits a block.</summary>
    WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext;

    /// <summary>An entry the MMU would fault on (pte_hole, and an empty upper-level entry).</summary>
    WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext;

    /// <summary>
    /// The visitor walks one address at a time (a look-up: the range is [va, va + 1)): each level then
    /// has one entry to visit, and the specialized walk leaves out the range arithmetic. A wider
    /// range is refused (<see cref="PageWalkStatus.InvalidRange"/>).
    /// </summary>
    static virtual bool OneAddress => false;
}

[Flags]
public enum PageWalkFlags
{
    None = 0,

    /// <summary>VMEMMAP_SPLIT_NO_TLB_FLUSH: a split does not flush; the caller flushes once for a whole batch.</summary>
    NoTlbFlushOnSplit = 1,

    /// <summary>
    /// The caller can leave the range as it was if the entry writer cannot finish its changes
    /// (an optimization may fail; a restore may not): a writer may then defer and retry them,
    /// and give up (<see cref="PageWalkStatus.WriterGaveUp"/>).
    /// </summary>
    MayGiveUp = 2,
}

public enum PageWalkStatus
{
    /// <summary>Every entry of the range was visited.</summary>
    Done,

    /// <summary>A visitor said <see cref="WalkAction.Stop"/>.</summary>
    Stopped,

    /// <summary>A table for a split could not be allocated (-ENOMEM); the walk stopped there.</summary>
    NoMemory,

    /// <summary>The range is empty or backwards.</summary>
    InvalidRange,

    /// <summary>
    /// The entry writer could not make its deferred changes (another CPU kept using the old
    /// entries) and put the range back as it was: nothing the visitor asked for stays.
    /// </summary>
    WriterGaveUp,
}

/// <summary>
/// What a walk did: how it ended, from the walk itself, and what it changed, from the page table's
/// context (the init properties), counted for this walk alone however many CPUs walk at once.
/// </summary>
/// <param name="Status">How it ended.</param>
/// <param name="StoppedAt">Where it ended: the address of the entry it stopped at, or the end of the range.</param>
/// <param name="Splits">Blocks replaced by tables.</param>
/// <param name="RacesLost">Splits another CPU published first (our table was freed).</param>
public readonly record struct PageWalkResult(PageWalkStatus Status, ulong StoppedAt, int Splits, int RacesLost)
{
    public bool Done => Status == PageWalkStatus.Done;

    /// <summary>Stores into live tables.</summary>
    public int EntriesWritten { get; init; }

    /// <summary>Tables allocated (splits, population), including ones a lost race gave back.</summary>
    public int TablesAllocated { get; init; }

    /// <summary>Frames those tables took, less frames given back (s390's fragments: two page tables per frame).</summary>
    public int TableFrames { get; init; }

    /// <summary>flush_tlb_kernel_range calls the walk made (after splits, inside the entry writer).</summary>
    public int RangeFlushes { get; init; }

    /// <summary>Changes the entry writer had to make again because a CPU used the old entry meanwhile.</summary>
    public int Retries { get; init; }

    /// <summary>Some change the walk made is not flushed yet: the caller's flush is due.</summary>
    public bool NeedsFlush { get; init; }
}

/// <summary>Where and why a walk stopped; <c>default</c> (<see cref="PageWalkStatus.Done"/>) while it goes on. Small enough to come back in registers.</summary>
public readonly record struct PageWalkStop(PageWalkStatus Status, ulong At)
{
    public bool Stopped => Status != PageWalkStatus.Done;
}

/// <summary>
/// What a walk counts on its way: the splits it made and lost. One per walk, on its stack, touched
/// only where a block is split. Not for visitors; public only because the walk is generated into
/// each architecture's type.
/// </summary>
public struct PageWalkState
{
    public int Splits;
    public int RacesLost;

    /// <summary>A split's outcome, counted; false when it failed (-ENOMEM) and the walk must stop.</summary>
    public bool Count(SplitStatus split)
    {
        switch (split)
        {
            case SplitStatus.Split:
                Splits++;
                return true;
            case SplitStatus.LostRace:
                RacesLost++;
                return true;
            default:
                return false;
        }
    }

    /// <summary>The walk's result from where it stopped (<paramref name="stop"/>) and what it counted.</summary>
    public readonly PageWalkResult Result(PageWalkStop stop, ulong end) =>
        new(stop.Status, stop.Stopped ? stop.At : end, Splits, RacesLost);

    /// <summary>A visitor answered an entry with an action that does not apply to it.</summary>
    [DoesNotReturn]
    public static void BadAction(int level, string kind, WalkAction action) =>
        throw new InvalidOperationException($"a page walk visitor answered a level-{level} {kind} with {action}");

    /// <summary>Is [<paramref name="start"/>, <paramref name="end"/>) a range a walk can take (end 0: to the top of the address space)?</summary>
    public static bool IsRange(ulong start, ulong end) => end == 0 || start < end;

    /// <summary>Is the range the one address <paramref name="start"/> (<see cref="IPageWalkVisitor.OneAddress"/>)?</summary>
    public static bool IsOneAddress(ulong start, ulong end) => end == start + 1;
}

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
