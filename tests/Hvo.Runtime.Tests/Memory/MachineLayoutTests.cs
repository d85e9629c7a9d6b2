using System;
using Hvo.Memory;
using Hvo.Paging;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

[TestClass]
public sealed class MachineLayoutTests
{
    [TestMethod]
    [DataRow(12, 10)]
    [DataRow(14, 11)]
    [DataRow(16, 13)]
    public void MaxOrderIsTheArchitecturesDefault(int pageShift, int maxOrder) =>
        Assert.AreEqual(maxOrder, MachineLayout.DefaultMaxOrder(pageShift));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void NodesAreContiguousMaxOrderAlignedAndCoverTheMachine(string arch)
    {
        // Not a multiple of three max-order blocks, nor of max-order blocks at all.
        ArchInfo info = Archs.Get(arch).Info;
        ulong block = 1UL << (MachineLayout.DefaultMaxOrder(info.PageShift) + info.PageShift);
        var layout = MachineLayout.For(info, (64 * GiB) + block + (5UL << info.PageShift), nodes: 3);

        Assert.AreEqual(info.RamBase >> info.PageShift, layout.NodeStart(0), "node 0 starts where the spec's RAM does");
        Assert.AreEqual(layout.FirstPfn + layout.Frames, layout.NodeEnd(2));
        for (int nid = 0; nid < 3; nid++)
        {
            (ulong start, ulong end) = layout.NodeRange(nid);
            Assert.AreEqual(0UL, start % layout.MaxOrderFrames, $"node {nid} starts on a max-order block");
            Assert.IsTrue(end > start, $"node {nid} has memory");
            Assert.AreEqual(nid, layout.NodeOf(start));
            Assert.AreEqual(nid, layout.NodeOf(end - 1));
            if (nid > 0)
            {
                Assert.AreEqual(layout.NodeEnd(nid - 1), start, "nodes are back to back");
            }
        }
    }

    [TestMethod]
    public void ZonesFollowTheSpecsPhysicalLimits()
    {
        var layout = MachineLayout.For(Archs.Get("x86_64").Info, 8 * GiB, nodes: 2);

        Assert.AreEqual((0UL, 16 * MiB >> 12), layout.ZoneRange(0, 0), "DMA: below 16 MiB");
        Assert.AreEqual((16 * MiB >> 12, 4 * GiB >> 12), layout.ZoneRange(0, 1), "DMA32: below 4 GiB");
        Assert.AreEqual(layout.ZoneRange(0, 2).Start, layout.ZoneRange(0, 2).End, "node 0 ends at 4 GiB: no Normal");
        Assert.AreEqual(layout.ZoneRange(1, 0).Start, layout.ZoneRange(1, 0).End, "node 1 has no DMA");
        Assert.AreEqual((4 * GiB >> 12, 8 * GiB >> 12), layout.ZoneRange(1, 2));
        Assert.AreEqual(2, layout.ZoneOf(5 * GiB >> 12));
    }

    [TestMethod]
    public void ANodeSmallerThanAMaxOrderBlockIsRefused() =>
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MachineLayout.For(Archs.Get("x86_64").Info, 8 * MiB, nodes: 4));

    [TestMethod]
    public void LayoutsWithTheSameValuesAreEqual() =>
        Assert.AreEqual(
            MachineLayout.For(Archs.Get("x86_64").Info, GiB),
            new MachineLayout(12, GiB >> 12, 1, [new ZoneSpec("DMA", 16 * MiB), new ZoneSpec("DMA32", 4 * GiB), new ZoneSpec("Normal", null)], 10));
}
