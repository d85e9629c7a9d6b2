using System.Collections.Generic;

namespace Hvo.HugeTlb;

/// <summary>Demote: a free page of one hstate becomes pages of the next smaller one.</summary>
public sealed partial class HugeTlbPool<TArch>
{
    /// <summary>
    /// Write <paramref name="count"/> to the hstate's demote file (demote_store), on node
    /// <paramref name="nid"/> only when given: while free pages are left, take one from
    /// next_nid_to_free on (demote_pool_huge_page) and split it into pages of
    /// <see cref="Hstate{TArch}.DemoteTarget"/> (demote_free_hugetlb_folio): restore its vmemmap
    /// first, and if that fails the page stays and the write fails with -ENOMEM; then the compound
    /// page goes, each piece is prepared as a compound page, the pieces are optimized together and
    /// enqueued on the same node. max_huge_pages of both hstates follow.
    /// </summary>
    public DemoteResult Demote(Hstate<TArch> h, ulong count = 1, int? nid = null)
    {
        CheckHstate(h);
        CheckNode(nid);
        lock (_lock)
        {
            if (h.DemoteTarget is null)
            {
                return new DemoteResult(0, HugeTlbStatus.Invalid); // no demote file
            }

            ulong demoted = 0;
            while (demoted < count)
            {
                ulong available = (nid is { } n ? h.FreeHugePagesNode(n) : h.FreeHugePages) - h.ResvHugePages;
                if (available == 0)
                {
                    break;
                }

                HugeTlbStatus status = DemotePoolHugePage(h, nid);
                if (status != HugeTlbStatus.Ok)
                {
                    return new DemoteResult(demoted, status);
                }

                demoted++;
            }

            return new DemoteResult(demoted, HugeTlbStatus.Ok);
        }
    }

    /// <summary>
    /// Write <paramref name="size"/> bytes to the hstate's demote_size file (demote_size_store): the
    /// size must be an hstate's, at least HPAGE_SIZE (HUGETLB_PAGE_ORDER) and smaller than
    /// <paramref name="h"/>'s, else -EINVAL; pages demoted from now on become pages of that size.
    /// </summary>
    public HugeTlbStatus SetDemoteSize(Hstate<TArch> h, ulong size)
    {
        CheckHstate(h);
        lock (_lock)
        {
            if (h.DemoteTarget is null || !TryGetHstate(size, out Hstate<TArch>? target) ||
                size < HugeTlbCommandLine.ArchDefaultSize(TArch.Info) || target.Order >= h.Order)
            {
                return HugeTlbStatus.Invalid;
            }

            h.DemoteTarget = target;
            return HugeTlbStatus.Ok;
        }
    }

    // demote_pool_huge_page: the head of the first non-empty free list from next_nid_to_free on.
    private HugeTlbStatus DemotePoolHugePage(Hstate<TArch> h, int? only)
    {
        for (int tries = NodesAllowed(only); tries > 0; tries--)
        {
            int node = h.NextNodeToFree(only);
            if (h.DequeueHead(node) is { } page)
            {
                return DemoteFreeHugetlbFolio(h, page);
            }
        }

        return HugeTlbStatus.Busy;
    }

    private HugeTlbStatus DemoteFreeHugetlbFolio(Hstate<TArch> h, HugePage page)
    {
        Hstate<TArch> target = h.DemoteTarget!;
        RemoveHugetlbFolio(h, page, adjustSurplus: false); // remove_hugetlb_folio_for_demote
        if (Optimizer.Restore(page) == RestoreResult.NoMemory)
        {
            AddHugetlbFolio(h, page, adjustSurplus: false);
            return HugeTlbStatus.NoMemory;
        }

        Machine.Compounds.Destroy(page);
        if (IsRange(h, page))
        {
            _rangePages.Remove(page.HeadPfn);
        }
        else
        {
            // The pieces are freed one by one later: the buddy block becomes order-0 pages.
            Machine.Pages.SplitPage(page.HeadPfn, page.Order);
        }

        var pieces = new List<HugePage>((int)(h.Frames / target.Frames));
        for (ulong offset = 0; offset < h.Frames; offset += target.Frames)
        {
            var piece = new HugePage(page.HeadPfn + offset, target.Order, page.Node, fromBoot: false);
            Machine.Compounds.Prep(piece);
            if (!target.IsGigantic)
            {
                _rangePages.Add(piece.HeadPfn);
            }

            pieces.Add(piece);
        }

        PrepAndAddAllocatedFolios(target, pieces);
        h.MaxHugePages -= h.MaxHugePages > 0 ? 1UL : 0; // the kernel's unsigned decrement would wrap for a surplus page
        target.MaxHugePages += (ulong)pieces.Count;
        return HugeTlbStatus.Ok;
    }
}
