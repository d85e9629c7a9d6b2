using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>
/// HVO's counters under several CPUs: each walk reports what it did itself, so CPUs optimizing and
/// restoring at once count every flush, split and page exactly once, whatever the entry writer.
/// </summary>
[TestClass]
public sealed class CountersTests
{
    private const int Cycles = 25;

    [TestMethod]
    [DataRow("x86_64", "v5.18")]
    [DataRow("arm64-4k", "arm64-bbm-fault")]
    [DataRow("arm64-4k", "arm64-bbm-af")]
    public void TwoCpusOptimizingAtOnceCountEachFlushOnce(string arch, string policy) =>
        Archs.Run(arch, new TwoCpus(HvoPolicy.Find(policy)!));

    private sealed class TwoCpus(HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var rig = new SmpRig<TArch>(policy, 2UL << 20, cpus: 2, checkBreakBeforeMake: false);
            HugePage[][] pages = [[.. Enumerable.Range(0, 4).Select(_ => rig.Allocate())], [.. Enumerable.Range(0, 4).Select(_ => rig.Allocate())]];
            long flushesBefore = rig.Machine.PageTable.Counters.TlbRangeFlushes;
            long tablesBefore = rig.Machine.Owners.Count(Hvo.Memory.FrameOwner.PageTable);
            using var start = new Barrier(2);
            var failures = new ConcurrentQueue<Exception>();
            Thread[] cpus = [.. Enumerable.Range(0, 2).Select(cpu => new Thread(() =>
            {
                try
                {
                    using (rig.Machine.RunOnCpu(cpu))
                    {
                        start.SignalAndWait();
                        for (int cycle = 0; cycle < Cycles; cycle++)
                        {
                            foreach (HugePage page in pages[cpu])
                            {
                                rig.Optimizer.Optimize(page);
                            }

                            foreach (HugePage page in pages[cpu])
                            {
                                Assert.AreEqual(RestoreResult.Ok, rig.Optimizer.Restore(page));
                            }
                        }
                    }
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
            }) { IsBackground = true })];
            foreach (Thread t in cpus)
            {
                t.Start();
            }

            foreach (Thread t in cpus)
            {
                t.Join();
            }

            Assert.IsTrue(failures.IsEmpty, string.Join("\n", failures));
            HvoCounters c = rig.Optimizer.Total;
            long flushed = rig.Machine.PageTable.Counters.TlbRangeFlushes - flushesBefore;
            Assert.AreEqual(flushed, c.TlbRangeFlushes, "every range flush counted once, by the CPU that made it");
            long runs = 2 * 4 * Cycles;
            long freed = (long)HugePageVmemmap.For<TArch>(2UL << 20).FreedPages(policy.ReservePages);
            Assert.AreEqual(runs * freed, c.VmemmapPagesFreed);
            Assert.AreEqual(runs * freed, c.VmemmapPagesRestored);
            Assert.AreEqual(0, c.OptimizedPages);
            Assert.AreEqual(tablesBefore + c.PmdsSplit, rig.Machine.Owners.Count(Hvo.Memory.FrameOwner.PageTable), "every split counted once, lost races not at all");
            Assert.IsGreaterThan(0, c.PmdsSplit);
            return true;
        }
    }
}
