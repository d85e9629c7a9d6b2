using System.Collections.Generic;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// vmemmap_remap_pte: the first PTE of the walk is the page kept (reuse); every later one gives
/// its frame to the free list and maps the reuse frame read-only (the tails' struct pages are
/// identical, and a stray write now traps). With a fresh head copy (v6.2+) the reuse PTE itself
/// moves to the copy, writable, and the old head frame joins the free list too.
/// </summary>
internal struct RemapPteVisitor<TArch> : IRemapPteVisitor where TArch : struct, IPagingArch
{
    public List<ulong> Taken;
    public ulong ReusePfn;
    public bool HaveReuse;
    public ulong NewHeadPfn;
    public bool HasNewHead;
    public int Walked;

    public ulong RemapPte(ulong addr, ulong pte)
    {
        Walked++;
        if (!HaveReuse)
        {
            HaveReuse = true;
            if (!HasNewHead)
            {
                ReusePfn = TArch.PfnOf(TArch.LastLevel, pte);
                return pte;
            }

            Taken.Add(TArch.PfnOf(TArch.LastLevel, pte));
            ReusePfn = NewHeadPfn;
            return TArch.MakeLeaf(TArch.LastLevel, NewHeadPfn);
        }

        Taken.Add(TArch.PfnOf(TArch.LastLevel, pte));
        return TArch.ToReadOnly(TArch.MakeLeaf(TArch.LastLevel, ReusePfn));
    }
}

/// <summary>
/// vmemmap_restore_pte: the first PTE is the reuse page and stays; every later one gets the next
/// frame of the list, filled with a copy of the reuse page (copy_page, and reset_struct_pages
/// where the reuse page holds the head), mapped PAGE_KERNEL. Used both to restore an optimized
/// page and to roll back a remap that ran out of memory, with the frames it took.
/// </summary>
internal struct RestorePteVisitor<TArch> : IRemapPteVisitor where TArch : struct, IPagingArch
{
    public Machine<TArch> Machine;
    public List<ulong> Frames;
    public int Next;
    public ulong ReusePfn;
    public bool HaveReuse;
    public bool ResetStructPages;

    public ulong RemapPte(ulong addr, ulong pte)
    {
        if (!HaveReuse)
        {
            HaveReuse = true;
            ReusePfn = TArch.PfnOf(TArch.LastLevel, pte);
            return pte;
        }

        ulong frame = Frames[Next++];
        Machine.CopyFrame(ReusePfn, frame, addr);
        if (ResetStructPages)
        {
            ResetCopiedHead(Machine.Mmu.Materialize(frame));
        }

        // smp_wmb: the copy is visible before the PTE that maps it.
        System.Threading.Interlocked.MemoryBarrier();
        return TArch.MakeLeaf(TArch.LastLevel, frame);
    }

    /// <summary>
    /// reset_struct_pages: a copy of the head vmemmap page starts with the head and the first
    /// tails; in a tail vmemmap page those slots are plain tails, so copy a later tail over them.
    /// </summary>
    private static void ResetCopiedHead(System.Span<byte> page)
    {
        const int NrResetStructPage = 3;
        int size = TArch.StructPageBytes;
        System.ReadOnlySpan<byte> from = page.Slice(NrResetStructPage * size, size);
        for (int i = 0; i < NrResetStructPage; i++)
        {
            from.CopyTo(page.Slice(i * size, size));
        }
    }
}
