using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// The page allocator's order-0 batches (a restore's pages, a run of freed vmemmap frames) give and
/// take exactly what one call per page would: the same frames in the same order, the same
/// counters, the same free lists after, and the same refusal at the same page.
/// </summary>
[TestClass]
public sealed class Order0BatchTests
{
    private const int Pages = 24;

    /// <summary>No failure, and fail_page_alloc's Nth failure at every call of the batch.</summary>
    public static IEnumerable<object[]> FailAt => Enumerable.Range(0, Pages + 1).Select(k => new object[] { k });

    [TestMethod]
    [DynamicData(nameof(FailAt))]
    public void ABatchAllocatesWhatOneCallPerPageAllocates(int failAt)
    {
        (PageAllocator single, FaultInjection singleFaults) = Fragmented();
        (PageAllocator batch, FaultInjection batchFaults) = Fragmented();
        if (failAt > 0)
        {
            singleFaults.FailNth(failAt);
            batchFaults.FailNth(failAt);
        }

        var one = new List<ulong>();
        for (int i = 0; i < Pages && single.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, out ulong pfn); i++)
        {
            one.Add(pfn);
        }

        var many = new List<ulong>();
        int got = batch.TryAllocOrder0Pages(0, Gfp.Kernel, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, Pages, many);

        Assert.AreEqual(failAt == 0 ? Pages : failAt - 1, got);
        CollectionAssert.AreEqual(one, many);
        Assert.AreEqual(single.AllocCalls, batch.AllocCalls);
        Assert.AreEqual(single.FailedAllocations, batch.FailedAllocations);
        Assert.AreEqual(single.InjectedFailures, batch.InjectedFailures);
        Assert.AreEqual(Blocks(single), Blocks(batch));
        Assert.AreEqual(single.Owners.Count(FrameOwner.RuntimeVmemmap), batch.Owners.Count(FrameOwner.RuntimeVmemmap));
    }

    [TestMethod]
    public void ABatchFreesAsOneCallPerPageFrees()
    {
        (PageAllocator single, _) = Fragmented();
        (PageAllocator batch, _) = Fragmented();
        ulong run = Run(single);
        Assert.AreEqual(run, Run(batch));

        for (ulong pfn = run; pfn < run + 8; pfn++)
        {
            single.FreePages(pfn, 0, FrameOwner.RuntimeVmemmap);
        }

        batch.FreeOrder0Pages(run, 8, FrameOwner.RuntimeVmemmap);

        Assert.AreEqual(Blocks(single), Blocks(batch));
        Assert.AreEqual(single.Owners.Count(FrameOwner.Free), batch.Owners.Count(FrameOwner.Free));
        CollectionAssert.AreEqual(AllocateUntilRefused(single, 0, 0), AllocateUntilRefused(batch, 0, 0), "the free lists hand out the same frames in the same order");
    }

    /// <summary>Frames in any order (a restore's, freed descending; shuffled from fixed seeds): the same as one call per page.</summary>
    [TestMethod]
    [DataRow(-1)]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    public void ABatchOfPagesInAnyOrderFreesAsOneCallPerPageFrees(int seed)
    {
        (PageAllocator single, _) = Fragmented();
        (PageAllocator batch, _) = Fragmented();
        single.SetupPerCpuPageset(2); // the frees go to CPU 0's list head, where their order shows
        batch.SetupPerCpuPageset(2);
        var pages = new List<ulong>();
        Assert.AreEqual(12, single.TryAllocOrder0Pages(0, Gfp.Kernel, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, 12, pages));
        Assert.AreEqual(12, batch.TryAllocOrder0Pages(0, Gfp.Kernel, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, 12, new List<ulong>()));
        ulong[] order = [.. pages];
        if (seed < 0)
        {
            Array.Reverse(order);
        }
        else
        {
            new Random(seed).Shuffle(order);
        }

        foreach (ulong pfn in order)
        {
            single.FreePages(pfn, 0, FrameOwner.RuntimeVmemmap);
        }

        batch.FreeOrder0Pages(order, FrameOwner.RuntimeVmemmap);

        Assert.AreEqual(Blocks(single), Blocks(batch));
        Assert.IsGreaterThan(0L, single.PcpPages, "the pages wait on the per-CPU list");
        Assert.AreEqual(single.PcpPages, batch.PcpPages);
        Assert.AreEqual(single.Owners.Count(FrameOwner.Free), batch.Owners.Count(FrameOwner.Free));
        CollectionAssert.AreEqual(AllocateUntilRefused(single, 0, 0), AllocateUntilRefused(batch, 0, 0), "the lists hand out the same frames in the same order");
    }

    [TestMethod]
    public void ABatchRefusesAPageAsItsOwnCallWouldWithThePagesBeforeItFreed()
    {
        (PageAllocator single, _) = Fragmented();
        (PageAllocator batch, _) = Fragmented();
        ulong run = Run(single);
        Run(batch);
        single.FreePages(run + 5, 0, FrameOwner.RuntimeVmemmap);
        batch.FreePages(run + 5, 0, FrameOwner.RuntimeVmemmap); // a double free waits at the sixth page

        for (ulong pfn = run; pfn < run + 5; pfn++)
        {
            single.FreePages(pfn, 0, FrameOwner.RuntimeVmemmap);
        }

        string refusal = Assert.ThrowsExactly<InvalidOperationException>(() => single.FreePages(run + 5, 0, FrameOwner.RuntimeVmemmap)).Message;
        Assert.AreEqual(refusal, Assert.ThrowsExactly<InvalidOperationException>(() => batch.FreeOrder0Pages(run, 8, FrameOwner.RuntimeVmemmap)).Message);

        Assert.AreEqual(Blocks(single), Blocks(batch));
        Assert.AreEqual(single.Owners.Count(FrameOwner.RuntimeVmemmap), batch.Owners.Count(FrameOwner.RuntimeVmemmap));
        Assert.AreEqual(FrameOwner.RuntimeVmemmap, batch.Owners[run + 6], "the pages after the refused one are not freed");
    }

    /// <summary>64 MiB of x86-64 whose order-0 lists hold scattered pages: every third of 300 pages freed again.</summary>
    private static (PageAllocator Allocator, FaultInjection Faults) Fragmented()
    {
        var faults = new FaultInjection { MinOrder = 0 };
        PageAllocator allocator = Create("x86_64", 64 * MiB, faults: faults);
        var taken = new List<ulong>();
        for (int i = 0; i < 300; i++)
        {
            Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));
            taken.Add(pfn);
        }

        for (int i = 0; i < taken.Count; i += 3)
        {
            allocator.FreePages(taken[i], 0, FrameOwner.Buddy);
        }

        return (allocator, faults);
    }

    /// <summary>Eight consecutive order-0 pages (an order-3 block, split_page), owned as runtime vmemmap.</summary>
    private static ulong Run(PageAllocator allocator)
    {
        Assert.IsTrue(allocator.TryAllocPages(0, 3, Gfp.Kernel, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, out ulong pfn));
        allocator.SplitPage(pfn, 3);
        return pfn;
    }
}
