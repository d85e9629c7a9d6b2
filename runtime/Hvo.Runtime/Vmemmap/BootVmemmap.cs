using System;
using System.Collections.Generic;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>
/// The vmemmap blocks populated at boot, and their contents while nobody has written them: the
/// struct pages memmap_init would have written, produced from the pfn on demand (the kernel's
/// deferred struct page init). A 1 TiB machine's 16 GiB of struct pages cost nothing until
/// something writes one; a frame that leaves the vmemmap (HVO frees it) stops being produced.
/// A runtime vmemmap frame that received a copy of such a page (copy_page of a head page or of
/// the reuse page) is deferred the same way: it holds what the vmemmap page it copied holds,
/// until somebody writes it.
/// </summary>
public sealed class BootVmemmap<TArch> : IFrameContent where TArch : struct, IPagingArch
{
    private readonly List<Block> _blocks = new();
    private readonly SparseMap<ulong> _copies; // frame (from the first pfn) to the vmemmap address it holds a copy of
    private readonly System.Threading.Lock _sortLock = new(); // the blocks' one sort after boot
    private readonly FrameOwnerTable _owners;
    private readonly Func<ulong, StructPageOrigin> _origin;
    private readonly ulong _vmemmap;
    private bool _sorted = true;
    // The block of this thread's last boot-address look-up that found one: a hint, checked before
    // use (threads preparing different huge pages at boot would otherwise keep overwriting one).
    [ThreadStatic]
    private static int t_lastBlock;

    /// <param name="owners">Frames count as boot vmemmap only while they are owned as such.</param>
    /// <param name="origin">Node, zone and reserved-at-boot of a pfn: what its struct page starts with.</param>
    /// <param name="vmemmap">
    /// The kernel's <c>vmemmap</c>: where the struct page of pfn 0 would be (VMEMMAP_START, less the
    /// first RAM pfn's struct pages where the vmemmap is offset by it), so pfn P's is at vmemmap + P * sizeof(struct page).
    /// </param>
    public BootVmemmap(FrameOwnerTable owners, Func<ulong, StructPageOrigin> origin, ulong vmemmap)
    {
        ArgumentNullException.ThrowIfNull(owners);
        _owners = owners;
        _copies = new SparseMap<ulong>(owners.Frames);
        _origin = origin;
        _vmemmap = vmemmap;
    }

    /// <summary>Boot vmemmap frames populated, in total.</summary>
    public ulong Frames { get; private set; }

    public int Blocks => _blocks.Count;

    /// <summary>Tails hold compound_info as a mask (v7.1, <see cref="StructPage.InitializeCompound"/>); set before any compound page is prepared.</summary>
    public bool CompoundInfoMask { get; set; }

    /// <summary>The folio's hugetlb fields are in page[3] (v6.15, 6.12.111; <see cref="StructPage.InitializeCompound"/>); set before any compound page is prepared.</summary>
    public bool HugetlbPage3 { get; set; }

    /// <summary>Record that frames [<paramref name="firstFrame"/>, +<paramref name="count"/>) back the vmemmap from <paramref name="va"/>.</summary>
    public void Add(ulong firstFrame, ulong count, ulong va)
    {
        if (_blocks.Count > 0 && _blocks[^1].Frame > firstFrame)
        {
            _sorted = false;
        }

        _blocks.Add(new Block(firstFrame, count, va));
        Frames += count;
    }

    /// <summary>Runtime frames holding a deferred copy (counted when asked).</summary>
    public int DeferredCopies => (int)_copies.Count;

    // The deferred copies take no lock. A frame's slot is written only by whoever holds the frame:
    // the CPU that allocated it registers its copy before the PTE that maps it is stored (a release,
    // which orders the slot's store before it), and forgets it once the frame is unmapped and
    // flushed, before the page allocator takes it back; the allocator's lock orders one holder's
    // writes before the next one's. Slots of different frames are written at once by different
    // CPUs (SparseMap publishes a chunk with a compare-and-exchange).

    /// <summary>copy_page into an unwritten runtime frame of a vmemmap page still deferred: the copy is deferred too.</summary>
    public void AddDeferredCopy(ulong frame, ulong va) => _copies.Set(frame - _owners.FirstPfn, va);

