using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Pressure;

/// <summary>
/// The issue's pressure number (docs/ARCHITECTURE.md, "Per-CPU page lists"): /dev/shm filled until the
/// page allocator refuses, then a 1024-page pool of 2 MiB pages shrunk with a known headroom above
/// the watermarks. A restore's order-0 allocations (__GFP_NORETRY) pass get_page_from_freelist's
/// watermark check on NR_FREE_PAGES, which leaves out the per-CPU lists, before each page, and an
/// empty list takes a whole batch out of NR_FREE_PAGES (rmqueue_bulk); direct reclaim makes no
/// progress, so nothing drains the lists. A zone with h pages above its min watermark and lowmem
/// reserve therefore serves 1 + batch * floor((h - 1) / batch) of them (what its list held first
/// too), none when h &lt;= 0. Headroom, batch and the pages one restore allocates are read from the
/// machine and the spec's arithmetic, never typed in.
/// </summary>
[TestClass]
public sealed class PressureTests
{
    private const ulong TwoMiB = 2UL << 20;
    private const ulong Pool = 1024;

    /// <summary>
    /// With the per-CPU lists drained after the slack is unlinked (drain_all_pages, as memory offline
    /// or alloc_contig_range does), the slack is headroom. Before v6.7 each page is restored and then
    /// freed, so the first restore decides: if the zones serve its vmemmap pages every page goes
    /// (the freed 2 MiB page is headroom for the next), else every page stays as surplus, which
    /// takes a zone more than one batch (63 pages) above its mark. From v6.7 every restore comes
    /// first, so served / (pages per restore) pages are restored and freed, the rest stay as surplus.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", 0)]
    [DataRow("v6.1", 12)]
    [DataRow("v6.1", 40)]
    [DataRow("v6.1", 63)]
    [DataRow("v6.1", 64)]
    [DataRow("v6.1", 130)]
    [DataRow("v6.1", 300)]
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
        long freed = Freed(policy, r);
        Assert.AreEqual(Pool - (ulong)freed, r.Surplus, $"headroom {string.Join(", ", r.Headroom.Select(h => $"{h.Key.Name} {h.Value}"))}, {r.PerRestore} per restore");
        Assert.AreEqual(r.Surplus, r.Total, "what was not freed stays in the pool as surplus");
        if (!policy.Batched)
        {
            Assert.AreEqual(r.Headroom.Any(z => z.Value > r.Batches[z.Key]), freed == (long)Pool, "before v6.7: all or nothing, one batch above the mark");
        }
    }

    /// <summary>
    /// Without a drain the unlinked slack waits on CPU 0's movable list, below high: MemFree and the
    /// watermarks do not see it, and a __GFP_NORETRY restore does not drain, so under every policy
    /// every page stays as surplus, with as much slack as frees them all once drained.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1")]
    [DataRow("v7.1")]
    public void TheSlackOnThePerCpuListDoesNotHelpTheRestores(string version)
    {
        Run r = Shrink(HvoPolicy.Find(version)!, 300, drain: false);
        Assert.IsTrue(r.Headroom.Values.All(h => h <= 0), "the fill left every zone at its mark and the slack is on the list");
        Assert.IsTrue(r.SlackOnList >= 300, "the slack waits on the per-CPU list");
        Assert.AreEqual(Pool, r.Surplus);
        Assert.AreEqual(Pool, r.Total);
    }

    /// <summary>
    /// The shipped example's shape (shm-pressure): the slack is unlinked with nothing drained, so it
    /// reaches the buddy lists only as free_pcppages_bulk's batches once CPU 0's count reaches high:
    /// batch at high, then twice the batch one batch later (nr_pcp_free's free_factor). One slack page
    /// short of high + batch leaves the zone a batch at most above its mark, and v6.1 strands the
    /// whole pool as surplus; one page more gives back two batches more and v6.1 frees it all, while
    /// v7.1 restores 9 pages per batch of headroom past the first page.
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", -1)]
    [DataRow("v6.1", 0)]
    [DataRow("v7.1", -1)]
    [DataRow("v7.1", 0)]
    public void AnUndrainedSlackHelpsOnlyOnceItsBatchesReachTheBuddyLists(string version, int pastHighPlusBatch)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        Run r = Shrink(policy, slack => slack!.High + slack.Batch + pastHighPlusBatch, drain: false);

        int batch = r.Batches[r.SlackZone];
        long bulk = pastHighPlusBatch < 0 ? batch : batch + (2L * batch);
        Assert.AreEqual(bulk, r.Headroom[r.SlackZone] - r.HeadroomBeforeSlack, "the batches free_pcppages_bulk gave back");
        Assert.AreEqual(Pool - (ulong)Freed(policy, r), r.Surplus);
        if (!policy.Batched)
        {
            Assert.AreEqual(pastHighPlusBatch < 0 ? Pool : 0, r.Surplus, "a few dozen pages above the mark strand the pool; two batches more free it");
        }
    }

    /// <summary>
    /// With the lists off (hvo.pcp=off) every page freed is in MemFree and each request takes its one
    /// page: a restore needs only its own vmemmap pages of headroom (7 under v6.1).
    /// </summary>
    [TestMethod]
    [DataRow("v6.1", 6)]
    [DataRow("v6.1", 7)]
    [DataRow("v7.1", 12)]
    [DataRow("v7.1", 300)]
    public void WithTheListsOffARestoreNeedsOnlyItsOwnPages(string version, int slackPages)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        Run r = Shrink(policy, slackPages, drain: false, lists: false);
        Assert.AreEqual(slackPages, r.Headroom[r.SlackZone], "the slack is headroom at once");
        long freed = Freed(policy, r);
        Assert.AreEqual(Pool - (ulong)freed, r.Surplus);
        Assert.AreEqual(policy.Batched ? slackPages / r.PerRestore : slackPages >= r.PerRestore ? (long)Pool : 0, freed);
    }

    // What the zones serve a run of __GFP_NORETRY order-0 requests (the per-CPU lists empty at the
    // start), and from it the pages a shrink frees.
    private static long Freed(HvoPolicy policy, Run r)
    {
        long served = r.Headroom.Sum(h => h.Value <= 0 ? 0 : 1 + (r.Batches[h.Key] * ((h.Value - 1) / r.Batches[h.Key])));
        return policy.Batched ? Math.Min((long)Pool, served / r.PerRestore) : served >= r.PerRestore ? (long)Pool : 0;
    }

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
        var pool = new HugeTlbPool<Arch.X86_64>(m, new HvoOptimizer<Arch.X86_64>(m, policy));
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
            pool.NrHugepages(h));
        shm.Unlink("fill");
        Assert.AreEqual(0, m.Owners.Count(FrameOwner.Shmem), "unlinking gives every shmem page back");
        Assert.IsTrue(m.OwnersAddUp());
        return run;
    }

    private sealed record Run(
        Dictionary<Zone, long> Headroom, long HeadroomBeforeSlack, Zone SlackZone, long SlackOnList, Dictionary<Zone, int> Batches, long PerRestore, ulong Surplus, ulong Total);
}
