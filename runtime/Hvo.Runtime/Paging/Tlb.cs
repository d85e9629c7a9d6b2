using System.Threading;

namespace Hvo.Paging;

/// <summary>A cached translation of one base page, or of a block (a leaf above the last level): <see cref="Pages"/> base pages from <see cref="Vpn"/> to frames from <see cref="Pfn"/>.</summary>
public readonly record struct TlbEntry(ulong Vpn, ulong Pfn, bool Writable, int Level)
{
    /// <summary>Base pages the translation covers: 1, or a block's.</summary>
    public ulong Pages { get; init; } = 1;
}

/// <summary>
/// One CPU's TLB: a direct-mapped cache of base-page translations, and a smaller one of block
/// translations (a PMD leaf's 2 MiB as one entry, as CPUs keep large-page entries apart), each
/// staying until a flush removes it, however the page table changes meanwhile. That is what makes
/// "free the frame before the flush" observable, and what a scan of the vmemmap misses
/// (<see cref="Misses"/>) once its blocks are split into pages.
/// </summary>
/// <remarks>
/// Each TLB has one lock, held by its CPU for the whole of one access (look-up, page walk and
/// fill, then the load or store: one instruction) and by any CPU that invalidates it, except that
/// a flush passes over, without the lock, a TLB that holds nothing while its CPU is outside an
/// access (<see cref="Invalidate"/>'s remarks say why that is safe). A flush
/// from another CPU therefore lands between two accesses of this CPU, never inside one: the
/// shootdown IPI taken at the next instruction boundary, acknowledged when the flusher gets the
/// lock (<see cref="Mmu{TArch}"/> explains the choice).
/// </remarks>
public sealed class Tlb
{
    public const int Entries = 256;

    /// <summary>Block translations held (x86-64 CPUs keep 32 2 MiB entries in their first-level data TLB).</summary>
    public const int BlockEntries = 32;

    private readonly TlbEntry[] _entries = new TlbEntry[Entries];
    private readonly bool[] _valid = new bool[Entries];
    private readonly TlbEntry[] _blocks = new TlbEntry[BlockEntries];
    private readonly bool[] _blockValid = new bool[BlockEntries];

    // The block sizes (in base pages) ever inserted, and how many: a block of N pages sits in slot
    // (vpn / N) % BlockEntries, so a look-up tries one slot per size instead of scanning them all.
    private readonly ulong[] _blockSizes = new ulong[BlockEntries];
    private int _blockSizeCount;
    private readonly Lock _lock = new();

    // Translations held (base and block), and whether this CPU is inside an access: together they
    // let a flush skip a TLB that holds nothing without taking its lock (Invalidate explains why
    // that is safe). Both change only under the lock.
    private int _held;
    private bool _inAccess;
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
    /// <remarks>
    /// A TLB that holds nothing, with its CPU outside an access, is skipped without its lock. The
    /// flusher stored the entries it flushes before it came here, and the interlocked count below
    /// is a full fence between those stores and the reads of <c>_inAccess</c> and <c>_held</c>;
    /// <see cref="BeginAccess"/> sets <c>_inAccess</c> and fences before its walk reads an entry.
    /// So either the flusher sees the access (and waits for it under the lock, as before), or the
    /// access reads the new entries and cannot cache an old one (Dekker's argument). A translation
    /// cached earlier counts in <c>_held</c>, which an access raises before it ends (release) and
    /// the flusher reads after <c>_inAccess</c> (acquire).
    /// </remarks>
    public void Invalidate(ulong firstVpn, ulong lastVpn)
    {
        Interlocked.Increment(ref _invalidations);
        if (!Volatile.Read(ref _inAccess) && Volatile.Read(ref _held) == 0)
        {
            return;
        }

        lock (_lock)
        {
            if (lastVpn - firstVpn < Entries)
            {
                // A short range (flush_tlb_kernel_range of one page's vmemmap): only its slots can hold it.
                for (ulong vpn = firstVpn; ; vpn++)
                {
                    int slot = (int)(vpn & (Entries - 1));
                    if (_valid[slot] && _entries[slot].Vpn == vpn)
                    {
                        _valid[slot] = false;
                        _held--;
                    }

                    if (vpn == lastVpn)
                    {
                        break;
                    }
                }
            }
            else
            {
                for (int i = 0; i < Entries; i++)
                {
                    if (_valid[i] && _entries[i].Vpn >= firstVpn && _entries[i].Vpn <= lastVpn)
                    {
                        _valid[i] = false;
                        _held--;
                    }
                }
            }

            for (int i = 0; _blockSizeCount > 0 && i < BlockEntries; i++)
            {
                if (_blockValid[i] && _blocks[i].Vpn <= lastVpn && _blocks[i].Vpn + _blocks[i].Pages - 1 >= firstVpn)
                {
                    _blockValid[i] = false;
                    _held--;
                }
            }
        }
    }

    public void InvalidateAll()
    {
        Interlocked.Increment(ref _invalidations);
        if (!Volatile.Read(ref _inAccess) && Volatile.Read(ref _held) == 0)
        {
            return; // nothing held, no access under way (Invalidate's remarks)
        }

        lock (_lock)
        {
            System.Array.Clear(_valid);
            System.Array.Clear(_blockValid);
            Volatile.Write(ref _held, 0);
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

            for (int i = 0; i < BlockEntries; i++)
            {
                if (_blockValid[i] && pfn - _blocks[i].Pfn < _blocks[i].Pages)
                {
                    vpn = _blocks[i].Vpn + (pfn - _blocks[i].Pfn);
                    return true;
                }
            }
        }

        vpn = 0;
        return false;
    }

    /// <summary>Start one access of this CPU: no flush can land until <see cref="EndAccess"/>.</summary>
    internal void BeginAccess()
    {
        _lock.Enter();
        Volatile.Write(ref _inAccess, true);
        Interlocked.MemoryBarrier(); // before the walk reads an entry (Invalidate's remarks)
    }

    internal void EndAccess()
    {
        Volatile.Write(ref _inAccess, false);
        _lock.Exit();
    }

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

        for (int k = 0; k < _blockSizeCount; k++)
        {
            int i = (int)((vpn / _blockSizes[k]) & (BlockEntries - 1));
            TlbEntry b = _blocks[i];
            if (_blockValid[i] && vpn - b.Vpn < b.Pages)
            {
                entry = new TlbEntry(vpn, b.Pfn + (vpn - b.Vpn), b.Writable, b.Level);
                _hits++;
                return true;
            }
        }

        _misses++;
        entry = default;
        return false;
    }

    /// <summary>Fill inside an access (<see cref="BeginAccess"/> held); a block's entry goes with the blocks.</summary>
    internal void InsertLocked(TlbEntry entry)
    {
        if (entry.Pages > 1)
        {
            int block = (int)((entry.Vpn / entry.Pages) & (BlockEntries - 1));
            _blocks[block] = entry;
            Hold(ref _blockValid[block]);
            if (System.Array.IndexOf(_blockSizes, entry.Pages, 0, _blockSizeCount) < 0)
            {
                _blockSizes[_blockSizeCount++] = entry.Pages;
            }

            return;
        }

        int slot = (int)(entry.Vpn & (Entries - 1));
        _entries[slot] = entry;
        Hold(ref _valid[slot]);
    }

    // A slot becomes valid; a slot that was not counts in _held from now on.
    private void Hold(ref bool valid)
    {
        if (!valid)
        {
            valid = true;
            Volatile.Write(ref _held, _held + 1);
        }
    }
}
