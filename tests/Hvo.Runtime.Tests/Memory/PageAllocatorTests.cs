using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading.Tasks;
using Hvo.Memory;
using Hvo.Paging;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// The buddy allocator's promises on a 64 MiB x86-64 machine: DMA is frames [0, 4096), DMA32
/// [4096, 16384), and no Normal, so GFP_KERNEL is served from DMA32 first.
/// </summary>
[TestClass]
public sealed class PageAllocatorTests
{
    private const ulong Dma32Start = 16 * MiB >> 12;

    private static PageAllocator Small() => Create("x86_64", 64 * MiB);

    [TestMethod]
    public void AnAllocationBelongsToItsOwner()
    {
        PageAllocator allocator = Small();
        long free = allocator.NrFreePages;

        Assert.IsTrue(allocator.TryAllocPages(0, 3, Gfp.Kernel, AllocSite.PteTable, FrameOwner.PageTable, out ulong pfn));

        Assert.AreEqual(0UL, pfn % 8, "naturally aligned");
        for (ulong p = pfn; p < pfn + 8; p++)
        {
            Assert.AreEqual(FrameOwner.PageTable, allocator.Owners[p]);
        }

        Assert.AreEqual(free - 8, allocator.NrFreePages);
        Assert.AreEqual(allocator.NrFreePages, allocator.Owners.Count(FrameOwner.Free));
    }

    [TestMethod]
    public void FreshAllocationsComeFromTheLowestFramesOfTheHighestZone()
    {
        PageAllocator allocator = Small();

        ulong[] blocks = Enumerable.Range(0, 4).Select(_ =>
        {
            Assert.IsTrue(allocator.TryAllocPages(0, 9, Gfp.Comp, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));
            return pfn;
        }).ToArray();

        CollectionAssert.AreEqual(new[] { Dma32Start, Dma32Start + 512, Dma32Start + 1024, Dma32Start + 1536 }, blocks);
    }

