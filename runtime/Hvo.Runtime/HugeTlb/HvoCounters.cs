using System.Threading;

namespace Hvo.HugeTlb;

/// <summary>Why an optimization did not happen or did not finish.</summary>
public enum OptimizeFailure
{
    /// <summary>A PTE table for a split could not be allocated (-ENOMEM): rolled back, page unoptimized.</summary>
    SplitNoMemory,

    /// <summary>The new head vmemmap page could not be allocated (v6.2+): the old head was kept; the optimization went on.</summary>
    HeadCopyNoMemory,

    /// <summary>
    /// arm64-bbm-af: readers kept setting the access flag, so a tail entry's compare-and-exchange failed
    /// past the retry bound; the page was rolled back to its own frames, unoptimized.
    /// </summary>
    BbmRetriesExhausted,
}

/// <summary>
/// What HVO did, for one node of one hstate or summed: the counters behind the report
/// (docs/ARCHITECTURE.md §6). Thread-safe. An event counted in one hstate's node counters also counts
/// in the sum they belong to (<see cref="HvoCounters(HvoCounters)"/>).
/// </summary>
public sealed class HvoCounters
{
    private readonly HvoCounters? _sum;

    private long _optimized;
    private long _freed;
    private long _restored;
    private long _tables;
    private long _tableFrames;
    private long _splits;
    private long _splitNoMemory;
    private long _headCopyNoMemory;
    private long _restoreFailures;
    private long _rangeFlushes;
    private long _fullFlushes;
    private long _bbmRetriesExhausted;
    private long _bbmRetries;
    private long _sharedTails;
    private long _gracePeriods;
    private long _collapsed;
    private long _collapseBytes;
    private long _collapseFailures;
    private long _collapseFlushes;

    public HvoCounters()
    {
    }

    /// <param name="sum">The counters that add up these and their siblings: every event here counts there too.</param>
    public HvoCounters(HvoCounters sum) => _sum = sum;

    /// <summary>Pages with HPageVmemmapOptimized set now.</summary>
    public long OptimizedPages => Interlocked.Read(ref _optimized);

    public long VmemmapPagesFreed => Interlocked.Read(ref _freed);

    public long VmemmapPagesRestored => Interlocked.Read(ref _restored);

    /// <summary>PTE tables installed by splits (given back only by collapse-on-free: <see cref="PmdsCollapsed"/>).</summary>
    public long PteTablesAllocated => Interlocked.Read(ref _tables);

    /// <summary>
    /// Frames the PTE tables of splits hold now: one per table, less what collapse gave back, where
    /// each table takes a page; about half as many where two are fragments of one page (s390 before v6.7).
    /// </summary>
    public long PteTableFrames => Interlocked.Read(ref _tableFrames);

    public long PmdsSplit => Interlocked.Read(ref _splits);

    public long OptimizeFailures => Interlocked.Read(ref _splitNoMemory);

    public long HeadCopyFailures => Interlocked.Read(ref _headCopyNoMemory);

    public long RestoreFailures => Interlocked.Read(ref _restoreFailures);

    /// <summary>Pages rolled back because compare-and-exchange retries ran out (arm64-bbm-af).</summary>
    public long BbmRetriesExhausted => Interlocked.Read(ref _bbmRetriesExhausted);

    /// <summary>Entries whose compare-and-exchange failed and was tried again (arm64-bbm-af).</summary>
    public long BbmRetries => Interlocked.Read(ref _bbmRetries);

    /// <summary>v7.1: shared pages of tail struct pages allocated (one per zone and order used); never freed.</summary>
    public long SharedTailPages => Interlocked.Read(ref _sharedTails);

    /// <summary>v6.10+: RCU grace periods HVO waited for (synchronize_rcu) before remapping.</summary>
    public long GracePeriods => Interlocked.Read(ref _gracePeriods);

    /// <summary>Collapse-on-free: split vmemmap PMDs made one leaf again, each giving back its PTE table.</summary>
    public long PmdsCollapsed => Interlocked.Read(ref _collapsed);

    /// <summary>Collapse-on-free: bytes of vmemmap copied into the new PMD-aligned blocks.</summary>
    public long CollapseBytesCopied => Interlocked.Read(ref _collapseBytes);

    /// <summary>Collapse-on-free: collapsible PMDs left split because no PMD-aligned block could be allocated (-ENOMEM).</summary>
    public long CollapseFailures => Interlocked.Read(ref _collapseFailures);

    /// <summary>Collapse-on-free: TLB flushes its entry changes took (also in <see cref="TlbRangeFlushes"/>).</summary>
    public long CollapseFlushes => Interlocked.Read(ref _collapseFlushes);

    public long TlbRangeFlushes => Interlocked.Read(ref _rangeFlushes);

    public long TlbFullFlushes => Interlocked.Read(ref _fullFlushes);