    /// <summary>The frame left the vmemmap (or was written): it no longer holds a deferred copy.</summary>
    public void ForgetCopy(ulong frame) => _copies.Remove(frame - _owners.FirstPfn);

    /// <summary><see cref="ForgetCopy"/> for each of the frames [<paramref name="frame"/>, +<paramref name="count"/>).</summary>
    public void ForgetCopies(ulong frame, ulong count)
    {
        for (ulong i = frame - _owners.FirstPfn, end = i + count; i < end; i++)
        {
            _copies.Remove(i);
        }
    }

    /// <summary><see cref="ForgetCopy"/> for each of <paramref name="frames"/>.</summary>
    public void ForgetCopies(ReadOnlySpan<ulong> frames)
    {
        foreach (ulong frame in frames)
        {
            _copies.Remove(frame - _owners.FirstPfn);
        }
    }

    /// <summary>The vmemmap address whose struct pages an unwritten vmemmap frame holds.</summary>
    public bool TryGetVirtualAddress(ulong pfn, out ulong va) =>
        _owners[pfn] switch
        {
            FrameOwner.BootVmemmap => TryGetBootAddress(pfn, out va),
            FrameOwner.RuntimeVmemmap => TryGetCopyAddress(pfn, out va),
            _ => NotVmemmap(out va),
        };

    public bool TryFill(ulong pfn, Span<byte> frame)
    {
        if (!TryGetVirtualAddress(pfn, out ulong va))
        {
            return false;
        }

        FillStructPages(va, frame);
        return true;
    }

    private static bool NotVmemmap(out ulong va)
    {
        va = 0;
        return false;
    }

    // Without a lock: each change is one aligned 8-byte store of a slot (or a chunk reference to a
    // zeroed array, published whole), so a reader sees a slot before or after a change, never torn.
    // No reader races one that matters: a frame is deferred before it is mapped and forgotten once
    // it is unmapped and flushed (docs/ARCHITECTURE.md §5, host cost).
    private bool TryGetCopyAddress(ulong pfn, out ulong va) => _copies.TryGetValue(pfn - _owners.FirstPfn, out va);

    // A frame boot populated (and that still belongs to the vmemmap): where in the vmemmap it sits.
    private bool TryGetBootAddress(ulong pfn, out ulong va)
    {
        if (!System.Threading.Volatile.Read(ref _sorted))
        {
            // The first look-up after boot sorts, once, whichever CPU gets here first.
            lock (_sortLock)
            {
                if (!_sorted)
                {
                    _blocks.Sort((a, b) => a.Frame.CompareTo(b.Frame));
                    System.Threading.Volatile.Write(ref _sorted, true);
                }
            }
        }

        // Look-ups come in runs of frames of one block (a huge page's vmemmap): try the last hit first.
        int hint = t_lastBlock;
        if (hint < _blocks.Count && _blocks[hint] is var h && pfn - h.Frame < h.Count)
        {
            va = h.Va + ((pfn - h.Frame) << TArch.PageShift);
            return true;
        }

        int lo = 0, hi = _blocks.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            Block b = _blocks[mid];
            if (pfn < b.Frame)
            {
                hi = mid - 1;
            }
            else if (pfn >= b.Frame + b.Count)
            {
                lo = mid + 1;
            }
            else
            {
                t_lastBlock = mid;
                va = b.Va + ((pfn - b.Frame) << TArch.PageShift);
                return true;
            }
        }

