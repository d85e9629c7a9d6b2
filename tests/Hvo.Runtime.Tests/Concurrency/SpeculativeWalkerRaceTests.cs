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
/// waits a grace period before remapping, so the write lands before the mapping changes, and
/// page_count_writable declines a fake head. c2a967f6ab0e (v6.12) waits only when a page is really
/// optimized or restored. v7.1 (01b1d0ffb6f7, 32c440d67e6c) drops the grace period, the
/// rcu_read_lock and the fake-head check: a tail's struct page, shared and read-only, reads 0, so a
/// walker that reads it takes nothing and writes nothing; one whose read came before the remap and
/// whose locked compare-and-exchange comes after it writes the shared tail again, as before v6.10.
/// </summary>
[TestClass]
public sealed class SpeculativeWalkerRaceTests
{
    private const ulong TwoMiB = 2UL << 20;

    [TestMethod]
    [DataRow("v6.9", true)]
    [DataRow("v6.10", false)]
    [DataRow("v7.0", false)]
    [DataRow("v7.1", true)]
    public void AWalkerBetweenReadAndWriteFaultsBeforeV610AndAgainFromV71(string version, bool faults) =>
        Assert.AreEqual(faults, Archs.Run("x86_64", new Race(HvoPolicy.Find(version)!)), version);

    /// <summary>
    /// A walker that takes its reference after the remap, on every pfn of an optimized page in use
    /// (head refcount 1): before v6.10 the tails that alias the head struct page (fake heads) read
    /// 1 and write the read-only page; v6.10 to v7.0 page_count_writable declines them; v7.1 has
    /// no fake heads, every tail reads the shared tail's 0.
    /// </summary>
    [TestMethod]
    [DataRow("v6.9", true)]
    [DataRow("v6.10", false)]
    [DataRow("v7.0", false)]
    [DataRow("v7.1", false)]
    public void AWalkerAfterTheRemapWritesAFakeHeadOnlyBeforeV610(string version, bool faults) =>
        Assert.AreEqual(faults, Archs.Run("x86_64", new AfterRemap(HvoPolicy.Find(version)!)), version);

    /// <summary>v6.10 and v6.11 wait a grace period for every batch, HVO off too; v6.12 only when it optimizes.</summary>
    [TestMethod]
    public void WithHvoOffV611StillWaitsAndV612DoesNot()
    {
        const string script = "boot mem=1G\necho 0 > /proc/sys/vm/hugetlb_optimize_vmemmap\necho 8 > /proc/sys/vm/nr_hugepages\n";
        ScenarioOutcome v611 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v6.11"));
        ScenarioOutcome v612 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v6.12"));
        ScenarioOutcome v69 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v6.9"));
        Assert.AreEqual(0L, v611.Counters.Freed);
        Assert.AreEqual(1L, v611.GracePeriods, "one batch, one grace period");
        Assert.AreEqual(0L, v612.GracePeriods);
        Assert.AreEqual(0L, v69.GracePeriods);
        ScenarioOutcome on = ScenarioHarness.Run("x86_64", "boot mem=1G\necho 8 > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find("v6.12"));
        Assert.AreEqual(1L, on.GracePeriods, "with HVO on, v6.12 waits once for the batch");
    }

    /// <summary>
    /// Shrinking restores a batch: hugetlb_vmemmap_restore_folios waits once for it, in v6.11 even
    /// when no page of it is optimized, in v6.12 only when one is.
    /// </summary>
    [TestMethod]
    public void ARestoredBatchWaitsOnceFromV610AndOnlyWhenOptimizedFromV612()
    {
        const string off = "boot mem=1G hugetlb_free_vmemmap=off\necho 8 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\n";
        const string on = "boot mem=1G\necho 8 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\n";
        Assert.AreEqual(2L, ScenarioHarness.Run("x86_64", off, HvoPolicy.Find("v6.11")).GracePeriods, "grow and shrink, one each");
        Assert.AreEqual(0L, ScenarioHarness.Run("x86_64", off, HvoPolicy.Find("v6.12")).GracePeriods);
        Assert.AreEqual(2L, ScenarioHarness.Run("x86_64", on, HvoPolicy.Find("v6.12")).GracePeriods);
        Assert.AreEqual(0L, ScenarioHarness.Run("x86_64", on, HvoPolicy.Find("v6.9")).GracePeriods);
    }

    /// <summary>v7.1 (01b1d0ffb6f7, "hugetlb: remove VMEMMAP_SYNCHRONIZE_RCU"): v7.0 still waits to optimize and to restore.</summary>
    [TestMethod]
    public void V71NeverWaitsForAGracePeriod()
    {
        const string script = "boot mem=1G\necho 8 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\n";
        ScenarioOutcome v70 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v7.0"));
        ScenarioOutcome v71 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v7.1"));
        Assert.AreEqual(8 * 7L, v70.Counters.Freed);
        Assert.AreEqual(8 * 7L, v71.Counters.Freed);
        Assert.AreEqual(2L, v70.GracePeriods);
        Assert.AreEqual(0L, v71.GracePeriods);
    }

    /// <summary>Every pfn of an optimized page in use, each taken and let go by CPU 1: does any write fault?</summary>
    private sealed class AfterRemap(HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using Machine<TArch> m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = 1UL << 30, Cpus = 2 });
            var hvo = new HvoOptimizer<TArch>(m, policy);
            var pool = new HugeTlbPool<TArch>(m, hvo);
            Hstate<TArch> h = pool.Hstate(TwoMiB);
            pool.SetNrHugepages(h, 1);
            HugePage page = pool.Pages(h).Single();
            Assert.IsTrue(page.VmemmapOptimized);
            ulong head = m.StructPageAddress(page.HeadPfn) + StructPage.RefcountOffset;
            Assert.AreEqual(AccessFault.None, m.Mmu.Write(0, head, [1, 0, 0, 0]), "the page is in use: its head holds a reference");
            bool faulted = false;
            using (m.RunOnCpu(1))
            {
                for (ulong pfn = page.HeadPfn + 1; pfn < page.HeadPfn + page.Frames; pfn++)
                {
                    SpeculativeRef r = PageRef<TArch>.Begin(m, 1, pfn, rcu: policy.RcuBeforeRemap);
                    faulted |= PageRef<TArch>.Finish(m, r) == AccessFault.WriteProtect;
                }
            }

            return faulted;
        }
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
            ulong refcount = m.StructPageAddress(victim) + StructPage.RefcountOffset;

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
