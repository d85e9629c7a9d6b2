using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Paging;

/// <summary>
/// The entry writers at the page table: the stores and flushes each makes for one change of a live
/// entry, what it leaves the caller to flush, and the machine and policy checks around them.
/// </summary>
[TestClass]
public sealed class EntryWriterTests
{
    /// <summary>The architectures whose specs have an access flag: where the clear-AF writer can run.</summary>
    public static IEnumerable<object[]> WithAccessFlag =>
        ArchRegistry.All.Where(e => e.Info.AccessFlag != 0).Select(e => new object[] { e.Name });

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TheDirectWriterStoresOnceAndLeavesTheFlushToTheCaller(string arch) =>
        Archs.Run(arch, new OneChange(EntryWriterKind.Direct, flushOwed: true, "store"));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void BreakFlushMakeGoesThroughAnInvalidEntryAndAFlush(string arch) =>
        Archs.Run(arch, new OneChange(EntryWriterKind.BreakFlushMake, flushOwed: false, "break", "flush", "make"));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void InvalidateGoesThroughAnInvalidEntryEvenForAPermissionChange(string arch) => Archs.Run(arch, new Invalidating());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void PauseCpusParksTheOthersOncePerWalkAndCountsTheSteps(string arch) => Archs.Run(arch, new Pausing());

    [TestMethod]
    [DynamicData(nameof(Archs.SplittableLevels), typeof(Archs))]
    public void Bbml2WritesEquivalentChangesDirectlyAndBreaksTheOthers(string arch, int level) => Archs.Run(arch, new Bbml2(level));

    [TestMethod]
    [DynamicData(nameof(WithAccessFlag))]
    public void ClearAccessFlagDefersPteChangesToOneFlushAndACompareExchangeEach(string arch) => Archs.Run(arch, new ClearAccessFlag(touchedRounds: 0));

