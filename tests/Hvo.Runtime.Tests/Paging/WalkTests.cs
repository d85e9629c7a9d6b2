using System;
using System.Collections.Generic;
using Hvo.Paging;
using Hvo.Paging.Reference;

namespace Hvo.Runtime.Tests.Paging;

[TestClass]
public sealed class WalkTests
{
    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void GeneratedWalkAgreesWithTheReferenceWalker(string arch) => Archs.Run(arch, new WalkMatchesReference());

    [TestMethod]
    [DynamicData(nameof(Archs.SplittableLevels), typeof(Archs))]
    public void GeneratedSplitAgreesWithTheReferenceSplit(string arch, int level) => Archs.Run(arch, new SplitMatchesReference(level));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void GeneratedRangeWalkAgreesWithTheInterpretedOne(string arch) => Archs.Run(arch, new RemapMatchesReference());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void RemapWalkVisitsEveryPteOnceInOrderSplittingOnTheWay(string arch) => Archs.Run(arch, new RemapVisitsInOrder());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void RemapWalkInstallsWhatTheVisitorReturns(string arch) => Archs.Run(arch, new RemapInstalls());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void SplitOnlyWalkSplitsWithoutVisiting(string arch) => Archs.Run(arch, new SplitOnlyWalk());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void RemapWalkStopsWithNoMemoryWhereASplitFails(string arch) => Archs.Run(arch, new RemapStopsOnNoMemory());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void RemapWalkRefusesUnalignedOrUnmappedRanges(string arch) => Archs.Run(arch, new RemapRefusesBadRanges());

    /// <summary>Map <paramref name="leaves"/> boot-mapping leaves of vmemmap, as vmemmap_populate does.</summary>
    internal static ulong MapBootVmemmap<TArch>(TestPageTable<TArch> t, int leaves)
        where TArch : struct, IPagingArch
    {
        ulong size = TArch.LevelSize(TArch.VmemmapBootLevel) * (ulong)leaves;
        Assert.IsTrue(t.Table.TryMap(TArch.VmemmapStart, TestPageTable<TArch>.DataPfn, size, TArch.VmemmapBootLevel));
        return size;
    }

    private struct Recorder : IRemapPteVisitor
    {
        public List<ulong> Addresses;
        public Func<ulong, ulong>? Transform;

        public ulong RemapPte(ulong addr, ulong pte)
        {
            Addresses.Add(addr);
            return Transform is null ? pte : Transform(pte);
        }
    }

    private sealed class WalkMatchesReference : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            var reference = new ReferenceWalker(TArch.Info);
            var rng = new Random(7);

            // A mix: one leaf of every level that can hold one, each split once or not, and holes.
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

