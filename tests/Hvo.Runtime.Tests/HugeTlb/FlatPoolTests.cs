using System.Linq;
using Hvo.Arch;
using Hvo.HugeTlb;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// The pool keeps its pages in flat tables, and a <see cref="HugePage"/> is a view made when one
/// is asked for: two views of a page are equal and see each other's changes.
/// </summary>
[TestClass]
public sealed class FlatPoolTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    [TestMethod]
    public void ViewsOfOnePageAreEqualAndShareItsState()
    {
        using var r = new PoolRig<X86_64>(GiB);
        Hstate<X86_64> h = r.H(2 * MiB);
        r.Pool.SetNrHugepages(h, 3);
        HugePage head = h.FreeList(0).First();
        HugePage again = h.FreeList(0).First();
        Assert.AreNotSame(head, again, "no object is kept per page");
        Assert.AreEqual(head, again);
        Assert.AreEqual(head.GetHashCode(), again.GetHashCode());

        HugePage used = r.Pool.AllocForUse(h)!;
        Assert.AreEqual(head, used, "the head of the free list is dequeued");
        Assert.AreEqual((HugePageState.InUse, HugePageState.InUse), (head.State, again.State));

        r.Optimizer.Restore(used);
        Assert.IsFalse(head.VmemmapOptimized, "HPageVmemmapOptimized is the compound page's, whichever view cleared it");
        r.Optimizer.Optimize(used);
        Assert.IsTrue(again.VmemmapOptimized);

        r.Pool.Release(used);
        Assert.AreEqual(HugePageState.Free, head.State);
        Assert.AreEqual(head, h.FreeList(0).First(), "back at the head of its free list");
        r.Check();
    }
}
