using System.Collections.Generic;
using System.Runtime.InteropServices;

namespace Hvo.Memory;

/// <summary>
/// One zone's free blocks of one order (struct free_area): which blocks are free, how many
/// (nr_free), and the order to hand them out in.
/// </summary>
/// <remarks>
/// The kernel links free blocks through their struct pages, which costs nothing extra. Here the
/// truth is a sparse bitmap with a bit per block of this order, and the list is a queue of
/// candidates with lazy deletion: a block taken off the list by a merge or a contiguous
/// allocation (list_del) only loses its bit, and its queue entry is dropped when it comes to the
/// front. A second bitmap says which blocks have an entry queued. A block freed again before its
/// stale entry was dropped goes where list_add (or the tail) puts it, as any other: a fresh entry
/// is queued, and the block's older ones, kept count of on the side, are skipped when they come to
/// the front. So a block's place on the list never depends on when stale entries were dropped, nor
/// on which blocks passed through the list on the way to a merge (what the per-CPU lists' runs
/// skip, <see cref="PageAllocator"/>'s free_pcppages_bulk). The queue is compacted once it holds
/// more than twice the free blocks: every operation stays O(1) amortized and the queue's size
/// follows the number of free blocks. The blocks memblock_free_all puts on the tail of the
/// max-order list are not queued one by one but kept as runs of consecutive blocks, taken from
/// the lowest up once the queue is empty (skipping blocks that left the list or were queued
/// since), so a machine fresh from boot costs a few bits per max-order block, whatever its size.
/// </remarks>
internal sealed class FreeArea
{
    private readonly SparseBitmap _free;
    private readonly SparseBitmap _queued;
    private readonly BlockQueue _list;
    private readonly List<(ulong Next, ulong End)> _runs = [];
    private readonly ulong _start;
    private readonly ulong _end;
    private readonly ulong _firstIndex;
    private Dictionary<ulong, Queued>? _requeued; // blocks with more than one entry queued, by bit index
    private int _run;

    public FreeArea(ulong start, ulong end, int order)
    {
        Order = order;
        _start = start;
        _end = end;
        _firstIndex = start >> order;
        ulong bits = end > start ? ((end - 1) >> order) - _firstIndex + 1 : 0;
        _free = new SparseBitmap(bits);
        _queued = new SparseBitmap(bits);
        _list = new BlockQueue();
    }

    public int Order { get; }

    /// <summary>Free blocks of this order (nr_free).</summary>
    public long Count { get; private set; }

    /// <summary>Whether the naturally aligned block at <paramref name="pfn"/> lies in the zone and is free at this order (page_is_buddy).</summary>
    public bool IsFree(ulong pfn) =>
        pfn >= _start && pfn < _end && _end - pfn >= 1UL << Order && _free.Get((pfn >> Order) - _firstIndex);

    /// <summary>Put a free block on the list: at the head (list_add) or the tail (add_to_free_list_tail).</summary>
    public void Add(ulong pfn, bool toTail)
    {
        ulong i = (pfn >> Order) - _firstIndex;
        _free.Set(i);
        Count++;
        if (!_queued.Set(i))
        {
            // Entries of it are queued from before it left the list, stale: this one is current.
            _requeued ??= [];
            ref Queued q = ref CollectionsMarshal.GetValueRefOrAddDefault(_requeued, i, out bool known);
            if (!known)
            {
                q = new Queued { Entries = 1, Current = -1 };
            }

            q.Entries++;
            q.Current = toTail ? q.Entries - 1 : 0;
        }

        if (toTail)
        {
            _list.PushBack(pfn);
        }
        else
        {
            _list.PushFront(pfn);
        }

        if (_list.Count > 2 * Count + 64)
        {
            Compact();
        }
    }

    /// <summary>
    /// Put the free blocks [<paramref name="start"/>, <paramref name="end"/>), consecutive and
    /// aligned, on the tail of the list in ascending order, as __free_pages_core does at boot.
    /// </summary>
    public void AddRun(ulong start, ulong end)
    {
        if (start >= end)
        {
            return;
        }

        _free.SetRange((start >> Order) - _firstIndex, (end >> Order) - _firstIndex);
        Count += (long)((end - start) >> Order);
        _runs.Add((start, end));
    }

    /// <summary>Take a free block off the list wherever it is (del_page_from_free_list): a merge or a carve-out.</summary>
    public void Remove(ulong pfn)
    {
        _free.Clear((pfn >> Order) - _firstIndex);
        Count--;
    }

