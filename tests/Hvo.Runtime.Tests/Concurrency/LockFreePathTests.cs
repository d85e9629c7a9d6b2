using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>
/// The per-operation path's lock-free pieces (README, Bench): deferred copies registered and
/// forgotten without a lock, a flush skipping an empty TLB, HPageVmemmapOptimized set with an
/// atomic bit write, HVO's sums added up when read. Each is checked against the per-call, one-CPU
/// way of doing the same work, from fixed seeds: two CPUs doing it at once must end where one CPU
/// doing it alone ends.
/// </summary>
[TestClass]
public sealed class LockFreePathTests
{
    private const int Pages = 8;

    [TestMethod]
    [DataRow("v5.14", 20261205)]
    [DataRow("v5.18", 7)]
    [DataRow("v6.7", 31)]
    public void TwoCpusOptimizingAndRestoringEndWhereOneCpuEnds(string policy, int seed)
    {
        HvoPolicy p = HvoPolicy.Find(policy)!;
        int[][] toggles = Toggles(seed);
        using var serial = new SmpRig<Arch.X86_64>(p, 2UL << 20, cpus: 2);
        using var parallel = new SmpRig<Arch.X86_64>(p, 2UL << 20, cpus: 2);
        HugePage[] one = Prepare(serial);
        HugePage[] two = Prepare(parallel);

        // One CPU, page after page.
        using (serial.Machine.RunOnCpu(0))
        {
            for (int i = 0; i < Pages; i++)
            {
                foreach (int _ in toggles[i])
                {
                    Toggle(serial, one[i]);
                }
            }
        }

        // Two CPUs, each its half of the pages, round-robin so their walks, frees and flushes interleave.
        AtOnce(cpu =>
        {
            using (parallel.Machine.RunOnCpu(cpu))
            {
                int[] mine = [.. Enumerable.Range(0, Pages).Where(i => i % 2 == cpu)];
                int[] done = new int[Pages];
                for (bool any = true; any;)
                {
                    any = false;
                    foreach (int i in mine.Where(i => done[i] < toggles[i].Length))
                    {
                        Toggle(parallel, two[i]);
                        done[i]++;
                        any = true;
                    }
                }
            }
        });

        for (int i = 0; i < Pages; i++)
        {
            Assert.AreEqual(toggles[i].Length % 2 == 1, two[i].VmemmapOptimized, $"page {i}: HPageVmemmapOptimized");
            Assert.AreEqual(one[i].VmemmapOptimized, two[i].VmemmapOptimized, $"page {i}: HPageVmemmapOptimized, one CPU against two");
            for (int cpu = 0; cpu < 2; cpu++)
            {
                Assert.IsNull(serial.FirstWrongStructPage(one[i], cpu), $"one CPU, page {i}, read on CPU {cpu}");
                Assert.IsNull(parallel.FirstWrongStructPage(two[i], cpu), $"two CPUs, page {i}, read on CPU {cpu}");
            }
        }

        HvoCounters a = serial.Optimizer.Total, b = parallel.Optimizer.Total;
        Assert.AreEqual(a.OptimizedPages, b.OptimizedPages);
        Assert.AreEqual(a.VmemmapPagesFreed, b.VmemmapPagesFreed);
        Assert.AreEqual(a.VmemmapPagesRestored, b.VmemmapPagesRestored);
        Assert.AreEqual(a.TlbFlushes, b.TlbFlushes);
        Assert.AreEqual(a.PmdsSplit, b.PmdsSplit);
        HvoCounters node = parallel.Optimizer.For(parallel.Order, 0);
        Assert.AreEqual(b.VmemmapPagesFreed, node.VmemmapPagesFreed, "the sum is its one part");
        Assert.AreEqual(b.TlbRangeFlushes, node.TlbRangeFlushes, "range flushes count in the page's part, and so in the sum");

        Assert.AreEqual(serial.Machine.BootVmemmap.DeferredCopies, parallel.Machine.BootVmemmap.DeferredCopies, "restored frames left as deferred copies");
        foreach (FrameOwner owner in new[] { FrameOwner.Free, FrameOwner.RuntimeVmemmap, FrameOwner.BootVmemmap, FrameOwner.PageTable })
        {
            Assert.AreEqual(serial.Machine.Owners.Count(owner), parallel.Machine.Owners.Count(owner), $"frames owned by {owner}");
        }

        Assert.IsTrue(parallel.Machine.OwnersAddUp());
        foreach (SmpRig<Arch.X86_64> rig in new[] { serial, parallel })
        {
            // Every flush reached every TLB, whether it took the TLB's lock or found it empty.
            long broadcasts = rig.Machine.Mmu.RangeFlushes + rig.Machine.Mmu.FullFlushes;
            Assert.IsTrue(rig.Machine.Mmu.Tlbs.All(t => t.Invalidations == broadcasts), "each TLB took every flush");
        }
    }

    /// <summary>Deferred copies set and forgotten from two threads, slots of their own: the map one thread writing all of them makes.</summary>
    [TestMethod]
    [DataRow(1)]
    [DataRow(99)]
    public void DeferredCopySlotsWrittenAtOnceEqualWrittenInTurn(int seed)
    {
        const ulong Length = 1UL << 16;
        (ulong Slot, ulong Value)[][] writes = [.. Enumerable.Range(0, 2).Select(t => Writes(new Random(seed * 2 + t), t, Length))];
        var serial = new SparseMap<ulong>(Length);
        foreach ((ulong slot, ulong value) in writes.SelectMany(w => w))
        {
            Apply(serial, slot, value);
        }

        var shared = new SparseMap<ulong>(Length);
        AtOnce(t =>
        {
            foreach ((ulong slot, ulong value) in writes[t])
            {
                Apply(shared, slot, value);
            }
        });

        Assert.AreEqual(serial.Count, shared.Count);
        for (ulong i = 0; i < Length; i++)
        {
            Assert.AreEqual(serial.TryGetValue(i, out ulong x), shared.TryGetValue(i, out ulong y), $"slot {i}");
            Assert.AreEqual(x, y, $"slot {i}");
        }
    }

