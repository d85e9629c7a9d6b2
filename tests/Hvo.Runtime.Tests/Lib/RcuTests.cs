using System.Threading;
using System.Threading.Tasks;
using Hvo.Lib;

namespace Hvo.Runtime.Tests.Lib;

/// <summary>synchronize_rcu waits for the read-side sections that had begun, outermost ones whole.</summary>
[TestClass]
public sealed class RcuTests
{
    [TestMethod]
    public void WithNoReaderAGracePeriodEndsAtOnce()
    {
        var rcu = new Rcu(2);
        rcu.Synchronize(0);
        Assert.AreEqual(1L, rcu.GracePeriods);
    }

    /// <summary>
    /// A nested section: the inner rcu_read_unlock leaves CPU 1 reading, so the grace period does
    /// not end until the outer one. Fails if every unlock counted as leaving the section.
    /// </summary>
    [TestMethod]
    public void AnInnerUnlockDoesNotEndTheGracePeriod()
    {
        var rcu = new Rcu(2);
        rcu.ReadLock(1);
        rcu.ReadLock(1);
        Task sync = Task.Run(() => rcu.Synchronize(0));
        Assert.IsTrue(SpinWait.SpinUntil(() => rcu.Waiting == 1, 10_000), "the writer waits for CPU 1");

        rcu.ReadUnlock(1);
        Assert.IsTrue(rcu.IsReading(1));
        Assert.IsFalse(sync.Wait(200), "still inside the outer section");
        Assert.AreEqual(0L, rcu.GracePeriods);

        rcu.ReadUnlock(1);
        Assert.IsTrue(sync.Wait(10_000), "the outer unlock ends it");
        Assert.AreEqual(1L, rcu.GracePeriods);
    }

    [TestMethod]
    public void AnUnlockWithoutALockIsRefused() =>
        Assert.ThrowsExactly<System.InvalidOperationException>(() => new Rcu(1).ReadUnlock(0));
}
