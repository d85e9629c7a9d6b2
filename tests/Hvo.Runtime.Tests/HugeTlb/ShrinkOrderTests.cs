using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// Shrinking the pool frees pages in the kernel's order (update_and_free_pages_bulk): the pages
/// remove_pool_hugetlb_folio takes are walked last removed first; from v6.7 every restore comes
/// before any free, so restored vmemmap never lands in the memory of a page freed a moment before.
/// </summary>
[TestClass]
public sealed class ShrinkOrderTests
{
    private const ulong GiB = 1UL << 30;

    /// <summary>
    /// The versions that restore the whole batch before freeing (v6.7 on). Before, the second page's
    /// restore takes its vmemmap from the memory of the page freed just before it (the head of the
    /// max-order free list), and with v6.2's head copy that costs a gigantic page later.
    /// </summary>
    public static System.Collections.Generic.IEnumerable<object[]> Policies => HvoPolicy.Kernel.Where(p => p.Batched).Select(p => new object[] { p.Name });

    /// <summary>The number: 8 GiB of x86-64, a 1 GiB pool grown to 2 and shrunk to 0 first, then 8 asked for.</summary>
    [TestMethod]
    [DynamicData(nameof(Policies))]
    public void EchoEightAfterACycleGetsAsManyGigantPagesAsOnAFreshBoot(string policy)
    {
        Assert.AreEqual(Grow8(policy, cycle: false), Grow8(policy, cycle: true));
    }

    /// <summary>
    /// With the per-CPU lists on, the restore still takes nothing from the GiBs the cycle freed, and
    /// the regrown pool gets both back. (It can still get one page fewer than a fresh boot: the boot
    /// vmemmap frames HVO freed sit on the CPU's movable list, not merged in the buddy lists, so the
    /// unmovable restore steals a max-order block from another free GiB, as __rmqueue_fallback does.)
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(Policies))]
    public void WithThePerCpuListsTheRestoreLeavesTheFreedGigantPagesAlone(string policy)
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8 * GiB }); // the lists on, the default
        var pool = new HugeTlbPool<Arch.X86_64>(m, new HvoOptimizer<Arch.X86_64>(m, HvoPolicy.Find(policy)!));
        Hstate<Arch.X86_64> h = pool.Hstate(GiB);
        pool.SetNrHugepages(h, 2);
        ulong[] heads = [.. pool.Pages(h).Select(p => p.HeadPfn)];
        pool.SetNrHugepages(h, 0);

        ulong frames = GiB >> m.Layout.PageShift;
        foreach (ulong head in heads)
        {
            for (ulong pfn = head; pfn < head + frames; pfn++)
            {
                Assert.AreNotEqual(FrameOwner.RuntimeVmemmap, m.Pages.Owners[pfn], $"restored vmemmap at pfn 0x{pfn:x}, in the page freed at 0x{head:x}");
            }
        }

        pool.SetNrHugepages(h, 8);
        CollectionAssert.IsSubsetOf(heads, pool.Pages(h).Select(p => p.HeadPfn).ToArray());
    }

    [TestMethod]
    public void PagesAreRestoredLastRemovedFirst()
    {
        foreach (bool batches in new[] { false, true })
        {
            using var r = new PoolRig<Arch.X86_64>(8 * GiB);
            r.Optimizer.OptimizesInBatches = batches;
            Hstate<Arch.X86_64> h = r.H(2UL << 20);
            r.Pool.SetNrHugepages(h, 3);
            ulong[] removal = [.. r.Pool.Pages(h).Select(p => p.HeadPfn)]; // the free list's head first: remove_pool_hugetlb_folio's order

            r.Pool.SetNrHugepages(h, 0);

            CollectionAssert.AreEqual(removal.Reverse().ToArray(), r.Optimizer.Restored.Select(p => p.HeadPfn).ToArray(), $"batches: {batches}");
            r.Check();
        }
    }

    private static ulong Grow8(string policy, bool cycle)
    {
        // The per-CPU lists off, explicitly (hvo.pcp=off): on, as by default, the boot vmemmap frames
        // HVO freed wait on the movable list unmerged, so the cycle's restore steals a block from a
        // free GiB and costs a page (see WithThePerCpuListsTheRestoreLeavesTheFreedGigantPagesAlone).
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8 * GiB, PerCpuPageLists = false });
        var pool = new HugeTlbPool<Arch.X86_64>(m, new HvoOptimizer<Arch.X86_64>(m, HvoPolicy.Find(policy)!));
        Hstate<Arch.X86_64> h = pool.Hstate(GiB);
        if (cycle)
        {
            pool.SetNrHugepages(h, 2);
            pool.SetNrHugepages(h, 0);
        }

        pool.SetNrHugepages(h, 8);
        return h.NrHugePages;
    }
}
