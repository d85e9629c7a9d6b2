using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Runtime.Tests.HugeTlb;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Bbm;

/// <summary>
/// arm64 break-before-make (docs/ARCHITECTURE.md §3 and §7.4): the kernel versions' policies change live
/// vmemmap entries directly and are reported, step and address; the BBM-safe strategies keep the
/// rule, free what the spec's arithmetic says, and let a reader CPU fault and retry but never read
/// wrong bytes; clear-AF + cmpxchg gives up after its retry bound and rolls the page back.
/// </summary>
[TestClass]
public sealed class BreakBeforeMakeTests
{
    public static IEnumerable<object[]> KernelPolicies => HvoCases.Arm64(HvoPolicy.Kernel);

    /// <summary>
    /// Up to a 4 MiB vmemmap; HvoOptimizerTests runs the safe policies on every size with the checker
    /// on (freed counts, bytes, mappings, allocation failures), this adds batches and restore.
    /// </summary>
    public static IEnumerable<object[]> SafePolicies => HvoCases.Moderate(HvoCases.Arm64(HvoCases.Safe));

    public static IEnumerable<object[]> AccessFlagPolicy => HvoCases.Moderate(HvoCases.Arm64([HvoPolicy.Arm64BbmAccessFlag]));

    /// <summary>Sizes whose vmemmap is at most 512 KiB, so reading all of it at every page-table step stays quick.</summary>
    public static IEnumerable<object[]> ReaderCases =>
        from c in HvoCases.Arm64(HvoCases.Safe)
        let info = Archs.Get((string)c[0]).Info
        where HugePageVmemmap.For(info, (ulong)c[1]).VmemmapPages * info.PageSize <= 512UL << 10
        from hardwareAf in new[] { false, true }
        where hardwareAf == false || (string)c[2] == HvoPolicy.Arm64BbmAccessFlag.Name
        select new object[] { c[0], c[1], c[2], hardwareAf };

    public static IEnumerable<object[]> Level2Cases =>
        from c in HvoCases.Arm64([HvoPolicy.V5_18])
        select new object[] { c[0], c[1] };

    [TestMethod]
    [DynamicData(nameof(KernelPolicies))]
    public void KernelPoliciesAreReportedWithTheAddressAndTheKernelStep(string arch, ulong size, string policy) =>
        Archs.Run(arch, new KernelPolicyReported(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(SafePolicies))]
    public void SafePoliciesKeepTheRuleFreeWhatTheSpecSaysAndRestoreEveryByte(string arch, ulong size, string policy) =>
        Archs.Run(arch, new SafePolicyClean(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(ReaderCases))]
    public void AReaderAtEveryPageTableStepFaultsOrReadsCanonicalBytes(string arch, ulong size, string policy, bool hardwareAccessFlag) =>
        Archs.Run(arch, new ReaderAtEveryStep(size, HvoPolicy.Find(policy)!, hardwareAccessFlag));

    [TestMethod]
    [DynamicData(nameof(AccessFlagPolicy))]
    public void CmpxchgFailingEveryRoundReachesTheBoundAndRollsThePageBack(string arch, ulong size, string policy) =>
        Archs.Run(arch, new RetriesExhausted(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(AccessFlagPolicy))]
    public void CmpxchgFailingFewerRoundsThanTheBoundStillOptimizes(string arch, ulong size, string policy) =>
        Archs.Run(arch, new RetriesWithinBound(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(Level2Cases))]
    public void Level2AcceptsRemapsOntoIdenticalBytesAndReportsOneOntoDifferentBytes(string arch, ulong size) =>
        Archs.Run(arch, new Level2Discriminates(size));

    /// <summary>The vmemmap addresses whose entries a policy changes: the tails, and the reuse entry with a head copy.</summary>
    private static ulong[] ChangedAddresses<TArch>(Machine<TArch> machine, HugePage page, HvoPolicy policy) where TArch : struct, IPagingArch
    {
        ulong start = machine.StructPageAddress(page.HeadPfn);
        int pages = (int)HvoOptimizerTests.Expected<TArch>(page.Frames << TArch.PageShift, policy).Pages;
        int first = policy.CopyHead ? policy.ReservePages - 1 : policy.ReservePages;
        return Enumerable.Range(first, pages - first).Select(i => start + ((ulong)i * TArch.PageSize)).ToArray();
    }

