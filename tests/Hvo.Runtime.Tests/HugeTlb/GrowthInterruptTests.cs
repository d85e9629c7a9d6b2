using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// set_max_huge_pages bails for a pending signal after each page it allocates, and the pages it
/// has still go through prep_and_add_allocated_folios. The "signal" is a cancellation token set
/// from the progress callback at a chosen page, so no test depends on timing.
/// </summary>
[TestClass]
public sealed class GrowthInterruptTests
{
    public static IEnumerable<object[]> Cases =>
        from e in ArchRegistry.All
        from p in new[] { HvoPolicy.V5_14, HvoPolicy.Newest }
        select new object[] { e.Name, p.Name };

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void CtrlCMidGrowthLeavesAConsistentPoolOfThePagesGrown(string arch, string policy)
    {
        Archs.Run(arch, new Interrupt(HvoPolicy.Find(policy)!, requested: 40, stopAt: 13));
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void ASignalAtTheLastPageIsNoInterruption(string arch)
    {
        Archs.Run(arch, new Interrupt(HvoPolicy.Newest, requested: 8, stopAt: 8));
    }

    private sealed class Interrupt(HvoPolicy policy, ulong requested, ulong stopAt) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            ulong size = TArch.Info.HugePageSizes.Select(x => x.Size).Where(x => HugePageVmemmap.For<TArch>(x).IsOptimizable(policy.ReservePages)).Min();
            ulong memory = Math.Max(2UL << 30, size * ((2 * requested) + 4));
            using Machine<TArch> machine = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = memory, Strict = true, CheckBreakBeforeMake = false });
            var optimizer = new HvoOptimizer<TArch>(machine, policy);
            var pool = new HugeTlbPool<TArch>(machine, optimizer);
            Hstate<TArch> h = pool.Hstate(size);
            using var cts = new CancellationTokenSource();
            var seen = new List<ulong>();

            PoolResize r = pool.SetNrHugepages(h, requested, null, cts.Token, n =>
            {
                seen.Add(n);
                if (n == stopAt)
                {
                    cts.Cancel();
                }
            });

            Assert.AreEqual(stopAt < requested, r.Interrupted, "interrupted only when pages were still to come");
            Assert.AreEqual(stopAt, r.Allocated);
            CollectionAssert.AreEqual(Enumerable.Range(1, (int)stopAt).Select(i => (ulong)i).ToArray(), seen.ToArray(), "one progress call per page allocated");
            Assert.AreEqual(stopAt, pool.NrHugepages(h));
            Assert.AreEqual(stopAt, pool.FreeHugepages(h));
            Assert.AreEqual(stopAt, r.Persistent, "max_huge_pages is what was had");
            Assert.AreEqual(stopAt, h.MaxHugePages);

            // The batch already allocated was optimized, as the kernel finishes the pages it has.
            IReadOnlyList<HugePage> pages = pool.Pages(h);
            Assert.AreEqual((int)stopAt, pages.Count);
            Assert.IsTrue(pages.All(p => p.VmemmapOptimized));
            ulong freedEach = HugePageVmemmap.For<TArch>(h.Size).FreedPages(policy.ReservePages);
            Assert.AreEqual((long)(stopAt * freedEach), optimizer.Total.VmemmapPagesFreed);
            Assert.AreEqual((long)stopAt, optimizer.Total.OptimizedPages);
            Assert.AreEqual(0, optimizer.Total.OptimizeFailures);
            Assert.IsTrue(machine.OwnersAddUp());
            Assert.AreEqual(0, machine.Violations.Count, string.Join("\n", machine.Violations.Snapshot()));

            // Nothing was left half done: a later write grows on from here.
            PoolResize more = pool.SetNrHugepages(h, requested);
            Assert.IsFalse(more.Interrupted);
            Assert.AreEqual(requested - stopAt, more.Allocated);
            Assert.AreEqual(requested, pool.NrHugepages(h));
            Assert.AreEqual((long)(requested * freedEach), optimizer.Total.VmemmapPagesFreed);
            return true;
        }
    }
}
