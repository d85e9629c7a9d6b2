using System.Threading;

namespace Hvo.Paging;

/// <summary>A cached translation of one base page.</summary>
public readonly record struct TlbEntry(ulong Vpn, ulong Pfn, bool Writable, int Level);

/// <summary>
/// One CPU's TLB: a direct-mapped cache of base-page translations that stays until a flush
/// removes it, however the page table changes meanwhile. That is what makes "free the frame
/// before the flush" observable.
/// </summary>
/// <remarks>
/// Each TLB has one lock, held by its CPU for the whole of one access (look-up, page walk and
/// fill, then the load or store: one instruction) and by any CPU that invalidates it. A flush
/// from another CPU therefore lands between two accesses of this CPU, never inside one: the
/// shootdown IPI taken at the next instruction boundary, acknowledged when the flusher gets the
/// lock (<see cref="Mmu{TArch}"/> explains the choice).
/// </remarks>
public sealed class Tlb
{
    public const int Entries = 256;

    private readonly TlbEntry[] _entries = new TlbEntry[Entries];
    private readonly bool[] _valid = new bool[Entries];
    private readonly Lock _lock = new();
    private long _hits;
    private long _misses;
    private long _invalidations;

    public Tlb(int cpu) => Cpu = cpu;

    public int Cpu { get; }

    public long Hits => Volatile.Read(ref _hits);

    public long Misses => Volatile.Read(ref _misses);

    /// <summary>Flushes this TLB took (local or shot down from another CPU).</summary>
    public long Invalidations => Volatile.Read(ref _invalidations);

    public bool TryLookup(ulong vpn, out TlbEntry entry)
    {
        lock (_lock)
        {
            return LookupLocked(vpn, out entry);
        }
    }

    public void Insert(TlbEntry entry)
    {
        lock (_lock)
        {
            InsertLocked(entry);
        }
    }

    /// <summary>Drop every translation of a page in [firstVpn, lastVpn].</summary>
    public void Invalidate(ulong firstVpn, ulong lastVpn)
    {
        lock (_lock)
        {
            _invalidations++;
            for (int i = 0; i < Entries; i++)
            {
                if (_valid[i] && _entries[i].Vpn >= firstVpn && _entries[i].Vpn <= lastVpn)
                {
                    _valid[i] = false;
                }
            }
        }
    }

    public void InvalidateAll()
    {
        lock (_lock)
        {
            _invalidations++;
            System.Array.Clear(_valid);
        }
    }

    /// <summary>Does any cached translation point at <paramref name="pfn"/>?</summary>
    public bool Reaches(ulong pfn, out ulong vpn)
    {
        lock (_lock)
        {
            for (int i = 0; i < Entries; i++)
            {
                if (_valid[i] && _entries[i].Pfn == pfn)
                {
                    vpn = _entries[i].Vpn;
                    return true;
                }
            }
        }

        vpn = 0;
        return false;
    }

    /// <summary>Start one access of this CPU: no flush can land until <see cref="EndAccess"/>.</summary>
    internal void BeginAccess() => _lock.Enter();

    internal void EndAccess() => _lock.Exit();

    /// <summary>Look-up inside an access (<see cref="BeginAccess"/> held).</summary>
    internal bool LookupLocked(ulong vpn, out TlbEntry entry)
    {
        int slot = (int)(vpn & (Entries - 1));
        if (_valid[slot] && _entries[slot].Vpn == vpn)
        {
            entry = _entries[slot];
            _hits++;
            return true;
        }

        _misses++;
        entry = default;
        return false;
    }

    /// <summary>Fill inside an access (<see cref="BeginAccess"/> held).</summary>
    internal void InsertLocked(TlbEntry entry)
    {
        int slot = (int)(entry.Vpn & (Entries - 1));
        _entries[slot] = entry;
        _valid[slot] = true;
    }
}