    private static (ulong Pfn, bool Writable)[] Mapping<TArch>(HvoRig<TArch> r, HugePage page) where TArch : struct, IPagingArch =>
        r.VmemmapPtes(page).Select(p =>
        {
            Assert.IsTrue(p.Pte.IsLeaf);
            ulong pfn = TArch.PfnOf(p.Pte.Level, p.Pte.Entry) + ((p.Va & (TArch.LevelSize(p.Pte.Level) - 1)) >> TArch.PageShift);
            return (pfn, TArch.IsWritable(p.Pte.Entry));
        }).ToArray();

    private static void AssertNoViolations<TArch>(HvoRig<TArch> r, string when) where TArch : struct, IPagingArch =>
        Assert.AreEqual(0, r.Machine.Violations.Count, when + ": " + string.Join("\n", r.Machine.Violations.Snapshot().Take(5)));

    private static Violation[] BbmReports<TArch>(HvoRig<TArch> r) where TArch : struct, IPagingArch =>
        r.Machine.Violations.Snapshot().Where(v => v.Kind == ViolationKind.BreakBeforeMake).ToArray();

    private sealed class KernelPolicyReported(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size, checkBreakBeforeMake: true);
            HugePage page = r.Allocate();
            r.Optimizer.OptimizeBatch([page]);
            Assert.IsTrue(page.VmemmapOptimized);

            Violation[] bbm = BbmReports(r);
            ulong[] changed = ChangedAddresses(r.Machine, page, policy);
            Violation[] remaps = bbm.Where(v => v.Detail.StartsWith("vmemmap_remap_pte:", StringComparison.Ordinal)).ToArray();
            CollectionAssert.AreEqual(changed, remaps.Select(v => v.Address).ToArray(), "every live tail entry pointed elsewhere directly");
            Assert.IsTrue(remaps.All(v => v.Detail.Contains("different output address", StringComparison.Ordinal)));

            // A boot-time block over the vmemmap is split in place: a live block replaced by a table.
            Violation[] splits = bbm.Where(v => v.Detail.StartsWith("split_vmemmap_huge_pmd:", StringComparison.Ordinal)).ToArray();
            Assert.AreEqual(HvoOptimizerTests.BootLeavesSpanned(r.Machine, page), splits.Length, "one per vmemmap block split");
            ulong leaf = TArch.LevelSize(TArch.VmemmapBootLevel);
            Assert.IsTrue(splits.All(v => v.Detail.Contains("block was replaced by a table", StringComparison.Ordinal) && v.Address % leaf == 0));
            Assert.AreEqual(remaps.Length + splits.Length, bbm.Length, string.Join("\n", bbm));