    [TestMethod]
    public void TheLastPageFreedIsTheFirstHandedOutAgain()
    {
        PageAllocator allocator = Small();
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong a));
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong b));
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong c));
        allocator.FreePages(c, 0, FrameOwner.Buddy);
        allocator.FreePages(a, 0, FrameOwner.Buddy);

        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong again));

        Assert.AreEqual(a, again, "freed pages go to the head of the free list");
        Assert.AreNotEqual(b, again);
    }

    [TestMethod]
    public void ADoubleFreeIsRefused()
    {
        PageAllocator allocator = Small();
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));
        allocator.FreePages(pfn, 0, FrameOwner.Buddy);
        string before = allocator.BuddyInfo();

        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreePages(pfn, 0, FrameOwner.Buddy));

        Assert.AreEqual(before, allocator.BuddyInfo(), "the refused free changed nothing");
    }

    [TestMethod]
    public void AFreeByAnotherOwnerIsRefused()
    {
        PageAllocator allocator = Small();
        Assert.IsTrue(allocator.TryAllocPages(0, 2, Gfp.Kernel, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, out ulong pfn));

        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreePages(pfn, 2, FrameOwner.PageTable));

        Assert.AreEqual(FrameOwner.RuntimeVmemmap, allocator.Owners[pfn]);
    }

    [TestMethod]
    public void FreeingWithAnotherOrderThanTheAllocationsIsRefused()
    {
        PageAllocator allocator = Small();
        Assert.IsTrue(allocator.TryAllocPages(0, 3, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));

        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreePages(pfn, 2, FrameOwner.Buddy));
        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreePages(pfn + 4, 2, FrameOwner.Buddy));
    }

    [TestMethod]
    public void FreeingOnePageOfAHighOrderBlockWithoutSplitPageIsRefused()
    {
        PageAllocator allocator = Small();
        Assert.IsTrue(allocator.TryAllocPages(0, 3, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));

        var tail = Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreePages(pfn + 5, 0, FrameOwner.Buddy));
        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreePages(pfn, 0, FrameOwner.Buddy));

        StringAssert.Contains(tail.Message, "split_page");
        Assert.AreEqual(FrameOwner.Buddy, allocator.Owners[pfn + 5]);
    }

    [TestMethod]
    public void SplitPageThenOrderZeroFreesGiveEverythingBack()
    {
        PageAllocator allocator = Small();
        string initial = allocator.BuddyInfo();
        Assert.IsTrue(allocator.TryAllocPages(0, 3, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));

        allocator.SplitPage(pfn, 3);
        foreach (ulong p in new ulong[] { 5, 0, 7, 2, 1, 6, 3, 4 })
        {
            allocator.FreePages(pfn + p, 0, FrameOwner.Buddy);
        }

        Assert.AreEqual(initial, allocator.BuddyInfo());
        Assert.AreEqual(allocator.ManagedPages, allocator.NrFreePages);
    }

    [TestMethod]
    public void SplitPageOfACompoundPageIsRefused()
    {
        PageAllocator allocator = Small();
        Assert.IsTrue(allocator.TryAllocPages(0, 9, Gfp.Comp, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));

        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.SplitPage(pfn, 9));
    }

    [TestMethod]
    public void AFreedBlockMergesBackToTheMaxOrder()
    {
        PageAllocator allocator = Small();
        string initial = allocator.BuddyInfo();
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));
        Assert.AreEqual(1, allocator.FreeBlocks(0), "splitting an order-10 block leaves one free block of each lower order");
        Assert.AreEqual(1, allocator.FreeBlocks(9));

        allocator.FreePages(pfn, 0, FrameOwner.Buddy);

        Assert.AreEqual(initial, allocator.BuddyInfo());
    }

    [TestMethod]
    public void MergingStopsAtAZoneBoundary()
    {
        // DMA ends at 6 MiB: frames [1024, 1536) end DMA, [1536, 2048) start DMA32 - buddies, in two zones.
        var layout = new MachineLayout(12, 64 * MiB >> 12, 1, [new ZoneSpec("DMA", 6 * MiB), new ZoneSpec("Normal", null)], 10);
        PageAllocator allocator = Create(layout);
        Zone dma = allocator.GetZone(0, 0);
        Assert.AreEqual(1, dma.FreeBlocks(9), "[1024, 1536) is DMA's order-9 block");
        Assert.AreEqual(1, dma.FreeBlocks(10));
        string initial = allocator.BuddyInfo();

        // Movable: the smallest movable block that fits (an unmovable request would steal the largest).
        Assert.IsTrue(allocator.TryAllocPages(0, 9, Gfp.Dma | Gfp.Movable, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));
        Assert.AreEqual(1024UL, pfn);
        allocator.FreePages(pfn, 9, FrameOwner.Buddy);

        Assert.AreEqual(initial, allocator.BuddyInfo());
        Assert.AreEqual(1, dma.FreeBlocks(9), "no merge with Normal's order-9 block at 1536");
    }

    [TestMethod]
    public void ThisNodeKeepsToTheNode()
    {
        PageAllocator allocator = Create("x86_64", 2 * GiB, nodes: 2);

        List<ulong> blocks = AllocateUntilRefused(allocator, 1, 9, Gfp.ThisNode | Gfp.NoRetry);

        Assert.IsTrue(blocks.Count > 0);
        Assert.IsTrue(blocks.All(pfn => allocator.Layout.NodeOf(pfn) == 1), "every block on node 1");
        Assert.AreEqual(allocator.NodeManagedPages(0), allocator.NodeFreePages(0), "node 0 untouched");
        Assert.IsTrue(allocator.NodeFreePages(1) > 0, "refused above zero free pages (the min watermark)");
    }

    [TestMethod]
    public void WithoutThisNodeAnAllocationFallsBackToAnotherNode()
    {
        PageAllocator allocator = Create("x86_64", 2 * GiB, nodes: 2);
        _ = AllocateUntilRefused(allocator, 1, 9, Gfp.ThisNode);

        Assert.IsTrue(allocator.TryAllocPages(1, 9, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));

        Assert.AreEqual(0, allocator.Layout.NodeOf(pfn));
    }

    [TestMethod]
    public void FreeReservedPageRaisesManagedPages()
    {
        ulong vmemmap = 0;
        PageAllocator allocator = Create("x86_64", 64 * MiB, boot: memblock =>
            Assert.IsTrue(memblock.TryAlloc(0, 512, 512, FrameOwner.BootVmemmap, out vmemmap)));
        long managed = allocator.ManagedPages;
        long free = allocator.NrFreePages;

        allocator.FreeReservedPage(vmemmap + 1, FrameOwner.BootVmemmap);

        Assert.AreEqual(managed + 1, allocator.ManagedPages, "MemTotal rises");
        Assert.AreEqual(free + 1, allocator.NrFreePages);
        Assert.AreEqual(FrameOwner.Free, allocator.Owners[vmemmap + 1]);
        Assert.IsFalse(allocator.IsReserved(vmemmap + 1));
        Assert.IsTrue(allocator.IsReserved(vmemmap));
    }

    [TestMethod]
    public void FreeReservedPageOfAManagedFrameIsRefused()
    {
        PageAllocator allocator = Small();
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));

        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreeReservedPage(pfn, FrameOwner.Buddy));
    }

    [TestMethod]
    public void FreePagesOfAFrameMemblockReservedIsRefused()
    {
        ulong vmemmap = 0;
        PageAllocator allocator = Create("x86_64", 64 * MiB, boot: memblock =>
            Assert.IsTrue(memblock.TryAlloc(0, 512, 512, FrameOwner.BootVmemmap, out vmemmap)));
        long managed = allocator.ManagedPages;

        var refused = Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreePages(vmemmap + 3, 0, FrameOwner.BootVmemmap));

        StringAssert.Contains(refused.Message, "FreeReservedPage");
        Assert.AreEqual(managed, allocator.ManagedPages);
    }

    [TestMethod]
    public void ABootGiganticPageJoinsMemTotalAndIsFreedAsARange()
    {
        ulong giant = 0;
        PageAllocator allocator = Create("x86_64", 4 * GiB, boot: memblock =>
            Assert.IsTrue(memblock.TryAlloc(0, GiB >> 12, GiB >> 12, FrameOwner.HugePage, out giant)));
        long managed = allocator.ManagedPages;

        allocator.AdjustManagedPageCount(giant, GiB >> 12, FrameOwner.HugePage);
        Assert.AreEqual(managed + (long)(GiB >> 12), allocator.ManagedPages, "gather_bootmem_prealloc counts it");
        allocator.FreeContigRange(giant, GiB >> 12, FrameOwner.HugePage);

        Assert.AreEqual(allocator.ManagedPages, allocator.NrFreePages);
        Assert.AreEqual((long)(4 * GiB >> 12), allocator.ManagedPages);
    }

    [TestMethod]
    public void ConcurrentCallersKeepTheCountsConsistent()
    {
        PageAllocator allocator = Create("x86_64", 256 * MiB, nodes: 2);
        string initial = allocator.BuddyInfo();

        Parallel.For(0, 8, worker =>
        {
            var random = new Random(worker);
            var held = new List<(ulong Pfn, int Order)>();
            for (int i = 0; i < 5000; i++)
            {
                if (held.Count > 0 && random.Next(2) == 0)
                {
                    int at = random.Next(held.Count);
                    allocator.FreePages(held[at].Pfn, held[at].Order, FrameOwner.Buddy);
                    held.RemoveAt(at);
                }
                else
                {
                    int order = random.Next(4);
                    if (allocator.TryAllocPages(random.Next(2), order, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn))
                    {
                        held.Add((pfn, order));
                    }
                }
            }

            foreach ((ulong pfn, int order) in held)
            {
                allocator.FreePages(pfn, order, FrameOwner.Buddy);
            }
        });

        Assert.AreEqual(initial, allocator.BuddyInfo());
        Assert.AreEqual(allocator.ManagedPages, allocator.Owners.Count(FrameOwner.Free));
    }
}
