using System;
using System.Linq;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Paging;

[TestClass]
public sealed class MmuTests
{
    public static System.Collections.Generic.IEnumerable<object[]> BreakBeforeMakeArchs =>
        ArchRegistry.All.Where(e => e.Info.BreakBeforeMake).Select(e => new object[] { e.Name });

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void BytesWrittenThroughTheMmuAreReadBack(string arch) => Archs.Run(arch, new WriteThenRead());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AWriteThroughAReadOnlyMappingTrapsAndWritesNothing(string arch) => Archs.Run(arch, new ReadOnlyTraps());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TheTlbKeepsAStaleTranslationUntilAFlush(string arch) => Archs.Run(arch, new StaleUntilFlush(strict: false));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void StrictModeReportsTheUseOfAStaleTranslation(string arch) => Archs.Run(arch, new StaleUntilFlush(strict: true));

    [TestMethod]
    [DynamicData(nameof(BreakBeforeMakeArchs))]
    public void BreakBeforeMakeCheckerCatchesADirectRemapOfALiveEntry(string arch) => Archs.Run(arch, new BbmCatchesDirectRemap());

    [TestMethod]
    [DynamicData(nameof(BreakBeforeMakeArchs))]
    public void BreakBeforeMakeCheckerAcceptsBreakFlushMake(string arch) => Archs.Run(arch, new BbmAcceptsSafeSequence());

    [TestMethod]
    [DynamicData(nameof(BreakBeforeMakeArchs))]
    public void BreakBeforeMakeCheckerCatchesASplitPublishedOverALiveBlock(string arch) => Archs.Run(arch, new BbmCatchesSplit());

    [TestMethod]
    [DynamicData(nameof(BreakBeforeMakeArchs))]
    public void BreakBeforeMakeCheckerCatchesAMakeBeforeTheFlush(string arch) => Archs.Run(arch, new BbmCatchesMakeBeforeFlush());

    /// <summary>A page table with an MMU over one mapped boot-vmemmap leaf (or a few base pages).</summary>
    private sealed class Rig<TArch> : IDisposable where TArch : struct, IPagingArch
    {
        public Rig(bool strict = false, bool bbm = false)
        {
            T = new TestPageTable<TArch>();
            Mmu = new Mmu<TArch>(T.Table, cpus: 2, Violations) { Strict = strict };
            Bbm = bbm ? new BreakBeforeMakeChecker<TArch>(Violations) : null;
            T.Table.Observer = Bbm is null ? Mmu : new ObserverChain(Mmu, Bbm);
            ulong pages = TArch.LevelSize(TArch.VmemmapBootLevel) / TArch.PageSize;
            WalkTests.MapBootVmemmap(T, pages >= 4 ? 1 : 4);
        }

        public TestPageTable<TArch> T { get; }

        public Mmu<TArch> Mmu { get; }

        public BreakBeforeMakeChecker<TArch>? Bbm { get; }

        public ViolationLog Violations { get; } = new();

        public static ulong Va => TArch.VmemmapStart;

        /// <summary>Make the PTE of <paramref name="va"/> a PTE (splitting the boot leaf) and return where it lives.</summary>
        public WalkResult Pte(ulong va)
        {
            if (TArch.VmemmapBootLevel < TArch.LastLevel)
            {
                T.Table.SplitLeaf(TArch.VmemmapBootLevel, va);
            }

            WalkResult w = T.Table.Walk(va);
            Assert.AreEqual(TArch.LastLevel, w.Level);
            return w;
        }

        public void Dispose() => T.Dispose();
    }

