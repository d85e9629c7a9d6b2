using System;
using System.Collections.Generic;
using Hvo.Memory;

namespace Hvo.HugeTlb;

/// <summary>Pages coming into the pool, being used, and leaving it.</summary>
public sealed partial class HugeTlbPool<TArch>
{
    /// <summary>
    /// alloc_hugetlb_folio, simplified (no reservations, no mempolicy): the head of a free list,
    /// node <paramref name="nid"/> first (the working CPU's node when null) and then the others in
    /// zonelist order; when none is free, a fresh surplus page if nr_overcommit_hugepages allows
    /// it (alloc_surplus_hugetlb_folio; never for gigantic pages). Null when neither can be had.
    /// </summary>
    public HugePage? AllocForUse(Hstate<TArch> h, int? nid = null)
    {
        CheckHstate(h);
        CheckNode(nid);
        lock (_lock)
        {
            int preferred = nid ?? Machine.NodeOfCpu(Machine.CurrentCpu);
            if (h.FreeHugePages - h.ResvHugePages > 0)
            {
                // dequeue_hugetlb_folio_nodemask
                for (int i = 0; i < Machine.Layout.Nodes; i++)
                {
                    if (h.DequeueHead((preferred + i) % Machine.Layout.Nodes) is { } page)
                    {
                        h.AddActive(page);
                        return page;
                    }
                }
            }

            return AllocSurplusHugetlbFolio(h, preferred);
        }
    }

    /// <summary>
    /// free_huge_folio: a page taken with <see cref="AllocForUse"/> comes back. While its node
    /// has surplus pages it leaves the pool (remove_hugetlb_folio with the surplus count, then
    /// update_and_free_hugetlb_folio, where a failed restore keeps it as a free surplus page);
    /// otherwise it goes to the head of its node's free list.
    /// </summary>
    public void Release(HugePage page)
    {
        ArgumentNullException.ThrowIfNull(page);
        lock (_lock)
        {
            Hstate<TArch> h = HstateOf(page);
            if (page.State != HugePageState.InUse || !h.RemoveActive(page))
            {
                throw new InvalidOperationException($"{page} is not in use: only pages from AllocForUse are released");
            }

            if (h.SurplusHugePagesNode(page.Node) > 0)
            {
                RemoveHugetlbFolio(h, page, adjustSurplus: true);
                UpdateAndFreeHugetlbFolio(h, page, inBatch: false); // hugetlb_vmemmap_restore_folio
                return;
            }

            h.Enqueue(page);
        }
    }

    /// <summary>All pages of the pool of <paramref name="h"/>: free ones (each list from its head) then those in use.</summary>
    public IReadOnlyList<HugePage> Pages(Hstate<TArch> h)
    {
        CheckHstate(h);
        lock (_lock)
        {
            var pages = new List<HugePage>();
            for (int nid = 0; nid < h.Nodes; nid++)
            {
                pages.AddRange(h.FreeList(nid));
            }

            for (int nid = 0; nid < h.Nodes; nid++)
            {
                pages.AddRange(h.Active(nid));
            }

            return pages;
        }
    }

    /// <summary>
    /// The pages of <paramref name="h"/>'s pool with HPageVmemmapOptimized set: what
    /// <c>Pages(h).Count(p =&gt; p.VmemmapOptimized)</c> says, read from the flat lists without a
    /// view or a list of 16 million pages.
    /// </summary>
    public long OptimizedPages(Hstate<TArch> h)
    {
        CheckHstate(h);
        lock (_lock)
        {
            long n = 0;
            for (int nid = 0; nid < h.Nodes; nid++)
            {
                foreach (ulong head in h.FreeHeads(nid))
                {
                    n += Machine.Compounds.IsVmemmapOptimized(head, h.Order) ? 1 : 0;
                }

                foreach (HugePage page in h.Active(nid))
                {
                    n += page.VmemmapOptimized ? 1 : 0;
                }
            }

            return n;
        }
    }

    // alloc_surplus_hugetlb_folio: a fresh page counted as surplus, from any node (nid first).
    private HugePage? AllocSurplusHugetlbFolio(Hstate<TArch> h, int nid)
    {
        if (h.IsGigantic || h.SurplusHugePages >= h.NrOvercommitHugePages)
        {
            return null;
        }

        if (AllocFreshHugetlbFolio(h, nid, Gfp.Kernel) is not { } page)
        {
            return null;
        }

        Optimizer.Optimize(page);
        h.AccountAdded(page.Node, surplus: true);
        h.AddActive(page);
        h.SyncSurplusFlags(page.Node, prefer: page);
        return page;
    }

