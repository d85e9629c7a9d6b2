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
    /// The versions where the cycle costs nothing: before v6.2 (no head copy) and from v6.7 (the
    /// batch restored before any page is freed). From v6.2 to v6.6 the second page's restore takes
    /// its vmemmap from the memory of the page freed just before it (the head of the max-order free
    /// list), and the head copies of the next growth keep that GiB (see
    /// AfterACycleEchoEightGetsTheFreshGigantPagesLessThoseHoldingVmemmap).
    /// </summary>
    public static System.Collections.Generic.IEnumerable<object[]> Policies =>
        HvoPolicy.Kernel.Where(p => p.Batched || !p.CopyHead).Select(p => new object[] { p.Name });

    /// <summary>
    /// The 8 GiB gigantic pool cycle (README, "Per-CPU page lists"): 8 GiB of x86-64, a 1 GiB pool
    /// grown to 2 and shrunk to 0 first, then 8 asked for, as on a fresh boot; the per-CPU lists on
    /// or off.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(Policies))]
    public void EchoEightAfterACycleGetsAsManyGigantPagesAsOnAFreshBoot(string policy)
    {
        Assert.AreEqual(Grow8(policy, cycle: false, lists: true), Grow8(policy, cycle: true, lists: true), "the lists on");
        Assert.AreEqual(Grow8(policy, cycle: false, lists: false), Grow8(policy, cycle: true, lists: false), "the lists off");
    }

    /// <summary>
    /// What Debian's 6.1.192 and 6.12.107 gave on QEMU (8 GiB, 2 CPUs, nokaslr; README, "Per-CPU
    /// page lists", has the command line): `echo 8` gets 4 on a fresh boot and 4 after the cycle,
    /// run after run. The reference numbers are measurements, not arithmetic.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", 4UL, 4UL)]
    [DataRow("v6.12", 4UL, 4UL)]
    public void EchoEightMatchesTheMeasuredKernels(string policy, ulong measuredFresh, ulong measuredAfterCycle)
    {
        Assert.AreEqual(measuredFresh, Grow8(policy, cycle: false, lists: true), "fresh boot");
        Assert.AreEqual(measuredAfterCycle, Grow8(policy, cycle: true, lists: true), "after echo 2, echo 0");
    }

    /// <summary>The versions that restore the whole batch before freeing any page (v6.7 on).</summary>
    public static System.Collections.Generic.IEnumerable<object[]> BatchedPolicies => HvoPolicy.Kernel.Where(p => p.Batched).Select(p => new object[] { p.Name });

    /// <summary>
    /// With the batch restored first and the per-CPU lists on, the restore takes nothing from the
    /// GiBs the cycle freed, and the regrown pool gets both back.
    /// </summary>
    [TestMethod]
    [DynamicData(nameof(BatchedPolicies))]
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
    /// alloc_contig_range cannot take the GiB). The kernel's own boot allocations already pinned the
    /// lowest Normal GiB (README, "The kernel's own memory at boot"), so a restore that steals the
    /// first max-order block of the movable list (__rmqueue_fallback) steals there or in the top GiB
    /// (the boot vmemmap HVO freed), both GiBs a fresh boot cannot take either, whether the freed
    /// vmemmap waits on the movable per-CPU list or merged back. Only where a page is restored after
    /// the page before it went back to the buddy (each page restored then freed: v6.2 to v6.6) does
    /// the second restore steal from the GiB just freed, at the head of the max-order list; `echo 8`'s
    /// head copies (11aad2631bf7, unmovable order-0 pages) are then served from what that steal left
    /// on the unmovable lists, and the GiB stays lost. Before v6.2 regrowing frees the restored vmemmap
    /// frames again and nothing pins it; from v6.7 the batch is restored before any page is freed.
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
        bool loses = headCopies && !hvo.Batched;
        Assert.AreEqual(loses, fresh.Intersect(pinned).Any(), "only v6.2-v6.6 lose a GiB: head copies, and each page restored after the one before was freed");
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

    private static ulong Grow8(string policy, bool cycle, bool lists)
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8 * GiB, PerCpuPageLists = lists });
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
