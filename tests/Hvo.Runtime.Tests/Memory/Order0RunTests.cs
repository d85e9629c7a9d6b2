using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// An order-0 batch moves a run of pages to or from the per-CPU list's head at once
/// (<c>PageAllocator.Order0Runs</c>: a restore's pages, an optimize's freed frames); it must give,
/// take and refuse exactly what one call per page does. Two allocators run the same random
/// sequence from fixed seeds, one each way, and are compared after every step: the pages handed
/// out and their order, the counters, every free and per-CPU list in order, the free factor, the owners.
/// </summary>
[TestClass]
public sealed class Order0RunTests
{
    public static IEnumerable<object[]> Seeds => [[1], [2], [3], [42], [1234]];

    [TestMethod]
    [DynamicData(nameof(Seeds))]
    public void RunsOnAndOffTheListsLeaveWhatOneCallPerPageLeaves(int seed)
    {
        var random = new Random(seed);
        var runsFaults = new FaultInjection();
        var pagesFaults = new FaultInjection();
        PageAllocator runs = Create("x86_64", 256 * MiB, faults: runsFaults);
        PageAllocator pages = Create("x86_64", 256 * MiB, faults: pagesFaults);
        pages.Order0Runs = false;
        runs.SetupPerCpuPageset(2);
        pages.SetupPerCpuPageset(2);

        var batches = new List<List<ulong>>(); // order-0 batches held, in the order they were handed out
        var split = new List<List<ulong>>();   // split blocks' pages not freed yet, ascending
        for (int step = 0; step < 2000; step++)
        {
            string where = $"seed {seed}, step {step}";
            int op = random.Next(10);
            if (op < 3)
            {
                // A restore's pages: mostly the list's head; now and then fault injection counts order 0 and fails one.
                if (random.Next(8) == 0)
                {
                    int nth = random.Next(1, 6);
                    foreach (FaultInjection faults in new[] { runsFaults, pagesFaults })
                    {
                        faults.MinOrder = 0;
                        faults.FailNth(nth);
                    }
                }

                Gfp gfp = random.Next(4) switch
                {
                    0 => Gfp.Kernel | Gfp.Movable,
                    1 => Gfp.Kernel,
                    _ => Gfp.Kernel | Gfp.NoRetry | Gfp.ThisNode,
                };
                int count = random.Next(1, 16);
                var got = new List<ulong>();
                var other = new List<ulong>();
                int n = runs.TryAllocOrder0Pages(0, gfp, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, count, got);
                Assert.AreEqual(pages.TryAllocOrder0Pages(0, gfp, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, count, other), n, where);
                CollectionAssert.AreEqual(other, got, where);
                if (got.Count > 0)
                {
                    batches.Add(got);
                }

                runsFaults.MinOrder = pagesFaults.MinOrder = 1;
            }
            else if (op < 5 && batches.Count > 0)
            {
                // An optimize's frees: a batch as it was mapped, reversed, or shuffled.
                int pick = random.Next(batches.Count);
                ulong[] freed = [.. batches[pick]];
                batches.RemoveAt(pick);
                switch (random.Next(4))
                {
                    case 0:
                        Array.Reverse(freed);
                        break;
                    case 1:
                        random.Shuffle(freed);
                        break;
                }

                runs.FreeOrder0Pages(freed, FrameOwner.RuntimeVmemmap);
                pages.FreeOrder0Pages(freed, FrameOwner.RuntimeVmemmap);
            }
            else if (op < 6 && batches.Count > 0 && batches[0].Count > 1)
            {
                // A double free in the middle of a batch: refused at the same page, the pages before it freed.
                ulong[] freed = [.. batches[0]];
                batches.RemoveAt(0);
                int again = random.Next(freed.Length);
                runs.FreePages(freed[again], 0, FrameOwner.RuntimeVmemmap);
                pages.FreePages(freed[again], 0, FrameOwner.RuntimeVmemmap);
                string refusal = Assert.ThrowsExactly<InvalidOperationException>(() => pages.FreeOrder0Pages(freed, FrameOwner.RuntimeVmemmap), where).Message;
                Assert.AreEqual(refusal, Assert.ThrowsExactly<InvalidOperationException>(() => runs.FreeOrder0Pages(freed, FrameOwner.RuntimeVmemmap), where).Message, where);
                ulong[] rest = [.. freed.Skip(again + 1)];
                runs.FreeOrder0Pages(rest, FrameOwner.RuntimeVmemmap);
                pages.FreeOrder0Pages(rest, FrameOwner.RuntimeVmemmap);
            }
            else if (op < 8)
            {
                // A block split into order-0 pages (a run of frames to free later, up to two pageblocks).
                int order = random.Next(1, runs.MaxOrder + 1);
                Gfp gfp = random.Next(2) == 0 ? Gfp.Kernel : Gfp.Kernel | Gfp.Movable;
                bool got = runs.TryAllocPages(0, order, gfp, AllocSite.Other, FrameOwner.RuntimeVmemmap, out ulong pfn);
                Assert.AreEqual(got, pages.TryAllocPages(0, order, gfp, AllocSite.Other, FrameOwner.RuntimeVmemmap, out ulong other), where);
                Assert.AreEqual(other, pfn, where);
                if (got)
                {
                    runs.SplitPage(pfn, order);
                    pages.SplitPage(pfn, order);
                    split.Add([.. Enumerable.Range(0, 1 << order).Select(i => pfn + (ulong)i)]);
                }
            }
            else if (op < 9 && split.Count > 0)
            {
                // Part of a split block freed as a range (the boot vmemmap's runs) or as a span in either direction.
                int pick = random.Next(split.Count);
                List<ulong> block = split[pick];
                int from = random.Next(block.Count), to = random.Next(from, block.Count) + 1;
                List<ulong> freed = block.GetRange(from, to - from);
                block.RemoveRange(from, to - from);
                if (block.Count == 0)
                {
                    split.RemoveAt(pick);
                }

                bool consecutive = freed[^1] - freed[0] == (ulong)(freed.Count - 1);
                if (consecutive && random.Next(2) == 0)
                {
                    runs.FreeOrder0Pages(freed[0], (ulong)freed.Count, FrameOwner.RuntimeVmemmap);
                    pages.FreeOrder0Pages(freed[0], (ulong)freed.Count, FrameOwner.RuntimeVmemmap);
                }
                else
                {
                    if (random.Next(2) == 0)
                    {
                        freed.Reverse();
                    }

                    runs.FreeOrder0Pages([.. freed], FrameOwner.RuntimeVmemmap);
                    pages.FreeOrder0Pages([.. freed], FrameOwner.RuntimeVmemmap);
                }
            }
            else if (random.Next(3) == 0)
            {
                runs.DrainAllPages();
                pages.DrainAllPages();
            }

            Assert.AreEqual(FreeLists(pages), FreeLists(runs), where);
            Assert.AreEqual(pages.AllocCalls, runs.AllocCalls, where);
            Assert.AreEqual(pages.FailedAllocations, runs.FailedAllocations, where);
            Assert.AreEqual(pages.InjectedFailures, runs.InjectedFailures, where);
            Assert.AreEqual(pages.PcpPages, runs.PcpPages, where);
            Assert.AreEqual(pages.Owners.Count(FrameOwner.RuntimeVmemmap), runs.Owners.Count(FrameOwner.RuntimeVmemmap), where);
            Assert.AreEqual(pages.Owners.Count(FrameOwner.Free), runs.Owners.Count(FrameOwner.Free), where);
            CollectionAssert.AreEqual(
                pages.Zones.SelectMany(z => z.Pagesets).Select(p => p.FreeFactor).ToList(),
                runs.Zones.SelectMany(z => z.Pagesets).Select(p => p.FreeFactor).ToList(),
                where);
        }

        Assert.IsGreaterThan(0L, runs.Order0RunsMoved, "runs went to and from the lists at once");
        Assert.AreEqual(0L, pages.Order0RunsMoved);
        Assert.IsGreaterThan(0L, runs.InjectedFailures, "fault injection failed order-0 pages");
        CollectionAssert.AreEqual(AllocateUntilRefused(pages, 0, 0), AllocateUntilRefused(runs, 0, 0), "the lists hand out the same frames in the same order");
    }
}
