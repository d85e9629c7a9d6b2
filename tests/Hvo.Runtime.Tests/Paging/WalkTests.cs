using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Paging;
using Hvo.Paging.Reference;

namespace Hvo.Runtime.Tests.Paging;

[TestClass]
public sealed class WalkTests
{
    /// <summary>Every architecture whose boot vmemmap is mapped with blocks: a walk over it splits.</summary>
    public static IEnumerable<object[]> BlockMappedVmemmap =>
        ArchRegistry.All.Where(e => e.Info.VmemmapBootLevel < e.Info.LastLevel).Select(e => new object[] { e.Name });

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void GeneratedLookupAgreesWithTheInterpretedOne(string arch) => Archs.Run(arch, new LookupMatchesReference());

    [TestMethod]
    [DynamicData(nameof(Archs.SplittableLevels), typeof(Archs))]
    public void GeneratedSplitAgreesWithTheInterpretedOne(string arch, int level) => Archs.Run(arch, new SplitMatchesReference(level));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void GeneratedWalkMakesTheSameCallbacksAsTheInterpretedOne(string arch) => Archs.Run(arch, new RandomWalksMatchReference());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void WalkVisitsEveryPteOnceInOrderSplittingOnTheWay(string arch) => Archs.Run(arch, new RemapVisitsInOrder());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void WalkInstallsWhatTheVisitorWrites(string arch) => Archs.Run(arch, new RemapInstalls());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void SplitOnlyWalkSplitsWithoutVisitingPtes(string arch) => Archs.Run(arch, new SplitOnlyWalk());

    [TestMethod]
    [DynamicData(nameof(BlockMappedVmemmap))]
    public void WalkStopsWithNoMemoryWhereASplitFails(string arch) => Archs.Run(arch, new RemapStopsOnNoMemory());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void WalkRefusesAnEmptyRangeAndStopsAtAHole(string arch) => Archs.Run(arch, new BadRanges());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AWalkToTheTopOfTheAddressSpaceVisitsTheLastRootEntryOnce(string arch) => Archs.Run(arch, new WalkToTheTop());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AWalkCountsWhatItChangedAndWhatIsLeftToFlush(string arch) => Archs.Run(arch, new WalkTally());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AOneAddressVisitorIsRefusedAWiderRange(string arch) => Archs.Run(arch, new OneAddressOnly());

    /// <summary>Map <paramref name="leaves"/> boot-mapping leaves of vmemmap, as vmemmap_populate does.</summary>
    internal static ulong MapBootVmemmap<TArch>(TestPageTable<TArch> t, int leaves)
        where TArch : struct, IPagingArch
    {
        ulong size = TArch.LevelSize(TArch.VmemmapBootLevel) * (ulong)leaves;
        Assert.IsTrue(t.Table.TryMap(TArch.VmemmapStart, TestPageTable<TArch>.DataPfn, size, TArch.VmemmapBootLevel));
        return size;
    }

    /// <summary>A leaf of every level that can hold one, each split once or not at random, with holes between; returns the end.</summary>
    private static ulong MapMixed<TArch>(TestPageTable<TArch> t, Random rng)
        where TArch : struct, IPagingArch
    {
        ulong va = TArch.VmemmapStart;
        for (int level = 1; level < TArch.LevelCount; level++)
        {
            if (!TArch.LevelCanMapLeaf(level))
            {
                continue;
            }

            ulong size = TArch.LevelSize(level);
            va = (va + size - 1) & ~(size - 1);
            Assert.IsTrue(t.Table.TryMap(va, TestPageTable<TArch>.DataPfn, size, level));
            if (level < TArch.LastLevel && rng.Next(2) == 0)
            {
                Assert.AreEqual(SplitStatus.Split, t.Table.SplitLeaf(level, va));
            }

            va += 2 * size; // leave a hole after it
        }

        return va;
    }

    private sealed class LookupMatchesReference : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            var reference = new ReferenceWalker(TArch.Info);
            var rng = new Random(7);
            ulong end = MapMixed(t, rng);
            for (int n = 0; n < 20_000; n++)
            {
                ulong probe = TArch.VmemmapStart + (ulong)rng.NextInt64((long)(end - TArch.VmemmapStart));
                t.Table.Reference = reference;
                WalkResult expected = t.Table.Walk(probe);
                t.Table.Reference = null;
                WalkResult actual = t.Table.Walk(probe);
                Assert.AreEqual(expected, actual, $"va 0x{probe:x}");
                Assert.AreEqual(expected.Level, t.Table.EntryAt(TArch.LastLevel, probe).Level, "EntryAt at the last level is the look-up");
            }