            var ctx = t.Table.Ctx;
            for (int n = 0; n < 20_000; n++)
            {
                ulong probe = TArch.VmemmapStart + (ulong)rng.NextInt64((long)(va - TArch.VmemmapStart));
                WalkResult expected = reference.Walk(ref ctx, t.Table.RootPfn, probe);
                WalkResult actual = TArch.Walk(ref ctx, t.Table.RootPfn, probe);
                Assert.AreEqual(expected, actual, $"va 0x{probe:x}");
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
            ulong va = SplitTests.MapOneLeaf(generated, level);
            SplitTests.MapOneLeaf(interpreted, level);

            Assert.AreEqual(SplitStatus.Split, generated.Table.SplitLeaf(level, va));
            var ctx = interpreted.Table.Ctx;
            Assert.AreEqual(SplitStatus.Split, new ReferenceWalker(TArch.Info).SplitLeaf(ref ctx, interpreted.Table.RootPfn, level, va, SplitFlags.None));

            WalkResult g = generated.Table.Walk(va);
            WalkResult i = interpreted.Table.Walk(va);
            Assert.AreEqual(g.Level, i.Level);
            Assert.IsTrue(generated.Store.Table(g.TablePfn).SequenceEqual(interpreted.Store.Table(i.TablePfn)), "same new table, entry for entry");
            return true;
        }
    }

    private sealed class RemapMatchesReference : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var generated = new TestPageTable<TArch>();
            using var interpreted = new TestPageTable<TArch>();
            interpreted.Table.Reference = new ReferenceWalker(TArch.Info);
            ulong size = MapBootVmemmap(generated, 3);
            MapBootVmemmap(interpreted, 3);
            var rng = new Random(99);
            for (int round = 0; round < 20; round++)
            {
                ulong pages = size / TArch.PageSize;
                ulong first = (ulong)rng.NextInt64((long)pages - 1);
                ulong last = first + 1 + (ulong)rng.NextInt64((long)(pages - first - 1) + 1);
                ulong start = TArch.VmemmapStart + (first * TArch.PageSize);
                ulong end = TArch.VmemmapStart + (last * TArch.PageSize);
                ulong target = TestPageTable<TArch>.DataPfn + (ulong)round;
                var flags = (RemapWalkFlags)rng.Next(4);
                var g = new Recorder { Addresses = new List<ulong>(), Transform = pte => TArch.ToReadOnly(TArch.WithPfn(TArch.LastLevel, pte, target)) };
                var i = new Recorder { Addresses = new List<ulong>(), Transform = pte => TArch.ToReadOnly(TArch.WithPfn(TArch.LastLevel, pte, target)) };

                Assert.AreEqual(generated.Table.RemapWalk(start, end, ref g, flags), interpreted.Table.RemapWalk(start, end, ref i, flags));
                CollectionAssert.AreEqual(g.Addresses, i.Addresses);
            }

            for (ulong va = TArch.VmemmapStart; va < TArch.VmemmapStart + size; va += TArch.PageSize)
            {
                Assert.AreEqual(generated.Table.Walk(va), interpreted.Table.Walk(va), $"0x{va:x}");
            }

            Assert.AreEqual(generated.Table.Counters.TlbRangeFlushes, interpreted.Table.Counters.TlbRangeFlushes);
            Assert.AreEqual(generated.Table.Counters.TablesAllocated, interpreted.Table.Counters.TablesAllocated);
            return true;
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
            var v = new Recorder { Addresses = new List<ulong>() };

            RemapWalkResult r = t.Table.RemapWalk(start, end, ref v);

            Assert.IsTrue(r.Ok, r.Status.ToString());
            Assert.AreEqual(end, r.StoppedAt);
            Assert.AreEqual((int)((end - start) / TArch.PageSize), v.Addresses.Count);
            for (int i = 0; i < v.Addresses.Count; i++)
            {
                Assert.AreEqual(start + ((ulong)i * TArch.PageSize), v.Addresses[i]);
            }

            int expectedSplits = TArch.VmemmapBootLevel < TArch.LastLevel ? 3 : 0;
            Assert.AreEqual(expectedSplits, r.Splits, "each boot leaf the range touches is split once");
            Assert.AreEqual(expectedSplits, (int)t.Table.Counters.TlbRangeFlushes, "one flush per split, none for the walk");

            var again = new Recorder { Addresses = new List<ulong>() };
            Assert.AreEqual(0, t.Table.RemapWalk(start, end, ref again).Splits, "no coalescing: the second walk finds tables");
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
            var v = new Recorder { Addresses = new List<ulong>(), Transform = pte => TArch.ToReadOnly(TArch.WithPfn(TArch.LastLevel, pte, reusePfn)) };
            Assert.IsTrue(t.Table.RemapWalk(start, end, ref v).Ok);

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
            var v = new Recorder { Addresses = new List<ulong>() };

            RemapWalkResult r = t.Table.RemapWalk(TArch.VmemmapStart, TArch.VmemmapStart + size, ref v, RemapWalkFlags.SplitOnly | RemapWalkFlags.NoTlbFlushOnSplit);

            Assert.IsTrue(r.Ok);
            Assert.AreEqual(0, v.Addresses.Count);
            Assert.AreEqual(TArch.VmemmapBootLevel < TArch.LastLevel ? 2 : 0, r.Splits);
            Assert.AreEqual(0, t.Table.Counters.TlbRangeFlushes, "batched splits leave the flush to the caller");
            return true;
        }
    }

    private sealed class RemapStopsOnNoMemory : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            if (TArch.VmemmapBootLevel == TArch.LastLevel)
            {
                return true; // base-page vmemmap: nothing to split, no allocation to fail
            }

            using var t = new TestPageTable<TArch>();
            ulong leaf = TArch.LevelSize(TArch.VmemmapBootLevel);
            ulong size = MapBootVmemmap(t, 2);
            t.Source.FailAllocationNumber = t.Source.Allocations + 2; // the second split fails
            var v = new Recorder { Addresses = new List<ulong>() };

            RemapWalkResult r = t.Table.RemapWalk(TArch.VmemmapStart, TArch.VmemmapStart + size, ref v);

            Assert.AreEqual(RemapWalkStatus.NoMemory, r.Status);
            Assert.AreEqual(1, r.Splits);
            Assert.AreEqual(TArch.VmemmapStart + leaf, r.StoppedAt);
            Assert.AreEqual((int)(leaf / TArch.PageSize), v.Addresses.Count, "the PTEs before the failure were visited");
            Assert.IsTrue(TArch.IsLeaf(TArch.VmemmapBootLevel, t.Table.Walk(TArch.VmemmapStart + leaf).Entry), "the second leaf is intact");
            return true;
        }
    }

    private sealed class RemapRefusesBadRanges : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong size = MapBootVmemmap(t, 1);
            ulong start = TArch.VmemmapStart;
            var v = new Recorder { Addresses = new List<ulong>() };
            Assert.AreEqual(RemapWalkStatus.InvalidRange, t.Table.RemapWalk(start + 1, start + size, ref v).Status);
            Assert.AreEqual(RemapWalkStatus.InvalidRange, t.Table.RemapWalk(start, start, ref v).Status);
            Assert.AreEqual(RemapWalkStatus.NotMapped, t.Table.RemapWalk(start, start + size + TArch.PageSize, ref v).Status);
            return true;
        }
    }
}
