using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Hvo.Paging;
using Hvo.Runtime.Tests.Paging;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>
/// The cross-CPU TLB shootdown, one step at a time: a flush on one CPU empties every CPU's TLB
/// before it returns, lands between two accesses of another CPU and never inside one, and strict
/// mode tells another CPU's use of an unflushed change (the hardware's right) from a CPU using its
/// own change unflushed (a missing flush).
/// </summary>
[TestClass]
public sealed class ShootdownTests
{
    private const int Cpus = 4;

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AFlushOnOneCpuEmptiesEveryCpusTlbBeforeItReturns(string arch) => Archs.Run(arch, new EveryTlb(localOnly: false));

    /// <summary>The same steps with the shootdown broken: the other CPUs keep the translation, so the test above can fail.</summary>
    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AFlushThatSkipsTheShootdownLeavesTheOtherTlbsStale(string arch) => Archs.Run(arch, new EveryTlb(localOnly: true));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AFlushWaitsForAnAccessInFlightOnAnotherCpu(string arch) => Archs.Run(arch, new WaitsForAccess());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void StrictModeLetsAnotherCpuUseAnUnflushedChangeButNotTheCpuThatMadeIt(string arch) => Archs.Run(arch, new UnflushedWindow());

    [TestMethod]
    public void EachThreadRunsAsItsOwnCpuAndScopesNest()
    {
        using var m = Machine<Hvo.Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 1UL << 30, Cpus = 3, Nodes = 1 });
        m.CurrentCpu = 2;
        using (m.RunOnCpu(1))
        {
            Assert.AreEqual(1, m.CurrentCpu);
            int other = Task.Run(() => m.CurrentCpu).Result;
            Assert.AreEqual(2, other, "a thread outside any scope sees the machine-wide CPU");
            using (m.RunOnCpu(0))
            {
                Assert.AreEqual(0, m.CurrentCpu);
            }

            m.CurrentCpu = 2;
            Assert.AreEqual(2, m.CurrentCpu, "moving the thread's CPU");
        }

        Assert.AreEqual(2, m.CurrentCpu);
        m.CurrentCpu = 0;
        Assert.AreEqual(0, m.CurrentCpu, "and the machine-wide one is untouched by the scopes");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => m.RunOnCpu(3));
    }

    /// <summary>A page table with an MMU of <see cref="Cpus"/> CPUs, the vmemmap's first PTE split out.</summary>
    private sealed class Rig<TArch> : IDisposable where TArch : struct, IPagingArch
    {
        public Rig(bool strict = false)
        {
            T = new TestPageTable<TArch>();
            Mmu = new Mmu<TArch>(T.Table, Cpus, Violations) { Strict = strict };
            T.Table.Observer = Mmu;
            ulong pages = TArch.LevelSize(TArch.VmemmapBootLevel) / TArch.PageSize;
            WalkTests.MapBootVmemmap(T, pages >= 4 ? 1 : 4);
            if (TArch.VmemmapBootLevel < TArch.LastLevel)
            {
                T.Table.SplitLeaf(TArch.VmemmapBootLevel, Va);
            }

            Pte = T.Table.Walk(Va);
            Assert.AreEqual(TArch.LastLevel, Pte.Level);
        }

        public static ulong Va => TArch.VmemmapStart;

        public TestPageTable<TArch> T { get; }

        public Mmu<TArch> Mmu { get; }

        public ViolationLog Violations { get; } = new();

        public WalkResult Pte { get; }

        public ulong Pfn => TArch.PfnOf(TArch.LastLevel, Pte.Entry);

        /// <summary>Each CPU, on its own thread, translates <see cref="Va"/> so its TLB holds it.</summary>
        public void EveryCpuCaches(bool checkOldFrame = true)
        {
            Parallel.For(0, Cpus, new ParallelOptions { MaxDegreeOfParallelism = Cpus }, cpu =>
            {
                using (Mmu.RunOn(cpu))
                {
                    Assert.AreEqual(AccessFault.None, Mmu.Read(cpu, Va, new byte[8]));
                }
            });
            Assert.IsTrue(!checkOldFrame || Mmu.Tlbs.All(t => t.Reaches(Pfn, out _)));
        }

        public void Remap(ulong pfn) =>
            T.Table.Ctx().SetEntry(TArch.LastLevel, Pte.TablePfn, Pte.Index, Pte.Entry, TArch.WithPfn(TArch.LastLevel, Pte.Entry, pfn), Va);

        public void Flush() => T.Table.Ctx().FlushTlbRange(Va, Va + TArch.PageSize);

        public void Dispose() => T.Dispose();
    }

    private sealed class EveryTlb(bool localOnly) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>();
            r.Mmu.LocalFlushOnly = localOnly;
            r.EveryCpuCaches();
            long[] before = r.Mmu.Tlbs.Select(t => t.Invalidations).ToArray();
            ulong other = TestPageTable<TArch>.DataPfn + 4096;

            Task.Run(() =>
            {
                using (r.Mmu.RunOn(2))
                {
                    r.Remap(other);
                    r.Flush(); // flush_tlb_kernel_range on CPU 2
                }
            }).Wait();

            for (int cpu = 0; cpu < Cpus; cpu++)
            {
                bool stale = r.Mmu.Tlbs[cpu].Reaches(r.Pfn, out _);
                Assert.AreEqual(localOnly && cpu != 2, stale, $"CPU {cpu}'s TLB after CPU 2's flush");
                Assert.AreEqual(before[cpu] + (localOnly && cpu != 2 ? 0 : 1), r.Mmu.Tlbs[cpu].Invalidations);
                Assert.AreEqual(AccessFault.None, r.Mmu.Translate(cpu, Rig<TArch>.Va, false, out ulong pa));
                Assert.AreEqual(stale ? r.Pfn : other, pa >> TArch.PageShift);
            }

            // flush_tlb_all the same way.
            r.EveryCpuCaches(checkOldFrame: false);
            Task.Run(() =>
            {
                using (r.Mmu.RunOn(1))
                {
                    r.Mmu.FlushAll();
                }
            }).Wait();
            Assert.AreEqual(localOnly ? Cpus - 1 : 0, r.Mmu.Tlbs.Count(t => t.Reaches(other, out _) || t.Reaches(r.Pfn, out _)));
            return true;
        }
    }

    private sealed class WaitsForAccess : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>();
            r.EveryCpuCaches();
            using var inAccess = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            Task reader = Task.Run(() =>
            {
                // CPU 1 in the middle of one access (one instruction): a flush cannot land now.
                Tlb tlb = r.Mmu.Tlbs[1];
                tlb.BeginAccess();
                try
                {
                    inAccess.Set();
                    release.Wait();
                    Assert.IsTrue(tlb.Reaches(r.Pfn, out _), "still the old translation inside the access");
                }
                finally
                {
                    tlb.EndAccess();
                }
            });
            inAccess.Wait();
            Task flush = Task.Run(() =>
            {
                using (r.Mmu.RunOn(0))
                {
                    r.Remap(TestPageTable<TArch>.DataPfn + 4096);
                    r.Flush();
                }
            });

            Assert.IsFalse(flush.Wait(TimeSpan.FromMilliseconds(200)), "the flush returned while CPU 1 was inside an access");
            release.Set();
            reader.Wait();
            flush.Wait();
            Assert.IsFalse(r.Mmu.Tlbs[1].Reaches(r.Pfn, out _), "taken at CPU 1's next instruction boundary");
            return true;
        }
    }

    private sealed class UnflushedWindow : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>(strict: true);
            r.EveryCpuCaches();
            ulong other = TestPageTable<TArch>.DataPfn + 4096;
            using (r.Mmu.RunOn(0))
            {
                r.Remap(other); // CPU 0 changed the PTE; its flush has not come yet

                // CPU 1 (another thread) still uses the old translation: allowed until the flush.
                Task.Run(() => Assert.AreEqual(AccessFault.None, r.Mmu.Read(1, Rig<TArch>.Va, new byte[8]))).Wait();
                Assert.AreEqual(0, r.Violations.CountOf(ViolationKind.StaleTranslation));

                // CPU 0 itself reading through its stale entry before flushing: a missing flush.
                Assert.AreEqual(AccessFault.None, r.Mmu.Read(0, Rig<TArch>.Va, new byte[8]));
                Assert.AreEqual(1, r.Violations.CountOf(ViolationKind.StaleTranslation));

                r.Flush();
            }

            // After the flush the window is closed: every CPU translates to the new frame, and a stale
            // hit would be reported whoever made the change.
            Task.Run(() => Assert.AreEqual(AccessFault.None, r.Mmu.Translate(1, Rig<TArch>.Va, false, out ulong pa))).Wait();
            Assert.IsTrue(r.Mmu.Tlbs.All(t => !t.Reaches(r.Pfn, out _)));
            Assert.AreEqual(1, r.Violations.Count);
            return true;
        }
    }
}