            return true;
        }
    }

    private sealed class SplitMatchesReference(int level) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var generated = new TestPageTable<TArch>();
            using var interpreted = new TestPageTable<TArch>();
            interpreted.Table.Reference = new ReferenceWalker(TArch.Info);
            ulong va = SplitTests.MapOneLeaf(generated, level);
            SplitTests.MapOneLeaf(interpreted, level);

            Assert.AreEqual(SplitStatus.Split, generated.Table.SplitLeaf(level, va));
            Assert.AreEqual(SplitStatus.Split, interpreted.Table.SplitLeaf(level, va));

            WalkResult g = generated.Table.Walk(va);
            WalkResult i = interpreted.Table.Walk(va);
            Assert.AreEqual(g.Level, i.Level);
            Assert.IsTrue(generated.Store.Table(g.TablePfn).SequenceEqual(interpreted.Store.Table(i.TablePfn)), "same new table, entry for entry");
            return true;
        }
    }

    /// <summary>
    /// The property that makes the interpreted walk an oracle: on two identical page tables, visitors
    /// answering the same way (splits, stops, skipped tables, changed leaves) see the same entries in
    /// the same order, the walks end the same way, and the tables end up identical. Fixed seeds.
    /// </summary>
    private sealed class RandomWalksMatchReference : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            for (int seed = 1; seed <= 40; seed++)
            {
                using var generated = new TestPageTable<TArch>();
                using var interpreted = new TestPageTable<TArch>();
                interpreted.Table.Reference = new ReferenceWalker(TArch.Info);
                ulong end = MapMixed(generated, new Random(seed));
                Assert.AreEqual(end, MapMixed(interpreted, new Random(seed)));

                var rng = new Random(seed * 31);
                for (int round = 0; round < 8; round++)
                {
                    // Random ranges over the mapped part and around it, not page aligned.
                    ulong span = end - TArch.VmemmapStart;
                    ulong start = TArch.VmemmapStart - (span / 4) + (ulong)rng.NextInt64((long)span);
                    ulong stop = start + 1 + (ulong)rng.NextInt64((long)span);
                    ulong state = (ulong)rng.NextInt64(1, long.MaxValue);
                    ulong flip = TArch.IsWritable(TArch.MakeLeaf(TArch.LastLevel, 0)) ? TArch.ToReadOnly(TArch.MakeLeaf(TArch.LastLevel, 0)) ^ TArch.MakeLeaf(TArch.LastLevel, 0) : 0;
                    var g = new RandomVisitor<TArch> { Events = [], State = state, ChangeTo = flip };
                    var i = new RandomVisitor<TArch> { Events = [], State = state, ChangeTo = flip };

                    PageWalkResult rg = generated.Table.WalkRange(start, stop, ref g);
                    PageWalkResult ri = interpreted.Table.WalkRange(start, stop, ref i);

                    string where = $"seed {seed} round {round} [0x{start:x}, 0x{stop:x})";
                    CollectionAssert.AreEqual(i.Events, g.Events, where);
                    Assert.AreEqual(ri, rg, where);
                }

                AssertSameTables(generated, interpreted, end);
            }

            return true;
        }

        private static void AssertSameTables<TArch>(TestPageTable<TArch> a, TestPageTable<TArch> b, ulong end)
            where TArch : struct, IPagingArch
        {
            for (ulong va = TArch.VmemmapStart; va < end; va += TArch.PageSize)
            {
                WalkResult x = a.Table.Walk(va), y = b.Table.Walk(va);
                Assert.AreEqual((x.Level, x.Index, x.Entry, x.IsLeaf), (y.Level, y.Index, y.Entry, y.IsLeaf), $"0x{va:x}");
            }
        }
    }

    private sealed class RemapVisitsInOrder : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong leaf = TArch.LevelSize(TArch.VmemmapBootLevel);
            MapBootVmemmap(t, 3);

            // A range from the middle of the first boot leaf into the third, like one huge page's vmemmap.
            ulong start = TArch.VmemmapStart + (leaf / 2 & ~(TArch.PageSize - 1));
            ulong end = TArch.VmemmapStart + (2 * leaf) + TArch.PageSize;
            var v = PteVisitor<TArch>.Recording();

            PageWalkResult r = t.Table.WalkRange(start, end, ref v);

            Assert.IsTrue(r.Done, r.Status.ToString());
            Assert.AreEqual(end, r.StoppedAt);
            Assert.AreEqual((int)((end - start) / TArch.PageSize), v.Addresses.Count);
            for (int i = 0; i < v.Addresses.Count; i++)
            {
                Assert.AreEqual(start + ((ulong)i * TArch.PageSize), v.Addresses[i]);
            }

            int expectedSplits = TArch.VmemmapBootLevel < TArch.LastLevel ? 3 : 0;
            Assert.AreEqual(expectedSplits, r.Splits, "each boot leaf the range touches is split once");
            Assert.AreEqual(expectedSplits, r.RangeFlushes, "one flush per split, none for the walk");
            Assert.AreEqual(expectedSplits, (int)t.Table.Counters.TlbRangeFlushes);

            var again = PteVisitor<TArch>.Recording();
            Assert.AreEqual(0, t.Table.WalkRange(start, end, ref again).Splits, "no coalescing: the second walk finds tables");
            return true;
        }
    }

    private sealed class RemapInstalls : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong pages = TArch.LevelSize(TArch.VmemmapBootLevel) / TArch.PageSize;
            MapBootVmemmap(t, pages >= 9 ? 1 : 9);
            ulong start = TArch.VmemmapStart;
            ulong end = start + (8 * TArch.PageSize);
            ulong reusePfn = TestPageTable<TArch>.DataPfn;

            // What vmemmap_remap_pte does: every PTE after the first maps the first frame, read-only.
            var v = PteVisitor<TArch>.Recording(pte => TArch.ToReadOnly(TArch.WithPfn(TArch.LastLevel, pte, reusePfn)));
            Assert.IsTrue(t.Table.WalkRange(start, end, ref v).Done);

            for (ulong addr = start; addr < end; addr += TArch.PageSize)
            {
                Assert.IsTrue(t.Table.TryTranslate(addr, out ulong pa));
                Assert.AreEqual(reusePfn << TArch.PageShift, pa);
                Assert.IsFalse(TArch.IsWritable(t.Table.Walk(addr).Entry));
            }

            Assert.IsTrue(t.Table.TryTranslate(end, out ulong after));
            Assert.AreEqual((reusePfn + 8) << TArch.PageShift, after, "outside the range nothing changed");
            return true;
        }
    }

    private sealed class SplitOnlyWalk : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong size = MapBootVmemmap(t, 2);
            var v = PteVisitor<TArch>.Recording() with { SplitOnly = true };

            PageWalkResult r = t.Table.WalkRange(TArch.VmemmapStart, TArch.VmemmapStart + size, ref v, PageWalkFlags.NoTlbFlushOnSplit);

            Assert.IsTrue(r.Done);
            Assert.AreEqual(0, v.Addresses.Count);
            int splits = TArch.VmemmapBootLevel < TArch.LastLevel ? 2 : 0;
            Assert.AreEqual(splits, r.Splits);
            Assert.AreEqual(0, t.Table.Counters.TlbRangeFlushes, "batched splits leave the flush to the caller");
            Assert.AreEqual(splits > 0, r.NeedsFlush, "and the result says one is owed");
            return true;
        }
    }

    private sealed class RemapStopsOnNoMemory : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong leaf = TArch.LevelSize(TArch.VmemmapBootLevel);
            ulong size = MapBootVmemmap(t, 2);
            t.Source.FailAllocationNumber = t.Source.Allocations + 2; // the second split fails
            var v = PteVisitor<TArch>.Recording();

            PageWalkResult r = t.Table.WalkRange(TArch.VmemmapStart, TArch.VmemmapStart + size, ref v);

            Assert.AreEqual(PageWalkStatus.NoMemory, r.Status);
            Assert.AreEqual(1, r.Splits);
            Assert.AreEqual(TArch.VmemmapStart + leaf, r.StoppedAt);
            Assert.AreEqual((int)(leaf / TArch.PageSize), v.Addresses.Count, "the PTEs before the failure were visited");
            Assert.IsTrue(TArch.IsLeaf(TArch.VmemmapBootLevel, t.Table.Walk(TArch.VmemmapStart + leaf).Entry), "the second leaf is intact");
            return true;
        }
    }

    private sealed class BadRanges : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong size = MapBootVmemmap(t, 1);
            ulong start = TArch.VmemmapStart;
            var v = PteVisitor<TArch>.Recording();
            Assert.AreEqual(PageWalkStatus.InvalidRange, t.Table.WalkRange(start, start, ref v).Status);
            Assert.AreEqual(PageWalkStatus.InvalidRange, t.Table.WalkRange(start + 1, start, ref v).Status);
            Assert.AreEqual(0, v.Addresses.Count, "an empty range visits nothing");

            PageWalkResult r = t.Table.WalkRange(start, start + size + TArch.PageSize, ref v);
            Assert.AreEqual(PageWalkStatus.Stopped, r.Status, "the visitor stops at the hole past the mapping");
            Assert.AreEqual(start + size, r.StoppedAt);
            return true;
        }
    }

    private sealed class WalkToTheTop : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong top = 0UL - TArch.PageSize; // the last page of the address space
            Assert.IsTrue(t.Table.TryMap(top, TestPageTable<TArch>.DataPfn, TArch.PageSize, TArch.LastLevel));
            var v = PteVisitor<TArch>.Recording();

            PageWalkResult r = t.Table.WalkRange(top, 0, ref v);

            Assert.IsTrue(r.Done, r.Status.ToString());
            Assert.AreEqual(0UL, r.StoppedAt, "a walk to the top ends at the end of the address space");
            CollectionAssert.AreEqual(new[] { top }, v.Addresses);
            Assert.IsTrue(t.Table.TryTranslate(ulong.MaxValue, out ulong pa));
            Assert.AreEqual(((TestPageTable<TArch>.DataPfn + 1) << TArch.PageShift) - 1, pa);
            return true;
        }
    }

    private sealed class WalkTally : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            MapBootVmemmap(t, TArch.VmemmapBootLevel < TArch.LastLevel ? 1 : 4);
            ulong start = TArch.VmemmapStart;
            ulong end = start + (4 * TArch.PageSize);
            var v = PteVisitor<TArch>.Recording(TArch.ToReadOnly);

            PageWalkResult r = t.Table.WalkRange(start, end, ref v);

            int splits = TArch.VmemmapBootLevel < TArch.LastLevel ? 1 : 0;
            Assert.AreEqual(4 + splits, r.EntriesWritten, "four PTEs made read-only, and the split's publish");
            Assert.AreEqual(splits, r.TablesAllocated);
            Assert.AreEqual(splits, r.RangeFlushes);
            Assert.IsTrue(r.NeedsFlush, "PTEs changed in place wait for the caller's flush");

            var none = PteVisitor<TArch>.Recording();
            PageWalkResult untouched = t.Table.WalkRange(start, end, ref none);
            Assert.AreEqual((0, false), (untouched.EntriesWritten, untouched.NeedsFlush), "a walk that changes nothing owes nothing");
            return true;
        }
    }

    private sealed class OneAddressOnly : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            MapBootVmemmap(t, 1);
            var ctx = t.Table.Ctx();
            var one = default(OneAddressVisitor);
            Assert.AreEqual(PageWalkStatus.InvalidRange, TArch.WalkRange(ref ctx, t.Table.RootPfn, TArch.VmemmapStart, TArch.VmemmapStart + 2, ref one, PageWalkFlags.None).Status);
            Assert.AreEqual(0, one.Visits, "nothing visited");
            Assert.AreEqual(PageWalkStatus.Stopped, TArch.WalkRange(ref ctx, t.Table.RootPfn, TArch.VmemmapStart, TArch.VmemmapStart + 1, ref one, PageWalkFlags.None).Status);
            Assert.AreEqual(TArch.VmemmapBootLevel + 1, one.Visits, "one entry a level, down to the boot leaf");
            return true;
        }
    }
}
