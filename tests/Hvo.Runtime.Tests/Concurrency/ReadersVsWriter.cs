using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>What one run of reader CPUs against a writer CPU saw.</summary>
public sealed record ReaderRunResult(long Accesses, long StructPageReads, long WrongReads, int Cycles, IReadOnlyList<string> FirstWrongReads, IReadOnlyList<Violation> Violations, long FaultsRetried = 0)
{
    public override string ToString() =>
        $"{Cycles} optimize/restore cycles, {Accesses} accesses, {StructPageReads} struct page reads, {WrongReads} wrong, {FaultsRetried} faults retried; " +
        $"{Violations.Count} violations{(FirstWrongReads.Count > 0 ? "\n" + string.Join("\n", FirstWrongReads) : string.Empty)}" +
        $"{(Violations.Count > 0 ? "\n" + string.Join("\n", Violations.Take(5)) : string.Empty)}";
}

/// <summary>
/// Reader CPUs as threads, each a speculative PFN walker (compaction, memory-failure, /proc/kpageflags
/// readers do this in the kernel): it reads struct pages of the huge pages through the MMU with its
/// own CPU's TLB, holding no reference and no lock, and checks every one against the canonical
/// bytes. Meanwhile the calling thread, as CPU 0, optimizes and restores those pages again and
/// again. The writer keeps cycling until every reader has done its quota and it has done its own
/// minimum of cycles; the readers read until the writer stops, so every read counted ran while
/// the vmemmap was changing.
/// </summary>
internal static class ReadersVsWriter
{
    private const int WrongReadsKept = 5;

    /// <param name="structPageReadsPerReader">Each reader checks at least this many struct pages.</param>
    /// <param name="minCycles">The writer does at least this many optimize + restore rounds.</param>
    public static ReaderRunResult Run<TArch>(SmpRig<TArch> rig, HugePage[] pages, long structPageReadsPerReader, int minCycles, int seed)
        where TArch : struct, IPagingArch
    {
        Machine<TArch> m = rig.Machine;
        int readers = m.Config.Cpus - 1;
        long accesses = 0, reads = 0, wrong = 0, retried = 0;
        int belowQuota = readers;
        int writerDone = 0;
        var wrongReads = new ConcurrentQueue<string>();
        var failures = new ConcurrentQueue<Exception>();
        var threads = new Thread[readers];
        for (int r = 0; r < readers; r++)
        {
            int cpu = r + 1;
            threads[r] = new Thread(() =>
            {
                try
                {
                    (long a, long s, long w, long f) = Read(rig, pages, cpu, structPageReadsPerReader, new Random(seed + (cpu * 7919)), wrongReads, ref belowQuota, ref writerDone);
                    Interlocked.Add(ref accesses, a);
                    Interlocked.Add(ref reads, s);
                    Interlocked.Add(ref wrong, w);
                    Interlocked.Add(ref retried, f);
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                    Interlocked.Decrement(ref belowQuota);
                }
            })
            { IsBackground = true, Name = $"cpu{cpu}" };
        }

        int cycles = 0;
        using (m.RunOnCpu(0))
        {
            foreach (Thread t in threads)
            {
                t.Start();
            }

            try
            {
                while ((cycles < minCycles || Volatile.Read(ref belowQuota) > 0) && failures.IsEmpty)
                {
                    WarmReaderTlbs(m, pages, readers);
                    rig.Optimizer.OptimizeBatch(pages);
                    if (pages.Any(p => !p.VmemmapOptimized))
                    {
                        throw new InvalidOperationException($"cycle {cycles}: a page was not optimized");
                    }

                    foreach (HugePage page in pages)
                    {
                        if (rig.Optimizer.Restore(page) != RestoreResult.Ok)
                        {
                            throw new InvalidOperationException($"cycle {cycles}: {page} could not be restored");
                        }
                    }

                    cycles++;
                }
            }
            finally
            {
                Volatile.Write(ref writerDone, 1);
                foreach (Thread t in threads)
                {
                    t.Join();
                }
            }
        }

        if (!failures.IsEmpty)
        {
            throw new AggregateException(failures);
        }

        return new ReaderRunResult(accesses, reads, wrong, cycles, [.. wrongReads], m.Violations.Snapshot(), retried);
    }

