using System;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

[TestClass]
public sealed class BootAllocatorTests
{
    private static BootAllocator Memblock(ulong bytes = 8 * GiB, int nodes = 2)
    {
        var layout = MachineLayout.For(Archs.Get("x86_64").Info, bytes, nodes);
        return new BootAllocator(layout, FrameOwnerTable.For(layout));
    }

    [TestMethod]
    public void AllocationsComeTopDownWithinTheNode()
    {
        BootAllocator memblock = Memblock();
        ulong nodeEnd = memblock.Layout.NodeEnd(0);

        Assert.IsTrue(memblock.TryAlloc(0, 512, 512, FrameOwner.BootVmemmap, out ulong first));
        Assert.IsTrue(memblock.TryAlloc(0, 512, 512, FrameOwner.BootVmemmap, out ulong second));

        Assert.AreEqual(nodeEnd - 512, first);
        Assert.AreEqual(nodeEnd - 1024, second);
        Assert.AreEqual(FrameOwner.BootVmemmap, memblock.Owners[first]);
    }

    [TestMethod]
    public void AllocationsAreAlignedBelowAReservation()
    {
        BootAllocator memblock = Memblock();
        ulong nodeEnd = memblock.Layout.NodeEnd(0);
        memblock.Reserve(nodeEnd - 3, 3);

        Assert.IsTrue(memblock.TryAlloc(0, 4, 8, FrameOwner.PageTable, out ulong pfn));

        Assert.AreEqual(nodeEnd - 8, pfn, "the highest 8-aligned 4 frames below the reservation");
        Assert.AreEqual(FrameOwner.PageTable, memblock.Owners[pfn]);
    }

    [TestMethod]
    public void WithoutFallbackAFullNodeFails()
    {
        BootAllocator memblock = Memblock();
        (ulong start, ulong end) = memblock.Layout.NodeRange(1);
        memblock.Reserve(start, end - start);

        Assert.IsFalse(memblock.TryAlloc(1, 1, 1, FrameOwner.Reserved, out _));
    }

    [TestMethod]
    public void WithFallbackAFullNodeGivesAnotherNodesMemory()
    {
        BootAllocator memblock = Memblock();
        (ulong start, ulong end) = memblock.Layout.NodeRange(1);
        memblock.Reserve(start, end - start);

        Assert.IsTrue(memblock.TryAlloc(1, 1, 1, FrameOwner.Reserved, out ulong pfn, fallbackToOtherNodes: true));

        Assert.AreEqual(0, memblock.Layout.NodeOf(pfn));
    }

    [TestMethod]
    public void ReservingAReservedFrameAgainIsRefused()
    {
        BootAllocator memblock = Memblock();
        memblock.Reserve(100, 10);

        Assert.ThrowsExactly<InvalidOperationException>(() => memblock.Reserve(105, 10));
        Assert.AreEqual(10UL, memblock.TotalReservedFrames, "the refused reservation changed nothing");
    }

    [TestMethod]
    public void ReservedFramesAreCountedPerNodeAndRegionsMerge()
    {
        BootAllocator memblock = Memblock();
        ulong boundary = memblock.Layout.NodeStart(1);
        memblock.Reserve(boundary - 4, 4);
        memblock.Reserve(boundary, 6);

        Assert.AreEqual(4UL, memblock.ReservedFrames(0));
        Assert.AreEqual(6UL, memblock.ReservedFrames(1));
        Assert.AreEqual(1, memblock.ReservedRegions.Count, "adjacent regions merge");
        Assert.AreEqual((boundary - 4, boundary + 6), memblock.ReservedRegions[0]);
    }

    [TestMethod]
    public void ReservedFramesAreNotManaged()
    {
        PageAllocator allocator = Create("x86_64", 8 * GiB, 2, boot: memblock =>
        {
            memblock.Reserve(0, 256);
            Assert.IsTrue(memblock.TryAlloc(1, 512, 512, FrameOwner.BootVmemmap, out _));
        });

        Assert.AreEqual((long)(8 * GiB >> 12) - 768, allocator.ManagedPages);
        Assert.AreEqual(allocator.ManagedPages, allocator.NrFreePages);
        Assert.AreEqual(allocator.NrFreePages, allocator.Owners.Count(FrameOwner.Free));
    }

    [TestMethod]
    public void MemblockHandsOutNothingOnceThePageAllocatorHasItsMemory()
    {
        BootAllocator memblock = Memblock();
        _ = new PageAllocator(memblock);

        Assert.IsTrue(memblock.Released);
        Assert.ThrowsExactly<InvalidOperationException>(() => memblock.TryAlloc(0, 1, 1, FrameOwner.Reserved, out _));
        Assert.ThrowsExactly<InvalidOperationException>(() => memblock.Reserve(0, 1));
    }
}
