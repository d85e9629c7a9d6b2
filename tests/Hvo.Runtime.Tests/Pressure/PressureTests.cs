using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Pressure;

/// <summary>
/// The pressure thresholds (README, "/dev/shm and memory pressure"; docs/ARCHITECTURE.md, "Per-CPU page lists"): /dev/shm filled until the
/// page allocator refuses, then a 1024-page pool of 2 MiB pages shrunk with a known headroom above
/// the watermarks. A restore's order-0 allocations (__GFP_NORETRY) pass get_page_from_freelist's
/// watermark check on NR_FREE_PAGES, which leaves out the per-CPU lists, before each page, and an
/// empty list takes a whole batch out of NR_FREE_PAGES (rmqueue_bulk); direct reclaim makes no
/// progress, so nothing drains the lists. A zone with h pages above its min watermark and lowmem
/// reserve therefore serves 1 + batch * floor((h - 1) / batch) of them (what its list held first
/// too), none when h &lt;= 0. Headroom, batch and the pages one restore allocates are read from the
/// machine and the spec's arithmetic, never typed in.
/// Before v6.7 each page is restored and then freed, so the first restore decides: if the zones serve
/// its vmemmap pages every page goes (the freed huge page is headroom for the next), else every page
/// stays as surplus. From v6.7 the restores come first and the pass stops at the first failure
/// (hugetlb_vmemmap_restore_folios); bulk_vmemmap_restore_error frees the k pages restored, which
/// gives k huge pages' frames back, and the pass runs again: once one pass restores a page the rest
/// follow, so the threshold is the same, reached in more passes that each fail once. With nothing
/// restored it tries every page alone, one failure more each, and keeps them all as surplus.
/// </summary>
[TestClass]
public sealed class PressureTests
{
    private const ulong TwoMiB = 2UL << 20;
    private const ulong Pool = 1024;

    /// <summary>
    /// With the per-CPU lists drained after the slack is unlinked (drain_all_pages, as memory offline
    /// or alloc_contig_range does), the slack is headroom. The first restore needs its vmemmap pages
    /// served, which takes a zone more than one batch (63 pages) above its mark, in every version.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", 0)]
    [DataRow("v6.1", 12)]
    [DataRow("v6.1", 40)]
    [DataRow("v6.1", 63)]
    [DataRow("v6.1", 64)]
    [DataRow("v6.1", 130)]
    [DataRow("v6.1", 300)]
    [DataRow("v6.6", 63)]
    [DataRow("v6.6", 64)]
    [DataRow("v6.7", 63)]
    [DataRow("v6.7", 64)]
    [DataRow("v6.7", 130)]
    [DataRow("v6.12", 64)]
    [DataRow("v7.1", 12)]
    [DataRow("v7.1", 63)]
    [DataRow("v7.1", 64)]
    [DataRow("v7.1", 130)]
    [DataRow("v7.1", 300)]
    public void ShrinkingUnderPressureFreesWhatTheHeadroomAboveTheMinWatermarkServes(string version, int slackPages)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        Run r = Shrink(policy, slackPages, drain: true);

