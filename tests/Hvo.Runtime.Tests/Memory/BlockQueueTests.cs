using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// The free lists' queue keeps its entries as runs of evenly spaced frame numbers; whatever the
/// sequence, it gives back what a plain double-ended queue does.
/// </summary>
[TestClass]
public sealed class BlockQueueTests
{
    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    public void RandomPushesPopsAndRetainsMatchAPlainDeque(int seed)
    {
        var rng = new Random(seed);
        var queue = new BlockQueue();
        var model = new LinkedList<ulong>();
        ulong next = 1000;
        for (int op = 0; op < 20_000; op++)
        {
            // Mostly evenly spaced frames (what HVO's frees give), sometimes a jump or a repeat.
            ulong pfn = rng.Next(10) switch
            {
                0 => (ulong)rng.Next(1 << 20),
                1 => next,
                _ => next += 8,
            };
            switch (rng.Next(9))
            {
                case < 3:
                    queue.PushBack(pfn);
                    model.AddLast(pfn);
                    break;
                case < 5:
                    queue.PushFront(pfn);
                    model.AddFirst(pfn);
                    break;
                case < 8:
                    bool had = queue.TryPopFront(out ulong got);
                    Assert.AreEqual(model.Count > 0, had);
                    if (had)
                    {
                        Assert.AreEqual(model.First!.Value, got, $"seed {seed}, op {op}");
                        model.RemoveFirst();
                    }

                    break;
                default:
                    ulong mod = (ulong)rng.Next(2, 5);
                    queue.Retain(p => p % mod != 0);
                    foreach (ulong p in model.Where(p => p % mod == 0).ToList())
                    {
                        model.Remove(p);
                    }

                    break;
            }

            Assert.AreEqual(model.Count, queue.Count);
        }

        var rest = new List<ulong>();
        while (queue.TryPopFront(out ulong pfn))
        {
            rest.Add(pfn);
        }

        CollectionAssert.AreEqual(model.ToList(), rest);
    }

    [TestMethod]
    public void FramesAFixedStepApartTakeOneRunEitherWay()
    {
        var back = new BlockQueue();
        var front = new BlockQueue();
        for (ulong i = 0; i < 100_000; i++)
        {
            back.PushBack(1 + (i * 8));
            front.PushFront(1 + (i * 8));
        }

        Assert.AreEqual((1, 1), (back.Runs, front.Runs));
        Assert.IsTrue(back.TryPopFront(out ulong first));
        Assert.IsTrue(front.TryPopFront(out ulong last));
        Assert.AreEqual((1UL, 1 + (99_999UL * 8)), (first, last));
    }
}
