using System.Linq;
using Hvo.Memory.Hotplug;

namespace Hvo.HugeTlb;

/// <summary>What memory offlining asks of the pool: dissolving the free huge pages of a memory block.</summary>
public sealed partial class HugeTlbPool<TArch> : IHotplugHugePages
{
    /// <summary>
    /// dissolve_free_hugetlb_folios over [<paramref name="startPfn"/>, <paramref name="endPfn"/>),
    /// a memory block being offlined: every pool page with frames there, in address order
    /// (dissolve_free_hugetlb_folio). A page in use stops it with -EBUSY. A free page leaves the pool
    /// (remove_hugetlb_folio, as surplus if its node has surplus pages; max_huge_pages drops), its
    /// vmemmap is restored, and it goes back to the page allocator; if the restore fails (-ENOMEM)
    /// the page goes back on its free list as it was and max_huge_pages with it, and the offline
    /// fails. Pages dissolved before the failure stay dissolved, as in the kernel.
    /// </summary>
    public HotplugResult DissolveFreeHugePages(ulong startPfn, ulong endPfn)
    {
        lock (_lock)
        {
            HugePage[] pages = [.. Hstates
                .SelectMany(h => Enumerable.Range(0, h.Nodes).SelectMany(n => h.FreeList(n).Concat(h.Active(n))))
                .Where(p => p.HeadPfn < endPfn && p.HeadPfn + p.Frames > startPfn)
                .OrderBy(p => p.HeadPfn)];
            foreach (HugePage page in pages)
            {
                Hstate<TArch> h = HstateOf(page);
                if (page.State != HugePageState.Free || !h.RemoveFree(page))
                {
                    return HotplugResult.Busy; // folio_ref_count: still in use
                }

                bool adjustSurplus = h.SurplusHugePagesNode(page.Node) > 0;
                RemoveHugetlbFolio(h, page, adjustSurplus);
                h.MaxHugePages -= h.MaxHugePages > 0 ? 1UL : 0; // the kernel's unsigned decrement would wrap at 0
                if (Optimizer.Restore(page) == RestoreResult.NoMemory)
                {
                    AddHugetlbFolio(h, page, adjustSurplus);
                    h.MaxHugePages++;
                    return HotplugResult.NoMemory;
                }

                UpdateAndFreeHugetlbFolio(h, page, inBatch: false); // restored above: frees the frames
            }

            return HotplugResult.Ok;
        }
    }
}