    [TestMethod]
    [DynamicData(nameof(WithAccessFlag))]
    public void ClearAccessFlagRetriesEntriesACpuUsedAndGivesUpPuttingEverythingBack(string arch)
    {
        Archs.Run(arch, new ClearAccessFlag(touchedRounds: 2));
        Archs.Run(arch, new ClearAccessFlag(touchedRounds: 4));
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AnIndexFromOutsideTheTableIsRefusedAndNothingIsWritten(string arch) => Archs.Run(arch, new CheckedIndex());

    [TestMethod]
    public void AMachineWhoseCpusOrSpecLackWhatItsWriterNeedsDoesNotBoot()
    {
        var bbml2 = new MachineConfig { MemoryBytes = 1UL << 30, EntryWriter = EntryWriterKind.Bbml2 };
        var e = Assert.ThrowsExactly<ArgumentException>(() => Machine<Arch.Arm64_4k>.Boot(bbml2));
        StringAssert.Contains(e.Message, "FEAT_BBM level 2");
        using (var m = Machine<Arch.Arm64_4k>.Boot(bbml2 with { BreakBeforeMakeLevel = 2 }))
        {
            Assert.AreEqual(EntryWriterKind.Bbml2, m.PageTable.Writer.Kind);
        }

        var af = new MachineConfig { MemoryBytes = 1UL << 30, EntryWriter = EntryWriterKind.ClearAccessFlag };
        e = Assert.ThrowsExactly<ArgumentException>(() => Machine<Arch.X86_64>.Boot(af));
        StringAssert.Contains(e.Message, "entry.accessFlag");
    }

    [TestMethod]
    public void TheMachineChoosesBbml2WhereTheRuleAndTheCpusAskForItAndDirectElsewhere()
    {
        var cpus = new MachineConfig { BreakBeforeMakeLevel = 2 };
        Assert.AreEqual(EntryWriterKind.Bbml2, cpus.DefaultEntryWriter(Arch.Arm64_4k.Info));
        Assert.AreEqual(EntryWriterKind.Direct, cpus.DefaultEntryWriter(Arch.X86_64.Info), "x86-64 has no break-before-make rule");
        Assert.AreEqual(EntryWriterKind.Direct, new MachineConfig().DefaultEntryWriter(Arch.Arm64_4k.Info), "mainline arm64 writes directly");
        Assert.AreEqual(EntryWriterKind.BreakFlushMake, (cpus with { EntryWriter = EntryWriterKind.BreakFlushMake }).DefaultEntryWriter(Arch.Arm64_4k.Info));
    }

    [TestMethod]
    public void APolicyWrittenForAnotherWriterIsRefusedByNameBeforeItRuns()
    {
        var plain = new MachineConfig { MemoryBytes = 1UL << 30 };
        foreach (HvoPolicy p in HvoPolicy.All)
        {
            string? refusal = p.Refusal(plain, Arch.Arm64_4k.Info);
            Assert.AreEqual(p.RequiredWriter is not null, refusal is not null, p.Name);
            if (refusal is not null)
            {
                StringAssert.Contains(refusal, HvoPolicy.WriterName(p.RequiredWriter!.Value));
                using var m = Machine<Arch.Arm64_4k>.Boot(plain);
                Assert.ThrowsExactly<ArgumentException>(() => new HvoOptimizer<Arch.Arm64_4k>(m, p));
            }

            var fitting = plain with { EntryWriter = TestMachines.WriterFor(p), BreakBeforeMakeLevel = TestMachines.BbmLevelFor(p) };
            Assert.IsNull(p.Refusal(fitting, Arch.Arm64_4k.Info), $"{p.Name} on the machine it was written for");
        }
    }

    /// <summary>A page table with one boot leaf of vmemmap split into PTEs, the given writer, and a record of what it did.</summary>
    private static (TestPageTable<TArch> T, Recorder R, ulong Va) Setup<TArch>(EntryWriterKind kind)
        where TArch : struct, IPagingArch
    {
        var t = new TestPageTable<TArch>();
        t.Table.Writer = EntryWriter<TArch>.Create(kind, (a, b) => t.Store.Read(a).SequenceEqual(t.Store.Read(b)), new MachineConfig().AccessFlagRetries);
        WalkTests.MapBootVmemmap(t, TArch.VmemmapBootLevel < TArch.LastLevel ? 1 : 8);
        ulong va = TArch.VmemmapStart;
        if (TArch.VmemmapBootLevel < TArch.LastLevel)
        {
            Assert.AreEqual(SplitStatus.Split, t.Table.SplitLeaf(TArch.VmemmapBootLevel, va));
        }

        var r = new Recorder { Empty = TArch.EmptyEntryOf };
        t.Table.Observer = r;
        return (t, r, va);
    }

    /// <summary>Every store and flush, in order.</summary>
    private sealed class Recorder : IPageTableObserver
    {
        public List<string> Events { get; } = [];

        /// <summary>What an empty entry of a level holds (levels[].empty: s390's invalid entries), 0 elsewhere.</summary>
        public Func<int, ulong> Empty { get; init; } = _ => 0;

        public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step) =>
            Events.Add(newEntry == Empty(level) ? "break" : oldEntry == Empty(level) ? "make" : "store");

        public void Flushed(ulong start, ulong end) => Events.Add("flush");
    }

    /// <summary>A live PTE moved to the next frame, then made read-only in place: the stores and flushes the writer makes.</summary>
    private sealed class OneChange(EntryWriterKind kind, bool flushOwed, params string[] events) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            (TestPageTable<TArch> t, Recorder r, ulong va) = Setup<TArch>(kind);
            using (t)
            {
                WalkResult pte = t.Table.Walk(va);
                var ctx = t.Table.Ctx();
                ulong other = TArch.WithPfn(pte.Level, pte.Entry, TArch.PfnOf(pte.Level, pte.Entry) + 1);
                Assert.AreEqual(flushOwed, ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, other, va), "is a flush owed?");
                CollectionAssert.AreEqual(events, r.Events);
                Assert.AreEqual(other, t.Table.Walk(va).Entry);

