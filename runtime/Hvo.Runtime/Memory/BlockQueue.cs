using System;
using System.Collections.Generic;

namespace Hvo.Memory;

/// <summary>
/// A double-ended queue of block frame numbers: the order of a free list, with its head where the
/// kernel's list_add puts a block and its tail where add_to_free_list_tail does (a buddy free list,
/// and a per-CPU page list, <see cref="PcpList"/>). Not thread-safe:
/// its owner serialises access.
/// </summary>
/// <remarks>
/// The entries are kept as runs of evenly spaced frame numbers (first, step, count) in a growable
/// ring: HVO frees the same blocks of every huge page's vmemmap in address order, so the order-0,
/// -1 and -2 lists of a 64 TiB machine hold 16 million blocks each a fixed step apart, which is one
/// run rather than 128 MiB of entries. Any sequence costs at most what an entry each did (a run
/// holds at least two entries, or one at either end), and every operation is O(1) amortized.
/// </remarks>
internal sealed class BlockQueue
{
    private Run[] _ring;
    private Run[]? _spare; // the ring Retain filled last time, reused by the next
    private int _head;
    private int _runs;

    public BlockQueue(int capacity = 16)
    {
        int size = 16;
        while (size < capacity && size < 1 << 30)
        {
            size <<= 1;
        }

        _ring = new Run[size];
    }

    public int Count { get; private set; }

    /// <summary>Runs held: the queue's memory is this times 16 bytes (and the ring's spare room).</summary>
    public int Runs => _runs;

    public void PushFront(ulong pfn)
    {
        if (_runs > 0)
        {
            ref Run r = ref _ring[_head];
            if (r.Count == 1 && TryStep(pfn, r.First, out int step))
            {
                (r.First, r.Step, r.Count) = (pfn, step, 2);
                Count++;
                return;
            }

            if (r.Count > 1 && r.First - (ulong)(long)r.Step == pfn && r.Count < int.MaxValue)
            {
                r.First = pfn;
                r.Count++;
                Count++;
                return;
            }
        }

        Grow();
        _head = (_head - 1) & (_ring.Length - 1);
        _ring[_head] = new Run { First = pfn, Count = 1 };
        _runs++;
        Count++;
    }

    public void PushBack(ulong pfn)
    {
        if (_runs > 0)
        {
            ref Run r = ref _ring[(_head + _runs - 1) & (_ring.Length - 1)];
            if (r.Count == 1 && TryStep(r.First, pfn, out int step))
            {
                (r.Step, r.Count) = (step, 2);
                Count++;
                return;
            }

            if (r.Count > 1 && r.First + ((ulong)(long)r.Step * (ulong)r.Count) == pfn && r.Count < int.MaxValue)
            {
                r.Count++;
                Count++;
                return;
            }
        }

        Grow();
        _ring[(_head + _runs) & (_ring.Length - 1)] = new Run { First = pfn, Count = 1 };
        _runs++;
        Count++;
    }

    public bool TryPopFront(out ulong pfn)
    {
        if (Count == 0)
        {
            pfn = 0;
            return false;
        }

        ref Run r = ref _ring[_head];
        pfn = r.First;
        r.First += (ulong)(long)r.Step;
        if (--r.Count == 0)
        {
            _head = (_head + 1) & (_ring.Length - 1);
            _runs--;
        }

        Count--;
        return true;
    }

    /// <summary>
    /// The run at the head, none taken: its length, and <paramref name="first"/>, first + step, ...
    /// the order <see cref="TryPopFront"/> gives them (for a run of one, step means nothing). The queue must not be empty.
    /// </summary>
    public int PeekFrontRun(out ulong first, out long step)
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("the queue is empty");
        }

        ref Run r = ref _ring[_head];
        (first, step) = (r.First, r.Step);
        return r.Count;
    }

    /// <summary>The first <paramref name="n"/> entries of the head run taken off at once, as <paramref name="n"/> <see cref="TryPopFront"/> calls would.</summary>
    public void DropFront(int n)
    {
        ref Run r = ref _ring[_head];
        if ((uint)n > (uint)r.Count || _runs == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(n), n, "more than the head run holds");
        }

        r.First += (ulong)((long)r.Step * n);
        r.Count -= n;
        Count -= n;
        if (r.Count == 0)
        {
            _head = (_head + 1) & (_ring.Length - 1);
            _runs--;
        }
    }

    /// <summary>The entry at the tail, taken off.</summary>
    public ulong PopBack() => PopBackRun(1, out ulong pfn, out _) == 1 ? pfn : 0;

    /// <summary>
    /// Up to <paramref name="max"/> entries off the tail at once, all of the tail's run: <paramref name="last"/>,
    /// last - step, ... in the order one <see cref="PopBack"/> after another would give them.
    /// </summary>
    public int PopBackRun(int max, out ulong last, out long step)
    {
        if (Count == 0)
        {
            throw new InvalidOperationException("the queue is empty");
        }

        ref Run r = ref _ring[(_head + _runs - 1) & (_ring.Length - 1)];
        (last, step) = (r.First + ((ulong)(long)r.Step * (ulong)(r.Count - 1)), r.Step);
        int n = Math.Min(max, r.Count);
        r.Count -= n;
        Count -= n;
        if (r.Count == 0)
        {
            _runs--;
        }

        return n;
    }

    /// <summary>The entries from the front, none taken.</summary>
    public IEnumerable<ulong> Entries()
    {
        for (int i = 0; i < _runs; i++)
        {
            Run r = _ring[(_head + i) & (_ring.Length - 1)];
            for (int k = 0; k < r.Count; k++)
            {
                yield return r.First + ((ulong)(long)r.Step * (ulong)k);
            }
        }
    }

    /// <summary>Keep, in order, only the entries <paramref name="keep"/> accepts.</summary>
    public void Retain(Func<ulong, bool> keep)
    {
        ArgumentNullException.ThrowIfNull(keep);
        Run[] old = _ring;
        int oldHead = _head;
        int oldRuns = _runs;
        _ring = _spare is { } spare && spare.Length == old.Length ? spare : new Run[old.Length];
        _spare = old;
        _head = 0;
        _runs = 0;
        Count = 0;
        for (int i = 0; i < oldRuns; i++)
        {
            Run r = old[(oldHead + i) & (old.Length - 1)];
            for (int k = 0; k < r.Count; k++)
            {
                ulong pfn = r.First + ((ulong)(long)r.Step * (ulong)k);
                if (keep(pfn))
                {
                    PushBack(pfn);
                }
            }
        }
    }

    // The step from a to b, if it fits a run's.
    private static bool TryStep(ulong a, ulong b, out int step)
    {
        long d = (long)(b - a);
        step = (int)d;
        return d == step;
    }

    private void Grow()
    {
        if (_runs < _ring.Length)
        {
            return;
        }

        var bigger = new Run[_ring.Length * 2];
        int firstPart = Math.Min(_runs, _ring.Length - _head);
        Array.Copy(_ring, _head, bigger, 0, firstPart);
        Array.Copy(_ring, 0, bigger, firstPart, _runs - firstPart);
        _ring = bigger;
        _head = 0;
    }

    // Count entries First, First + Step, ...: 16 bytes, what two entries took before.
    private struct Run
    {
        public ulong First;
        public int Step;
        public int Count;
    }
}
