using System;
using System.Collections.Generic;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// A pcp list held as runs of consecutive pfns gives exactly the order one entry per page gives:
/// frees at the head and allocations from the head (LIFO, a page or a run at a time), rmqueue_bulk at the tail and
/// free_pcppages_bulk from the tail (FIFO, a page or a run at a time), checked against a plain per-page deque from fixed seeds.
/// </summary>
[TestClass]
public sealed class PcpListTests
{
    public static IEnumerable<object[]> Seeds => [[1], [2], [3], [42], [1234]];

    [TestMethod]
    [DynamicData(nameof(Seeds))]
    public void RunsKeepThePerPageOrderAtBothEnds(int seed)
    {
        var random = new Random(seed);
        var list = new PcpList();
        var reference = new LinkedList<ulong>();
        ulong next = 1000;
        for (int step = 0; step < 20_000; step++)
        {
            int op = random.Next(10);
            if (op < 4 || reference.Count == 0)
            {
                // A free at the head: mostly the next pfn up or down (vmemmap frames in order), else a jump.
                int kind = random.Next(6);
                next = kind switch
                {
                    0 or 1 or 2 => next + 1,
                    3 => next - 1,
                    4 => next,
                    _ => (ulong)random.Next(0, 4000),
                };
                list.AddHead(next);
                reference.AddFirst(next);
            }
            else if (op < 6)
            {
                // rmqueue_bulk appends at the tail, from pfns the buddy hands out in either direction.
                ulong pfn = random.Next(3) switch
                {
                    0 => reference.Last!.Value + 1,
                    1 => reference.Last!.Value - 1,
                    _ => (ulong)random.Next(0, 4000),
                };
                list.AddTail(pfn);
                reference.AddLast(pfn);
            }
            else if (op < 7)
            {
                Assert.AreEqual(reference.First!.Value, list.TakeHead(), $"seed {seed}, step {step}: head");
                reference.RemoveFirst();
            }
            else if (op < 8)
            {
                // A restore's run at a time from the head: the same pages, in the same order, as TakeHead one by one.
                int n = Math.Min(random.Next(1, 12), list.PeekHeadRun(out ulong pfn, out long direction));
                for (int i = 0; i < n; i++, pfn += (ulong)direction)
                {
                    Assert.AreEqual(reference.First!.Value, pfn, $"seed {seed}, step {step}: head run page {i}");
                    reference.RemoveFirst();
                }

                list.DropHead(n);
            }
            else if (op < 9)
            {
                Assert.AreEqual(reference.Last!.Value, list.TakeTail(), $"seed {seed}, step {step}: tail");
                reference.RemoveLast();
            }
            else
            {
                // free_pcppages_bulk's run at a time: the same pages, in the same order, as TakeTail one by one.
                int n = list.TakeTailRun(random.Next(1, 50), out ulong pfn, out long direction);
                Assert.IsTrue(n >= 1);
                for (int i = 0; i < n; i++, pfn -= (ulong)direction)
                {
                    Assert.AreEqual(reference.Last!.Value, pfn, $"seed {seed}, step {step}: tail run page {i}");
                    reference.RemoveLast();
                }
            }

            Assert.AreEqual(reference.Count, list.Count);
        }

        while (reference.Count > 0)
        {
            Assert.AreEqual(reference.Last!.Value, list.TakeTail());
            reference.RemoveLast();
        }

        Assert.AreEqual(0, list.Count);
        Assert.AreEqual(0, list.Runs);
    }

    /// <summary>Ascending frees (HVO's vmemmap frames) share one run however many there are; a gap starts another.</summary>
    [TestMethod]
    public void AscendingFreesShareOneRun()
    {
        var list = new PcpList();
        const int Pages = 100_000;
        for (ulong pfn = 0; pfn < Pages; pfn++)
        {
            list.AddHead(5000 + pfn);
        }

        Assert.AreEqual(Pages, list.Count);
        Assert.AreEqual(1, list.Runs);
        list.AddHead(5000 + Pages + 7);
        Assert.AreEqual(2, list.Runs);
        Assert.AreEqual(5000UL + Pages + 7, list.TakeHead());
        Assert.AreEqual(5000UL, list.TakeTail(), "the oldest free leaves first");
        Assert.AreEqual(5000UL + Pages - 1, list.TakeHead(), "the newest free is taken first");
    }
}