    private sealed class WriteThenRead : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>();
            byte[] data = [1, 2, 3, 4, 5, 6, 7, 8];
            ulong va = Rig<TArch>.Va + 64;
            Assert.AreEqual(AccessFault.None, r.Mmu.Write(0, va, data));
            var back = new byte[8];
            Assert.AreEqual(AccessFault.None, r.Mmu.Read(1, va, back));
            CollectionAssert.AreEqual(data, back);
            Assert.IsTrue(r.T.Store.IsMaterialized(TestPageTable<TArch>.DataPfn), "the write landed in the mapped frame");
            Assert.AreEqual(AccessFault.NotMapped, r.Mmu.Read(0, TArch.VmemmapStart + (TArch.VmemmapSize / 2), back));
            return true;
        }
    }

    private sealed class ReadOnlyTraps : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>();
            ulong va = Rig<TArch>.Va;
            WalkResult pte = r.Pte(va);
            var ctx = r.T.Table.Ctx();
            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, TArch.ToReadOnly(pte.Entry), va);
            ctx.FlushTlbRange(va, va + TArch.PageSize);

            Assert.AreEqual(AccessFault.WriteProtect, r.Mmu.Write(0, va, new byte[] { 0xff }));

            Assert.AreEqual(1, r.Mmu.WriteFaults);
            Assert.IsFalse(r.T.Store.IsMaterialized(TestPageTable<TArch>.DataPfn), "nothing was written");
            var one = new byte[1];
            Assert.AreEqual(AccessFault.None, r.Mmu.Read(0, va, one), "reads still work");
            return true;
        }
    }

    private sealed class StaleUntilFlush(bool strict) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>(strict);
            ulong va = Rig<TArch>.Va;
            WalkResult pte = r.Pte(va);
            Assert.AreEqual(AccessFault.None, r.Mmu.Translate(0, va, false, out ulong before));

            // Point the PTE elsewhere without a flush: CPU 0 still uses what it cached.
            ulong other = TestPageTable<TArch>.DataPfn + 4096;
            var ctx = r.T.Table.Ctx();
            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, TArch.WithPfn(pte.Level, pte.Entry, other), va);
            Assert.AreEqual(AccessFault.None, r.Mmu.Translate(0, va, false, out ulong stale));
            Assert.AreEqual(before, stale, "a TLB hit does not see the new entry");
            Assert.IsTrue(r.Mmu.TlbReaches(TestPageTable<TArch>.DataPfn, out int cpu, out _));
            Assert.AreEqual(0, cpu);
            Assert.AreEqual(strict ? 1 : 0, r.Violations.CountOf(ViolationKind.StaleTranslation));

            ctx.FlushTlbRange(va, va + TArch.PageSize);
            Assert.AreEqual(AccessFault.None, r.Mmu.Translate(0, va, false, out ulong after));
            Assert.AreEqual(other << TArch.PageShift, after);
            Assert.IsFalse(r.Mmu.TlbReaches(TestPageTable<TArch>.DataPfn, out _, out _));
            Assert.AreEqual(strict ? 1 : 0, r.Violations.Count, "after the flush nothing is stale");
            return true;
        }
    }

    private sealed class BbmCatchesDirectRemap : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>(bbm: true);
            ulong va = Rig<TArch>.Va + TArch.PageSize;
            WalkResult pte = r.Pte(va);
            r.Violations.Clear();
            r.Bbm!.Step = "vmemmap_remap_pte";
            var ctx = r.T.Table.Ctx();

            // What v5.14's vmemmap_remap_pte does: a live PTE straight to another frame, read-only.
            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, TArch.ToReadOnly(TArch.WithPfn(pte.Level, pte.Entry, TestPageTable<TArch>.DataPfn)), va);

            Violation v = r.Violations.Snapshot().Single();
            Assert.AreEqual(ViolationKind.BreakBeforeMake, v.Kind);
            Assert.AreEqual(va, v.Address);
            StringAssert.Contains(v.Detail, "vmemmap_remap_pte");
            return true;
        }
    }

    private sealed class BbmAcceptsSafeSequence : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>(bbm: true);
            ulong va = Rig<TArch>.Va + TArch.PageSize;
            WalkResult pte = r.Pte(va);
            r.Violations.Clear();
            long checkedBefore = r.Bbm!.Checked;
            var ctx = r.T.Table.Ctx();
            ulong next = TArch.ToReadOnly(TArch.WithPfn(pte.Level, pte.Entry, TestPageTable<TArch>.DataPfn));

            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, 0, va);   // break
            ctx.FlushTlbRange(va, va + TArch.PageSize);                          // flush
            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, 0, next, va);       // make
            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, next, TArch.MakeLeaf(pte.Level, TestPageTable<TArch>.DataPfn), va); // permission-only change

            Assert.AreEqual(0, r.Violations.Count, string.Join("; ", r.Violations.Snapshot()));
            Assert.AreEqual(checkedBefore + 3, r.Bbm.Checked, "three entry updates were checked");
            return true;
        }
    }

    private sealed class BbmCatchesSplit : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>(bbm: true);
            int level = Enumerable.Range(0, TArch.LastLevel).Last(TArch.LevelCanMapLeaf);
            ulong va = TArch.VmemmapStart + (TArch.VmemmapSize / 2);
            va &= ~(TArch.LevelSize(level) - 1);
            Assert.IsTrue(r.T.Table.TryMap(va, TestPageTable<TArch>.DataPfn, TArch.LevelSize(level), level));
            r.Violations.Clear();

            Assert.AreEqual(SplitStatus.Split, r.T.Table.SplitLeaf(level, va));

            Violation v = r.Violations.Snapshot().Single();
            StringAssert.Contains(v.Detail, "block was replaced by a table");
            return true;
        }
    }

    private sealed class BbmCatchesMakeBeforeFlush : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new Rig<TArch>(bbm: true);
            ulong va = Rig<TArch>.Va;
            WalkResult pte = r.Pte(va);
            r.Violations.Clear();
            var ctx = r.T.Table.Ctx();

            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, 0, va);
            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, 0, pte.Entry, va);

            StringAssert.Contains(r.Violations.Snapshot().Single().Detail, "before a TLB flush");
            return true;
        }
    }
}
