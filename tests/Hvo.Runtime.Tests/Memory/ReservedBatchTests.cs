using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// <see cref="PageAllocator.FreeReservedPages"/> (a run of boot vmemmap frames HVO frees) leaves
/// the page allocator exactly as one <see cref="PageAllocator.FreeReservedPage"/> per frame does:
/// the same free lists and per-CPU lists (their flushes past high included), the same counters,
/// the same frames handed out afterwards in the same order, and the same refusal at the same frame.
/// </summary>
[TestClass]
public sealed class ReservedBatchTests
{
    private const ulong Reserved = 2048; // frames memblock hands out as boot vmemmap

    /// <summary>Fixed seeds, with the per-CPU lists on (two CPUs) and off.</summary>
    public static IEnumerable<object[]> Seeds =>
        from seed in Enumerable.Range(1, 6)
        from cpus in new[] { 0, 2 }
        select new object[] { seed, cpus };

    [TestMethod]
    [DynamicData(nameof(Seeds))]
    public void RandomRunsFreedInBatchesLeaveWhatOneCallPerFrameLeaves(int seed, int cpus)
    {
        (PageAllocator single, ulong first) = Booted(cpus);
        (PageAllocator batch, ulong same) = Booted(cpus);
        Assert.AreEqual(first, same);
        if (cpus > 0)
        {
            Assert.IsTrue(single.Pageset(single.Zones.First(z => z.ManagedPages > 0), 0).High < 200, "runs are longer than high: the lists flush inside a batch");
        }

        var random = new Random(seed);
        int flushesSeen = 0;
        foreach ((ulong start, ulong count) in Runs(random, first))
        {
            long onLists = single.PcpPages;
            for (ulong pfn = start; pfn < start + count; pfn++)
            {
                single.FreeReservedPage(pfn, FrameOwner.BootVmemmap);
            }

            batch.FreeReservedPages(start, count, FrameOwner.BootVmemmap);
            Same(single, batch);
            flushesSeen += single.PcpPages < onLists + (long)count ? 1 : 0;

            // Frees and allocations in between, alike on both sides, move the lists' state on.
            int takes = random.Next(0, 40);
            for (int i = 0; i < takes; i++)
            {
                Assert.AreEqual(Take(single), Take(batch));
            }

            Same(single, batch);
        }

        if (cpus > 0)
        {
            Assert.IsTrue(flushesSeen > 0, "some batch went past high");
        }

        CollectionAssert.AreEqual(
            AllocateUntilRefused(single, 0, 0, Gfp.Movable), AllocateUntilRefused(batch, 0, 0, Gfp.Movable), "the lists hand out the same frames in the same order");
    }

    [TestMethod]
    public void ABatchRefusesAFrameAsItsOwnCallWouldWithTheFramesBeforeItFreed()
    {
        (PageAllocator single, ulong first) = Booted(2);
        (PageAllocator batch, _) = Booted(2);
        single.FreeReservedPage(first + 70, FrameOwner.BootVmemmap);
        batch.FreeReservedPage(first + 70, FrameOwner.BootVmemmap); // already managed: the 71st frame is refused

        for (ulong pfn = first; pfn < first + 70; pfn++)
        {
            single.FreeReservedPage(pfn, FrameOwner.BootVmemmap);
        }

        string refusal = Assert.ThrowsExactly<InvalidOperationException>(() => single.FreeReservedPage(first + 70, FrameOwner.BootVmemmap)).Message;
        Assert.AreEqual(refusal, Assert.ThrowsExactly<InvalidOperationException>(() => batch.FreeReservedPages(first, 100, FrameOwner.BootVmemmap)).Message);

        Same(single, batch);
        Assert.IsTrue(batch.IsReserved(first + 71), "the frames after the refused one stay reserved");
        Assert.AreEqual(FrameOwner.BootVmemmap, batch.Owners[first + 71]);
    }

    [TestMethod]
    public void ABatchRefusesAFrameOfAnotherOwnerAsItsOwnCallWould()
    {
        (PageAllocator single, ulong first) = Booted(2);
        (PageAllocator batch, _) = Booted(2);
        single.Owners.Set(first + 40, 1, FrameOwner.Reserved);
        batch.Owners.Set(first + 40, 1, FrameOwner.Reserved); // still PageReserved, but not the vmemmap's

        for (ulong pfn = first; pfn < first + 40; pfn++)
        {
            single.FreeReservedPage(pfn, FrameOwner.BootVmemmap);
        }

        string refusal = Assert.ThrowsExactly<InvalidOperationException>(() => single.FreeReservedPage(first + 40, FrameOwner.BootVmemmap)).Message;
        Assert.AreEqual(refusal, Assert.ThrowsExactly<InvalidOperationException>(() => batch.FreeReservedPages(first, 100, FrameOwner.BootVmemmap)).Message);

        Same(single, batch);
        Assert.IsTrue(batch.IsReserved(first + 40));
        Assert.IsTrue(batch.IsReserved(first + 41), "the frames after the refused one stay reserved");
    }

    /// <summary>64 MiB of x86-64 with <see cref="Reserved"/> frames of boot vmemmap from memblock, per-CPU lists on <paramref name="cpus"/> CPUs (none: off).</summary>
    private static (PageAllocator Allocator, ulong First) Booted(int cpus)
    {
        ulong vmemmap = 0;
        PageAllocator allocator = Create("x86_64", 64 * MiB, boot: memblock =>
            Assert.IsTrue(memblock.TryAlloc(0, Reserved, 512, FrameOwner.BootVmemmap, out vmemmap)));
        if (cpus > 0)
        {
            allocator.SetupPerCpuPageset(cpus);
        }

        return (allocator, vmemmap);
    }

    // Disjoint runs covering the reserved frames, 1 to 300 frames each, in a random order.
    private static List<(ulong Start, ulong Count)> Runs(Random random, ulong first)
    {
        var runs = new List<(ulong, ulong)>();
        for (ulong pfn = first, end = first + Reserved; pfn < end;)
        {
            ulong count = Math.Min((ulong)random.Next(1, 301), end - pfn);
            runs.Add((pfn, count));
            pfn += count;
        }

        return runs.OrderBy(_ => random.Next()).ToList();
    }

    private static ulong Take(PageAllocator allocator)
    {
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Movable, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));
        return pfn;
    }

    private static void Same(PageAllocator single, PageAllocator batch)
    {
        Assert.AreEqual(single.BuddyInfo(), batch.BuddyInfo());
        Assert.AreEqual(single.PageTypeInfo(), batch.PageTypeInfo());
        Assert.AreEqual(single.ZoneInfo(), batch.ZoneInfo(), "counters, watermarks and each CPU's count, high and batch");
        Assert.AreEqual(single.ManagedPages, batch.ManagedPages);
        Assert.AreEqual(single.NrFreePages, batch.NrFreePages);
        Assert.AreEqual(single.PcpPages, batch.PcpPages);
        Assert.AreEqual(FreeLists(single), FreeLists(batch), "every list, in order");
        foreach (FrameOwner owner in Enum.GetValues<FrameOwner>())
        {
            Assert.AreEqual(single.Owners.Count(owner), batch.Owners.Count(owner), owner.ToString());
        }
    }
}
