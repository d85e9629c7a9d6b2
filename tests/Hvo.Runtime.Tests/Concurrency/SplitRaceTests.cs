using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>
/// Concurrent splitters of one vmemmap PMD (docs/ARCHITECTURE.md §7.5): two CPUs optimize two different huge
/// pages whose struct pages share one boot leaf. Each reads the leaf, allocates and fills a PTE
/// table, then publishes it under init_mm.page_table_lock after re-checking the leaf: exactly one
/// table is installed, the loser's is freed (pte_free_kernel), both pages end optimized, and the
/// counters agree. Half the rounds hold both splitters at the lock (a test hook) so the race is
/// lost every time; the other half race freely and count how often it was lost.
/// </summary>
[TestClass]
public sealed class SplitRaceTests
{
    private const int MaxRounds = 16;
    private static readonly TimeSpan DeadlockGuard = TimeSpan.FromMinutes(2);

    [TestMethod]
    [DynamicData(nameof(SmpCases.SplitCases), typeof(SmpCases))]
    public void TwoCpusSplittingOneVmemmapPmdInstallOneTableAndFreeTheOther(string arch, string policy) =>
        Archs.Run(arch, new Race(HvoPolicy.Find(policy)!));

    private sealed class Race(HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            // The smallest optimizable size: many of its pages share one boot leaf of the vmemmap.
            ulong size = TArch.HugePageSizes.ToArray().Select(h => h.Size).Where(s => HugePageVmemmap.For<TArch>(s).IsOptimizable(policy.ReservePages)).Min();
            using var rig = new SmpRig<TArch>(policy, size, cpus: 2, memory: 4UL << 30, checkBreakBeforeMake: false);
            List<(HugePage A, HugePage B)> pairs = PairsSharingAnUnsplitLeaf(rig);
            Assert.IsGreaterThanOrEqualTo(4, pairs.Count, "room for a few rounds");

            KernelPageTable<TArch> pt = rig.Machine.PageTable;
            long tablesAllocated0 = pt.Counters.TablesAllocated, tablesFreed0 = pt.Counters.TablesFreed;
            long pageTableFrames0 = rig.Machine.Owners.Count(FrameOwner.PageTable);
            long vmemmapFrames0 = rig.VmemmapFrames;
            int forcedRounds = 0, forcedLost = 0, freeRounds = 0, freeLost = 0;
            for (int round = 0; round < pairs.Count; round++)
            {
                bool forced = round % 2 == 0;
                (HugePage a, HugePage b) = pairs[round];
                long allocated = pt.Counters.TablesAllocated, freed = pt.Counters.TablesFreed, splits = rig.Optimizer.Total.PmdsSplit;

                OptimizeAtOnce(rig, a, b, forced);

                long lost = pt.Counters.TablesFreed - freed;
                string where = $"round {round} ({(forced ? "held at the lock" : "free race")}), pages 0x{a.HeadPfn:x} and 0x{b.HeadPfn:x}";
                Assert.AreEqual(1, rig.Optimizer.Total.PmdsSplit - splits, $"{where}: exactly one table installed");
                Assert.AreEqual(1, pt.Counters.TablesAllocated - allocated - lost, $"{where}: allocated - freed == installed");
                Assert.IsTrue(a.VmemmapOptimized && b.VmemmapOptimized, where);
                WalkResult leaf = pt.Walk(Machine<TArch>.StructPageAddress(a.HeadPfn));
                Assert.AreEqual(TArch.LastLevel, leaf.Level, $"{where}: the leaf is a PTE table now");
                if (forced)
                {
                    forcedRounds++;
                    forcedLost += (int)lost;
                    Assert.AreEqual(1, lost, $"{where}: both splitters filled a table; the second to take the lock must free its own");
                }
                else
                {
                    freeRounds++;
                    freeLost += (int)lost;
                }
            }

            int rounds = pairs.Count;
            HvoCounters c = rig.Optimizer.Total;
            ulong freedPerPage = HugePageVmemmap.For<TArch>(size).FreedPages(policy.ReservePages);
            Assert.AreEqual(2 * rounds, c.OptimizedPages, "HPageVmemmapOptimized on every page");
            Assert.AreEqual(2 * rounds * (long)freedPerPage, c.VmemmapPagesFreed);
            Assert.AreEqual(rounds, c.PmdsSplit);
            Assert.AreEqual(c.PmdsSplit, c.PteTablesAllocated);
            Assert.AreEqual(rounds, pt.Counters.TablesAllocated - tablesAllocated0 - (pt.Counters.TablesFreed - tablesFreed0), "allocated - freed == installed");
            Assert.AreEqual(forcedLost + freeLost, pt.Counters.TablesFreed - tablesFreed0, "only lost races free tables");
            Assert.AreEqual(pageTableFrames0 + rounds, rig.Machine.Owners.Count(FrameOwner.PageTable), "the losers' tables went back to the allocator");
            Assert.AreEqual(forcedRounds, forcedLost);
            Assert.IsGreaterThanOrEqualTo(1, forcedLost + freeLost, "the race happened");
            Assert.AreEqual(0, rig.Machine.Violations.Count, string.Join("\n", rig.Machine.Violations.Snapshot()));

            // Through the installed tables the struct pages read right, optimized and restored; nothing leaks.
            foreach (HugePage page in pairs.SelectMany(p => new[] { p.A, p.B }))
            {
                Assert.IsNull(rig.FirstWrongStructPage(page, cpu: 1));
                Assert.AreEqual(RestoreResult.Ok, rig.Optimizer.Restore(page));
                Assert.IsNull(rig.FirstWrongStructPage(page, cpu: 0));
            }

            Assert.AreEqual(vmemmapFrames0, rig.VmemmapFrames, "every vmemmap page is backed by one frame again");
            Assert.AreEqual(c.VmemmapPagesFreed, c.VmemmapPagesRestored);
            Assert.AreEqual(pageTableFrames0 + rounds, rig.Machine.Owners.Count(FrameOwner.PageTable), "split tables stay (no coalescing)");
            Assert.IsTrue(rig.Machine.OwnersAddUp());
            Assert.AreEqual(0, rig.Machine.Violations.Count, string.Join("\n", rig.Machine.Violations.Snapshot()));
            Console.WriteLine($"{TArch.Name} {policy.Name}: {rounds} rounds; held at the lock: lost {forcedLost} of {forcedRounds}; free race: lost {freeLost} of {freeRounds}");
            return true;
        }

