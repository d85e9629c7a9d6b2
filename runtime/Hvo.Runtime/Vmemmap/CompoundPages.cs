using System;
using System.Collections.Generic;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>
/// prep_compound_page and its undoing for huge pages, on the struct pages in vmemmap bytes.
/// A vmemmap frame that holds bytes is written for real; one still deferred (a boot vmemmap
/// frame nobody wrote) gets the compound contents from <see cref="Origin"/> when it is read, so
/// preparing half a million 2 MiB pages does not copy 16 GiB of identical tails.
/// </summary>
public sealed class CompoundPages<TArch> where TArch : struct, IPagingArch
{
    private readonly Machine<TArch> _machine;
    private readonly Dictionary<ulong, HugePage> _heads = new();
    private int[] _orders = [];
    private readonly Lock _lock = new();

    public CompoundPages(Machine<TArch> machine) => _machine = machine;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _heads.Count;
            }
        }
    }

    /// <summary>The huge page <paramref name="pfn"/> belongs to, if it was prepared as a compound page.</summary>
    public bool TryGetPage(ulong pfn, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out HugePage? page)
    {
        lock (_lock)
        {
            foreach (int o in _orders)
            {
                ulong h = pfn & ~((1UL << o) - 1);
                if (_heads.TryGetValue(h, out HugePage? found) && found.Order == o)
                {
                    page = found;
                    return true;
                }
            }
        }

        page = null;
        return false;
    }

    /// <summary>The compound page <paramref name="pfn"/> belongs to, if it was prepared as one.</summary>
    public bool TryGetHead(ulong pfn, out ulong head, out int order)
    {
        bool found = TryGetPage(pfn, out HugePage? page);
        head = page?.HeadPfn ?? 0;
        order = page?.Order ?? 0;
        return found;
    }

    /// <summary>prep_new_hugetlb_folio: the page's struct pages become a compound page.</summary>
    public void Prep(HugePage page)
    {
        lock (_lock)
        {
            _heads.Add(page.HeadPfn, page);
            if (Array.IndexOf(_orders, page.Order) < 0)
            {
                _orders = [.. _orders, page.Order];
            }
        }

        RewriteWrittenFrames(page);
    }

    /// <summary>__update_and_free_hugetlb_folio / destroy_compound: back to plain free pages.</summary>
    public void Destroy(HugePage page)
    {
        lock (_lock)
        {
            _heads.Remove(page.HeadPfn);
        }

        RewriteWrittenFrames(page);
    }

    /// <summary>What an unwritten struct page of <paramref name="pfn"/> holds now.</summary>
    public StructPageOrigin Origin(StructPageOrigin boot, ulong pfn) =>
        TryGetPage(pfn, out HugePage? page)
            ? boot with { Reserved = false, CompoundHead = page.HeadPfn, CompoundOrder = page.Order, VmemmapOptimized = page.VmemmapOptimized }
            : boot;

    // Frames holding bytes are rewritten with what the struct pages are now; deferred ones follow Origin by themselves.
    private void RewriteWrittenFrames(HugePage page)
    {
        ulong start = Machine<TArch>.StructPageAddress(page.HeadPfn);
        ulong end = Machine<TArch>.StructPageAddress(page.HeadPfn + page.Frames);
        ulong leafEnd = 0;
        ulong leafFrame = 0;
        for (ulong va = start & ~(TArch.PageSize - 1); va < end; va += TArch.PageSize)
        {
            if (va >= leafEnd)
            {
                // One walk per leaf: a boot block maps many of these vmemmap pages at once.
                WalkResult w = _machine.PageTable.Walk(va);
                if (!w.IsLeaf)
                {
                    throw new InvalidOperationException($"the vmemmap at 0x{va:x} is not mapped");
                }

                ulong leafSize = TArch.LevelSize(w.Level);
                leafEnd = (va & ~(leafSize - 1)) + leafSize;
                leafFrame = TArch.PfnOf(w.Level, w.Entry) + ((va & (leafSize - 1)) >> TArch.PageShift);
            }
            else
            {
                leafFrame++;
            }

            ulong frame = leafFrame;
            if (_machine.Frames.IsMaterialized(frame) || !_machine.BootVmemmap.TryGetVirtualAddress(frame, out _))
            {
                // Only this page's struct pages: a small huge page shares its vmemmap frame with others.
                ulong from = Math.Max(va, start);
                ulong to = Math.Min(va + TArch.PageSize, end);
                Span<byte> bytes = _machine.Mmu.Materialize(frame).Slice((int)(from - va), (int)(to - from));
                _machine.BootVmemmap.FillStructPages(from, bytes);
            }
        }
    }
}
