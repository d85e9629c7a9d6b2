using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// A free area's list against the kernel's (a linked list: list_add at the head, add_to_free_list_tail
/// at the tail, list_del wherever the block is, get_page_from_free_area from the head): a block that
/// left the list and comes back goes to the head or tail, whatever stale entries of it the queue holds.
/// </summary>
[TestClass]
public sealed class FreeAreaTests
{
    [TestMethod]
    public void ABlockFreedAgainGoesToTheHeadNotWhereItsStaleEntryStands()
    {
        var area = new FreeArea(0, 1 << 16, 0);
        area.Add(10, toTail: false);
        area.Add(20, toTail: false);
        area.Remove(10); // merged away: its entry stays queued, stale
        area.Add(30, toTail: false);
        area.Add(10, toTail: false);
        CollectionAssert.AreEqual(new ulong[] { 10, 30, 20 }, area.Blocks());
        CollectionAssert.AreEqual(new ulong[] { 10, 30, 20 }, TakeAll(area));
    }

    [TestMethod]
    public void ABlockFreedAgainToTheTailComesLast()
    {
        var area = new FreeArea(0, 1 << 16, 0);
        area.Add(10, toTail: false);
        area.Add(20, toTail: true);
        area.Remove(10);
        area.Add(30, toTail: true);
        area.Add(10, toTail: true);
        CollectionAssert.AreEqual(new ulong[] { 20, 30, 10 }, TakeAll(area));
    }

    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(42)]
    public void RandomAddsRemovesAndTakesMatchTheKernelsList(int seed)
    {
        var random = new Random(seed);
        var area = new FreeArea(0, 1 << 12, 0);
        var list = new LinkedList<ulong>();
        for (int step = 0; step < 50_000; step++)
        {
            // A few blocks come and go often, so stale entries pile up past the compaction's mark
            // while blocks that left come back.
            ulong pfn = (ulong)random.Next(random.Next(4) == 0 ? 4096 : 16);
            int op = random.Next(20);
            if (op < 10 && !list.Contains(pfn))
            {
                bool toTail = random.Next(2) == 0;
                area.Add(pfn, toTail);
                _ = toTail ? list.AddLast(pfn) : list.AddFirst(pfn);
            }
            else if (op < 19 && list.Contains(pfn))
            {
                Assert.IsTrue(area.TryRemove(pfn));
                list.Remove(pfn);
            }
            else if (op == 19)
            {
                bool took = area.TryTake(out ulong head);
                Assert.AreEqual(list.Count > 0, took, $"seed {seed}, step {step}");
                if (took)
                {
                    Assert.AreEqual(list.First!.Value, head, $"seed {seed}, step {step}");
                    list.RemoveFirst();
                }
            }

            Assert.AreEqual(list.Count, area.Count);
            if (step % 97 == 0)
            {
                CollectionAssert.AreEqual(list.ToList(), area.Blocks(), $"seed {seed}, step {step}");
            }
        }

        CollectionAssert.AreEqual(list.ToList(), TakeAll(area));
    }

    private static List<ulong> TakeAll(FreeArea area)
    {
        var taken = new List<ulong>();
        while (area.TryTake(out ulong pfn))
        {
            taken.Add(pfn);
        }

        return taken;
    }
}
