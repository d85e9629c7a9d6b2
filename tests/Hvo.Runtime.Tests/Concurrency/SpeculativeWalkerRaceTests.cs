using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>
/// bd225530a4c7 (v6.10), "mm/hugetlb_vmemmap: fix race with speculative PFN walkers": a walker CPU
/// read a struct page's nonzero refcount while the page was still an ordinary page; the page became
/// a tail of a huge page, HVO remapped its vmemmap read-only, and the walker's compare-and-exchange
/// then wrote the read-only page: an oops. From v6.10 the walker reads under rcu_read_lock and HVO
/// waits a grace period before remapping, so the write lands before the mapping changes.
/// c2a967f6ab0e (v6.11) waits only when a page is really optimized.
/// </summary>
[TestClass]
public sealed class SpeculativeWalkerRaceTests
{
    private const ulong TwoMiB = 2UL << 20;

    [TestMethod]
    [DataRow("v6.9", true)]
    [DataRow("v6.10", false)]
    [DataRow("v6.11", false)]
    [DataRow("v7.1", false)]
    public void AWalkerBetweenReadAndWriteFaultsOnlyBeforeV610(string version, bool faults) =>
        Assert.AreEqual(faults, Archs.Run("x86_64", new Race(HvoPolicy.Find(version)!)), version);

    /// <summary>v6.10 waits a grace period for every batch, HVO off too; v6.11 only when it optimizes.</summary>
    [TestMethod]
    public void WithHvoOffV610StillWaitsAndV611DoesNot()
    {
        const string script = "boot mem=1G\necho 0 > /proc/sys/vm/hugetlb_optimize_vmemmap\necho 8 > /proc/sys/vm/nr_hugepages\n";
        ScenarioOutcome v610 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v6.10"));
        ScenarioOutcome v611 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v6.11"));
        ScenarioOutcome v69 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v6.9"));
        Assert.AreEqual(0L, v610.Counters.Freed);
        Assert.AreEqual(1L, v610.GracePeriods, "one batch, one grace period");
        Assert.AreEqual(0L, v611.GracePeriods);
        Assert.AreEqual(0L, v69.GracePeriods);
        ScenarioOutcome on = ScenarioHarness.Run("x86_64", "boot mem=1G\necho 8 > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find("v6.11"));
        Assert.AreEqual(1L, on.GracePeriods, "with HVO on, v6.11 waits once for the batch");
    }

    /// <summary>The race, deterministic: CPU 1's walker reads, CPU 0 optimizes, then the walker writes.</summary>
    private sealed class Race(HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using Machine<TArch> m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = 1UL << 30, Cpus = 2 });
            var hvo = new HvoOptimizer<TArch>(m, policy);
            var pool = new HugeTlbPool<TArch>(m, hvo);
            Hstate<TArch> h = pool.Hstate(TwoMiB);
            hvo.Switches.Sysctl = false;
            pool.SetNrHugepages(h, 1);
            HugePage page = pool.Pages(h).Single();
            ulong victim = page.HeadPfn + (page.Frames / 2); // a tail in a vmemmap page HVO remaps
            ulong refcount = Machine<TArch>.StructPageAddress(victim) + StructPage.RefcountOffset;

            // What the walker saw: the pfn was an ordinary page in use (refcount 1) a moment before.
            Assert.AreEqual(AccessFault.None, m.Mmu.Write(0, refcount, [1, 0, 0, 0]));
            using var read = new ManualResetEventSlim();
            var optimized = new ManualResetEventSlim();
            AccessFault fault = AccessFault.None;
            var walker = new Thread(() =>
            {
                using (m.RunOnCpu(1))
                {
                    SpeculativeRef r = PageRef<TArch>.Begin(m, 1, victim, rcu: policy.RcuBeforeRemap);
                    read.Set();
                    SpinWait.SpinUntil(() => optimized.IsSet || m.Rcu.Waiting > 0);
                    fault = PageRef<TArch>.Finish(m, r);
                }
            });
            walker.Start();
            read.Wait();
            Assert.AreEqual(AccessFault.None, m.Mmu.Write(0, refcount, [0, 0, 0, 0]), "the page is a free tail again");
            hvo.Switches.Sysctl = true;
            using (m.RunOnCpu(0))
            {
                hvo.Optimize(page);
            }

            optimized.Set();
            walker.Join();
            optimized.Dispose();
            Assert.IsTrue(page.VmemmapOptimized);
            bool oops = m.KernelLog.Any(l => l.StartsWith("BUG: unable to handle page fault", System.StringComparison.Ordinal));
            Assert.AreEqual(fault == AccessFault.WriteProtect, oops, "a fault is logged as the kernel's oops");
            return fault == AccessFault.WriteProtect;
        }
    }
}
