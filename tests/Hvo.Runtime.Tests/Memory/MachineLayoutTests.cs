using System;
using System.Linq;
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
        // A PC's 8 GiB: RAM at 0-3 GiB and 4-9 GiB; numa=fake=2 gives each node 4 GiB of it.
        var layout = MachineLayout.For(Archs.Get("x86_64").Info, 8 * GiB, nodes: 2);

        Assert.AreEqual((0UL, 16 * MiB >> 12), layout.ZoneRange(0, 0), "DMA: below 16 MiB");
        Assert.AreEqual((16 * MiB >> 12, 4 * GiB >> 12), layout.ZoneRange(0, 1), "DMA32: below 4 GiB (the hole spanned)");
        Assert.AreEqual((4 * GiB >> 12, 5 * GiB >> 12), layout.ZoneRange(0, 2), "node 0's fourth GiB of RAM lies above the hole: Normal");
        Assert.AreEqual(layout.ZoneRange(1, 0).Start, layout.ZoneRange(1, 0).End, "node 1 has no DMA");
        Assert.AreEqual((5 * GiB >> 12, 9 * GiB >> 12), layout.ZoneRange(1, 2));
        Assert.AreEqual(2, layout.ZoneOf(5 * GiB >> 12));
    }

    [TestMethod]
    public void APcMovesTheRamAboveThreeGiBAboveTheHoleFromThreeAndAHalfGiB()
    {
        ArchInfo x86 = Archs.Get("x86_64").Info;
        var pc = MachineLayout.For(x86, 4 * GiB);

        CollectionAssert.AreEqual(new[] { (x86.RamHoleStart >> 12, x86.RamHoleEnd >> 12) }, pc.Holes.ToArray(), "the spec's ramHole");
        Assert.AreEqual(4 * GiB >> 12, pc.RamFrames);
        Assert.AreEqual(((4 * GiB) + x86.RamHoleEnd - x86.RamHoleStart) >> 12, pc.EndPfn, "the GiB above 3 GiB lies at 4-5 GiB");
        CollectionAssert.AreEqual(new[] { (0UL, 3 * GiB >> 12), (4 * GiB >> 12, 5 * GiB >> 12) }, pc.RamRanges().ToArray());
        Assert.IsTrue(pc.IsHole(3 * GiB >> 12) && !pc.IsHole((4 * GiB >> 12) - 1 + 1) && pc.IsHole((4 * GiB >> 12) - 1));

        Assert.AreEqual(0, MachineLayout.For(x86, x86.RamHoleFrom - (256 * MiB)).Holes.Count, "below ramHole.from all RAM stays below 4 GiB");
        Assert.AreEqual(1, MachineLayout.For(x86, x86.RamHoleFrom).Holes.Count);
        Assert.AreEqual(0, MachineLayout.For(Archs.Get("arm64-4k").Info, 4 * GiB).Holes.Count, "no ramHole in the spec: one range");
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
