using System;
using System.Collections.Generic;
using System.Threading;

namespace Hvo.HugeTlb;

/// <summary>Sizing the pool: writes of nr_hugepages (set_max_huge_pages) and what they build on.</summary>
public sealed partial class HugeTlbPool<TArch>
{
    /// <summary>
    /// Write <paramref name="count"/> to nr_hugepages: /proc/sys/vm/nr_hugepages or
    /// /sys/kernel/mm/hugepages/hugepages-*/nr_hugepages when <paramref name="nid"/> is null,
    /// /sys/devices/system/node/nodeN/hugepages/hugepages-*/nr_hugepages otherwise (set_max_huge_pages).
    /// <list type="number">
    /// <item>A per-node count becomes a global one: the other nodes' pages are added to it.</item>
    /// <item>Surplus pages become persistent first, without allocating (adjust_pool_surplus -1).</item>
    /// <item>Then fresh pages, interleaved over the nodes from next_nid_to_alloc (alloc_pool_huge_folio),
    /// prepared, optimized together and enqueued (prep_and_add_allocated_folios). The first page
    /// no node can give ends the growth; the write still succeeds.</item>
    /// <item>Shrinking frees free pages from next_nid_to_free on (remove_pool_hugetlb_folio,
    /// update_and_free_hugetlb_folio), never below the pages in use; a page whose vmemmap
    /// cannot be restored stays as a surplus page. Pages in use over the count become surplus,
    /// freed when released (adjust_pool_surplus +1).</item>
    /// </list>
    /// Growing stops early, as set_max_huge_pages bails for a pending signal (Ctrl-C), when
    /// <paramref name="cancel"/> is signalled: it is checked after each page allocated, and the
    /// pages allocated so far are still prepared, optimized and enqueued, so the pool stays
    /// consistent and <see cref="PoolResize.Interrupted"/> is set. The write still succeeds.
    /// <paramref name="allocated"/> is told the number of fresh pages this write has allocated, after each one.
    /// </summary>
    public PoolResize SetNrHugepages(Hstate<TArch> h, ulong count, int? nid = null, CancellationToken cancel = default, Action<ulong>? allocated = null)
    {
        CheckHstate(h);
        CheckNode(nid);
        lock (_lock)
        {
            ulong requested = count;
            if (nid is { } n)
            {
                // set_max_huge_pages: the node's persistent pages become the request, the other
                // nodes' persistent pages stay (surplus pages count on neither side).
                count += h.PersistentHugePages - (h.NrHugePagesNode(n) - h.SurplusHugePagesNode(n));
                if (count < requested)
                {
                    count = ulong.MaxValue; // they asked for as many as can be had
                }
            }

            ulong madePersistent = 0;
            while (h.SurplusHugePages > 0 && count > h.PersistentHugePages && AdjustPoolSurplus(h, nid, -1))
            {
                madePersistent++;
            }

            HugePageBatch fresh = NewBatch(h);
            bool interrupted = false;
            ulong before = h.PersistentHugePages;
            bool exhausted = count > h.PersistentHugePages && !AllocPoolPages(h, count - h.PersistentHugePages, nid, fresh, cancel, allocated, out interrupted);
            PrepAndAddAllocatedFolios(h, fresh);
            ulong grown = h.PersistentHugePages - before;
            if (exhausted)
            {
                h.MaxHugePages = h.PersistentHugePages;
                return new PoolResize(requested, grown, 0, madePersistent, 0, 0, h.MaxHugePages, interrupted);
            }

            // Never free below the pages in use (and reserved).
            ulong minCount = Math.Max(count, h.ResvHugePages + h.NrHugePages - h.FreeHugePages);
            var removed = new List<HugePage>();
            while (minCount < h.PersistentHugePages && RemovePoolHugetlbFolio(h, nid, acctSurplus: false) is { } page)
            {
                removed.Add(page);
            }

            (ulong freed, ulong restoreFailures) = UpdateAndFreeHugetlbFolios(h, removed);

            ulong madeSurplus = 0;
            while (count < h.PersistentHugePages && AdjustPoolSurplus(h, nid, +1))
            {
                madeSurplus++;
            }

            h.MaxHugePages = h.PersistentHugePages;
            return new PoolResize(requested, grown, freed, madePersistent, madeSurplus, restoreFailures, h.MaxHugePages);
        }
    }

