using System.Collections.Generic;
using System.Threading;

namespace Hvo.Paging;

/// <summary>
/// Strict mode: how many leaf entries map each frame, kept from the page table's own updates,
/// so that freeing a frame a page-table entry still maps is caught at the free.
/// Costs a dictionary entry per mapped frame: for test-sized machines.
/// </summary>
public sealed class ReverseMap<TArch> : IPageTableObserver where TArch : struct, IPagingArch
{
    private readonly Dictionary<ulong, int> _mappings = new();
    private readonly Lock _lock = new();

    public int MappingsOf(ulong pfn)
    {
        lock (_lock)
        {
            return _mappings.GetValueOrDefault(pfn);
        }
    }

    public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step)
    {
        lock (_lock)
        {
            Account(level, oldEntry, -1);
            Account(level, newEntry, +1);
        }
    }

    public void Flushed(ulong start, ulong end)
    {
    }

    private void Account(int level, ulong entry, int delta)
    {
        if (!TArch.IsLeaf(level, entry))
        {
            return;
        }

        ulong first = TArch.PfnOf(level, entry);
        ulong frames = TArch.LevelSize(level) >> TArch.PageShift;
        for (ulong pfn = first; pfn < first + frames; pfn++)
        {
            int n = _mappings.GetValueOrDefault(pfn) + delta;
            if (n == 0)
            {
                _mappings.Remove(pfn);
            }
            else
            {
                _mappings[pfn] = n;
            }
        }
    }
}

/// <summary>Several observers as one.</summary>
public sealed class ObserverChain : IPageTableObserver
{
    private readonly IPageTableObserver[] _observers;

    public ObserverChain(params IPageTableObserver[] observers) => _observers = observers;

    public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step)
    {
        foreach (IPageTableObserver o in _observers)
        {
            o.EntryChanging(level, tablePfn, index, oldEntry, newEntry, va, step);
        }
    }

    public void Flushed(ulong start, ulong end)
    {
        foreach (IPageTableObserver o in _observers)
        {
            o.Flushed(start, end);
        }
    }
}