    /// <summary>
    /// alloc_fresh_hugetlb_folio: alloc_buddy_hugetlb_folio (an order-sized block, __GFP_NOWARN)
    /// or, for a gigantic size, alloc_gigantic_folio (alloc_contig_pages), then the compound page
    /// (prep_new_hugetlb_folio's struct page part). The block is not taken as __GFP_COMP: the
    /// allocator would then refuse the split_page that demote needs; the compound page lives in
    /// the struct pages. The page's node is where its frames are.
    /// </summary>
    private HugePage? AllocFreshHugetlbFolio(Hstate<TArch> h, int nid, Gfp gfp, bool prep = true)
    {
        if (h.IsGigantic && h.Frames > Machine.Layout.Frames)
        {
            return null; // alloc_contig_pages: no zone spans a range that large
        }

        // htlb_alloc_mask: GFP_HIGHUSER_MOVABLE for a size that can be migrated and is not gigantic
        // (hugepage_movable_supported), so ZONE_MOVABLE serves it first; GFP_HIGHUSER for gigantic ones.
        ulong pfn;
        bool ok = h.IsGigantic
            ? Machine.Pages.TryAllocContigPages(nid, h.Frames, gfp, AllocSite.HugePage, FrameOwner.HugePage, out pfn)
            : Machine.Pages.TryAllocPages(nid, h.Order, gfp | Gfp.NoWarn | Gfp.Movable, AllocSite.HugePage, FrameOwner.HugePage, out pfn);
        if (!ok)
        {
            return null;
        }

        var page = new HugePage(pfn, h.Order, Machine.NodeOf(pfn), fromBoot: false);
        if (prep)
        {
            Machine.Compounds.Prep(page); // else the caller prepares it (hugetlb_pages_alloc_boot)
        }

        return page;
    }

    // An empty batch of fresh pages of h: flat, a view made per page read.
    private HugePageBatch NewBatch(Hstate<TArch> h) => new(h.Order, Machine.NodeOf, Machine.Compounds.Attach);

    // A fresh page of a growth: into the batch (v6.7+), or prepared, optimized and enqueued at once.
    private void AddFresh(Hstate<TArch> h, HugePage page, HugePageBatch batch)
    {
        if (Optimizer.OptimizesInBatches)
        {
            batch.Add(page);
            return;
        }

        Optimizer.Optimize(page);
        h.AccountAdded(page.Node, surplus: false);
        h.Enqueue(page);
    }

    // prep_and_add_allocated_folios: the optimizer sees the whole list (hugetlb_vmemmap_optimize_folios),
    // then each page is counted (__prep_account_new_huge_page) and enqueued.
    private void PrepAndAddAllocatedFolios(Hstate<TArch> h, IReadOnlyList<HugePage> pages)
    {
        if (pages.Count == 0)
        {
            return;
        }

        Optimizer.OptimizeBatch(pages);

        // A node's surplus count may exceed its pages (demote leaves a surplus page's count): a new
        // page then carries a flag the count had no page for, hence the sync after each.
        if (pages is HugePageBatch batch)
        {
            // Fresh pages with no state of their own: enqueued by head pfn, with no view each.
            foreach (ulong head in batch.Heads())
            {
                int node = Machine.NodeOf(head);
                h.AccountAdded(node, surplus: false);
                h.EnqueueFresh(head, node);
                h.SyncSurplusFlags(node);
            }

            return;
        }

        foreach (HugePage page in pages)
        {
            h.AccountAdded(page.Node, surplus: false);
            h.Enqueue(page);
            h.SyncSurplusFlags(page.Node);
        }
    }

    // remove_hugetlb_folio: the page (already off its free list or the active list) stops counting.
    private static void RemoveHugetlbFolio(Hstate<TArch> h, HugePage page, bool adjustSurplus)
    {
        h.AccountRemoved(page.Node, adjustSurplus);
        h.ForgetSurplusFlag(page);
        h.SyncSurplusFlags(page.Node);
    }

    // add_hugetlb_folio: back in the pool, on the head of its free list.
    private static void AddHugetlbFolio(Hstate<TArch> h, HugePage page, bool adjustSurplus)
    {
        h.AccountAdded(page.Node, adjustSurplus);
        h.Enqueue(page);
        h.SyncSurplusFlags(page.Node, prefer: page);
    }

    // update_and_free_pages_bulk, over the pages in the order remove_pool_hugetlb_folio gave them.
    // The shrink loop list_adds each to the head of page_list, so the kernel walks them last
    // removed first. Before v6.7 each page is restored and freed in turn. From v6.7 (cfb8c75099db)
    // hugetlb_vmemmap_restore_folios restores them first, list_moving each onto non_hvo_folios
    // (reversing them again), and only then are they freed: in the order they were removed, after
    // every restore allocated its vmemmap while all of them still held their memory. That pass
    // stops at the first restore that fails; bulk_vmemmap_restore_error then frees the pages
    // restored so far, giving their memory back, or, when there are none, tries the rest one by
    // one (hugetlb_vmemmap_restore_folio), keeping each failure as a surplus page and freeing the
    // first success; either way the pass runs again over what is left (goto retry).
    private (ulong Freed, ulong RestoreFailures) UpdateAndFreeHugetlbFolios(Hstate<TArch> h, List<HugePage> pages)
    {
        ulong freed = 0;
        if (!Optimizer.OptimizesInBatches)
        {
            if (pages.Count > 0)
            {
                Optimizer.SynchronizeBeforeRestoring(pages);
            }

            for (int i = pages.Count - 1; i >= 0; i--)
            {
                freed += UpdateAndFreeHugetlbFolio(h, pages[i], inBatch: true) ? 1UL : 0;
            }

            return (freed, (ulong)pages.Count - freed);
        }

        // folio_list from its head: the last removed first.
        var folioList = new List<HugePage>(pages.Count);
        for (int i = pages.Count - 1; i >= 0; i--)
        {
            folioList.Add(pages[i]);
        }

        var nonHvo = new List<HugePage>(); // in the order moved; list_move makes the kernel's list the reverse
        int next = 0; // folioList[next..] is what is still on folio_list
        while (!HugetlbVmemmapRestoreFolios(folioList, ref next, nonHvo))
        {
            freed += BulkVmemmapRestoreError(h, folioList, ref next, nonHvo);
        }

        freed += FreeNonHvoFolios(h, nonHvo);
        return (freed, (ulong)pages.Count - freed);
    }

