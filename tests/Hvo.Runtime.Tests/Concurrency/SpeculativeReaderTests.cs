using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Tests;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>
/// docs/ARCHITECTURE.md §8 across CPUs: reader CPUs (threads) read struct pages of huge pages through their own
/// TLBs while a writer CPU optimizes and restores those pages. No reader ever sees bytes other than
/// the canonical struct page contents (v5.18+ fake heads resolved as page_fixed_fake_head does),
/// and no frame is freed while any CPU's TLB can still reach it (strict mode, with freed vmemmap
/// frames poisoned). Two deliberately broken kernels show that the same run catches the bug.
/// </summary>
[TestClass]
public sealed class SpeculativeReaderTests
{
    private const int Readers = 2;
    private const int Seed = 20260611;

    [TestMethod]
    [DynamicData(nameof(SmpCases.ReaderCasesCi), typeof(SmpCases))]
    public void ReaderCpusSeeCanonicalStructPagesWhileAWriterCpuOptimizesAndRestores(string arch, ulong size, string policy) =>
        Archs.Run(arch, new CleanRun(size, HvoPolicy.Find(policy)!, structPageReadsPerReader: 25_000, minCycles: size <= (2UL << 20) ? 20 : 1));

    [TestMethod]
    [TestCategory("Long")]
    [DynamicData(nameof(SmpCases.ReaderCasesLong), typeof(SmpCases))]
    public void ReaderCpusSeeCanonicalStructPagesOnTheRestOfEachFamily(string arch, ulong size, string policy)
    {
        LongRun.Require("concurrent readers on the specs that differ from CI's only in their levels");
        Archs.Run(arch, new CleanRun(size, HvoPolicy.Find(policy)!, structPageReadsPerReader: 25_000, minCycles: size <= (2UL << 20) ? 20 : 1));
    }

    /// <summary>
    /// The soak: at least ten million concurrent struct page reads on 2 MiB pages, over every kernel
    /// policy on x86_64 and every break-before-make strategy whose readers fault and retry on arm64-4k.
    /// </summary>
    [TestMethod]
    [TestCategory("Long")]
    public void TenMillionConcurrentStructPageReadsAreAllCanonical()
    {
        LongRun.Require("ten million concurrent struct page reads");
        long total = LongRun.Iterations(10_000_000);
        object[][] cases = SmpCases.ReaderCases
            .Where(c => (string)c[0] is "x86_64" or "arm64-4k" && (ulong)c[1] == 2UL << 20)
            .ToArray();
        long perRun = (total + cases.Length - 1) / cases.Length;
        long reads = 0, accesses = 0, cycles = 0, retried = 0;
        foreach (object[] c in cases)
        {
            var run = new CleanRun(2UL << 20, HvoPolicy.Find((string)c[2])!, structPageReadsPerReader: (perRun + Readers - 1) / Readers, minCycles: 1000);
            Archs.Run((string)c[0], run);
            reads += run.Result!.StructPageReads;
            accesses += run.Result.Accesses;
            cycles += run.Result.Cycles;
            retried += run.Result.FaultsRetried;
        }

        Console.WriteLine($"total: {reads} struct page reads in {accesses} accesses ({retried} faults retried), 0 wrong, over {cycles} optimize/restore cycles in {cases.Length} runs");
        Assert.IsGreaterThanOrEqualTo(total, reads);
    }

    /// <remarks>
    /// The per-page policies: there the reader TLBs are warm when the frames are freed. v6.7's batch
    /// flushes everything after its split pass, so there a free before the final flush is caught only
    /// if a reader cached a tail again in between (likely, not certain); its broken shootdown is
    /// caught every time below.
    /// </remarks>
    [TestMethod]
    [DataRow("v5.14")]
    [DataRow("v5.18")]
    [DataRow("v6.2")]
    public void FreeingVmemmapFramesBeforeTheFlushIsCaught(string policy) =>
        BrokenRun(HvoPolicy.Find(policy)!, _ => { }, (m, p) => new FreesBeforeTheFlush<Hvo.Arch.X86_64>(m, p));

    [TestMethod]
    [DataRow("v5.18")]
    [DataRow("v6.7")]
    public void AShootdownThatFlushesOnlyTheLocalTlbIsCaught(string policy) =>
        BrokenRun(HvoPolicy.Find(policy)!, r => r.Machine.Mmu.LocalFlushOnly = true);