    /// <summary>
    /// <see cref="IsFree"/> then <see cref="Remove"/> in one bitmap access: the merge step of
    /// __free_one_page (page_is_buddy, then del_page_from_free_list). False, and nothing changed,
    /// when the block is not free at this order.
    /// </summary>
    public bool TryRemove(ulong pfn)
    {
        if (pfn < _start || pfn >= _end || _end - pfn < 1UL << Order || !_free.Clear((pfn >> Order) - _firstIndex))
        {
            return false;
        }

        Count--;
        return true;
    }

    /// <summary>Take the block at the head of the list (get_page_from_free_area), if any.</summary>
    public bool TryTake(out ulong pfn)
    {
        while (_list.TryPopFront(out pfn))
        {
            ulong i = (pfn >> Order) - _firstIndex;
            if (Dequeued(i) && _free.Clear(i))
            {
                Count--;
                return true;
            }
        }

        for (; _run < _runs.Count; _run++)
        {
            (ulong next, ulong end) = _runs[_run];
            while (next < end)
            {
                pfn = next;
                next += 1UL << Order;
                ulong i = (pfn >> Order) - _firstIndex;
                if (!_queued.Get(i) && _free.Clear(i))
                {
                    _runs[_run] = (next, end);
                    Count--;
                    return true;
                }
            }
        }

        pfn = 0;
        return false;
    }

    /// <summary>The free blocks in the order <see cref="TryTake"/> would give them, none taken (for tests).</summary>
    internal List<ulong> Blocks()
    {
        var blocks = new List<ulong>();
        var seen = new Dictionary<ulong, int>();
        foreach (ulong pfn in _list.Entries())
        {
            ulong i = (pfn >> Order) - _firstIndex;
            bool current = true;
            if (_requeued is not null && _requeued.TryGetValue(i, out Queued q))
            {
                seen.TryGetValue(i, out int k);
                seen[i] = k + 1;
                current = k == q.Current;
            }

            if (current && _free.Get(i))
            {
                blocks.Add(pfn);
            }
        }

        for (int r = _run; r < _runs.Count; r++)
        {
            for (ulong pfn = _runs[r].Next; pfn < _runs[r].End; pfn += 1UL << Order)
            {
                ulong i = (pfn >> Order) - _firstIndex;
                if (!_queued.Get(i) && _free.Get(i))
                {
                    blocks.Add(pfn);
                }
            }
        }

        return blocks;
    }

    // The entry of block i at the front came off the queue: whether it is the block's current
    // entry (the only one, or the one its last Add queued); the block stays marked queued while
    // older entries of it remain.
    private bool Dequeued(ulong i)
    {
        if (_requeued is not { Count: > 0 } requeued)
        {
            _queued.Clear(i);
            return true;
        }

        ref Queued q = ref CollectionsMarshal.GetValueRefOrNullRef(requeued, i);
        if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref q))
        {
            _queued.Clear(i);
            return true;
        }

        bool current = q.Current == 0;
        q.Entries--;
        q.Current = q.Current > 0 ? q.Current - 1 : -1;
        if (q.Entries == 0)
        {
            requeued.Remove(i);
            _queued.Clear(i);
        }
        else if (q.Entries == 1 && q.Current == 0)
        {
            requeued.Remove(i); // the one left is current: an ordinary entry again
        }

        return current;
    }

    private void Compact()
    {
        _list.Retain(KeepIfFree);
        if (_requeued is { Count: > 0 } requeued)
        {
            // Every entry was seen: a block stays marked queued if its current entry was kept.
            foreach ((ulong i, Queued q) in requeued)
            {
                if (q.Kept)
                {
                    _queued.Set(i);
                }
                else
                {
                    _queued.Clear(i);
                }
            }

            requeued.Clear();
        }
    }

    private bool KeepIfFree(ulong pfn)
    {
        ulong i = (pfn >> Order) - _firstIndex;
        if (_requeued is { Count: > 0 } requeued && requeued.ContainsKey(i))
        {
            // Only the current entry may stay; Compact settles the queued mark once all are seen.
            ref Queued q = ref CollectionsMarshal.GetValueRefOrNullRef(requeued, i);
            bool keep = q.Current == 0 && _free.Get(i);
            q.Kept |= keep;
            q.Current = q.Current > 0 ? q.Current - 1 : -1;
            return keep;
        }

        if (_free.Get(i))
        {
            return true;
        }

        _queued.Clear(i);
        return false;
    }

    // A block's entries in the queue: how many, and which of them, counted from the front, is
    // current (-1: none is, each is stale); Kept while compacting.
    private struct Queued
    {
        public int Entries;
        public int Current;
        public bool Kept;
    }
}
