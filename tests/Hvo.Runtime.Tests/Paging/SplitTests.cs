using System;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Paging;

[TestClass]
public sealed class SplitTests
{
    [TestMethod]
    [DynamicData(nameof(Archs.SplittableLevels), typeof(Archs))]
    public void SplitLeafKeepsEveryAddressTranslatingToTheSameFrame(string arch, int level) =>
        Archs.Run(arch, new SplitKeepsTranslation(level));

    [TestMethod]
    [DynamicData(nameof(Archs.SplittableLevels), typeof(Archs))]
    public void SplitLeafWithoutATableReturnsNoMemoryAndChangesNothing(string arch, int level) =>
        Archs.Run(arch, new SplitWithoutMemory(level));

    [TestMethod]
    [DynamicData(nameof(Archs.SplittableLevels), typeof(Archs))]
    public void SplitLeafThatLosesARaceFreesItsTable(string arch, int level) =>
        Archs.Run(arch, new SplitLosesRace(level));

    [TestMethod]
    [DynamicData(nameof(Archs.SplittableLevels), typeof(Archs))]
    public void SplitOfAReadOnlyLeafGivesReadOnlyEntries(string arch, int level) =>
        Archs.Run(arch, new SplitKeepsReadOnly(level));

    /// <summary>Map one leaf at <paramref name="level"/> at the vmemmap start and return its address.</summary>
    internal static ulong MapOneLeaf<TArch>(TestPageTable<TArch> t, int level)
        where TArch : struct, IPagingArch
    {
        ulong va = TArch.VmemmapStart;
        Assert.IsTrue(t.Table.TryMap(va, TestPageTable<TArch>.DataPfn, TArch.LevelSize(level), level));
        return va;
    }

    private sealed class SplitKeepsTranslation(int level) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong va = MapOneLeaf(t, level);
            ulong size = TArch.LevelSize(level);
            long tablesBefore = t.Table.Counters.TablesAllocated;

            Assert.AreEqual(SplitStatus.Split, t.Table.SplitLeaf(level, va + (size / 2)));

            WalkResult at = t.Table.Walk(va);
            Assert.IsTrue(at.Level > level, "the leaf is now a table");
            Assert.AreEqual(tablesBefore + 1, t.Table.Counters.TablesAllocated);
            Assert.AreEqual(1, t.Table.Counters.TlbRangeFlushes, "one flush for the split range");
            ulong step = Math.Max(TArch.PageSize, size / 4096);
            for (ulong offset = 0; offset < size; offset += step)
            {
                Assert.IsTrue(t.Table.TryTranslate(va + offset + 8, out ulong pa), $"0x{va + offset:x} still maps");
                Assert.AreEqual((TestPageTable<TArch>.DataPfn << TArch.PageShift) + offset + 8, pa, $"0x{va + offset:x}");
                Assert.IsTrue(TArch.IsWritable(t.Table.Walk(va + offset).Entry), "PAGE_KERNEL stays writable");
            }

            Assert.AreEqual(SplitStatus.NotLeaf, t.Table.SplitLeaf(level, va), "splitting again is a no-op");
            return true;
        }
    }

    private sealed class SplitWithoutMemory(int level) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong va = MapOneLeaf(t, level);
            WalkResult before = t.Table.Walk(va);
            t.Source.FailAllocationNumber = t.Source.Allocations + 1;

            Assert.AreEqual(SplitStatus.NoMemory, t.Table.SplitLeaf(level, va));

            Assert.AreEqual(before, t.Table.Walk(va), "the leaf is untouched");
            Assert.AreEqual(0, t.Table.Counters.TlbRangeFlushes);
            return true;
        }
    }

    private sealed class SplitKeepsReadOnly(int level) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong va = MapOneLeaf(t, level);
            WalkResult leaf = t.Table.Walk(va);
            var ctx = t.Table.Ctx();
            ctx.SetEntry(leaf.Level, leaf.TablePfn, leaf.Index, leaf.Entry, TArch.ToReadOnly(leaf.Entry), va);

            Assert.AreEqual(SplitStatus.Split, t.Table.SplitLeaf(level, va));

            Assert.IsFalse(TArch.IsWritable(t.Table.Walk(va).Entry), "protection carried into the new table");
            return true;
        }
    }

    private sealed class SplitLosesRace(int level) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong va = MapOneLeaf(t, level);
            var racing = new RacingContext<TArch>(t.Table, level, va);
            long allocatedBefore = t.Table.Counters.TablesAllocated;

            var split = new SplitAtVisitor { Level = level };
            PageWalkResult r = TArch.WalkRange(ref racing, t.Table.RootPfn, va, va + 1, ref split, PageWalkFlags.None);

            Assert.AreEqual((0, 1), (r.Splits, r.RacesLost), "the split lost the race");
            Assert.AreEqual(allocatedBefore + 2, t.Table.Counters.TablesAllocated, "both CPUs allocated a table");
            Assert.AreEqual(1, t.Table.Counters.TablesFreed, "the loser freed its own");
            // In use: the root, the shared tables of empty entries (LoongArch), one table per level TryMap
            // descended through below the root, and one split table.
            Assert.AreEqual(1 + t.Table.InvalidTables.Count + level + 1, t.Source.InUse, "exactly one table is installed for the leaf");
            Assert.IsTrue(t.Table.TryTranslate(va, out ulong pa));
            Assert.AreEqual(TestPageTable<TArch>.DataPfn << TArch.PageShift, pa);
            return true;
        }
    }

    /// <summary>
    /// A context in which another CPU splits the same leaf while this one is filling its new
    /// table: the other split happens inside our allocation, before our re-check.
    /// </summary>
    private struct RacingContext<TArch>(KernelPageTable<TArch> table, int level, ulong va) : IPageTableContext
        where TArch : struct, IPagingArch
    {
        private KernelPageTable<TArch>.Context _inner = table.Ctx();
        private bool _raced;

        public Span<ulong> Table(ulong pfn) => _inner.Table(pfn);

        public bool TryAllocTable(int childLevel, out ulong pfn)
        {
            if (!_inner.TryAllocTable(childLevel, out pfn))
            {
                return false;
            }

            if (!_raced)
            {
                _raced = true;
                Assert.AreEqual(SplitStatus.Split, table.SplitLeaf(level, va), "the other CPU wins");
            }

            return true;
        }

        public void FreeTable(int childLevel, ulong pfn) => _inner.FreeTable(childLevel, pfn);

        public readonly ulong EmptyEntry(int l) => _inner.EmptyEntry(l);

        public bool SetEntry(int l, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong addr) =>
            _inner.SetEntry(l, tablePfn, index, oldEntry, newEntry, addr);

        public void LockPageTable() => _inner.LockPageTable();

        public void UnlockPageTable() => _inner.UnlockPageTable();

        public void WriteBarrier() => _inner.WriteBarrier();

        public void FlushTlbRange(ulong start, ulong end) => _inner.FlushTlbRange(start, end);
    }
}