    /// <summary>Bits of the same words set and cleared atomically from two threads: the bitmap one thread writing in turn makes, chunks counted once.</summary>
    [TestMethod]
    [DataRow(3)]
    [DataRow(2026)]
    public void AtomicBitWritesAtOnceEqualWritesInTurn(int seed)
    {
        const ulong Length = 1UL << 17;
        // Thread t owns the bits i with i % 2 == t: neighbours in every word, as heads of one order are.
        (ulong Bit, bool Value)[][] writes = [.. Enumerable.Range(0, 2).Select(t =>
        {
            var random = new Random(seed * 2 + t);
            return Enumerable.Range(0, 20_000).Select(_ => (((ulong)random.NextInt64((long)(Length / 2)) * 2) + (ulong)t, random.Next(3) > 0)).ToArray();
        })];
        var serial = new SparseBitmap(Length);
        foreach ((ulong bit, bool value) in writes.SelectMany(w => w))
        {
            if (value)
            {
                serial.Set(bit);
            }
            else
            {
                serial.Clear(bit);
            }
        }

        var shared = new SparseBitmap(Length);
        AtOnce(t =>
        {
            foreach ((ulong bit, bool value) in writes[t])
            {
                shared.WriteAtomic(bit, value);
            }
        });

        for (ulong i = 0; i < Length; i++)
        {
            Assert.AreEqual(serial.Get(i), shared.Get(i), $"bit {i}");
        }

        Assert.AreEqual(serial.AllocatedChunks, shared.AllocatedChunks, "a chunk made by a writer that lost the race is not counted");
    }

    /// <summary>A flush that finds a TLB empty skips its lock but counts, as one that takes it does; a held translation is still dropped.</summary>
    [TestMethod]
    public void AFlushCountsAnEmptyTlbAndDropsAHeldTranslation()
    {
        var tlb = new Tlb(0);
        tlb.Invalidate(10, 20); // empty: no lock
        Assert.AreEqual(1, tlb.Invalidations);
        tlb.Insert(new TlbEntry(15, 99, Writable: true, Level: 3));
        Assert.IsTrue(tlb.TryLookup(15, out _));
        tlb.Invalidate(10, 20); // holds one: under the lock
        Assert.AreEqual(2, tlb.Invalidations);
        Assert.IsFalse(tlb.TryLookup(15, out _));
        Assert.IsFalse(tlb.Reaches(99, out _));
        tlb.Insert(new TlbEntry(15, 99, Writable: true, Level: 3));
        tlb.Invalidate(30, 40); // holds one outside the range: kept
        Assert.IsTrue(tlb.TryLookup(15, out _));
        tlb.InvalidateAll();
        Assert.AreEqual(4, tlb.Invalidations);
        Assert.IsFalse(tlb.Reaches(99, out _));
        tlb.InvalidateAll(); // empty again
        Assert.AreEqual(5, tlb.Invalidations);
    }

    // Two threads started together, each given its index; whatever either throws fails the test.
    private static void AtOnce(Action<int> work)
    {
        using var start = new Barrier(2);
        var failures = new ConcurrentQueue<Exception>();
        Thread[] threads = [.. Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                work(t);
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        }) { IsBackground = true })];
        foreach (Thread t in threads)
        {
            t.Start();
        }

        foreach (Thread t in threads)
        {
            t.Join();
        }

        Assert.IsTrue(failures.IsEmpty, string.Join("\n", failures));
    }

    // How many times each page is optimized or restored (odd: it ends optimized).
    private static int[][] Toggles(int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, Pages).Select(_ => new int[random.Next(1, 12)])];
    }

    private static HugePage[] Prepare(SmpRig<Arch.X86_64> rig)
    {
        HugePage[] pages = [.. Enumerable.Range(0, Pages).Select(_ => rig.Allocate())];
        foreach (HugePage page in pages)
        {
            rig.LearnCanonical(page);
        }

        return pages;
    }

    private static void Toggle(SmpRig<Arch.X86_64> rig, HugePage page)
    {
        if (page.VmemmapOptimized)
        {
            Assert.AreEqual(RestoreResult.Ok, rig.Optimizer.Restore(page));
        }
        else
        {
            rig.Optimizer.Optimize(page);
            Assert.IsTrue(page.VmemmapOptimized, $"{page} optimized");
        }
    }

    // Thread t's writes: slots of its own (i % 2 == t), a value or 0 (forget) each.
    private static (ulong Slot, ulong Value)[] Writes(Random random, int t, ulong length) =>
        [.. Enumerable.Range(0, 20_000).Select(_ => (((ulong)random.NextInt64((long)(length / 2)) * 2) + (ulong)t, random.Next(4) == 0 ? 0UL : (ulong)random.NextInt64(1, long.MaxValue)))];

    private static void Apply(SparseMap<ulong> map, ulong slot, ulong value)
    {
        if (value == 0)
        {
            map.Remove(slot);
        }
        else
        {
            map.Set(slot, value);
        }
    }
}
