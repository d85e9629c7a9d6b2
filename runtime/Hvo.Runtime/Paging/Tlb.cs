using System.Threading;

namespace Hvo.Paging;

/// <summary>A cached translation of one base page.</summary>
public readonly record struct TlbEntry(ulong Vpn, ulong Pfn, bool Writable, int Level);

/// <summary>
/// One CPU's TLB: a direct-mapped cache of base-page translations that stays until a flush
/// removes it, however the page table changes meanwhile. That is what makes "free the frame
/// before the flush" observable.
/// </summary>
public sealed class Tlb
{
    public const int Entries = 256;

    private readonly TlbEntry[] _entries = new TlbEntry[Entries];
    private readonly bool[] _valid = new bool[Entries];
    private readonly Lock _lock = new();

    public Tlb(int cpu) => Cpu = cpu;

    public int Cpu { get; }

    public long Hits { get; private set; }

    public long Misses { get; private set; }

    public bool TryLookup(ulong vpn, out TlbEntry entry)
    {
        int slot = (int)(vpn & (Entries - 1));
        lock (_lock)
        {
            if (_valid[slot] && _entries[slot].Vpn == vpn)
            {
                entry = _entries[slot];
                Hits++;
                return true;
            }

            Misses++;
            entry = default;
            return false;
        }
    }

    public void Insert(TlbEntry entry)
    {
        int slot = (int)(entry.Vpn & (Entries - 1));
        lock (_lock)
        {
            _entries[slot] = entry;
            _valid[slot] = true;
        }
    }

    /// <summary>Drop every translation of a page in [firstVpn, lastVpn].</summary>
    public void Invalidate(ulong firstVpn, ulong lastVpn)
    {
        lock (_lock)
        {
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
}