    // hugetlb_vmemmap_restore_folios: from folioList[next] on, restore each optimized page (a page
    // already not optimized needs nothing) and move it to nonHvo, until a restore fails; that page
    // and the rest stay. One grace period for the call (v6.10 to v7.0), one flush_tlb_all after it
    // when a page was restored; false on a failure.
    private bool HugetlbVmemmapRestoreFolios(List<HugePage> folioList, ref int next, List<HugePage> nonHvo)
    {
        if (next < folioList.Count)
        {
            Optimizer.SynchronizeBeforeRestoring(folioList.GetRange(next, folioList.Count - next));
        }

        int restored = 0;
        bool ok = true;
        for (; next < folioList.Count; next++)
        {
            HugePage page = folioList[next];
            bool optimized = page.VmemmapOptimized;
            if (Optimizer.Restore(page, inBatch: true) == RestoreResult.NoMemory)
            {
                ok = false;
                break;
            }

            restored += optimized ? 1 : 0;
            nonHvo.Add(page);
        }

        Optimizer.FinishRestoring(restored);
        return ok;
    }

    // bulk_vmemmap_restore_error: free what the pass restored (their memory is what the next pass
    // needs); with nothing restored, try the remaining pages one at a time: a failure stays as a
    // surplus page (add_hugetlb_folio), the first success is freed and ends the attempt.
    private ulong BulkVmemmapRestoreError(Hstate<TArch> h, List<HugePage> folioList, ref int next, List<HugePage> nonHvo)
    {
        if (nonHvo.Count > 0)
        {
            return FreeNonHvoFolios(h, nonHvo);
        }

        for (; next < folioList.Count; next++)
        {
            if (UpdateAndFreeHugetlbFolio(h, folioList[next], inBatch: false))
            {
                next++;
                return 1;
            }
        }

        return 0;
    }

    // The pages on non_hvo_folios freed from the list's head: the last moved first.
    private ulong FreeNonHvoFolios(Hstate<TArch> h, List<HugePage> nonHvo)
    {
        for (int i = nonHvo.Count - 1; i >= 0; i--)
        {
            FreeRestoredFolio(h, nonHvo[i]);
        }

        ulong freed = (ulong)nonHvo.Count;
        nonHvo.Clear();
        return freed;
    }

    /// <summary>
    /// __update_and_free_hugetlb_folio for a page already removed from the pool: restore its
    /// vmemmap; if that fails the page is not freed but added back as a surplus page (the write
    /// that freed it still succeeds). Otherwise the frames return to the page allocator, whose
    /// free_pages_prepare checks the struct pages and ends the compound page: a buddy block with
    /// __free_pages, a range (gigantic, from memblock at boot, or cut by demote) with
    /// free_contig_range. A page whose struct pages fail the checks is lost (bad_page).
    /// </summary>
    private bool UpdateAndFreeHugetlbFolio(Hstate<TArch> h, HugePage page, bool inBatch)
    {
        if (Optimizer.Restore(page, inBatch) == RestoreResult.NoMemory)
        {
            AddHugetlbFolio(h, page, adjustSurplus: true);
            return false;
        }

        FreeRestoredFolio(h, page);
        return true;
    }

    // The rest of __update_and_free_hugetlb_folio once the vmemmap is back: the frames return to the
    // page allocator, whose free_pages_prepare (its checks) ends the compound page, or keeps the
    // frames off the free lists for good if its struct pages are bad (bad_page).
    private void FreeRestoredFolio(Hstate<TArch> h, HugePage page)
    {
        if (IsRange(h, page))
        {
            _rangePages.Remove(page.HeadPfn);
            Machine.Pages.FreeContigRange(page.HeadPfn, page.Frames, FrameOwner.HugePage);
        }
        else
        {
            Machine.Pages.FreePages(page.HeadPfn, page.Order, FrameOwner.HugePage);
        }

        Optimizer.PageFreed(page);
    }

    // Frames held as order-0 pages rather than as one buddy block.
    private bool IsRange(Hstate<TArch> h, HugePage page) => h.IsGigantic || page.FromBoot || _rangePages.Contains(page.HeadPfn);
}
