using System;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>A 1 TiB x86-64 machine: free lists built from memblock cost host memory by blocks, not by frames.</summary>
[TestClass]
public sealed class LargeMachineTests
{
    private const ulong Frames = 1UL << 28; // 1 TiB of 4 KiB frames
    private const ulong Vmemmap = Frames * 64 >> 12; // 16 GiB of struct pages

    [TestMethod]
    public void ATebibyteMachineBuildsItsFreeListsFromMemblock()
    {
        var layout = MachineLayout.For(Archs.Get("x86_64").Info, 1UL << 40);
        var memblock = new BootAllocator(layout, FrameOwnerTable.For(layout));
        for (ulong done = 0; done < Vmemmap; done += 512)
        {
            Assert.IsTrue(memblock.TryAlloc(0, 512, 512, FrameOwner.BootVmemmap, out _)); // PMD-mapped boot vmemmap
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        var allocator = new PageAllocator(memblock);
        long hostBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.AreEqual((long)(Frames - Vmemmap), allocator.ManagedPages);
        Assert.AreEqual(allocator.ManagedPages, allocator.NrFreePages);
        Assert.AreEqual(4, allocator.GetZone(0, 0).FreeBlocks(10), "DMA: 16 MiB");
        Assert.AreEqual(764, allocator.GetZone(0, 1).FreeBlocks(10), "DMA32: 3 GiB - 16 MiB (a PC's hole takes 3-4 GiB)");
        Assert.AreEqual((long)((Frames - Vmemmap - (3UL << 18)) >> 10), allocator.GetZone(0, 2).FreeBlocks(10), "Normal: the rest of the RAM, from 4 GiB");
        for (int order = 0; order < 10; order++)
        {
            Assert.AreEqual(0, allocator.FreeBlocks(order), $"order {order}: nothing but max-order blocks");
        }

        Assert.IsTrue(hostBytes < 2L << 20, $"{hostBytes >> 10} KiB of host memory for {Frames} frames: free lists cost by fragmentation, not by size");
    }
}
