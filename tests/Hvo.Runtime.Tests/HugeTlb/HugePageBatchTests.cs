using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// A write's fresh pages are kept as runs of consecutive pages: read back in the order they were
/// added, by index or in a loop, whatever the pattern, each a view with the page's node.
/// </summary>
[TestClass]
public sealed class HugePageBatchTests
{
    private const int Order = 9;

    [TestMethod]
    public void PagesComeBackInOrderAsRunsOrNot()
    {
        // Consecutive, a jump back, a repeat of the pattern, a lone page, then consecutive again.
        ulong[] heads = [.. Enumerable.Range(0, 100).Select(i => 0x40000UL + ((ulong)i << Order)), 0x200, 0x400, 0x80000, 0x600, .. Enumerable.Range(1, 10).Select(i => 0x600UL + ((ulong)i << Order))];
        static int NodeOf(ulong pfn) => pfn >= 0x40000 ? 1 : 0;
        var batch = new HugePageBatch(Order, NodeOf, _ => { });
        foreach (ulong head in heads)
        {
            batch.Add(new HugePage(head, Order, NodeOf(head), fromBoot: false));
        }

        Assert.AreEqual(heads.Length, batch.Count);
        int runs = 1 + Enumerable.Range(1, heads.Length - 1).Count(i => heads[i] != heads[i - 1] + (1UL << Order));
        Assert.AreEqual(runs, batch.Runs, "a run ends where the next head is not the page right after: 100 pages in a row, 0x200-0x400, 0x80000, 0x600 and the ten after it");
        CollectionAssert.AreEqual(heads, batch.Select(p => p.HeadPfn).ToArray());
        CollectionAssert.AreEqual(heads, Enumerable.Range(0, batch.Count).Select(i => batch[i].HeadPfn).ToArray());
        CollectionAssert.AreEqual(heads.Select(NodeOf).ToArray(), batch.Select(p => p.Node).ToArray());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => batch[heads.Length]);
    }

    [TestMethod]
    public void OnlyFreshPagesGoIn()
    {
        var batch = new HugePageBatch(Order, _ => 0, _ => { });
        var optimized = new HugePage(0x200, Order, 0, fromBoot: false) { VmemmapOptimized = true };
        var cases = new List<HugePage>
        {
            new(0x200, Order, 0, fromBoot: true),      // from memblock: a view would say otherwise
            new(0x200, Order, 1, fromBoot: false),     // on a node its frames are not on
            new(0x200, Order + 1, 0, fromBoot: false), // another order
            optimized,                                 // state of its own already
        };
        foreach (HugePage page in cases)
        {
            Assert.ThrowsExactly<ArgumentException>(() => batch.Add(page), page.ToString());
        }

        Assert.AreEqual(0, batch.Count);
    }
}
