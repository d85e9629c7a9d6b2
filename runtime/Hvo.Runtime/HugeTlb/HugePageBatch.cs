using System;
using System.Collections;
using System.Collections.Generic;
using Hvo.Vmemmap;

namespace Hvo.HugeTlb;

/// <summary>
/// The fresh pages of one write (the kernel's local page_list that prep_and_add_allocated_folios
/// takes), flat: their head pfns in chunks, eight bytes a page however many millions there are,
/// with no copy as it grows. Each page read is a view (<see cref="HugePage"/>) of the fresh page:
/// its node is where its frames are, and once prepared its HPageVmemmapOptimized is the machine's
/// compound pages' flag. Only pages of that kind go in: allocated by the buddy allocator or as a
/// range at run time, not at boot from memblock, with no state of their own yet.
/// </summary>
internal sealed class HugePageBatch : IReadOnlyList<HugePage>
{
    private const int ChunkShift = 16;
    private const int ChunkMask = (1 << ChunkShift) - 1;

    private readonly List<ulong> _first = []; // the first chunk's worth, grown as a list: a small batch costs what it holds
    private readonly List<ulong[]> _chunks = []; // then whole chunks
    private readonly int _order;
    private readonly Func<ulong, int> _nodeOf;
    private readonly Action<CompoundPage> _attach;

    /// <param name="order">The pages' order.</param>
    /// <param name="nodeOf">The node of a pfn.</param>
    /// <param name="attach">Makes a view read HPageVmemmapOptimized from the machine's compound pages.</param>
    public HugePageBatch(int order, Func<ulong, int> nodeOf, Action<CompoundPage> attach)
    {
        _order = order;
        _nodeOf = nodeOf;
        _attach = attach;
    }

    public int Count { get; private set; }

    public HugePage this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            ulong pfn = index <= ChunkMask ? _first[index] : _chunks[(index >> ChunkShift) - 1][index & ChunkMask];
            var page = new HugePage(pfn, _order, _nodeOf(pfn), fromBoot: false);
            _attach(page);
            return page;
        }
    }

    /// <summary>list_add_tail of a fresh page; what a view of it gives back must be what it holds.</summary>
    public void Add(HugePage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        if (page.Order != _order || page.FromBoot || page.Node != _nodeOf(page.HeadPfn) || page.Pool is not null || page.Surplus || page.State != HugePageState.Free || page.VmemmapOptimized)
        {
            throw new ArgumentException($"{page} is not a fresh page of order {_order}", nameof(page));
        }

        if (Count <= ChunkMask)
        {
            _first.Add(page.HeadPfn);
        }
        else
        {
            if ((Count & ChunkMask) == 0)
            {
                _chunks.Add(new ulong[1 << ChunkShift]);
            }

            _chunks[(Count >> ChunkShift) - 1][Count & ChunkMask] = page.HeadPfn;
        }

        Count++;
    }

    public IEnumerator<HugePage> GetEnumerator()
    {
        for (int i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
