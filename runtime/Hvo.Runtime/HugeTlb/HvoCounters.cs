using System;
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
    // The counters that add up into these (a sum's hstate-and-node counters): a read adds them up,
    // so an event costs one interlocked add, not one here and one in the sum.
    private HvoCounters[] _parts = [];
    private readonly Lock _partsLock = new();

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
    public HvoCounters(HvoCounters sum)
    {
        ArgumentNullException.ThrowIfNull(sum);
        lock (sum._partsLock)
        {
            Volatile.Write(ref sum._parts, [.. sum._parts, this]);
        }
    }

    // A counter's value here plus in every part.
    private long Sum(Func<HvoCounters, long> read)
    {
        long total = read(this);
        foreach (HvoCounters part in Volatile.Read(ref _parts))
        {
            total += read(part);
        }

        return total;
    }

    /// <summary>Pages with HPageVmemmapOptimized set now.</summary>
    public long OptimizedPages => Sum(static c => Interlocked.Read(ref c._optimized));

    public long VmemmapPagesFreed => Sum(static c => Interlocked.Read(ref c._freed));

    public long VmemmapPagesRestored => Sum(static c => Interlocked.Read(ref c._restored));

    /// <summary>PTE tables installed by splits (given back only by collapse-on-free: <see cref="PmdsCollapsed"/>).</summary>
    public long PteTablesAllocated => Sum(static c => Interlocked.Read(ref c._tables));

    /// <summary>
    /// Frames the PTE tables of splits hold now: one per table, less what collapse gave back, where
    /// each table takes a page; about half as many where two are fragments of one page (s390 before v6.7).
    /// </summary>
    public long PteTableFrames => Sum(static c => Interlocked.Read(ref c._tableFrames));

    public long PmdsSplit => Sum(static c => Interlocked.Read(ref c._splits));

    public long OptimizeFailures => Sum(static c => Interlocked.Read(ref c._splitNoMemory));

    public long HeadCopyFailures => Sum(static c => Interlocked.Read(ref c._headCopyNoMemory));

    public long RestoreFailures => Sum(static c => Interlocked.Read(ref c._restoreFailures));

    /// <summary>Pages rolled back because compare-and-exchange retries ran out (arm64-bbm-af).</summary>
    public long BbmRetriesExhausted => Sum(static c => Interlocked.Read(ref c._bbmRetriesExhausted));

    /// <summary>Entries whose compare-and-exchange failed and was tried again (arm64-bbm-af).</summary>
    public long BbmRetries => Sum(static c => Interlocked.Read(ref c._bbmRetries));

    /// <summary>v7.1: shared pages of tail struct pages allocated (one per zone and order used); never freed.</summary>
    public long SharedTailPages => Sum(static c => Interlocked.Read(ref c._sharedTails));

    /// <summary>v6.10+: RCU grace periods HVO waited for (synchronize_rcu) before remapping.</summary>
    public long GracePeriods => Sum(static c => Interlocked.Read(ref c._gracePeriods));

    /// <summary>Collapse-on-free: split vmemmap PMDs made one leaf again, each giving back its PTE table.</summary>
    public long PmdsCollapsed => Sum(static c => Interlocked.Read(ref c._collapsed));

    /// <summary>Collapse-on-free: bytes of vmemmap copied into the new PMD-aligned blocks.</summary>
    public long CollapseBytesCopied => Sum(static c => Interlocked.Read(ref c._collapseBytes));

    /// <summary>Collapse-on-free: collapsible PMDs left split because no PMD-aligned block could be allocated (-ENOMEM).</summary>
    public long CollapseFailures => Sum(static c => Interlocked.Read(ref c._collapseFailures));

    /// <summary>Collapse-on-free: TLB flushes its entry changes took (also in <see cref="TlbRangeFlushes"/>).</summary>
    public long CollapseFlushes => Sum(static c => Interlocked.Read(ref c._collapseFlushes));

    public long TlbRangeFlushes => Sum(static c => Interlocked.Read(ref c._rangeFlushes));

    public long TlbFullFlushes => Sum(static c => Interlocked.Read(ref c._fullFlushes));

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
    }

    internal void Freed(long pages)
    {
        Interlocked.Add(ref _freed, pages);
    }

    internal void Restored(long pages)
    {
        Interlocked.Add(ref _restored, pages);
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
    }

    internal void Retried(long entries)
    {
        if (entries == 0)
        {
            return;
        }

        Interlocked.Add(ref _bbmRetries, entries);
    }

    internal void SharedTailAllocated()
    {
        Interlocked.Increment(ref _sharedTails);
    }

    internal void GracePeriod()
    {
        Interlocked.Increment(ref _gracePeriods);
    }

    /// <param name="tableFrames">Frames freeing the PTE table gave back: 1, or 0 where it was a fragment whose page still holds another.</param>
    internal void Collapsed(long bytesCopied, long flushes, int tableFrames)
    {
        Interlocked.Increment(ref _collapsed);
        Interlocked.Add(ref _tableFrames, -tableFrames);
        Interlocked.Add(ref _collapseBytes, bytesCopied);
        Interlocked.Add(ref _collapseFlushes, flushes);
        Interlocked.Add(ref _rangeFlushes, flushes);
    }

    internal void CollapseFailed()
    {
        Interlocked.Increment(ref _collapseFailures);
    }

    internal void RestoreFailed()
    {
        Interlocked.Increment(ref _restoreFailures);
    }

    internal void RangeFlushes(long n)
    {
        if (n == 0)
        {
            return;
        }

        Interlocked.Add(ref _rangeFlushes, n);
    }

    internal void FullFlush()
    {
        Interlocked.Increment(ref _fullFlushes);
    }
}

/// <summary>HVO's counters of every hstate (by order) on every node, and their sum. Thread-safe.</summary>
public sealed class HvoCounterTable(int nodes)
{
    // [order][node], filled on first use; reads need no lock.
    private readonly HvoCounters?[]?[] _byOrder = new HvoCounters?[64][];
    private readonly Lock _makeLock = new();

    /// <summary>Every hstate and node together.</summary>
    public HvoCounters Total { get; } = new();

    /// <summary>The counters of one hstate (by order) on one node; what they count, <see cref="Total"/> counts too.</summary>
    public HvoCounters For(int order, int node)
    {
        HvoCounters?[] byNode = Volatile.Read(ref _byOrder[order])
            ?? Interlocked.CompareExchange(ref _byOrder[order], new HvoCounters?[nodes], null)
            ?? _byOrder[order]!;
        return Volatile.Read(ref byNode[node]) ?? Make(byNode, node);
    }

    // The first use of an hstate on a node: one set of counters made and added to the sum, under a lock (a part made and dropped would count in the sum for ever).
    private HvoCounters Make(HvoCounters?[] byNode, int node)
    {
        lock (_makeLock)
        {
            if (byNode[node] is not { } made)
            {
                made = new HvoCounters(Total);
                Volatile.Write(ref byNode[node], made);
            }

            return made;
        }
    }
}
