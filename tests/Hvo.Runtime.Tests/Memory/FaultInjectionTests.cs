using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>fail_page_alloc: the knobs of lib/fault-inject.c should_fail, and fail-nth.</summary>
[TestClass]
public sealed class FaultInjectionTests
{
    private const int Calls = 16;

    public static IEnumerable<object[]> EveryK => Enumerable.Range(1, Calls).Select(k => new object[] { k });

    private static FaultInjection Armed(ulong seed = 0) => new(seed) { MinOrder = 0, Times = -1 };

    private static bool[] Outcomes(FaultInjection faults, int calls, int order = 0, AllocSite site = AllocSite.Other, Gfp gfp = Gfp.Kernel) =>
        Enumerable.Range(0, calls).Select(_ => faults.ShouldFail(site, order, gfp)).ToArray();

    [TestMethod]
    public void TheSameSeedFailsTheSameCalls()
    {
        bool[] first = Outcomes(new FaultInjection(42) { MinOrder = 0, Times = -1, Probability = 30 }, 1000);
        bool[] again = Outcomes(new FaultInjection(42) { MinOrder = 0, Times = -1, Probability = 30 }, 1000);
        bool[] other = Outcomes(new FaultInjection(43) { MinOrder = 0, Times = -1, Probability = 30 }, 1000);

        CollectionAssert.AreEqual(first, again);
        CollectionAssert.AreNotEqual(first, other);
        Assert.IsTrue(first.Count(f => f) is > 200 and < 400, $"about 30% of 1000: {first.Count(f => f)}");
    }

    [TestMethod]
    public void ReseedingReplaysTheFailures()
    {
        FaultInjection faults = Armed(7);
        faults.Probability = 50;
        bool[] first = Outcomes(faults, 100);

        faults.Seed = 7;

        CollectionAssert.AreEqual(first, Outcomes(faults, 100));
    }

    [TestMethod]
    [DynamicData(nameof(EveryK))]
    public void FailNthFailsExactlyTheKthAllocation(int k)
    {
        var faults = new FaultInjection { MinOrder = 0 };
        PageAllocator allocator = Create("x86_64", 64 * MiB, faults: faults);
        faults.FailNth(k);

        bool[] succeeded = Enumerable.Range(0, Calls)
            .Select(call => allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.PteTable, FrameOwner.PageTable, out _))
            .ToArray();

        CollectionAssert.AreEqual(Enumerable.Range(1, Calls).Select(call => call != k).ToArray(), succeeded);
        Assert.AreEqual(1, faults.Failures);
        Assert.AreEqual(Calls, faults.Calls);
        Assert.AreEqual(1, allocator.InjectedFailures);
        Assert.AreEqual(Calls - 1, allocator.Owners.Count(FrameOwner.PageTable));
    }

    [TestMethod]
    public void FailNthOverridesTheOtherKnobsUntilItFires()
    {
        FaultInjection faults = Armed();
        faults.Probability = 100;
        faults.FailNth(3);

        CollectionAssert.AreEqual(new[] { false, false, true, true }, Outcomes(faults, 4));
        Assert.AreEqual(0, faults.PendingFailNth);
    }

    [TestMethod]
    public void AnInjectedFailureChangesNothingButCounters()
    {
        FaultInjection faults = Armed();
        faults.Probability = 100;
        PageAllocator allocator = Create("x86_64", 64 * MiB, faults: faults);
        string buddy = allocator.BuddyInfo();
        string zones = allocator.ZoneInfo();

        Assert.IsFalse(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out _));
        Assert.IsFalse(allocator.TryAllocContigPages(0, 1024, Gfp.NoWarn, AllocSite.HugePage, FrameOwner.HugePage, out _));

        Assert.AreEqual(buddy, allocator.BuddyInfo());
        Assert.AreEqual(zones, allocator.ZoneInfo());
        Assert.AreEqual(allocator.ManagedPages, allocator.Owners.Count(FrameOwner.Free));
        Assert.AreEqual(2, allocator.InjectedFailures);
        Assert.AreEqual(2, allocator.FailedAllocations);
        Assert.AreEqual(1, allocator.WarnedFailures);
    }

    [TestMethod]
    public void TimesLimitsTheFailures()
    {
        FaultInjection faults = Armed();
        faults.Probability = 100;
        faults.Times = 3;

        CollectionAssert.AreEqual(new[] { true, true, true, false, false }, Outcomes(faults, 5));
        Assert.AreEqual(0, faults.Times);
    }

    [TestMethod]
    public void TheDefaultTimesIsOneFailure()
    {
        var faults = new FaultInjection { MinOrder = 0, Probability = 100 };

        CollectionAssert.AreEqual(new[] { true, false }, Outcomes(faults, 2));
    }

    [TestMethod]
    public void IntervalFailsOnlyEveryNthCall()
    {
        FaultInjection faults = Armed();
        faults.Probability = 100;
        faults.Interval = 4;

        bool[] outcomes = Outcomes(faults, 12);

        CollectionAssert.AreEqual(new[] { 3, 7, 11 }, Enumerable.Range(0, 12).Where(i => outcomes[i]).ToArray());
    }

    [TestMethod]
    public void SpaceLetsTheFirstPagesThrough()
    {
        FaultInjection faults = Armed();
        faults.Probability = 100;
        faults.Space = 10;

        // should_fail lets a call through while space > size, taking size from it: 10 -> 1 in nine order-0 calls.
        CollectionAssert.AreEqual(Enumerable.Repeat(false, 9).Append(true).ToArray(), Outcomes(faults, 10));
    }

    [TestMethod]
    public void MinOrderSparesSmallerAllocationsWhichDoNotCount()
    {
        var faults = new FaultInjection { Probability = 100, Times = -1 }; // the kernel's min-order: 1

        Assert.IsFalse(faults.ShouldFail(AllocSite.PteTable, 0, Gfp.Kernel));
        Assert.IsTrue(faults.ShouldFail(AllocSite.HugePage, 9, Gfp.Kernel));
        Assert.AreEqual(1, faults.Calls);
    }

    [TestMethod]
    public void TheSiteFilterSparesOtherSites()
    {
        FaultInjection faults = Armed();
        faults.Probability = 100;
        faults.Sites = new HashSet<AllocSite> { AllocSite.VmemmapRestore };

        Assert.IsFalse(faults.ShouldFail(AllocSite.PteTable, 0, Gfp.Kernel));
        Assert.IsFalse(faults.ShouldFail(AllocSite.HugePage, 9, Gfp.Kernel));
        Assert.IsTrue(faults.ShouldFail(AllocSite.VmemmapRestore, 0, Gfp.ThisNode | Gfp.NoRetry));
        Assert.AreEqual(1, faults.Calls);
    }

    [TestMethod]
    public void TheGfpFilterSparesCallsWithoutTheFlags()
    {
        FaultInjection faults = Armed();
        faults.Probability = 100;
        faults.RequiredGfp = Gfp.NoRetry | Gfp.ThisNode;

        Assert.IsFalse(faults.ShouldFail(AllocSite.VmemmapRestore, 0, Gfp.ThisNode));
        Assert.IsTrue(faults.ShouldFail(AllocSite.VmemmapRestore, 0, Gfp.ThisNode | Gfp.NoRetry | Gfp.NoWarn));
    }

    [TestMethod]
    public void ZeroProbabilityNeverFails()
    {
        FaultInjection faults = Armed();

        Assert.IsFalse(Outcomes(faults, 100).Any(f => f));
        Assert.AreEqual(100, faults.Calls);
        Assert.AreEqual(0, faults.Failures);
    }
}
