using System.Linq;
using System.Text.RegularExpressions;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>/proc/buddyinfo and /proc/zoneinfo in the kernel's own format.</summary>
[TestClass]
public sealed partial class ProcTextTests
{
    [TestMethod]
    public void BuddyinfoHasALinePerPopulatedZoneWithACountPerOrder()
    {
        PageAllocator allocator = Create("x86_64", 64 * MiB);

        Assert.AreEqual(
            "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      4 \n" +
            "Node 0, zone    DMA32      0      0      0      0      0      0      0      0      0      0     12 \n",
            allocator.BuddyInfo());
    }

    [TestMethod]
    public void BuddyinfoCountsFollowSplits()
    {
        PageAllocator allocator = Create("x86_64", 8 * GiB, nodes: 2);
        Assert.IsTrue(allocator.TryAllocPages(1, 0, Gfp.ThisNode, AllocSite.Other, FrameOwner.Buddy, out _));

        string[] lines = allocator.BuddyInfo().Split('\n', System.StringSplitOptions.RemoveEmptyEntries);

        // A PC's 8 GiB: RAM at 0-3 GiB and 4-9 GiB, split 4 GiB a node.
        Assert.AreEqual(4, lines.Length, "node 0: DMA, DMA32, Normal (4-5 GiB); node 1: Normal");
        Assert.IsTrue(lines.All(l => BuddyLine().IsMatch(l)), string.Join("\n", lines));
        Assert.AreEqual("Node 1, zone   Normal      1      1      1      1      1      1      1      1      1      1   1023 ", lines[3]);
    }

    [TestMethod]
    public void ZoneinfoShowsWatermarksCountsAndProtectionForEveryZone()
    {
        PageAllocator allocator = Create("x86_64", 64 * MiB);
        Zone dma = allocator.GetZone(0, 0);

        string text = allocator.ZoneInfo();

        StringAssert.StartsWith(text,
            "Node 0, zone      DMA\n" +
            $"  pages free     {dma.FreePages}\n" +
            "        boost    0\n" +
            $"        min      {dma.MinWatermark}\n" +
            $"        low      {dma.LowWatermark}\n" +
            $"        high     {dma.HighWatermark}\n" +
            "        spanned  4096\n" +
            "        present  4096\n" +
            "        managed  4096\n" +
            "        cma      0\n" +
            $"        protection: (0, {dma.LowmemReserve[1]}, {dma.LowmemReserve[2]}, {dma.LowmemReserve[3]})\n" +
            "      nr_free_pages 4096\n" +
            "  node_unreclaimable:  0\n" +
            "  start_pfn:           0\n");
        // ZONE_MOVABLE last, empty: its min is SWAP_CLUSTER_MAX whatever it holds (__setup_per_zone_wmarks).
        StringAssert.EndsWith(text,
            "Node 0, zone   Normal\n" +
            "  pages free     0\n" +
            "        boost    0\n" +
            "        min      0\n" +
            "        low      0\n" +
            "        high     0\n" +
            "        spanned  0\n" +
            "        present  0\n" +
            "        managed  0\n" +
            "        cma      0\n" +
            "        protection: (0, 0, 0, 0)\n" +
            "Node 0, zone  Movable\n" +
            "  pages free     0\n" +
            "        boost    0\n" +
            "        min      32\n" +
            "        low      32\n" +
            "        high     32\n" +
            "        spanned  0\n" +
            "        present  0\n" +
            "        managed  0\n" +
            "        cma      0\n" +
            "        protection: (0, 0, 0, 0)\n");
    }

    [GeneratedRegex(@"^Node \d+, zone [ A-Za-z0-9]{8} ( {0,5}\d+ ){11}$")]
    private static partial Regex BuddyLine();
}
