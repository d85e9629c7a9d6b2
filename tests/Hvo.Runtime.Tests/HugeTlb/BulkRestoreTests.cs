using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// update_and_free_pages_bulk's restore pass (docs/ARCHITECTURE.md §5): before v6.7 each restore
/// flushes its own range; from v6.7 (the batching series) hugetlb_vmemmap_restore_folios restores
/// with no flush and ends with one flush_tlb_all, only when it restored a page.
/// </summary>
[TestClass]
public sealed class BulkRestoreTests
{
    private const ulong TwoMiB = 2UL << 20;
    private const ulong Pages = 8;

    [TestMethod]
    [DataRow("v6.6")]
    [DataRow("v6.7")]
    [DataRow("v6.12")]
    [DataRow("v7.1")]
    public void AShrinkFlushesEachRestoreBeforeV67AndTheWholeBatchOnceFrom(string version)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        (long range, long full, ulong left) = ShrinkFlushes(policy, hvoWhileGrowing: true);

        Assert.AreEqual(0UL, left, "no pressure: every page is freed");
        Assert.AreEqual(policy.Batched ? 0 : (long)Pages, range, "x86-64's direct writer leaves each restore's flush to its caller");
        Assert.AreEqual(policy.Batched ? 1 : 0, full);
    }

    [TestMethod]
    [DataRow("v6.7")]
    [DataRow("v7.1")]
    public void ABatchOfPagesNotOptimizedRestoresNothingAndFlushesNothing(string version)
    {
        (long range, long full, ulong left) = ShrinkFlushes(HvoPolicy.Find(version)!, hvoWhileGrowing: false);

        Assert.AreEqual(0UL, left);
        Assert.AreEqual(0, range);
        Assert.AreEqual(0, full, "folio_test_hugetlb_vmemmap_optimized is false for each: restored stays 0, no flush_tlb_all");
    }

    // Grow a pool of 2 MiB pages (HVO on or off while growing, on while shrinking), shrink it to 0:
    // the flushes the shrink made, and the pages left.
    private static (long Range, long Full, ulong Left) ShrinkFlushes(HvoPolicy policy, bool hvoWhileGrowing)
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 1UL << 30, Strict = true });
        var optimizer = new HvoOptimizer<Arch.X86_64>(m, policy);
        var pool = new HugeTlbPool<Arch.X86_64>(m, optimizer);
        Hstate<Arch.X86_64> h = pool.Hstate(TwoMiB);
        optimizer.Switches.Sysctl = hvoWhileGrowing;
        pool.SetNrHugepages(h, Pages);
        Assert.AreEqual(hvoWhileGrowing ? (long)Pages : 0, optimizer.Total.OptimizedPages);
        optimizer.Switches.Sysctl = true;

        (long range, long full) = (optimizer.Total.TlbRangeFlushes, optimizer.Total.TlbFullFlushes);
        pool.SetNrHugepages(h, 0);
        Assert.IsTrue(m.OwnersAddUp());
        Assert.AreEqual(0, m.Owners.Count(FrameOwner.HugePage));
        return (optimizer.Total.TlbRangeFlushes - range, optimizer.Total.TlbFullFlushes - full, pool.NrHugepages(h));
    }
}