    public long TlbFlushes => TlbRangeFlushes + TlbFullFlushes;

    /// <summary>Bytes given back less what the split tables cost.</summary>
    public long NetBytesSaved(ulong pageSize) => (VmemmapPagesFreed - VmemmapPagesRestored - PteTableFrames - SharedTailPages) * (long)pageSize;

    public long Failures(OptimizeFailure cause) => cause switch
    {
        OptimizeFailure.SplitNoMemory => OptimizeFailures,
        OptimizeFailure.HeadCopyNoMemory => HeadCopyFailures,
        _ => BbmRetriesExhausted,
    };

    internal void Optimized(int delta)
    {
        Interlocked.Add(ref _optimized, delta);
        _sum?.Optimized(delta);
    }

    internal void Freed(long pages)
    {
        Interlocked.Add(ref _freed, pages);
        _sum?.Freed(pages);
    }

    internal void Restored(long pages)
    {
        Interlocked.Add(ref _restored, pages);
        _sum?.Restored(pages);
    }

    /// <param name="splits">PMDs split, a PTE table each.</param>
    /// <param name="tableFrames">Frames those tables took (<see cref="PageWalkResult.TableFrames"/>).</param>
    internal void Split(int splits, int tableFrames)
    {
        if ((splits | tableFrames) == 0)
        {
            return; // most walks split nothing: no interlocked add of zero on every walk
        }

        Interlocked.Add(ref _splits, splits);
        Interlocked.Add(ref _tables, splits);
        Interlocked.Add(ref _tableFrames, tableFrames);
        _sum?.Split(splits, tableFrames);
    }

    internal void Failed(OptimizeFailure cause)
    {
        switch (cause)
        {
            case OptimizeFailure.SplitNoMemory:
                Interlocked.Increment(ref _splitNoMemory);
                break;
            case OptimizeFailure.HeadCopyNoMemory:
                Interlocked.Increment(ref _headCopyNoMemory);
                break;
            default:
                Interlocked.Increment(ref _bbmRetriesExhausted);
                break;
        }

        _sum?.Failed(cause);
    }

    internal void Retried(long entries)
    {
        if (entries == 0)
        {
            return;
        }

        Interlocked.Add(ref _bbmRetries, entries);
        _sum?.Retried(entries);
    }

    internal void SharedTailAllocated()
    {
        Interlocked.Increment(ref _sharedTails);
        _sum?.SharedTailAllocated();
    }

    internal void GracePeriod()
    {
        Interlocked.Increment(ref _gracePeriods);
        _sum?.GracePeriod();
    }

    /// <param name="tableFrames">Frames freeing the PTE table gave back: 1, or 0 where it was a fragment whose page still holds another.</param>
    internal void Collapsed(long bytesCopied, long flushes, int tableFrames)
    {
        Interlocked.Increment(ref _collapsed);
        Interlocked.Add(ref _tableFrames, -tableFrames);
        Interlocked.Add(ref _collapseBytes, bytesCopied);
        Interlocked.Add(ref _collapseFlushes, flushes);
        Interlocked.Add(ref _rangeFlushes, flushes);
        _sum?.Collapsed(bytesCopied, flushes, tableFrames);
    }

    internal void CollapseFailed()
    {
        Interlocked.Increment(ref _collapseFailures);
        _sum?.CollapseFailed();
    }

    internal void RestoreFailed()
    {
        Interlocked.Increment(ref _restoreFailures);
        _sum?.RestoreFailed();
    }

    internal void RangeFlushes(long n)
    {
        if (n == 0)
        {
            return;
        }

        Interlocked.Add(ref _rangeFlushes, n);
        _sum?.RangeFlushes(n);
    }

    internal void FullFlush()
    {
        Interlocked.Increment(ref _fullFlushes);
        _sum?.FullFlush();
    }
}

/// <summary>HVO's counters of every hstate (by order) on every node, and their sum. Thread-safe.</summary>
public sealed class HvoCounterTable(int nodes)
{
    // [order][node], filled on first use; reads need no lock.
    private readonly HvoCounters?[]?[] _byOrder = new HvoCounters?[64][];

    /// <summary>Every hstate and node together.</summary>
    public HvoCounters Total { get; } = new();

    /// <summary>The counters of one hstate (by order) on one node; what they count, <see cref="Total"/> counts too.</summary>
    public HvoCounters For(int order, int node)
    {
        HvoCounters?[] byNode = Volatile.Read(ref _byOrder[order])
            ?? Interlocked.CompareExchange(ref _byOrder[order], new HvoCounters?[nodes], null)
            ?? _byOrder[order]!;
        return Volatile.Read(ref byNode[node])
            ?? Interlocked.CompareExchange(ref byNode[node], new HvoCounters(Total), null)
            ?? byNode[node]!;
    }
}