    /// <summary>Write /proc/sys/vm/nr_hugepages: the default hstate, every node.</summary>
    public PoolResize SetProcNrHugepages(ulong count) => SetNrHugepages(Default, count);

    /// <summary>
    /// Allocate fresh pages until <paramref name="pages"/> holds <paramref name="count"/>, each
    /// from the first node of the interleave that has one (alloc_pool_huge_folio). False when
    /// no allowed node could give one.
    /// </summary>
    private bool AllocPoolPages(Hstate<TArch> h, ulong count, int? only, HugePageBatch pages) =>
        AllocPoolPages(h, count, only, pages, CancellationToken.None, null, out _);

    // The allocation loop of set_max_huge_pages, which stops for a pending signal (signal_pending) after
    // each page. From v6.7 the pages gather in the list for prep_and_add_allocated_folios; before, each
    // is prepared, optimized and enqueued as it comes (alloc_pool_huge_page → prep_new_huge_page).
    private bool AllocPoolPages(Hstate<TArch> h, ulong count, int? only, HugePageBatch pages, CancellationToken cancel, Action<ulong>? allocated, out bool interrupted)
    {
        interrupted = false;
        ulong done = 0;
        while (done < count)
        {
            HugePage? page = AllocPoolHugeFolio(h, only);
            if (page is null)
            {
                return false;
            }

            done++;
            AddFresh(h, page, pages);
            allocated?.Invoke(done);
            if (cancel.IsCancellationRequested && done < count)
            {
                interrupted = true;
                return false;
            }
        }

        return true;
    }

    // alloc_pool_huge_folio: for_each_node_mask_to_alloc, __GFP_THISNODE on each.
    private HugePage? AllocPoolHugeFolio(Hstate<TArch> h, int? only, bool prep = true)
    {
        for (int tries = NodesAllowed(only); tries > 0; tries--)
        {
            int node = h.NextNodeToAlloc(only);
            if (AllocFreshHugetlbFolio(h, node, Memory.Gfp.ThisNode, prep) is { } page)
            {
                return page;
            }
        }

        return null;
    }

    // remove_pool_hugetlb_folio: the head of the first non-empty free list from next_nid_to_free,
    // only on nodes with surplus pages when returning surplus ones.
    private HugePage? RemovePoolHugetlbFolio(Hstate<TArch> h, int? only, bool acctSurplus)
    {
        for (int tries = NodesAllowed(only); tries > 0; tries--)
        {
            int node = h.NextNodeToFree(only);
            if ((!acctSurplus || h.SurplusHugePagesNode(node) > 0) && h.FreeCount(node) > 0)
            {
                HugePage page = h.DequeueHead(node)!;
                RemoveHugetlbFolio(h, page, acctSurplus);
                return page;
            }
        }

        return null;
    }

    // adjust_pool_surplus: -1 takes a surplus page of a node from next_nid_to_alloc on and makes it
    // persistent; +1 makes a page of a node from next_nid_to_free on surplus. Only counters move.
    private bool AdjustPoolSurplus(Hstate<TArch> h, int? only, int delta)
    {
        for (int tries = NodesAllowed(only); tries > 0; tries--)
        {
            int node = delta < 0 ? h.NextNodeToAlloc(only) : h.NextNodeToFree(only);
            if (delta < 0 ? h.SurplusHugePagesNode(node) > 0 : h.SurplusHugePagesNode(node) < h.NrHugePagesNode(node))
            {
                h.AdjustSurplus(node, delta);
                h.SyncSurplusFlags(node);
                return true;
            }
        }

        return false;
    }

    // nodes_weight(*nodes_allowed): every node, or the one of a per-node file.
    private int NodesAllowed(int? only) => only is null ? Machine.Layout.Nodes : 1;
}