        Assert.AreEqual(slackPages, r.Headroom[r.SlackZone], "the fill leaves the zone at its mark, and the drained slack is the headroom");
        Assert.IsTrue(r.Headroom.Where(z => z.Key != r.SlackZone).All(z => z.Value <= 0), "no other zone has any");
        long freed = Freed(r);
        Assert.AreEqual(Pool - (ulong)freed, r.Surplus, $"headroom {string.Join(", ", r.Headroom.Select(h => $"{h.Key.Name} {h.Value}"))}, {r.PerRestore} per restore");
        Assert.AreEqual(r.Surplus, r.Total, "what was not freed stays in the pool as surplus");
        Assert.AreEqual(r.Headroom.Any(z => z.Value > r.Batches[z.Key]), freed == (long)Pool, "all or nothing, one batch above the mark");
        AssertRestoreFailures(policy, r, freed);
    }

    /// <summary>
    /// The failed restores of a shrink with the lists on. Nothing freed: every page failed once
    /// (v6.7+: once more, the pass that stopped at the first page). Everything freed: none before
    /// v6.7; from v6.7 at least the first pass failed (it restores served / per-restore pages, fewer
    /// than the pool), and each pass restores about framesPerPage / perRestore times what the one
    /// before freed, so the passes are few: not one per page, as a retry that made no progress would be.
    /// </summary>
    private static void AssertRestoreFailures(HvoPolicy policy, Run r, long freed)
    {
        if (freed == 0)
        {
            Assert.AreEqual((long)Pool + (policy.Batched ? 1 : 0), r.RestoreFailures);
            return;
        }

        if (!policy.Batched)
        {
            Assert.AreEqual(0, r.RestoreFailures);
            return;
        }

        Assert.IsTrue(Served(r) / r.PerRestore < (long)Pool, "the first pass cannot restore the whole pool");
        double growth = (double)(TwoMiB / Arch.X86_64.PageSize) / r.PerRestore;
        long passes = 1 + (long)Math.Ceiling(Math.Log(Pool) / Math.Log(growth));
        Assert.IsTrue(r.RestoreFailures >= 1 && r.RestoreFailures <= passes, $"{r.RestoreFailures} failed passes, at most {passes}");
    }

    /// <summary>
    /// Without a drain the unlinked slack waits on CPU 0's movable list, below high: MemFree and the
    /// watermarks do not see it, and a __GFP_NORETRY restore does not drain, so under every policy
    /// every page stays as surplus, with as much slack as frees them all once drained.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1")]
    [DataRow("v6.7")]
    [DataRow("v7.1")]
    public void TheSlackOnThePerCpuListDoesNotHelpTheRestores(string version)
    {
        Run r = Shrink(HvoPolicy.Find(version)!, 300, drain: false);
        Assert.IsTrue(r.Headroom.Values.All(h => h <= 0), "the fill left every zone at its mark and the slack is on the list");
        Assert.IsTrue(r.SlackOnList >= 300, "the slack waits on the per-CPU list");
        Assert.AreEqual(Pool, r.Surplus);
        Assert.AreEqual(Pool, r.Total);
        AssertRestoreFailures(HvoPolicy.Find(version)!, r, 0);
    }

    /// <summary>
    /// The shipped example's shape (shm-pressure): the slack is unlinked with nothing drained, so it
    /// reaches the buddy lists only as free_pcppages_bulk's batches once CPU 0's count reaches high:
    /// batch at high, then twice the batch one batch later (nr_pcp_free's free_factor). One slack page
    /// short of high + batch leaves the zone a batch at most above its mark, and every version strands
    /// the whole pool as surplus; one page more gives back two batches more and every version frees
    /// it all (from v6.7 after a pass that restores what those batches serve and frees it).
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", -1)]
    [DataRow("v6.1", 0)]
    [DataRow("v6.6", -1)]
    [DataRow("v6.6", 0)]
    [DataRow("v6.7", -1)]
    [DataRow("v6.7", 0)]
    [DataRow("v7.1", -1)]
    [DataRow("v7.1", 0)]
    public void AnUndrainedSlackHelpsOnlyOnceItsBatchesReachTheBuddyLists(string version, int pastHighPlusBatch)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        Run r = Shrink(policy, slack => slack!.High + slack.Batch + pastHighPlusBatch, drain: false);

        int batch = r.Batches[r.SlackZone];
        long bulk = pastHighPlusBatch < 0 ? batch : batch + (2L * batch);
        Assert.AreEqual(bulk, r.Headroom[r.SlackZone] - r.HeadroomBeforeSlack, "the batches free_pcppages_bulk gave back");
        Assert.AreEqual(Pool - (ulong)Freed(r), r.Surplus);
        Assert.AreEqual(pastHighPlusBatch < 0 ? Pool : 0, r.Surplus, "a few dozen pages above the mark strand the pool; two batches more free it");
        AssertRestoreFailures(policy, r, (long)(Pool - r.Surplus));
    }

    /// <summary>
    /// With the lists off (hvo.pcp=off) every page freed is in MemFree and each request takes its one
    /// page: a restore needs only its own vmemmap pages of headroom (7 for a 2 MiB page), in every
    /// version; from v6.7 the passes follow the headroom exactly (<see cref="ExpectedRestoreFailures"/>).
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", 6)]
    [DataRow("v6.1", 7)]
    [DataRow("v6.6", 6)]
    [DataRow("v6.6", 12)]
    [DataRow("v6.7", 6)]
    [DataRow("v6.7", 7)]
    [DataRow("v6.7", 12)]
    [DataRow("v7.1", 6)]
    [DataRow("v7.1", 12)]
    [DataRow("v7.1", 300)]
    public void WithTheListsOffARestoreNeedsOnlyItsOwnPages(string version, int slackPages)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        Run r = Shrink(policy, slackPages, drain: false, lists: false);
        Assert.AreEqual(slackPages, r.Headroom[r.SlackZone], "the slack is headroom at once");
        long freed = Freed(r);
        Assert.AreEqual(Pool - (ulong)freed, r.Surplus);
        Assert.AreEqual(slackPages >= r.PerRestore ? (long)Pool : 0, freed);
        Assert.AreEqual(ExpectedRestoreFailures(policy.Batched, slackPages, r.PerRestore), r.RestoreFailures, $"headroom {slackPages} pages, {r.PerRestore} per restore");
    }

    /// <summary>
    /// The failed restores a shrink of <see cref="Pool"/> pages makes with the lists off and
    /// <paramref name="headroom"/> pages to allocate from, each restore taking
    /// <paramref name="perRestore"/> and each freed huge page giving its frames back. Before v6.7
    /// each page fails alone or none does. From v6.7 a pass restores what the headroom allows and
    /// fails once on the next page; what it restored is freed before the next pass. A first pass
    /// that restores nothing tries every page alone once more.
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

    // What the zones serve a run of __GFP_NORETRY order-0 requests (the per-CPU lists empty at the
    // start).
    private static long Served(Run r) =>
        r.Headroom.Sum(h => h.Value <= 0 ? 0 : 1 + (r.Batches[h.Key] * ((h.Value - 1) / r.Batches[h.Key])));

    // The pages a shrink frees: all once the first restore is served (before v6.7 each freed page is
    // headroom for the next; from v6.7 each pass's freed pages are for the next pass), else none.
    private static long Freed(Run r) => Served(r) >= r.PerRestore ? (long)Pool : 0;

    private static Run Shrink(HvoPolicy policy, int slackPages, bool drain, bool lists = true) => Shrink(policy, _ => slackPages, drain, lists);

    /// <summary>
    /// One run: boot 4 GiB, grow the pool, write a slack file (its size from the pageset of the zone
    /// the slack will come from), fill /dev/shm until the allocator refuses (that drains every list),
    /// unlink the slack, drain the lists or not, then shrink the pool to 0. Headroom of a zone a
    /// GFP_KERNEL request may use: NR_FREE_PAGES above min plus the lowmem reserve for ZONE_NORMAL.
    /// </summary>
    private static Run Shrink(HvoPolicy policy, Func<PerCpuPages?, int> slackPages, bool drain, bool lists = true)
    {
        using var m = Machine<Arch.X86_64>.Boot(lists
            ? new MachineConfig { MemoryBytes = 4UL << 30, Strict = true }
            : new MachineConfig { MemoryBytes = 4UL << 30, Strict = true, PerCpuPageLists = false });
        Assert.AreEqual(lists, m.Pages.Cpus > 0, "the per-CPU lists are on by default");
        PerCpuPages? Pageset(Zone z) => lists ? m.Pages.Pageset(z, 0) : null;
        var optimizer = new HvoOptimizer<Arch.X86_64>(m, policy);
        var pool = new HugeTlbPool<Arch.X86_64>(m, optimizer);
        Hstate<Arch.X86_64> h = pool.Hstate(TwoMiB);
        pool.SetNrHugepages(h, Pool);
        Assert.AreEqual(Pool, pool.NrHugepages(h));

        int normal = m.Layout.Zones.Count - 1;
        Zone[] zones = [.. m.Pages.Zones.Where(z => z.IsPopulated && z.Index <= normal)];
        long Free(Zone z) => z.FreePages + (Pageset(z)?.Count ?? 0);
        long HeadroomOf(Zone z) => z.FreePages - (z.MinWatermark + z.LowmemReserve[normal]);

        // The slack comes from the first zone of the zonelist above its min watermark.
        Zone first = zones.Last(z => HeadroomOf(z) > 0);
        int slack = slackPages(Pageset(first));
        Dictionary<Zone, long> before = zones.ToDictionary(z => z, Free);
        var shm = new Shmem(m.Pages, 0);
        ulong page = Arch.X86_64.PageSize;
        Assert.AreEqual(ShmemStatus.Ok, shm.Append(shm.Open("slack", append: false), (ulong)slack * page, null, out _));
        Assert.IsTrue(zones.All(z => before[z] - Free(z) == (z == first ? slack : 0)), "the slack came from one zone, the one expected");
        Assert.AreEqual(ShmemStatus.NoMemory, shm.Append(shm.Open("fill", append: false), m.MemTotalBytes, null, out _));
        Assert.AreEqual(0, m.Pages.PcpPages, "the fill's last attempt drained the lists");
        long headroomBefore = HeadroomOf(first);
        Assert.IsTrue(zones.All(z => HeadroomOf(z) <= 0), "the fill left every zone at its mark");

        Assert.IsTrue(shm.Unlink("slack"));
        long onList = m.Pages.PcpPages;
        if (drain)
        {
            m.Pages.DrainAllPages();
        }

        Dictionary<Zone, long> headroom = zones.ToDictionary(z => z, HeadroomOf);
        pool.SetNrHugepages(h, 0);
        var run = new Run(
            headroom,
            headroomBefore,
            first,
            onList,
            zones.ToDictionary(z => z, z => Pageset(z)?.Batch ?? 1), // without lists each request takes its one page
            (long)HugePageVmemmap.For(Arch.X86_64.Info, TwoMiB).FreedPages(policy.ReservePages),
            pool.SurplusHugepages(h),
            pool.NrHugepages(h),
            optimizer.Total.RestoreFailures);
        shm.Unlink("fill");
        Assert.AreEqual(0, m.Owners.Count(FrameOwner.Shmem), "unlinking gives every shmem page back");
        Assert.IsTrue(m.OwnersAddUp());
        return run;
    }

    private sealed record Run(
        Dictionary<Zone, long> Headroom, long HeadroomBeforeSlack, Zone SlackZone, long SlackOnList, Dictionary<Zone, int> Batches, long PerRestore, ulong Surplus, ulong Total, long RestoreFailures);
}