    /// <summary>
    /// What a stale translation reads once its frame is freed: the poison, not struct pages, so
    /// the reader's check fails. Deterministic: one CPU, its TLB warm, a shootdown that misses it.
    /// The same steps with the real shootdown read canonical bytes.
    /// </summary>
    [TestMethod]
    public void AStaleTranslationToAFreedVmemmapFrameReadsPoisonNotStructPages()
    {
        foreach (bool broken in new[] { false, true })
        {
            using var rig = new SmpRig<Hvo.Arch.X86_64>(HvoPolicy.V5_18, 2UL << 20, cpus: 2);
            HugePage[] pages = ReadersVsWriter.Pages(rig, 1);
            rig.Machine.Mmu.LocalFlushOnly = broken;
            using (rig.Machine.RunOnCpu(0))
            {
                ReadersVsWriter.WarmReaderTlbs(rig.Machine, pages, readers: 1);
                rig.Optimizer.Optimize(pages[0]);
            }

            int size = Hvo.Arch.X86_64.StructPageBytes;
            var bytes = new byte[Hvo.Arch.X86_64.PageSize];
            int wrong = 0, poisoned = 0;
            for (ulong index = 0; index < pages[0].Frames; index += (ulong)SmpRig<Hvo.Arch.X86_64>.StructPagesPerPage)
            {
                Assert.AreEqual(AccessFault.None, rig.Machine.Mmu.Read(1, rig.Machine.StructPageAddress(pages[0].HeadPfn + index), bytes));
                wrong += Enumerable.Range(0, bytes.Length / size).Count(k => rig.CheckStructPage(pages[0], index + (ulong)k, bytes, k) is not null);
                poisoned += bytes.All(b => b == Machine<Hvo.Arch.X86_64>.PagePoison) ? 1 : 0;
            }

            ulong freed = HugePageVmemmap.For<Hvo.Arch.X86_64>(2UL << 20).FreedPages(1);
            Assert.AreEqual(broken ? (int)freed : 0, poisoned, "every freed tail vmemmap page reads as poison through the stale TLB");
            Assert.AreEqual(broken ? (int)freed * SmpRig<Hvo.Arch.X86_64>.StructPagesPerPage : 0, wrong);
            Assert.AreEqual(broken, rig.Machine.Violations.CountOf(ViolationKind.FreedWhileInTlb) > 0);
        }
    }

    /// <summary>2 MiB-class pages: several, their vmemmap all fits a TLB. Gigantic ones: one.</summary>
    private static int PageCount(ulong hugePageFrames) => hugePageFrames <= 1024 ? 4 : 1;

    private sealed class CleanRun(ulong size, HvoPolicy policy, long structPageReadsPerReader, int minCycles) : IArchVisitor<bool>
    {
        public ReaderRunResult? Result { get; private set; }

        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var rig = new SmpRig<TArch>(policy, size, cpus: 1 + Readers);
            HugePage[] pages = ReadersVsWriter.Pages(rig, PageCount(rig.Frames));
            long vmemmapFrames = rig.VmemmapFrames;

            Result = ReadersVsWriter.Run(rig, pages, structPageReadsPerReader, minCycles, Seed);

            Console.WriteLine($"{TArch.Name} {size >> 20} MiB {policy.Name}: {Result}");
            ReadersVsWriter.AssertClean(rig, pages, Result, vmemmapFrames, Readers * structPageReadsPerReader);
            Assert.IsGreaterThanOrEqualTo(minCycles, Result.Cycles);
            return true;
        }
    }

    /// <summary>
    /// The same run with a bug switched on: strict mode must report a frame freed while a reader
    /// CPU's TLB still reached it. Every reader TLB holds the tail translations when a cycle
    /// starts (ReadersVsWriter warms them), so the first cycle already shows it.
    /// </summary>
    private static void BrokenRun(HvoPolicy policy, Action<SmpRig<Hvo.Arch.X86_64>> breakIt, Func<Machine<Hvo.Arch.X86_64>, HvoPolicy, HvoOptimizer<Hvo.Arch.X86_64>>? optimizer = null)
    {
        using var rig = new SmpRig<Hvo.Arch.X86_64>(policy, 2UL << 20, cpus: 1 + Readers, optimizer: optimizer);
        HugePage[] pages = ReadersVsWriter.Pages(rig, 4);
        breakIt(rig);

        // The first cycle splits the vmemmap PMD, and the split's flush empties every TLB before the
        // remap; from the second cycle on the tables are there and only the remap's own flush counts.
        ReaderRunResult run = ReadersVsWriter.Run(rig, pages, structPageReadsPerReader: 2_000, minCycles: 3, Seed);

        Violation[] freedReachable = run.Violations.Where(v => v.Kind == ViolationKind.FreedWhileInTlb).ToArray();
        Assert.IsNotEmpty(freedReachable, $"the bug went unnoticed: {run}");
        Assert.IsTrue(freedReachable.All(v => v.Detail.Contains("free_vmemmap_page", StringComparison.Ordinal)), run.ToString());
        Console.WriteLine($"caught: {freedReachable.Length} frames freed while a reader CPU's TLB reached them; {run}");
    }

    /// <summary>
    /// A deliberately broken ordering: the vmemmap frames are freed before the TLB flush that makes
    /// them unreachable (the use-after-free through a stale translation the kernel's ordering
    /// prevents). Strict mode and page poisoning must catch it.
    /// </summary>
    private sealed class FreesBeforeTheFlush<TArch>(Machine<TArch> machine, HvoPolicy policy) : HvoOptimizer<TArch>(machine, policy)
        where TArch : struct, IPagingArch
    {
        protected override void FlushThenFree(HugePage? page, TlbFlush flush, VmemmapFrameList frames)
        {
            Free(frames);
            Flush(page, flush);
        }
    }
}
