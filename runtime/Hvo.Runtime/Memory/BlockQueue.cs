using System;

namespace Hvo.Memory;

/// <summary>
/// A double-ended queue of block frame numbers in a growable ring: the order of a free list,
/// with its head where the kernel's list_add puts a block and its tail where
/// add_to_free_list_tail does. Not thread-safe: its owner serialises access.
/// </summary>
internal sealed class BlockQueue
{
    private ulong[] _ring;
    private int _head;

    public BlockQueue(int capacity = 16)
    {
        int size = 16;
        while (size < capacity && size < 1 << 30)
        {
            size <<= 1;
        }

        _ring = new ulong[size];
    }

    public int Count { get; private set; }

    public void PushFront(ulong pfn)
    {
        Grow();
        _head = (_head - 1) & (_ring.Length - 1);
        _ring[_head] = pfn;
        Count++;
    }

    public void PushBack(ulong pfn)
    {
        Grow();
        _ring[(_head + Count) & (_ring.Length - 1)] = pfn;
        Count++;
    }

    public bool TryPopFront(out ulong pfn)
    {
        if (Count == 0)
        {
            pfn = 0;
            return false;
        }

        pfn = _ring[_head];
        _head = (_head + 1) & (_ring.Length - 1);
        Count--;
        return true;
    }

    /// <summary>Keep, in order, only the entries <paramref name="keep"/> accepts.</summary>
    public void Retain(Func<ulong, bool> keep)
    {
        int kept = 0;
        int mask = _ring.Length - 1;
        for (int i = 0; i < Count; i++)
        {
            ulong pfn = _ring[(_head + i) & mask];
            if (keep(pfn))
            {
                _ring[(_head + kept++) & mask] = pfn;
            }
        }

        Count = kept;
    }

    private void Grow()
    {
        if (Count < _ring.Length)
        {
            return;
        }

        var bigger = new ulong[_ring.Length * 2];
        int firstPart = Math.Min(Count, _ring.Length - _head);
        Array.Copy(_ring, _head, bigger, 0, firstPart);
        Array.Copy(_ring, 0, bigger, firstPart, Count - firstPart);
        _ring = bigger;
        _head = 0;
    }
}
