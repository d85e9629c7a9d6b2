using System.Collections.Generic;
using Hvo.HugeTlb;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>The frames waiting for their flush come back in the order they were taken, runs or not.</summary>
[TestClass]
public sealed class VmemmapFrameListTests
{
    [TestMethod]
    public void FramesComeBackInOrderWithRunsMergedAndBroken()
    {
        ulong[] taken = [100, 101, 102, 7, 8, 103, 103, 50, 49];
        var list = new VmemmapFrameList();
        list.AddRange([.. taken[..3]]);
        foreach (ulong pfn in taken[3..])
        {
            list.Add(pfn);
        }

        var back = new List<ulong>();
        foreach (ulong pfn in list)
        {
            back.Add(pfn);
        }

        CollectionAssert.AreEqual(taken, back);
        Assert.AreEqual(taken.Length, list.Count);

        list.Clear();
        Assert.AreEqual(0, list.Count);
        foreach (ulong pfn in list)
        {
            Assert.Fail($"a cleared list gave {pfn}");
        }
    }

    [TestMethod]
    public void ARunLongerThanOneWordHoldsContinuesInTheNext()
    {
        // A run's length has 20 bits: a longer stretch of consecutive frames (v6.2+ frees whole
        // vmemmap blocks, one after the other) spans several runs and still comes back in order.
        const ulong frames = (1UL << 20) + 5;
        var list = new VmemmapFrameList();
        for (ulong pfn = 0; pfn < frames; pfn++)
        {
            list.Add(0x1000 + pfn);
        }

        ulong expected = 0x1000;
        foreach (ulong pfn in list)
        {
            Assert.AreEqual(expected++, pfn);
        }

        Assert.AreEqual((int)frames, list.Count);
        Assert.AreEqual(0x1000 + frames, expected);
    }
}
