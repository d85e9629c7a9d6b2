using System.Linq;
using Hvo.HugeTlb;

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
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8 * GiB });
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