                r.Events.Clear();
                Assert.IsTrue(ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, other, TArch.ToReadOnly(other), va), "permissions only: the caller flushes");
                CollectionAssert.AreEqual(new[] { "store" }, r.Events, "the same output changes in one store");
            }

            return true;
        }
    }

    /// <summary>s390's rule: a moved PTE and a read-only one alike are invalidated (IPTE), flushed, then written.</summary>
    private sealed class Invalidating : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            (TestPageTable<TArch> t, Recorder r, ulong va) = Setup<TArch>(EntryWriterKind.Invalidate);
            using (t)
            {
                WalkResult pte = t.Table.Walk(va);
                var ctx = t.Table.Ctx();
                ulong other = TArch.WithPfn(pte.Level, pte.Entry, TArch.PfnOf(pte.Level, pte.Entry) + 1);
                long before = t.Table.Counters.Invalidations;
                Assert.IsFalse(ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, other, va), "the invalidation flushed it");
                CollectionAssert.AreEqual(new[] { "break", "flush", "make" }, r.Events);

                r.Events.Clear();
                Assert.IsFalse(ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, other, TArch.ToReadOnly(other), va));
                CollectionAssert.AreEqual(new[] { "break", "flush", "make" }, r.Events, "permissions too: no valid-to-valid store at all");
                Assert.AreEqual(before + 2, t.Table.Counters.Invalidations);
                Assert.AreEqual(TArch.ToReadOnly(other), t.Table.Walk(va).Entry);
            }

            return true;
        }
    }

    /// <summary>Yu Zhao's: one pause (an IPI to each other CPU) for a walk's changes, resumed when the walk ends.</summary>
    private sealed class Pausing : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            (TestPageTable<TArch> t, Recorder r, ulong va) = Setup<TArch>(EntryWriterKind.PauseCpus);
            using (t)
            {
                const int Cpus = 4, Pages = 3;
                t.Table.Writer = EntryWriter<TArch>.Create(EntryWriterKind.PauseCpus, null, 3, Cpus);
                ulong target = TestPageTable<TArch>.DataPfn + 100;
                var v = PteVisitor<TArch>.Recording(pte => TArch.WithPfn(TArch.LastLevel, pte, target));
                PageTableCounters c = t.Table.Counters;
                (long pauses, long ipis, long invalidations, long steps) = (c.CpuPauses, c.PauseIpis, c.Invalidations, c.PausedCpuSteps);
                PageWalkResult w = t.Table.WalkRange(va, va + (Pages * TArch.PageSize), ref v);

                Assert.IsTrue(w.Done, w.Status.ToString());
                Assert.IsFalse(w.NeedsFlush, "every change was flushed inside the pause");
                Assert.AreEqual(1, c.CpuPauses - pauses, "one pause for the walk");
                Assert.AreEqual(Cpus - 1, c.PauseIpis - ipis);
                Assert.AreEqual(Pages, c.Invalidations - invalidations);
                Assert.AreEqual(3L * Pages * (Cpus - 1), c.PausedCpuSteps - steps, "clear, flush, write of each entry, for each parked CPU");
                CollectionAssert.AreEqual(Enumerable.Repeat(new[] { "break", "flush", "make" }, Pages).SelectMany(e => e).ToArray(), r.Events);
            }

            return true;
        }
    }

    private sealed class Bbml2(int level) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            t.Table.Writer = EntryWriter<TArch>.Create(EntryWriterKind.Bbml2, (a, b) => t.Store.Read(a).SequenceEqual(t.Store.Read(b)), new MachineConfig().AccessFlagRetries);
            var r = new Recorder { Empty = TArch.EmptyEntryOf };
            ulong va = SplitTests.MapOneLeaf(t, level);
            t.Table.Observer = r;

            // A block to a table mapping the same frames: equivalent, one store (then the split's flush).
            Assert.AreEqual(SplitStatus.Split, t.Table.SplitLeaf(level, va));
            CollectionAssert.AreEqual(new[] { "store", "flush" }, r.Events);

            // A leaf onto a frame with the same bytes, read-only: equivalent.
            WalkResult pte = t.Table.EntryAt(level + 1, va);
            ulong pfn = TArch.PfnOf(pte.Level, pte.Entry);
            r.Events.Clear();
            var ctx = t.Table.Ctx();
            ulong same = TArch.ToReadOnly(TArch.WithPfn(pte.Level, pte.Entry, pfn + (TArch.LevelSize(pte.Level) >> TArch.PageShift)));
            Assert.IsTrue(ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, same, va));
            CollectionAssert.AreEqual(new[] { "store" }, r.Events, "both frames are unwritten: the same bytes");

            // Once the frames differ, the same kind of change goes by break, flush, make.
            t.Store.Write(pfn).Fill(0x5a);
            r.Events.Clear();
            Assert.IsFalse(ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, same, TArch.WithPfn(pte.Level, same, pfn), va));
            CollectionAssert.AreEqual(new[] { "break", "flush", "make" }, r.Events);
            return true;
        }
    }

    private sealed class ClearAccessFlag(int touchedRounds) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            (TestPageTable<TArch> t, Recorder r, ulong va) = Setup<TArch>(EntryWriterKind.ClearAccessFlag);
            using (t)
            {
                const int Pages = 4;
                ulong end = va + (Pages * TArch.PageSize);
                ulong[] before = [.. Enumerable.Range(0, Pages).Select(i => t.Table.Walk(va + ((ulong)i * TArch.PageSize)).Entry)];
                ulong target = TestPageTable<TArch>.DataPfn + 100;
                var toucher = new AccessFlagSetter<TArch>(t.Table, va, end) { Rounds = touchedRounds };
                t.Table.Observer = new ObserverChain(r, toucher);
                var v = PteVisitor<TArch>.Recording(pte => TArch.ToReadOnly(TArch.WithPfn(TArch.LastLevel, pte, target)));

                PageWalkResult w = t.Table.WalkRange(va, end, ref v, PageWalkFlags.MayGiveUp);

                int retries = new MachineConfig().AccessFlagRetries; // what Setup gave the writer
                int retried = Math.Min(touchedRounds, retries);
                Assert.AreEqual(retried * Pages, w.Retries, "each touched entry retried once a round");
                Assert.IsFalse(w.NeedsFlush, "the writer flushed every round itself");
                if (touchedRounds <= retries)
                {
                    Assert.IsTrue(w.Done, w.Status.ToString());
                    Assert.AreEqual(retried + 1, w.RangeFlushes, "one flush a round, for the whole range");
                    Assert.AreEqual(Pages * (retried + 1) + Pages, r.Events.Count(e => e == "store"), "aged once a round, then installed by one exchange");
                    Assert.AreEqual(0, r.Events.Count(e => e == "break"), "no entry went through an invalid one");
                    for (int i = 0; i < Pages; i++)
                    {
                        Assert.AreEqual(target, TArch.PfnOf(TArch.LastLevel, t.Table.Walk(va + ((ulong)i * TArch.PageSize)).Entry));
                    }
                }
                else
                {
                    Assert.AreEqual(PageWalkStatus.WriterGaveUp, w.Status);
                    for (int i = 0; i < Pages; i++)
                    {
                        Assert.AreEqual(before[i], t.Table.Walk(va + ((ulong)i * TArch.PageSize)).Entry, "every entry back as it was");
                    }
                }

                // Without MayGiveUp (a restore) the same writer breaks, flushes and makes each change.
                r.Events.Clear();
                toucher.Rounds = 0;
                var back = PteVisitor<TArch>.Recording(pte => TArch.WithPfn(TArch.LastLevel, pte, TestPageTable<TArch>.DataPfn + 200));
                Assert.IsTrue(t.Table.WalkRange(va, end, ref back).Done);
                Assert.AreEqual(Pages, r.Events.Count(e => e == "break"));
            }

            return true;
        }
    }

    /// <summary>A CPU that uses the range right after each flush, setting the access flags again, for <see cref="Rounds"/> flushes.</summary>
    private sealed class AccessFlagSetter<TArch>(KernelPageTable<TArch> table, ulong start, ulong end) : IPageTableObserver
        where TArch : struct, IPagingArch
    {
        public int Rounds { get; set; }

        public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step)
        {
        }

        public void Flushed(ulong flushStart, ulong flushEnd)
        {
            if (Rounds == 0)
            {
                return;
            }

            Rounds--;
            for (ulong va = start; va < end; va += TArch.PageSize)
            {
                WalkResult w = table.Walk(va);
                Assert.IsTrue(table.HardwareSetAccessFlag(w), "the hardware sets AF on an aged entry");
            }
        }
    }

    private sealed class CheckedIndex : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            (TestPageTable<TArch> t, Recorder r, ulong va) = Setup<TArch>(EntryWriterKind.Direct);
            using (t)
            {
                WalkResult pte = t.Table.Walk(va);
                var ctx = t.Table.Ctx();
                int entries = TArch.EntriesPerTable(pte.Level);
                Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ctx.SetEntry(pte.Level, pte.TablePfn, entries, 0, pte.Entry, va));
                Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ctx.SetEntry(pte.Level, pte.TablePfn, -1, 0, pte.Entry, va));
                Assert.AreEqual(0, r.Events.Count, "nothing written, nobody told");
                Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ctx.Table(t.Store.Frames));
            }

            return true;
        }
    }
}
