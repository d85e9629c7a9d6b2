using System;
using System.Collections;
using System.Collections.Generic;
using Hvo.Vmemmap;

namespace Hvo.HugeTlb;

/// <summary>
/// The fresh pages of one write (the kernel's local page_list that prep_and_add_allocated_folios
/// takes), flat: runs of pages one after the other in memory, as the buddy allocator hands them
/// out from a machine fresh from boot, so the 16 million pages of a 64 TiB write are a few runs,
/// not an object or an entry each. Each page read is a view (<see cref="HugePage"/>) of the fresh
/// page: its node is where its frames are, and once prepared its HPageVmemmapOptimized is the
/// machine's compound pages' flag. Only pages of that kind go in: allocated by the buddy
/// allocator or as a range at run time, not at boot from memblock, with no state of their own yet.
/// </summary>
internal sealed class HugePageBatch : IReadOnlyList<HugePage>
{
    private readonly List<(ulong First, int Index)> _runs = []; // each run's first head pfn and its first page's index
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

    /// <summary>Runs of consecutive pages held.</summary>
    public int Runs => _runs.Count;

    public HugePage this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
            int lo = 0, hi = _runs.Count - 1;
            while (lo < hi)
            {
                int mid = (lo + hi + 1) / 2;
                (lo, hi) = _runs[mid].Index <= index ? (mid, hi) : (lo, mid - 1);
            }

            return View(_runs[lo].First + ((ulong)(index - _runs[lo].Index) << _order));
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

        if (_runs.Count == 0 || _runs[^1].First + ((ulong)(Count - _runs[^1].Index) << _order) != page.HeadPfn)
        {
            _runs.Add((page.HeadPfn, Count));
        }

        Count++;
    }

    public IEnumerator<HugePage> GetEnumerator()
    {
        foreach (ulong head in Heads())
        {
            yield return View(head);
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The pages' head pfns in order, with no view made.</summary>
    public IEnumerable<ulong> Heads()
    {
        for (int r = 0; r < _runs.Count; r++)
        {
            int end = r + 1 < _runs.Count ? _runs[r + 1].Index : Count;
            for (int i = _runs[r].Index; i < end; i++)
            {
                yield return _runs[r].First + ((ulong)(i - _runs[r].Index) << _order);
            }
        }
    }

    private HugePage View(ulong pfn)
    {
        var page = new HugePage(pfn, _order, _nodeOf(pfn), fromBoot: false);
        _attach(page);
        return page;
    }
}
