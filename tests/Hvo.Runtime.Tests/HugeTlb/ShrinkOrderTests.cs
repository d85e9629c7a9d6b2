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

    /// <summary>The 8 GiB gigantic pool cycle with the per-CPU lists off (README, "Per-CPU page lists"): 8 GiB of x86-64, a 1 GiB pool grown to 2 and shrunk to 0 first, then 8 asked for.</summary>
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

    /// <summary>
    /// Both sides of the 8 GiB gigantic pool cycle (README, "Per-CPU page lists"), with the reason: after the cycle, `echo 8` gets exactly the
    /// gigantic pages a fresh boot gets, less those whose GiB holds vmemmap pages (unmovable:
    /// alloc_contig_range cannot take the GiB). With the lists off (v6.7 on) the vmemmap HVO freed
    /// merged back in the buddy lists, at the head of the max-order list, and the restore's unmovable
    /// requests steal those blocks back: no GiB is lost. With the lists on the freed vmemmap waits on
    /// the CPU's movable list, where an unmovable request cannot take it (rmqueue_pcplist serves the
    /// list of its migrate type), so __rmqueue_fallback steals the largest order's first block: a
    /// max-order block of a GiB a fresh boot takes. From v6.2 that GiB stays lost: `echo 8`'s head
    /// copies (11aad2631bf7) are unmovable order-0 pages too, served from what the steal left on the
    /// unmovable lists. Before v6.2 nothing is lost with the lists on either: regrowing frees the
    /// restored vmemmap frames again, and the next allocation scans from the zone's start.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", true)]
    [DataRow("v6.1", false)]
    [DataRow("v6.2", true)]
    [DataRow("v6.6", false)]
    [DataRow("v6.7", true)]
    [DataRow("v6.7", false)]
    [DataRow("v7.1", true)]
    [DataRow("v7.1", false)]
    public void AfterACycleEchoEightGetsTheFreshGigantPagesLessThoseHoldingVmemmap(string policy, bool lists)
    {
        ulong[] fresh = Grow8Heads(policy, lists, cycle: false, out _, out _);
        ulong[] cycled = Grow8Heads(policy, lists, cycle: true, out ulong[] pinned, out long movableOnList);

        CollectionAssert.AreEquivalent(fresh.Except(pinned).ToArray(), cycled, $"fresh {Hex(fresh)}, vmemmap in {Hex(pinned)}");
        Assert.AreEqual(lists, movableOnList > 0, "with the lists on the vmemmap HVO freed waits on the movable list when the restores run");
        HvoPolicy hvo = HvoPolicy.Find(policy)!;
        bool headCopies = hvo.Version is { } v && new KernelVersion(6, 2) <= v; // 11aad2631bf7
        bool loses = headCopies && (lists || !hvo.Batched);
        Assert.AreEqual(loses, fresh.Intersect(pinned).Any(), "before v6.2 nothing is lost; v6.2-v6.6 lose a GiB either way; from v6.7 only with the lists on");
    }

    private static string Hex(ulong[] pfns) => string.Join(" ", pfns.Select(p => $"0x{p:x}"));

    // The heads of the 1 GiB pages `echo 8` gets on 8 GiB (after `echo 2`, `echo 0` when cycle), the
    // GiBs holding runtime vmemmap pages (restored ones, head copies) after it, and the pages on the
    // movable per-CPU lists when the shrink began.
    private static ulong[] Grow8Heads(string policy, bool lists, bool cycle, out ulong[] pinned, out long movableOnList)
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8 * GiB, PerCpuPageLists = lists });
        var pool = new HugeTlbPool<Arch.X86_64>(m, new HvoOptimizer<Arch.X86_64>(m, HvoPolicy.Find(policy)!));
        Hstate<Arch.X86_64> h = pool.Hstate(GiB);
        movableOnList = 0;
        if (cycle)
        {
            pool.SetNrHugepages(h, 2);
            movableOnList = m.Pages.Zones.Where(z => z.Pagesets.Length > 0).Sum(z => (long)z.Pagesets[0].Lists[(int)MigrateType.Movable].Count);
            pool.SetNrHugepages(h, 0);
        }

        pool.SetNrHugepages(h, 8);
        ulong frames = GiB >> m.Layout.PageShift;
        var gibs = new System.Collections.Generic.SortedSet<ulong>();
        for (ulong pfn = m.Owners.FirstPfn; pfn < m.Owners.EndPfn; pfn++)
        {
            if (m.Owners[pfn] == FrameOwner.RuntimeVmemmap)
            {
                gibs.Add(pfn & ~(frames - 1));
            }
        }

        pinned = [.. gibs];
        return [.. pool.Pages(h).Select(p => p.HeadPfn)];
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