        /// <summary>CPU 0 optimizes <paramref name="a"/> while CPU 1 optimizes <paramref name="b"/>, both released at once.</summary>
        private void OptimizeAtOnce<TArch>(SmpRig<TArch> rig, HugePage a, HugePage b, bool holdAtTheLock) where TArch : struct, IPagingArch
        {
            using var start = new Barrier(2);
            using var atTheLock = new Barrier(2);
            var failures = new ConcurrentQueue<Exception>();
            PageTableLock unheld = rig.Machine.PageTable.Lock;
            if (holdAtTheLock)
            {
                rig.Machine.PageTable.Lock = new HeldLock(atTheLock);
            }

            try
            {
                Thread[] cpus = new[] { a, b }.Select((page, cpu) => new Thread(() =>
                {
                    try
                    {
                        using (rig.Machine.RunOnCpu(cpu))
                        {
                            start.SignalAndWait(DeadlockGuard);
                            rig.Optimizer.OptimizeBatch([page]);
                        }
                    }
                    catch (Exception e)
                    {
                        failures.Enqueue(e);
                    }
                })
                { IsBackground = true, Name = $"cpu{cpu}" }).ToArray();
                foreach (Thread t in cpus)
                {
                    t.Start();
                }

                foreach (Thread t in cpus)
                {
                    t.Join();
                }
            }
            finally
            {
                rig.Machine.PageTable.Lock = unheld;
            }

            if (!failures.IsEmpty)
            {
                throw new AggregateException(failures);
            }
        }

        /// <summary>
        /// Two prepared huge pages per boot leaf of the vmemmap that is still a leaf: every huge page
        /// the allocator has is taken, grouped by the leaf its struct pages sit in, and all but two
        /// per leaf given back.
        /// </summary>
        private static List<(HugePage A, HugePage B)> PairsSharingAnUnsplitLeaf<TArch>(SmpRig<TArch> rig) where TArch : struct, IPagingArch
        {
            int level = TArch.VmemmapBootLevel;
            var all = new List<HugePage>();
            while (rig.TryAllocateUnprepared() is { } page)
            {
                all.Add(page);
            }

            var pairs = new List<(HugePage, HugePage)>();
            var kept = new HashSet<HugePage>();
            foreach (var leaf in all.GroupBy(p => Machine<TArch>.StructPageAddress(p.HeadPfn) >> TArch.LevelShift(level)))
            {
                HugePage[] two = leaf.Take(2).ToArray();
                WalkResult w = rig.Machine.PageTable.Walk(Machine<TArch>.StructPageAddress(two[0].HeadPfn));
                if (two.Length < 2 || pairs.Count == MaxRounds || w.Level != level || !w.IsLeaf)
                {
                    continue;
                }

                pairs.Add((two[0], two[1]));
                kept.UnionWith(two);
            }

            foreach (HugePage page in all.Where(p => !kept.Contains(p)))
            {
                if (page.Order <= rig.Machine.Layout.MaxOrder)
                {
                    rig.Machine.Pages.FreePages(page.HeadPfn, page.Order, FrameOwner.HugePage);
                }
                else
                {
                    rig.Machine.Pages.FreeContigRange(page.HeadPfn, page.Frames, FrameOwner.HugePage);
                }
            }

            foreach (HugePage page in kept)
            {
                rig.Machine.Compounds.Prep(page);
                rig.LearnCanonical(page);
            }

            return pairs;
        }
    }

    /// <summary>init_mm.page_table_lock that holds each splitter until the other one reaches it too, forcing the race.</summary>
    private sealed class HeldLock(Barrier atTheLock) : PageTableLock
    {
        public override void Enter()
        {
            if (!atTheLock.SignalAndWait(DeadlockGuard))
            {
                throw new InvalidOperationException("the other splitter never reached init_mm.page_table_lock");
            }

            base.Enter();
        }
    }
}