        va = 0;
        return false;
    }

    /// <summary>
    /// The struct pages in the vmemmap page at <paramref name="va"/> as boot and the kernel's later
    /// writes that the simulation defers left them: memmap_init's contents, or a compound page's
    /// head and tails once the page was prepared as one.
    /// </summary>
    public void FillStructPages(ulong va, Span<byte> frame)
    {
        Func<ulong, StructPageOrigin> origin = _origin;
        int size = TArch.StructPageBytes;
        ulong firstPfn = (va - _vmemmap) / (ulong)size;
        ulong count = (ulong)(frame.Length / size);

        // One compound page covering the whole frame (every optimizable huge page does): one lookup.
        StructPageOrigin first = origin(firstPfn);
        bool wholeCompound = WholeCompound(first, firstPfn, count);
        for (int offset = 0; offset + size <= frame.Length; offset += size)
        {
            ulong pfn = firstPfn + (ulong)(offset / size);
            StructPageOrigin o = wholeCompound || offset == 0 ? first : origin(pfn);
            Span<byte> page = frame.Slice(offset, size);
            if (o.CompoundOrder > 0)
            {
                StructPage.InitializeCompound(page, o.Node, o.Zone, pfn - o.CompoundHead, _vmemmap + (o.CompoundHead * (ulong)size), o.CompoundOrder, CompoundInfoMask, HugetlbPage3);
                if (pfn == o.CompoundHead && o.VmemmapOptimized)
                {
                    StructPage.SetFlags(page, StructPage.Flags(page) | StructPage.PgHugeVmemmapOptimized);
                }
                else if (wholeCompound && pfn >= o.CompoundHead + StructPage.FirstPlainTail)
                {
                    // The plain tails that follow are identical records: copy this one, doubling.
                    ReplicateTail(frame.Slice(offset, (frame.Length - offset) / size * size), size);
                    return;
                }
            }
            else
            {
                StructPage.Initialize(page, o.Node, o.Zone, o.Reserved);
            }
        }
    }

    /// <summary>
    /// Whether <see cref="FillStructPages"/> fills the vmemmap page at <paramref name="va"/> with
    /// plain tails of one compound page from its record <paramref name="from"/> on (reset_struct_pages
    /// then copies that record over the ones before it), and which: two pages with equal
    /// <paramref name="tails"/> hold the same bytes, so a caller comparing them needs not produce them.
    /// </summary>
    public bool TryGetPlainTails(ulong va, int from, out PlainTails tails)
    {
        int size = TArch.StructPageBytes;
        ulong firstPfn = (va - _vmemmap) / (ulong)size;
        StructPageOrigin first = _origin(firstPfn);
        if (WholeCompound(first, firstPfn, TArch.PageSize / (ulong)size) && (ulong)from < TArch.PageSize / (ulong)size
            && StructPage.IsPlainTail(firstPfn + (ulong)from - first.CompoundHead, HugetlbPage3))
        {
            tails = new PlainTails(_vmemmap, first.Node, first.Zone, first.CompoundHead, first.CompoundOrder, CompoundInfoMask, HugetlbPage3);
            return true;
        }

        tails = default;
        return false;
    }

    // The struct pages [firstPfn, +count) all belong to the compound page `first` describes.
    private static bool WholeCompound(in StructPageOrigin first, ulong firstPfn, ulong count) =>
        first.CompoundOrder > 0 && firstPfn + count <= first.CompoundHead + (1UL << first.CompoundOrder);

    /// <summary>The first struct page of <paramref name="rest"/> (whole records) copied over every later one, in doubling runs.</summary>
    private static void ReplicateTail(Span<byte> rest, int size)
    {
        int done = size;
        while (done < rest.Length)
        {
            int n = Math.Min(done, rest.Length - done);
            rest[..n].CopyTo(rest[done..]);
            done += n;
        }
    }

    private readonly record struct Block(ulong Frame, ulong Count, ulong Va);
}

/// <summary>
/// What decides the bytes of a vmemmap page of plain tails (<see cref="BootVmemmap{TArch}.TryGetPlainTails"/>):
/// the machine's vmemmap pointer (the head's struct page address follows from it), the compound
/// page, and the layout of its records.
/// </summary>
public readonly record struct PlainTails(ulong Vmemmap, int Node, int Zone, ulong CompoundHead, int CompoundOrder, bool CompoundInfoMask, bool HugetlbPage3);

/// <summary>
/// What a struct page holds while nobody wrote it: the pfn's node and zone, whether boot kept the
/// frame, and, for a frame of a prepared compound page, its head and order (order 0: none) and
/// whether HPageVmemmapOptimized is set in the head.
/// </summary>
public readonly record struct StructPageOrigin(int Node, int Zone, bool Reserved, ulong CompoundHead = 0, int CompoundOrder = 0, bool VmemmapOptimized = false);
