using System;
using System.Collections.Generic;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// free_pcppages_bulk gives a run of ascending pages to the buddy lists as its aligned blocks
/// (<c>PageAllocator.BulkFreeByBlocks</c>); the free lists must come out exactly as page by page:
/// every order and migrate type, each list's blocks in order. Two allocators run the same random
/// sequence from fixed seeds, one each way, and are compared after every step.
/// </summary>
[TestClass]
public sealed class PcpBulkFreeTests
{
    public static IEnumerable<object[]> Seeds => [[1], [2], [3], [42], [1234]];

    [TestMethod]
    [DynamicData(nameof(Seeds))]
    public void FreeingRunsAsBlocksLeavesTheListsOfPageByPage(int seed)
    {
        var random = new Random(seed);
        PageAllocator blocks = Create("x86_64", 256 * MiB);
        PageAllocator pages = Create("x86_64", 256 * MiB);
        pages.BulkFreeByBlocks = false;
        blocks.SetupPerCpuPageset(2);
        pages.SetupPerCpuPageset(2);

        var whole = new List<(ulong Pfn, int Order)>(); // allocations not split
        var split = new List<List<ulong>>();           // split blocks' pages not freed yet, ascending
        var singles = new List<ulong>();                // order-0 allocations
        for (int step = 0; step < 3000; step++)
        {
            string where = $"seed {seed}, step {step}";
            int op = random.Next(10);
            if (op < 3 && split.Count > 0)
            {
                // HVO's frees: a split block's pages, mostly ascending and consecutive, sometimes with
                // pages kept back (the huge page's head vmemmap page) or descending (a restore's).
                int pick = random.Next(split.Count);
                List<ulong> block = split[pick];
                int from = random.Next(block.Count), to = random.Next(from, block.Count) + 1;
                List<ulong> freed = block.GetRange(from, to - from);
                if (random.Next(5) == 0)
                {
                    freed.Reverse();
                }

                foreach (ulong pfn in freed)
                {
                    if (random.Next(8) == 0)
                    {
                        continue; // kept
                    }

                    blocks.FreePages(pfn, 0, FrameOwner.Buddy);
                    pages.FreePages(pfn, 0, FrameOwner.Buddy);
                    block.Remove(pfn);
                }

                if (block.Count == 0)
                {
                    split.RemoveAt(pick);
                }
            }
            else if (op < 6)
            {
                int order = random.Next(4) == 0 ? random.Next(blocks.MaxOrder + 1) : random.Next(2, 7);
                Gfp gfp = random.Next(2) == 0 ? Gfp.Kernel : Gfp.Kernel | Gfp.Movable;
                bool got = blocks.TryAllocPages(0, order, gfp, AllocSite.Other, FrameOwner.Buddy, out ulong pfn);
                Assert.AreEqual(got, pages.TryAllocPages(0, order, gfp, AllocSite.Other, FrameOwner.Buddy, out ulong other), where);
                Assert.AreEqual(pfn, other, where);
                if (!got)
                {
                    continue;
                }

                if (order > 0 && random.Next(4) > 0)
                {
                    blocks.SplitPage(pfn, order);
                    pages.SplitPage(pfn, order);
                    var list = new List<ulong>();
                    for (ulong p = pfn; p < pfn + (1UL << order); p++)
                    {
                        list.Add(p);
                    }

                    split.Add(list);
                }
                else
                {
                    whole.Add((pfn, order));
                }
            }
            else if (op < 7 && whole.Count > 0)
            {
                int pick = random.Next(whole.Count);
                (ulong pfn, int order) = whole[pick];
                whole.RemoveAt(pick);
                blocks.FreePages(pfn, order, FrameOwner.Buddy);
                pages.FreePages(pfn, order, FrameOwner.Buddy);
            }
            else if (op < 8)
            {
                // Order-0 allocations, from the per-CPU list's head: pages freed a moment ago.
                for (int i = random.Next(1, 40); i > 0; i--)
                {
                    bool got = blocks.TryAllocPages(0, 0, Gfp.Kernel | Gfp.Movable, AllocSite.Other, FrameOwner.Buddy, out ulong pfn);
                    Assert.AreEqual(got, pages.TryAllocPages(0, 0, Gfp.Kernel | Gfp.Movable, AllocSite.Other, FrameOwner.Buddy, out ulong other), where);
                    Assert.AreEqual(pfn, other, where);
                    if (got)
                    {
                        singles.Add(pfn);
                    }
                }
            }
            else if (op < 9 && singles.Count > 0)
            {
                random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(singles));
                int n = random.Next(1, singles.Count + 1);
                for (int i = 0; i < n; i++)
                {
                    blocks.FreePages(singles[^1], 0, FrameOwner.Buddy);
                    pages.FreePages(singles[^1], 0, FrameOwner.Buddy);
                    singles.RemoveAt(singles.Count - 1);
                }
            }
            else if (random.Next(4) == 0)
            {
                blocks.DrainAllPages();
                pages.DrainAllPages();
            }

            Assert.AreEqual(FreeLists(pages), FreeLists(blocks), where);
        }

        Assert.IsGreaterThan(0L, blocks.RunsFreedByBlocks, "runs went to the buddy lists as blocks");
        Assert.AreEqual(0L, pages.RunsFreedByBlocks);
        blocks.DrainAllPages();
        pages.DrainAllPages();
        Assert.AreEqual(FreeLists(pages), FreeLists(blocks));
        CollectionAssert.AreEqual(AllocateUntilRefused(pages, 0, 0), AllocateUntilRefused(blocks, 0, 0), "the lists hand out the same frames in the same order");
    }
}
