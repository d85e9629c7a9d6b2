using System;
using System.Linq;
using Hvo.Memory;
using Hvo.Runtime.Tests.Scenario;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>Per-CPU page lists for order 0 (docs/ARCHITECTURE.md §5): high and batch, refills, frees in batches, the drain before failing.</summary>
[TestClass]
public sealed class PcpTests
{
    private static Machine<Arch.X86_64> Boot(ulong gib, int cpus = 2, int nodes = 1) =>
        Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = gib << 30, Cpus = cpus, Nodes = nodes, PerCpuPageLists = true, Strict = true });

    private static Zone Normal(Machine<Arch.X86_64> m) => m.Pages.Zones.Last(z => z.IsPopulated && z.Index < m.Pages.MovableZone);

    /// <summary>zone_batchsize and zone_highsize (percpu_pagelist_high_fraction 0): 63 and the low watermark over the node's CPUs for a zone of 1 GiB or more.</summary>
    [TestMethod]
    [DataRow(4, 2, 1)]
    [DataRow(8, 4, 2)]
    [DataRow(1, 1, 1)]
    public void HighAndBatchAreTheKernels(int gib, int cpus, int nodes)
    {
        using var m = Boot((ulong)gib, cpus, nodes);
        foreach (Zone zone in m.Pages.Zones.Where(z => z.IsPopulated))
        {
            long quarter = Math.Max(1, Math.Min(zone.ManagedPages / 1024, 256) / 4);
            long scaled = quarter + (quarter / 2);
            long pow = 1;
            while (pow * 2 <= scaled)
            {
                pow *= 2;
            }

            int batch = (int)Math.Max(1, pow - 1);
            int local = Enumerable.Range(0, cpus).Count(c => c % nodes == zone.Node);
            for (int cpu = 0; cpu < cpus; cpu++)
            {
                PerCpuPages pcp = m.Pages.Pageset(zone, cpu);
                Assert.AreEqual(batch, pcp.Batch, zone.ToString());
                Assert.AreEqual(Math.Max(zone.LowWatermark / local, 4L * batch), pcp.High, zone.ToString());
            }

            Assert.IsTrue(zone.ManagedPages < 1 << 18 || m.Pages.Pageset(zone, 0).Batch == 63, "a zone of 1 GiB or more batches 63 pages");
        }

        m.Pages.PercpuPagelistHighFraction = 8;
        Zone normal = Normal(m);
        Assert.AreEqual(Math.Max(normal.ManagedPages / 8 / Enumerable.Range(0, cpus).Count(c => c % nodes == normal.Node), 4L * m.Pages.Pageset(normal, 0).Batch), m.Pages.Pageset(normal, 0).High);
    }

    [TestMethod]
    public void AnOrderZeroAllocationTakesABatchAndFreesGoBackInBatchesAtHigh()
    {
        using var m = Boot(4);
        m.Pages.DrainAllPages(); // from empty lists: the kernel's own boot allocations left a part of a batch there
        Zone normal = Normal(m);
        PerCpuPages pcp = m.Pages.Pageset(normal, 0);
        long free0 = m.Pages.NrFreePages;

        Assert.IsTrue(m.Pages.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong first));
        Assert.AreEqual(free0 - pcp.Batch, m.Pages.NrFreePages, "rmqueue_bulk took a batch off the buddy lists");
        Assert.AreEqual(pcp.Batch - 1, pcp.Count);
        Assert.AreEqual(0, m.Pages.Pageset(normal, 1).Count, "the other CPU's list stays empty");

        var pages = new System.Collections.Generic.List<ulong> { first };
        for (int i = 1; i < pcp.High + pcp.Batch; i++)
        {
            Assert.IsTrue(m.Pages.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong p));
            pages.Add(p);
        }

        long before = m.Pages.NrFreePages;
        int count = pcp.Count;
        foreach (ulong p in pages.Take(pcp.High - count - 1))
        {
            m.Pages.FreePages(p, 0, FrameOwner.Buddy);
        }

        Assert.AreEqual(before, m.Pages.NrFreePages, "below high every free stays on the list, out of MemFree");
        Assert.AreEqual(pcp.High - 1, pcp.Count);
        m.Pages.FreePages(pages[pcp.High - count - 1], 0, FrameOwner.Buddy);
        Assert.AreEqual(before + pcp.Batch, m.Pages.NrFreePages, "reaching high gives a batch back (free_factor 0)");
        Assert.AreEqual(pcp.High - pcp.Batch, pcp.Count);
        Assert.AreEqual(m.Owners.Count(FrameOwner.Free), m.Pages.NrFreePages + m.Pages.PcpPages, "pages on the lists are free frames MemFree does not count");

        m.Pages.DrainAllPages();
        Assert.AreEqual(0, m.Pages.PcpPages);
        Assert.AreEqual(m.Owners.Count(FrameOwner.Free), m.Pages.NrFreePages);
    }

    [TestMethod]
    public void AnAllocationNoZoneCanServeDrainsTheListsAndTriesAgainUnlessItIsNoRetry()
    {
        using var m = Boot(1);
        var shm = new Shmem(m.Pages, 0);
        ulong page = Arch.X86_64.PageSize;
        Assert.AreEqual(ShmemStatus.Ok, shm.Append(shm.Open("few", append: false), 10 * page, null, out _));
        Assert.AreEqual(ShmemStatus.NoMemory, shm.Append(shm.Open("fill", append: false), m.MemTotalBytes, null, out _));
        Assert.AreEqual(0, m.Pages.PcpPages, "the last attempt drained every list");
        Assert.IsTrue(m.Pages.Zones.Where(z => z.IsPopulated && z.Index < m.Pages.MovableZone).All(z => z.FreePages <= z.MinWatermark + z.LowmemReserve[m.Pages.MovableZone]));

        // Ten pages given back sit on CPU 0's list: MemFree does not see them and the watermark check
        // fails. A __GFP_NORETRY request gives up without them; any other drains the lists and finds them.
        long memFree = m.Pages.NrFreePages;
        long failed = m.Pages.FailedAllocations;
        Assert.IsTrue(shm.Unlink("few"));
        Assert.AreEqual(memFree, m.Pages.NrFreePages);
        Assert.AreEqual(10, m.Pages.PcpPages);
        Assert.IsFalse(m.Pages.TryAllocPages(0, 0, Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, out _),
            "__GFP_NORETRY: direct reclaim makes no progress, so __alloc_pages_direct_reclaim does not drain");
        Assert.AreEqual(10, m.Pages.PcpPages, "the lists were not drained");
        Assert.AreEqual(failed + 1, m.Pages.FailedAllocations);
        Assert.AreEqual(ShmemStatus.Ok, shm.Append(shm.Open("again", append: false), page, null, out _));
        Assert.AreEqual(failed + 1, m.Pages.FailedAllocations, "a request that would go on to the OOM killer drains the lists instead");
        Assert.AreEqual(m.Owners.Count(FrameOwner.Free), m.Pages.NrFreePages + m.Pages.PcpPages);
        Assert.IsTrue(m.OwnersAddUp());
    }

    [TestMethod]
    public void ZoneinfoShowsEachCpusPageset()
    {
        string text = ScenarioHarness.Run("x86_64", "boot mem=4G\necho 3 > /proc/sys/vm/nr_hugepages\n", readAtEnd: "/proc/zoneinfo").Files["/proc/zoneinfo"];
        string normal = text[text.IndexOf("zone   Normal", StringComparison.Ordinal)..];
        StringAssert.Contains(normal, "\n  pagesets\n    cpu: 0\n              count: ");
        StringAssert.Contains(normal, "\n              batch: 63\n  vm stats threshold: ");
        StringAssert.Contains(normal, "\n    cpu: 1\n              count: 0\n");
        Assert.IsTrue(normal.IndexOf("pagesets", StringComparison.Ordinal) < normal.IndexOf("node_unreclaimable", StringComparison.Ordinal));
        Assert.AreEqual(text, ScenarioHarness.Run("x86_64", "boot mem=4G hvo.pcp=on\necho 3 > /proc/sys/vm/nr_hugepages\n", readAtEnd: "/proc/zoneinfo").Files["/proc/zoneinfo"], "on by default");
        string off = ScenarioHarness.Run("x86_64", "boot mem=4G hvo.pcp=off\n", readAtEnd: "/proc/zoneinfo").Files["/proc/zoneinfo"];
        Assert.IsFalse(off.Contains("pagesets", StringComparison.Ordinal), "with hvo.pcp=off there are none");
    }
}