    /// <summary>The assertions of a correct run: every read canonical, nothing freed reachable, nothing leaked, counters agree.</summary>
    public static void AssertClean<TArch>(SmpRig<TArch> rig, HugePage[] pages, ReaderRunResult run, long vmemmapFramesBefore, long structPageReadsAtLeast)
        where TArch : struct, IPagingArch
    {
        Assert.AreEqual(0, run.WrongReads, run.ToString());
        Assert.AreEqual(0, run.Violations.Count, run.ToString());
        Assert.IsGreaterThanOrEqualTo(structPageReadsAtLeast, run.StructPageReads, run.ToString());

        HvoCounters c = rig.Optimizer.Total;
        ulong freedPerPage = HugePageVmemmap.For<TArch>(TArch.PageSize << rig.Order).FreedPages(rig.Policy.ReservePages);
        Assert.AreEqual(run.Cycles * pages.Length * (long)freedPerPage, c.VmemmapPagesFreed, "HVO counted what it freed");
        Assert.AreEqual(c.VmemmapPagesFreed, c.VmemmapPagesRestored, "and restored as much");
        Assert.AreEqual(0, c.OptimizedPages);
        Assert.AreEqual(0, c.OptimizeFailures + c.RestoreFailures);
        Assert.AreEqual(vmemmapFramesBefore + rig.Optimizer.Total.SharedTailPages, rig.VmemmapFrames, "every vmemmap page is backed by one frame again (and v7.1's shared tail pages stay): none leaked, none lost");
        Assert.IsTrue(rig.Machine.OwnersAddUp());
    }

    /// <summary>Allocate and prepare <paramref name="count"/> huge pages and fix their canonical struct pages.</summary>
    public static HugePage[] Pages<TArch>(SmpRig<TArch> rig, int count) where TArch : struct, IPagingArch
    {
        HugePage[] pages = Enumerable.Range(0, count).Select(_ => rig.Allocate()).ToArray();
        foreach (HugePage page in pages)
        {
            rig.LearnCanonical(page);
        }

        return pages;
    }

    // One reader CPU: random struct page ranges inside one vmemmap page, one access each.
    private static (long Accesses, long Reads, long Wrong, long Retried) Read<TArch>(
        SmpRig<TArch> rig, HugePage[] pages, int cpu, long quota, Random rng, ConcurrentQueue<string> wrongReads, ref int belowQuota, ref int writerDone)
        where TArch : struct, IPagingArch
    {
        Machine<TArch> m = rig.Machine;
        int size = TArch.StructPageBytes;
        int perPage = SmpRig<TArch>.StructPagesPerPage;
        var buffer = new byte[TArch.PageSize];
        long accesses = 0, reads = 0, wrong = 0, retried = 0;
        bool retries = SmpCases.ReadersRetry(rig.Policy);
        using (m.RunOnCpu(cpu))
        {
            bool quotaDone = false;
            while (Volatile.Read(ref writerDone) == 0)
            {
                if (!quotaDone && reads >= quota)
                {
                    quotaDone = true;
                    Interlocked.Decrement(ref belowQuota);
                }

                HugePage page = pages[rng.Next(pages.Length)];
                ulong index = (ulong)rng.NextInt64((long)page.Frames);
                int slot = (int)(index % (ulong)perPage);
                int n = 1 + rng.Next(Math.Min(perPage - slot, 64));
                if (slot == 0 && n < 2)
                {
                    n = 2; // a fake head is resolved through page[1]: read them together
                }

                Span<byte> bytes = buffer.AsSpan(0, n * size);
                AccessFault fault = m.Mmu.Read(cpu, m.StructPageAddress(page.HeadPfn + index), bytes);
                accesses++;
                while (retries && fault is AccessFault.NotMapped or AccessFault.AccessFlag)
                {
                    // A broken entry (or one whose access flag was cleared): the fault handler waits for
                    // the writer's break-before-make sequence to finish and the access is replayed.
                    retried++;
                    Thread.Yield();
                    fault = m.Mmu.Read(cpu, m.StructPageAddress(page.HeadPfn + index), bytes);
                    accesses++;
                }

                if (fault != AccessFault.None)
                {
                    wrong++;
                    Keep(wrongReads, $"CPU {cpu}: {page}: struct page {index} faulted ({fault})");
                    continue;
                }

                for (int k = 0; k < n; k++)
                {
                    reads++;
                    string? what = rig.CheckStructPage(page, index + (ulong)k, bytes, k);
                    if (what is not null)
                    {
                        wrong++;
                        Keep(wrongReads, $"CPU {cpu}: {what}");
                    }
                }
            }
        }

        return (accesses, reads, wrong, retried);
    }

    /// <summary>
    /// Before each cycle every reader CPU's TLB caches the pages' vmemmap translations (as many as it
    /// holds), so a frame freed while still reachable is caught at the free by strict mode, every
    /// time, not only when a reader happens to be there.
    /// </summary>
    public static void WarmReaderTlbs<TArch>(Machine<TArch> m, HugePage[] pages, int readers) where TArch : struct, IPagingArch
    {
        Span<byte> one = stackalloc byte[1];
        for (int cpu = 1; cpu <= readers; cpu++)
        {
            foreach (HugePage page in pages)
            {
                ulong start = m.StructPageAddress(page.HeadPfn);
                ulong end = start + (page.Frames * (ulong)TArch.StructPageBytes);
                for (ulong va = start; va < end; va += TArch.PageSize)
                {
                    m.Mmu.Read(cpu, va, one);
                }
            }
        }
    }

    private static void Keep(ConcurrentQueue<string> wrongReads, string what)
    {
        if (wrongReads.Count < WrongReadsKept)
        {
            wrongReads.Enqueue(what);
        }
    }
}
