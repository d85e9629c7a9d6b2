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

    /// <summary>
    /// The moment between break and make, held open: CPU 0 holds init_mm.page_table_lock with the
    /// block that maps a huge page's struct pages broken (invalid), as a break-before-make writer
    /// leaves it mid-split; CPU 1 then meets the hole, either in the split walk itself or, optimizing
    /// the page, first in the copy of its head vmemmap page (v6.2+). It waits for the lock, finds the
    /// block made again when CPU 0 lets go, and splits it (and remaps the page).
    /// </summary>
    [TestMethod]
    [DataRow("arm64-4k", "arm64-bbm-fault", false)]
    [DataRow("arm64-4k", "arm64-bbm-fault", true)]
    [DataRow("arm64-4k", "arm64-bbm-af", true)]
    public void AVmemmapAccessThatMeetsABrokenBlockWaitsForTheLockAndGoesOn(string arch, string policy, bool optimize) =>
        Archs.Run(arch, new BrokenBlock(HvoPolicy.Find(policy)!, optimize));

    private sealed class BrokenBlock(HvoPolicy policy, bool optimize) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var rig = new SmpRig<TArch>(policy, 2UL << 20, cpus: 2, checkBreakBeforeMake: false);
            HugePage page = rig.Allocate();
            rig.LearnCanonical(page);
            KernelPageTable<TArch> pt = rig.Machine.PageTable;
            WalkResult block = pt.Walk(rig.Machine.StructPageAddress(page.HeadPfn));
            Assert.IsTrue(block.IsLeaf && block.Level == TArch.VmemmapBootLevel && block.Level < TArch.LastLevel, "the struct pages are mapped by a boot block");

            using var waiting = new ManualResetEventSlim();
            using var done = new ManualResetEventSlim();
            var locking = new SignallingLock(waiting);
            pt.Lock = locking;
            Exception? failure = null;
            var cpu1 = new Thread(() =>
            {
                try
                {
                    using (rig.Machine.RunOnCpu(1))
                    {
                        if (optimize)
                        {
                            rig.Optimizer.Optimize(page);
                        }
                        else
                        {
                            // vmemmap_remap_split over the page's struct pages: a walk and nothing else.
                            ulong start = rig.Machine.StructPageAddress(page.HeadPfn);
                            var split = default(SplitPmdVisitor<TArch>);
                            PageWalkResult r = pt.WalkRange(start, start + (page.Frames * (ulong)TArch.StructPageBytes), ref split);
                            Assert.AreEqual(PageWalkStatus.Done, r.Status);
                        }
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
                finally
                {
                    done.Set();
                }
            }) { IsBackground = true, Name = "cpu1" };

            Span<ulong> table = pt.Ctx().Table(block.TablePfn);
            locking.Enter();
            try
            {
                Volatile.Write(ref table[block.Index], 0);
                cpu1.Start();
                int first = WaitHandle.WaitAny([waiting.WaitHandle, done.WaitHandle], DeadlockGuard);
                Assert.AreEqual(0, first, $"CPU 1 waits for the lock instead of finishing: {failure}");
                Volatile.Write(ref table[block.Index], block.Entry);
            }
            finally
            {
                locking.Exit();
            }

            Assert.IsTrue(cpu1.Join(DeadlockGuard), "CPU 1 finishes once the lock is free");
            Assert.IsNull(failure, failure?.ToString());
            Assert.AreEqual(TArch.LastLevel, pt.Walk(rig.Machine.StructPageAddress(page.HeadPfn)).Level, "the block was split after all");
            Assert.AreEqual(optimize, page.VmemmapOptimized, "HPageVmemmapOptimized");
            Assert.IsNull(rig.FirstWrongStructPage(page, cpu: 0));
            if (optimize)
            {
                Assert.AreEqual(1, rig.Optimizer.Total.PmdsSplit);
                Assert.AreEqual(RestoreResult.Ok, rig.Optimizer.Restore(page));
                Assert.IsNull(rig.FirstWrongStructPage(page, cpu: 0));
            }

            Assert.IsTrue(rig.Machine.OwnersAddUp());
            return true;
        }
    }

    /// <summary>init_mm.page_table_lock that tells when a CPU other than its holder starts waiting for it.</summary>
    private sealed class SignallingLock(ManualResetEventSlim waiting) : PageTableLock
    {
        private int _holder = -1;

        public override void Enter()
        {
            if (Volatile.Read(ref _holder) is int holder && holder != -1 && holder != Environment.CurrentManagedThreadId)
            {
                waiting.Set();
            }

            base.Enter();
            Volatile.Write(ref _holder, Environment.CurrentManagedThreadId);
        }

        public override void Exit()
        {
            Volatile.Write(ref _holder, -1);
            base.Exit();
        }
    }

    private sealed class Race(HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            // The smallest optimizable size: many of its pages share one boot leaf of the vmemmap.
            ulong size = TArch.HugePageSizes.ToArray().Select(h => h.Size).Where(s => HugePageVmemmap.For<TArch>(s).IsOptimizable(policy.ReservePages)).Min();
            // Enough boot leaves of vmemmap for a few rounds (32 at 4 KiB pages; LoongArch's 32 MiB leaf holds 8 GiB's struct pages).
            ulong memory = Math.Max(4UL << 30, 6 * Archs.MemoryPerBootLeaf(TArch.Info));
            using var rig = new SmpRig<TArch>(policy, size, cpus: 2, memory: memory, checkBreakBeforeMake: false);
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
                WalkResult leaf = pt.Walk(rig.Machine.StructPageAddress(a.HeadPfn));
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

            Assert.AreEqual(vmemmapFrames0 + c.SharedTailPages, rig.VmemmapFrames, "every vmemmap page is backed by one frame again (and v7.1's shared tail pages stay)");
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
            foreach (var leaf in all.GroupBy(p => rig.Machine.StructPageAddress(p.HeadPfn) >> TArch.LevelShift(level)))
            {
                HugePage[] two = leaf.Take(2).ToArray();
                WalkResult w = rig.Machine.PageTable.Walk(rig.Machine.StructPageAddress(two[0].HeadPfn));
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

    /// <summary>
    /// init_mm.page_table_lock that holds each splitter, the first time it takes the lock, until the
    /// other one reaches it too, forcing the race. Later takings (a break-before-make writer's,
    /// nested in the split's) go straight through.
    /// </summary>
    private sealed class HeldLock(Barrier atTheLock) : PageTableLock
    {
        private readonly ConcurrentDictionary<int, bool> _held = new();

        public override void Enter()
        {
            if (_held.TryAdd(Environment.CurrentManagedThreadId, true) && !atTheLock.SignalAndWait(DeadlockGuard))
            {
                throw new InvalidOperationException("the other splitter never reached init_mm.page_table_lock");
            }

            base.Enter();
        }
    }
}