            // Restore puts new frames behind the read-only tails, again directly.
            r.Machine.Violations.Clear();
            Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(page));
            ulong start = r.Machine.StructPageAddress(page.HeadPfn);
            ulong[] restored = changed.Where(va => va >= start + ((ulong)policy.ReservePages * TArch.PageSize)).ToArray();
            CollectionAssert.AreEqual(restored, BbmReports(r).Select(v => v.Address).ToArray());
            Assert.IsTrue(BbmReports(r).All(v => v.Detail.StartsWith("vmemmap_restore_pte:", StringComparison.Ordinal)));
            return true;
        }
    }

    private sealed class SafePolicyClean(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size);
            Assert.IsNotNull(r.Machine.BreakBeforeMake, "the checker runs");
            HugePage[] pages = [r.Allocate(), r.Allocate()];
            byte[][] before = pages.Select(p => r.ReadStructPages(p)).ToArray();
            long checkedBefore = r.Machine.BreakBeforeMake!.Checked;

            r.Optimizer.OptimizeBatch(pages);

            (ulong _, ulong freed) = HvoOptimizerTests.Expected<TArch>(size, policy);
            HvoCounters c = r.Optimizer.Total;
            Assert.IsTrue(pages.All(p => p.VmemmapOptimized));
            Assert.AreEqual(2 * (long)freed, c.VmemmapPagesFreed);
            Assert.AreEqual(0, c.BbmRetriesExhausted);
            Assert.IsTrue(r.Machine.BreakBeforeMake.Checked > checkedBefore + (long)freed, "the checker saw the remaps");
            AssertNoViolations(r, "optimize");

            for (int i = 0; i < pages.Length; i++)
            {
                Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(pages[i]));
                CollectionAssert.AreEqual(before[i], r.ReadStructPages(pages[i]), "restore gives back every byte");
            }

            Assert.AreEqual(2 * (long)freed, c.VmemmapPagesRestored);
            Assert.IsTrue(r.Machine.OwnersAddUp());
            AssertNoViolations(r, "restore");
            return true;
        }
    }

    /// <summary>
    /// A reader CPU that, at every page-table write and flush of the policy, reads every struct page
    /// of one huge page through the MMU: each read either faults (translation fault on a broken
    /// entry, Access flag fault on an aged one) and is retried at the next step, or returns bytes.
    /// The bytes of each vmemmap page are kept, one copy per distinct content, to be judged once the
    /// operation ends: each must be what the page held before or holds after.
    /// </summary>
    private sealed class Reader<TArch> : IPageTableObserver where TArch : struct, IPagingArch
    {
        private readonly Machine<TArch> _machine;
        private readonly ulong _start;
        private readonly int _pages;
        private readonly byte[] _buffer = new byte[TArch.PageSize];
        private bool _busy;

        public Reader(Machine<TArch> machine, HugePage page)
        {
            _machine = machine;
            _start = machine.StructPageAddress(page.HeadPfn);
            _pages = (int)((page.Frames * (ulong)TArch.StructPageBytes) >> TArch.PageShift);
            Seen = Enumerable.Range(0, _pages).Select(_ => new List<byte[]>()).ToArray();
        }

        public bool Enabled { get; set; } = true;

        /// <summary>Distinct contents read, per vmemmap page.</summary>
        public List<byte[]>[] Seen { get; }

        /// <summary>Vmemmap pages whose last read faulted and that have not been read since.</summary>
        public HashSet<int> AwaitingRetry { get; } = new();

        public Dictionary<AccessFault, int> Faults { get; } = new();

        public int Retried { get; private set; }

        public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step) => Step();

        public void Flushed(ulong start, ulong end) => Step();

        /// <summary>Read every vmemmap page of the huge page once.</summary>
        public void Step()
        {
            if (!Enabled || _busy)
            {
                return;
            }

            _busy = true;
            try
            {
                for (int p = 0; p < _pages; p++)
                {
                    AccessFault fault = _machine.Mmu.Read(1, _start + ((ulong)p * TArch.PageSize), _buffer);
                    if (fault != AccessFault.None)
                    {
                        Faults[fault] = Faults.GetValueOrDefault(fault) + 1;
                        AwaitingRetry.Add(p);
                        continue;
                    }

                    if (AwaitingRetry.Remove(p))
                    {
                        Retried++;
                    }

                    byte[] bytes = Canonical(_buffer);
                    if (!Seen[p].Any(s => s.AsSpan().SequenceEqual(bytes)))
                    {
                        Seen[p].Add(bytes);
                    }
                }
            }
            finally
            {
                _busy = false;
            }
        }

        /// <summary>Reads every vmemmap page now (no step running): each must succeed.</summary>
        public byte[][] ReadAll()
        {
            var all = new byte[_pages][];
            for (int p = 0; p < _pages; p++)
            {
                Assert.AreEqual(AccessFault.None, _machine.Mmu.Read(1, _start + ((ulong)p * TArch.PageSize), _buffer), $"vmemmap page {p} after the operation");
                all[p] = Canonical(_buffer);
            }

            return all;
        }

        public void Reset()
        {
            foreach (List<byte[]> s in Seen)
            {
                s.Clear();
            }

            AwaitingRetry.Clear();
        }

        /// <summary>
        /// The page's bytes with HPageVmemmapOptimized masked: that flag is set or cleared in the head
        /// (and so in every fake head showing it) at its own step, after the remap or restore.
        /// </summary>
        private static byte[] Canonical(ReadOnlySpan<byte> page)
        {
            byte[] copy = page.ToArray();
            for (int i = 0; i < copy.Length; i += TArch.StructPageBytes)
            {
                Span<byte> sp = copy.AsSpan(i, TArch.StructPageBytes);
                StructPage.SetFlags(sp, StructPage.Flags(sp) & ~StructPage.PgHugeVmemmapOptimized);
            }

            return copy;
        }
    }

    private sealed class ReaderAtEveryStep(ulong size, HvoPolicy policy, bool hardwareAccessFlag) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size, hardwareAccessFlag: hardwareAccessFlag);
            HugePage page = r.Allocate();
            var reader = new Reader<TArch>(r.Machine, page) { Enabled = false };
            r.Machine.PageTable.Observer = new ObserverChain(r.Machine.PageTable.Observer!, reader);
            byte[][] before = reader.ReadAll();

            reader.Enabled = true;
            r.Optimizer.Optimize(page);
            reader.Step(); // the operation is over: whatever faulted reads now
            reader.Enabled = false;
            byte[][] after = reader.ReadAll();
            AssertOnlyBeforeOrAfter(reader, before, after, "optimize");
            Assert.IsEmpty(reader.AwaitingRetry, "every faulting read succeeded on retry");
            bool rolledBack = r.Optimizer.Total.BbmRetriesExhausted > 0;
            Assert.AreEqual(!rolledBack, page.VmemmapOptimized);

            if (policy.RequiredWriter == EntryWriterKind.Bbml2)
            {
                Assert.AreEqual(0, reader.Faults.Values.Sum(), "level 2 changes entries directly: nothing faults");
            }
            else if (policy.RequiredWriter == EntryWriterKind.ClearAccessFlag && hardwareAccessFlag)
            {
                // The reader sets AF after every flush: every round's cmpxchg fails, the page rolls back.
                Assert.IsTrue(rolledBack, "a reader touching every entry after every flush exhausts the retries");
                Assert.IsTrue(r.Machine.Mmu.AccessFlagUpdates > 0);
                Assert.AreEqual(r.Optimizer.Total.PmdsSplit > 0, reader.Faults.GetValueOrDefault(AccessFault.NotMapped) > 0, "it faults on a PMD being split, and only there");
            }
            else
            {
                Assert.IsFalse(rolledBack);
                Assert.IsTrue(reader.Retried > 0, "readers faulted during the sequence and retried");
                AccessFault expected = policy.RequiredWriter == EntryWriterKind.ClearAccessFlag ? AccessFault.AccessFlag : AccessFault.NotMapped;
                Assert.IsTrue(reader.Faults.GetValueOrDefault(expected) > 0, $"{expected} faults: {string.Join(", ", reader.Faults)}");
            }

            if (!rolledBack)
            {
                reader.Reset();
                reader.Enabled = true;
                Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(page));
                reader.Step();
                reader.Enabled = false;
                byte[][] restored = reader.ReadAll();
                AssertOnlyBeforeOrAfter(reader, after, restored, "restore");
                Assert.IsEmpty(reader.AwaitingRetry);
                for (int p = 0; p < restored.Length; p++)
                {
                    CollectionAssert.AreEqual(before[p], restored[p], $"vmemmap page {p} restored");
                }
            }

            if (policy.RequiredWriter == EntryWriterKind.Bbml2)
            {
                // Level 2 keeps the old translation usable until the flush: strict mode sees the reader
                // use it (a stale translation), which is benign only because the bytes are the same.
                Violation[] other = r.Machine.Violations.Snapshot().Where(v => v.Kind != ViolationKind.StaleTranslation).ToArray();
                Assert.IsEmpty(other, string.Join("\n", other.Take(5)));
            }
            else
            {
                AssertNoViolations(r, "with a reader at every step");
            }

            return true;
        }

        private static void AssertOnlyBeforeOrAfter<TArch>(Reader<TArch> reader, byte[][] before, byte[][] after, string op)
            where TArch : struct, IPagingArch
        {
            int reads = 0;
            for (int p = 0; p < before.Length; p++)
            {
                foreach (byte[] seen in reader.Seen[p])
                {
                    reads++;
                    Assert.IsTrue(seen.AsSpan().SequenceEqual(before[p]) || seen.AsSpan().SequenceEqual(after[p]),
                        $"{op}: vmemmap page {p} read bytes that are neither what it held before nor after");
                }
            }

            Assert.IsTrue(reads >= before.Length, $"{op}: the reader read");
        }
    }

    /// <summary>A CPU that translates every vmemmap page of a huge page after each flush (setting AF in hardware).</summary>
    private sealed class Toucher<TArch>(Machine<TArch> machine, HugePage page) : IPageTableObserver where TArch : struct, IPagingArch
    {
        private readonly byte[] _one = new byte[1];

        /// <summary>Flushes still to follow with a touch; negative: every one.</summary>
        public int Remaining { get; set; } = -1;

        public int Touches { get; private set; }

        public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step)
        {
        }

        public void Flushed(ulong start, ulong end)
        {
            if (Remaining == 0)
            {
                return;
            }

            Remaining--;
            ulong first = machine.StructPageAddress(page.HeadPfn);
            ulong last = first + (page.Frames * (ulong)TArch.StructPageBytes);
            for (ulong va = first; va < last; va += TArch.PageSize)
            {
                if (machine.Mmu.Read(1, va, _one) == AccessFault.None)
                {
                    Touches++;
                }
            }
        }
    }

    private sealed class RetriesExhausted(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size, hardwareAccessFlag: true);
            HugePage page = r.Allocate();
            byte[] bytes = r.ReadStructPages(page);
            var mapping = Mapping(r, page);
            long free = r.Machine.Owners.Count(FrameOwner.Free);
            long runtime = r.Machine.Owners.Count(FrameOwner.RuntimeVmemmap);
            long boot = r.Machine.Owners.Count(FrameOwner.BootVmemmap);
            long tables = r.Machine.Owners.Count(FrameOwner.PageTable);
            var toucher = new Toucher<TArch>(r.Machine, page);
            r.Machine.PageTable.Observer = new ObserverChain(r.Machine.PageTable.Observer!, toucher);

            r.Optimizer.Optimize(page);

            HvoCounters c = r.Optimizer.Total;
            long changed = ChangedAddresses(r.Machine, page, policy).Length;
            Assert.IsFalse(page.VmemmapOptimized, "rolled back, not optimized");
            Assert.AreEqual(1, c.BbmRetriesExhausted);
            Assert.AreEqual(1, c.Failures(OptimizeFailure.BbmRetriesExhausted));
            Assert.AreEqual(0, c.OptimizeFailures, "not an ENOMEM");
            Assert.AreEqual(0, c.OptimizedPages);
            Assert.AreEqual(0, c.VmemmapPagesFreed);
            Assert.AreEqual(changed * r.Machine.Config.AccessFlagRetries, c.BbmRetries, "every entry retried up to the bound");
            Assert.IsTrue(toucher.Touches > 0 && r.Machine.Mmu.AccessFlagUpdates > 0, "the reader set the access flags");

            // Fully backed by its own frames again, the same bytes; the head copy went back; the split stays.
            Assert.IsTrue(mapping.AsSpan().SequenceEqual(Mapping(r, page)), "every entry maps its own frame, writable");
            CollectionAssert.AreEqual(bytes, r.ReadStructPages(page));
            var head = new byte[TArch.StructPageBytes];
            Assert.AreEqual(AccessFault.None, r.Machine.ReadStructPage(0, page.HeadPfn, head));
            Assert.AreEqual(0UL, StructPage.Flags(head) & StructPage.PgHugeVmemmapOptimized, "HPageVmemmapOptimized stays clear");
            Assert.AreEqual(runtime, r.Machine.Owners.Count(FrameOwner.RuntimeVmemmap), "the head copy was freed");
            Assert.AreEqual(boot, r.Machine.Owners.Count(FrameOwner.BootVmemmap), "no boot vmemmap frame was freed");
            Assert.AreEqual(tables + c.PteTablesAllocated, r.Machine.Owners.Count(FrameOwner.PageTable));
            Assert.AreEqual(free - c.PteTablesAllocated, r.Machine.Owners.Count(FrameOwner.Free), "nothing leaked");
            Assert.IsTrue(r.Machine.OwnersAddUp());
            AssertNoViolations(r, "rolled back");

            // With the reader gone the same page optimizes, and restores.
            toucher.Remaining = 0;
            r.Optimizer.Optimize(page);
            Assert.IsTrue(page.VmemmapOptimized);
            Assert.AreEqual((long)HvoOptimizerTests.Expected<TArch>(size, policy).Freed, c.VmemmapPagesFreed);
            Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(page));
            CollectionAssert.AreEqual(bytes, r.ReadStructPages(page));
            AssertNoViolations(r, "optimized again and restored");
            return true;
        }
    }

    private sealed class RetriesWithinBound(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size, hardwareAccessFlag: true);
            HugePage page = r.Allocate();
            byte[] bytes = r.ReadStructPages(page);

            // A first cycle splits the vmemmap (tables stay), so below every flush is a cmpxchg round's.
            r.Optimizer.Optimize(page);
            Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(page));
            var toucher = new Toucher<TArch>(r.Machine, page) { Remaining = r.Machine.Config.AccessFlagRetries };
            r.Machine.PageTable.Observer = new ObserverChain(r.Machine.PageTable.Observer!, toucher);
            HvoCounters c = r.Optimizer.Total;
            long freedBefore = c.VmemmapPagesFreed;

            r.Optimizer.Optimize(page);

            long changed = ChangedAddresses(r.Machine, page, policy).Length;
            Assert.IsTrue(page.VmemmapOptimized, "the last round, untouched, succeeds");
            Assert.AreEqual(0, c.BbmRetriesExhausted);
            Assert.AreEqual(changed * r.Machine.Config.AccessFlagRetries, c.BbmRetries);
            Assert.AreEqual((long)HvoOptimizerTests.Expected<TArch>(size, policy).Freed, c.VmemmapPagesFreed - freedBefore);
            // Split breaks, the first cycle's one round, its restore's break per entry, then one flush per round.
            long freed = (long)HvoOptimizerTests.Expected<TArch>(size, policy).Freed;
            Assert.AreEqual(c.PmdsSplit + 1 + freed + r.Machine.Config.AccessFlagRetries + 1, c.TlbRangeFlushes, "one flush per cmpxchg round");
            Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(page));
            CollectionAssert.AreEqual(bytes, r.ReadStructPages(page));
            AssertNoViolations(r, "retried within the bound");
            return true;
        }
    }

    private sealed class Level2Discriminates(ulong size) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            // v5.14's layout under FEAT_BBM level 2: every tail maps a page with the same bytes.
            using (var same = new HvoRig<TArch>(HvoPolicy.V5_14, size, checkBreakBeforeMake: true, bbmLevel: 2))
            {
                HugePage page = same.Allocate();
                same.Optimizer.Optimize(page);
                Assert.IsTrue(page.VmemmapOptimized);
                AssertNoViolations(same, "v5.14 at level 2");
                Assert.AreEqual(RestoreResult.Ok, same.Optimizer.Restore(page));
                AssertNoViolations(same, "v5.14 restored at level 2");
            }

            // v5.18's: the tails map the head vmemmap page, whose bytes differ: level 2 does not cover it.
            using var r = new HvoRig<TArch>(HvoPolicy.V5_18, size, checkBreakBeforeMake: true, bbmLevel: 2);
            HugePage p = r.Allocate();
            r.Optimizer.Optimize(p);
            Violation[] bbm = BbmReports(r);
            CollectionAssert.AreEqual(ChangedAddresses(r.Machine, p, HvoPolicy.V5_18), bbm.Select(v => v.Address).ToArray(), string.Join("\n", bbm.Take(3)));
            Assert.IsTrue(bbm.All(v => v.Detail.Contains("hold different bytes", StringComparison.Ordinal)), bbm.First().Detail);

            // A block replaced by a table that maps other frames is no equivalent split either.
            if (TArch.VmemmapBootLevel < TArch.LastLevel)
            {
                int level = TArch.VmemmapBootLevel;
                ulong va = TArch.VmemmapStart;
                WalkResult block = r.Machine.PageTable.Walk(va);
                while (!(block.IsLeaf && block.Level == level))
                {
                    va += TArch.LevelSize(level);
                    block = r.Machine.PageTable.Walk(va);
                }

                {
                    r.Machine.Violations.Clear();
                    var ctx = r.Machine.PageTable.Ctx();
                    Assert.IsTrue(ctx.TryAllocTable(level + 1, out ulong table));
                    Span<ulong> entries = ctx.Table(table);
                    for (int i = 0; i < entries.Length; i++)
                    {
                        entries[i] = TArch.MakeLeaf(level + 1, TArch.PfnOf(level, block.Entry) + (ulong)i + 1); // off by one frame
                    }

                    ctx.SetEntry(level, block.TablePfn, block.Index, block.Entry, TArch.MakeTable(level, table), va);
                    StringAssert.Contains(BbmReports(r).Single().Detail, "does not map what the block mapped");
                }
            }

            return true;
        }
    }
}
