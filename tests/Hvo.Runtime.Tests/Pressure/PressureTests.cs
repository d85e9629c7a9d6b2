using System;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Pressure;

/// <summary>
/// The pressure number (docs/ARCHITECTURE.md §5): /dev/shm filled until the page allocator
/// refuses, then a 1024-page pool of 2 MiB pages shrunk with a known headroom above the watermarks.
/// The headroom is measured from the zones' min watermarks and lowmem reserves, never typed in; the
/// threshold is the vmemmap pages one restore allocates, from the spec's arithmetic.
/// </summary>
[TestClass]
public sealed class PressureTests
{
    private const ulong TwoMiB = 2UL << 20;
    private const ulong Pool = 1024;

    /// <summary>
    /// Before v6.7 each page is restored and then freed, so the first restore decides: with less
    /// headroom than its vmemmap pages every page stays as surplus, with as much every page goes.
    /// From v6.7 every restore comes first and the pass stops at the first failure
    /// (hugetlb_vmemmap_restore_folios); bulk_vmemmap_restore_error frees what it restored, whose
    /// huge pages give their memory back, and the pass runs again: the same threshold, reached in
    /// more passes, each failing once. With nothing restored it tries every page alone, one more
    /// failure each, and keeps them all as surplus.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", 0)]
    [DataRow("v6.1", 4)]
    [DataRow("v6.1", 6)]
    [DataRow("v6.1", 7)]
    [DataRow("v6.1", 8)]
    [DataRow("v6.1", 12)]
    [DataRow("v6.6", 6)]
    [DataRow("v6.6", 12)]
    [DataRow("v6.7", 6)]
    [DataRow("v6.7", 12)]
    [DataRow("v6.12", 12)]
    [DataRow("v7.1", 6)]
    [DataRow("v7.1", 12)]
    [DataRow("v7.1", 300)]
    public void ShrinkingUnderPressureFreesWhatTheHeadroomAboveTheMinWatermarkCanRestore(string version, int slackPages)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        long perRestore = (long)HugePageVmemmap.For(Arch.X86_64.Info, TwoMiB).FreedPages(policy.ReservePages);
        (long headroom, long memFreeAboveMin, ulong surplus, ulong total, long restoreFailures) = Shrink(policy, slackPages);

        Assert.IsTrue(headroom >= 0 && headroom <= slackPages, $"the fill leaves no headroom of its own beyond the slack: {headroom}");
        Assert.IsTrue(memFreeAboveMin <= headroom, "the slack freed last sits on the per-CPU list, where MemFree does not count it");
        long freed = headroom >= perRestore ? (long)Pool : 0;
        Assert.AreEqual((ulong)(Pool - (ulong)freed), surplus, $"headroom {headroom} pages, {perRestore} per restore");
        Assert.AreEqual(surplus, total, "what was not freed stays in the pool as surplus");
        Assert.AreEqual(ExpectedRestoreFailures(policy.Batched, headroom, perRestore), restoreFailures, $"headroom {headroom} pages, {perRestore} per restore");
    }

    /// <summary>
    /// The failed restores a shrink of <see cref="Pool"/> pages makes with <paramref name="headroom"/>
    /// pages to allocate from, each restore taking <paramref name="perRestore"/> and each freed huge
    /// page giving its frames back. Before v6.7 each page fails alone or none does. From v6.7 a pass
    /// restores what the headroom allows and fails once on the next page; what it restored is freed
    /// before the next pass. A first pass that restores nothing tries every page alone once more.
    /// </summary>
    private static long ExpectedRestoreFailures(bool batched, long headroom, long perRestore)
    {
        if (headroom < perRestore)
        {
            return batched ? (long)Pool + 1 : (long)Pool;
        }

        if (!batched)
        {
            return 0;
        }

        long framesPerPage = (long)(TwoMiB / Arch.X86_64.PageSize), left = (long)Pool, free = headroom, failures = 0;
        while (free / perRestore < left)
        {
            long restored = free / perRestore;
            failures++;
            left -= restored;
            free += restored * (framesPerPage - perRestore);
        }

        return failures;
    }

    /// <summary>
    /// One run: boot 4 GiB with per-CPU lists, grow the pool, write a slack file of
    /// <paramref name="slackPages"/> pages, fill /dev/shm until the allocator refuses, unlink the
    /// slack, then shrink the pool to 0. Headroom: over the zones a GFP_KERNEL request may use, the
    /// free pages (buddy and per-CPU lists) above min plus the lowmem reserve for ZONE_NORMAL.
    /// </summary>
    private static (long Headroom, long MemFreeAboveMin, ulong Surplus, ulong Total, long RestoreFailures) Shrink(HvoPolicy policy, int slackPages)
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 4UL << 30, PerCpuPageLists = true, Strict = true });
        var optimizer = new HvoOptimizer<Arch.X86_64>(m, policy);
        var pool = new HugeTlbPool<Arch.X86_64>(m, optimizer);
        Hstate<Arch.X86_64> h = pool.Hstate(TwoMiB);
        pool.SetNrHugepages(h, Pool);
        Assert.AreEqual(Pool, pool.NrHugepages(h));

        var shm = new Shmem(m.Pages, 0);
        ulong page = Arch.X86_64.PageSize;
        Assert.AreEqual(ShmemStatus.Ok, shm.Append(shm.Open("slack", append: false), (ulong)slackPages * page, null, out _));
        Assert.AreEqual(ShmemStatus.NoMemory, shm.Append(shm.Open("fill", append: false), m.MemTotalBytes, null, out _));
        Assert.IsTrue(shm.Unlink("slack"));

        int normal = m.Layout.Zones.Count - 1;
        long headroom = 0, memFree = 0;
        foreach (Zone zone in m.Pages.Zones.Where(z => z.IsPopulated && z.Index <= normal))
        {
            long mark = zone.MinWatermark + zone.LowmemReserve[normal];
            headroom += Math.Max(0, zone.FreePages + m.Pages.Pageset(zone, 0).Count - mark);
            memFree += Math.Max(0, zone.FreePages - mark);
        }

        pool.SetNrHugepages(h, 0);
        ulong surplus = pool.SurplusHugepages(h), total = pool.NrHugepages(h);
        shm.Unlink("fill");
        Assert.AreEqual(0, m.Owners.Count(FrameOwner.Shmem), "unlinking gives every shmem page back");
        return (headroom, memFree, surplus, total, optimizer.Total.RestoreFailures);
    }
}
