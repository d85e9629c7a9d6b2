using System.Linq;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>Allocations fail where the kernel's would: at a zone's min watermark plus its lowmem reserve (docs/ARCHITECTURE.md §7.3).</summary>
[TestClass]
public sealed class WatermarkTests
{
    [TestMethod]
    [DataRow(64UL, 1024)]        // int_sqrt(65536 kB * 16)
    [DataRow(65536UL, 32768)]    // 64 GiB
    [DataRow(1048576UL, 131072)] // 1 TiB
    public void MinFreeKbytesIsTheSquareRootOfSixteenTimesLowmem(ulong mebibytes, int kbytes) =>
        Assert.AreEqual(kbytes, Create("x86_64", mebibytes * MiB).MinFreeKbytes);

    [TestMethod]
    public void MinFreeKbytesIsSplitAcrossZonesByManagedShare()
    {
        PageAllocator allocator = Create("x86_64", 64 * GiB);
        long pagesMin = allocator.MinFreeKbytes / 4;

        foreach (Zone zone in allocator.Zones.Where(z => z.IsPopulated))
        {
            long min = pagesMin * zone.ManagedPages / allocator.ManagedPages;
            long step = System.Math.Max(min / 4, zone.ManagedPages * 10 / 10000);
            Assert.AreEqual(min, zone.MinWatermark, zone.Name);
            Assert.AreEqual(min + step, zone.LowWatermark, zone.Name);
            Assert.AreEqual(min + (2 * step), zone.HighWatermark, zone.Name);
        }
    }

    [TestMethod]
    public void SettingMinFreeKbytesRecomputesTheWatermarks()
    {
        PageAllocator allocator = Create("x86_64", 64 * GiB);
        Zone normal = allocator.GetZone(0, 2);
        long min = normal.MinWatermark;

        allocator.MinFreeKbytes *= 2;

        Assert.IsTrue(normal.MinWatermark is var doubled && (doubled == 2 * min || doubled == (2 * min) + 1), $"{min} -> {normal.MinWatermark}");
    }

    [TestMethod]
    public void LowmemReservesFollowTheRatiosOfTheZonesAbove()
    {
        PageAllocator allocator = Create("x86_64", 64 * GiB);
        long dma32 = allocator.GetZone(0, 1).ManagedPages;
        long normal = allocator.GetZone(0, 2).ManagedPages;

        // The fourth column is ZONE_MOVABLE's, empty until memory is onlined into it.
        CollectionAssert.AreEqual(new[] { 0L, dma32 / 256, (dma32 + normal) / 256, (dma32 + normal) / 256 }, allocator.GetZone(0, 0).LowmemReserve.ToArray());
        CollectionAssert.AreEqual(new[] { 0L, 0L, normal / 256, normal / 256 }, allocator.GetZone(0, 1).LowmemReserve.ToArray());
        CollectionAssert.AreEqual(new[] { 0L, 0L, 0L, 0L }, allocator.GetZone(0, 2).LowmemReserve.ToArray());
    }

    [TestMethod]
    public void AnAllocationFailsAtTheMinWatermarkPlusLowmemReserveNotAtZeroFreePages()
    {
        PageAllocator allocator = Create("x86_64", GiB); // DMA and DMA32; GFP_KERNEL's highest zone, Normal, is empty

        var pages = AllocateUntilRefused(allocator, 0, 0, Gfp.NoRetry | Gfp.NoWarn);

        foreach (Zone zone in allocator.Zones.Where(z => z.IsPopulated))
        {
            Assert.AreEqual(zone.MinWatermark + zone.LowmemReserve[2], zone.FreePages, $"{zone.Name} stops at min + lowmem_reserve[Normal]");
        }

        Assert.IsTrue(allocator.NrFreePages > 0);
        Assert.AreEqual(allocator.ManagedPages - allocator.NrFreePages, pages.Count);
        Assert.AreEqual(1, allocator.FailedAllocations);
        Assert.AreEqual(0, allocator.WarnedFailures, "__GFP_NOWARN");
    }

    [TestMethod]
    public void TheLowmemReserveIsLeftToRequestsForLowerZones()
    {
        PageAllocator allocator = Create("x86_64", GiB);
        _ = AllocateUntilRefused(allocator, 0, 0);
        Zone dma = allocator.GetZone(0, 0);

        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Dma, AllocSite.Other, FrameOwner.Buddy, out ulong pfn), "GFP_DMA may use DMA's reserve");

        Assert.AreEqual(0, allocator.Layout.ZoneOf(pfn));
        Assert.IsTrue(dma.FreePages > dma.MinWatermark);
    }

    [TestMethod]
    public void AHighOrderAllocationNeedsABlockOfItsOrder()
    {
        PageAllocator allocator = Create("x86_64", 64 * MiB);
        allocator.MinFreeKbytes = 0;
        var pages = AllocateUntilRefused(allocator, 0, 0, Gfp.Dma).Concat(AllocateUntilRefused(allocator, 0, 0)).ToList();
        Assert.AreEqual(0, allocator.NrFreePages, "with no min watermark and no reserve above DMA32, every page goes");
        foreach (ulong pfn in pages.Where(p => p % 2 == 0))
        {
            allocator.FreePages(pfn, 0, FrameOwner.Buddy); // half the memory free, and not one pair of buddies
        }

        Assert.AreEqual(allocator.ManagedPages / 2, allocator.NrFreePages);
        Assert.IsFalse(allocator.TryAllocPages(0, 1, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out _));
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out _));
    }
}
