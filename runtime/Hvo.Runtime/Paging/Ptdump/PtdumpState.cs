using System;
using System.Collections.Generic;

namespace Hvo.Paging.Ptdump;

/// <summary>
/// The run-merging half of the kernel's <c>struct pg_state</c> and <c>note_page</c>: entries
/// arrive in address order, and a run ends where the level, the protection bits or presence
/// change, or where an address marker is crossed. The output address never breaks a run.
/// </summary>
/// <remarks>
/// x86's note_page also breaks on the effective protection (USR/RW anded and NX ored down the
/// upper levels). Every upper-level entry this simulator writes is <c>_PAGE_TABLE</c> (USR, RW,
/// no NX), so the effective protection is a function of the leaf's own bits and cannot break a
/// run that the leaf's bits do not.
/// </remarks>
internal sealed class PtdumpState
{
    private readonly List<PtdumpRun> _runs = [];
    private readonly ulong[] _markers;
    private int _nextMarker;
    private int _level = -1;
    private ulong _start;
    private ulong _prot;
    private bool _present;

    /// <param name="markerStarts">Addresses no run may continue across, in ascending order (0, the top of the address space, last).</param>
    public PtdumpState(ulong[] markerStarts)
    {
        _markers = markerStarts;
    }

    public List<PtdumpRun> Runs => _runs;

    /// <summary>The entry at <paramref name="addr"/> (to the next entry's address) is at <paramref name="level"/> with <paramref name="prot"/>.</summary>
    public void NotePage(ulong addr, int level, ulong prot, bool present)
    {
        if (_level == -1)
        {
            Begin(addr, level, prot, present);
            SkipMarkersUpTo(addr);
            return;
        }

        bool crossesMarker = _nextMarker < _markers.Length && Reached(addr, _markers[_nextMarker]);
        if (prot != _prot || level != _level || present != _present || crossesMarker)
        {
            _runs.Add(new PtdumpRun(_start, addr, _level, _prot, _present));
            SkipMarkersUpTo(addr);
            Begin(addr, level, prot, present);
        }
    }

    /// <summary>note_page_flush: the walk ended at <paramref name="end"/>; print what was collected.</summary>
    public void Flush(ulong end)
    {
        if (_level == -1)
        {
            return;
        }

        if (end - 1 < _start) // end 0: the top of the address space
        {
            throw new InvalidOperationException($"run at 0x{_start:x} flushed at 0x{end:x}");
        }

        _runs.Add(new PtdumpRun(_start, end, _level, _prot, _present));
        _level = -1;
    }

    private void Begin(ulong addr, int level, ulong prot, bool present)
    {
        _start = addr;
        _level = level;
        _prot = prot;
        _present = present;
    }

    private void SkipMarkersUpTo(ulong addr)
    {
        while (_nextMarker < _markers.Length && Reached(addr, _markers[_nextMarker]))
        {
            _nextMarker++;
        }
    }

    // A marker at 0 stands for the top of the address space (a region that ends there), which no entry reaches.
    private static bool Reached(ulong addr, ulong marker) => marker != 0 && addr >= marker;
}
