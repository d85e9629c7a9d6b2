using System;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>alloc_contig_pages and free_contig_range: gigantic pages, larger than any buddy block.</summary>
[TestClass]
public sealed class ContigAllocationTests
{
    [TestMethod]
    [DynamicData(nameof(Archs.WithGiganticPages), typeof(Archs))]
    public void TheLargestHugePageIsAllocatedAlignedInsideOneZoneAndFreedBack(string arch)
    {
        ArchInfo info = Archs.Get(arch).Info;
        PageAllocator allocator = Create(arch, 64 * GiB);
        ulong frames = info.HugePageSizes.Max(h => h.Size) >> info.PageShift;
        Assert.IsTrue(frames > allocator.Layout.MaxOrderFrames, "a gigantic page: more than a max-order block");
        string initial = allocator.BuddyInfo();

        Assert.IsTrue(allocator.TryAllocContigPages(0, frames, Gfp.ThisNode, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));

        Assert.AreEqual(0UL, pfn % frames, "naturally aligned");
        Assert.AreEqual(allocator.Layout.ZoneOf(pfn), allocator.Layout.ZoneOf(pfn + frames - 1), "inside one zone");
        Assert.AreEqual((long)frames, allocator.Owners.Count(FrameOwner.HugePage));
        Assert.AreEqual(allocator.ManagedPages - (long)frames, allocator.NrFreePages);
        Assert.AreEqual(allocator.NrFreePages, Enumerable.Range(0, allocator.MaxOrder + 1).Sum(o => allocator.FreeBlocks(o) << o));

        allocator.FreeContigRange(pfn, frames, FrameOwner.HugePage);

        Assert.AreEqual(initial, allocator.BuddyInfo());
    }

    [TestMethod]
    public void ACandidateRangeWithAFrameInUseIsSkipped()
    {
        PageAllocator allocator = Create("x86_64", 8 * GiB);
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong busy));
        Assert.AreEqual(4 * GiB >> 12, busy, "the first page of Normal");

        Assert.IsTrue(allocator.TryAllocContigPages(0, GiB >> 12, Gfp.Kernel, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));

        Assert.AreEqual(5 * GiB >> 12, pfn);
    }

    [TestMethod]
    public void AllocationFailsWhenNoAlignedRangeIsFree()
    {
        // A PC's 4 GiB: RAM at 0-3 GiB and 4-5 GiB. Normal holds the GiB at 4 GiB (its zone comes
        // first), DMA32 those at 1 and 2 GiB; DMA is too small, 3-4 GiB is the PCI hole.
        PageAllocator allocator = Create("x86_64", 4 * GiB);

        ulong[] giants = Enumerable.Range(0, 3).Select(_ =>
        {
            Assert.IsTrue(allocator.TryAllocContigPages(0, GiB >> 12, Gfp.Kernel, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));
            return pfn;
        }).ToArray();

        Assert.IsFalse(allocator.TryAllocContigPages(0, GiB >> 12, Gfp.NoWarn, AllocSite.HugePage, FrameOwner.HugePage, out _));
        CollectionAssert.AreEqual(new[] { 4 * GiB >> 12, GiB >> 12, 2 * GiB >> 12 }, giants);
        Assert.AreEqual(1, allocator.FailedAllocations);
    }

    [TestMethod]
    public void ARangeInsideABlockGivesTheRestOfTheBlockBack()
    {
        PageAllocator allocator = Create("x86_64", 64 * MiB);
        string initial = allocator.BuddyInfo();

        Assert.IsTrue(allocator.TryAllocContigPages(0, 8, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));

        Assert.AreEqual(16 * MiB >> 12, pfn, "the start of DMA32");
        for (int order = 3; order < 10; order++)
        {
            Assert.AreEqual(1, allocator.GetZone(0, 1).FreeBlocks(order), $"order {order}");
        }

        allocator.FreeContigRange(pfn, 8, FrameOwner.Buddy);
        Assert.AreEqual(initial, allocator.BuddyInfo());
    }

    [TestMethod]
    public void ThisNodeKeepsAGiganticPageOnTheNode()
    {
        PageAllocator allocator = Create("x86_64", 8 * GiB, nodes: 2);

        Assert.IsTrue(allocator.TryAllocContigPages(1, GiB >> 12, Gfp.ThisNode, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));

        Assert.AreEqual(1, allocator.Layout.NodeOf(pfn));
    }

    [TestMethod]
    public void FreeingARangeThatHoldsABuddyAllocationIsRefused()
    {
        PageAllocator allocator = Create("x86_64", 64 * MiB);
        Assert.IsTrue(allocator.TryAllocPages(0, 4, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));

        Assert.ThrowsExactly<InvalidOperationException>(() => allocator.FreeContigRange(pfn + 2, 4, FrameOwner.Buddy));

        Assert.AreEqual(allocator.ManagedPages - 16, allocator.NrFreePages);
    }
}
