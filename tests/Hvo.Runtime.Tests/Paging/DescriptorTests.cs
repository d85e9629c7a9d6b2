using System;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Paging;

[TestClass]
public sealed class DescriptorTests
{
    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void IndexDecompositionRoundTrips(string arch) => Archs.Run(arch, new IndexRoundTrip());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void EachKindIsMadeAndRecognisedAtEachLevel(string arch) => Archs.Run(arch, new KindsAtEachLevel());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void ReadOnlyKeepsTheFrameAndDropsWritePermission(string arch) => Archs.Run(arch, new ReadOnlyTransform());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void GeneratedConstantsAgreeWithTheSpecData(string arch) => Archs.Run(arch, new ConstantsMatchInfo());

    private sealed class IndexRoundTrip : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            var rng = new Random(12345);
            ulong vaMask = TArch.VaBits == 64 ? ulong.MaxValue : (1UL << TArch.VaBits) - 1;
            for (int n = 0; n < 10_000; n++)
            {
                ulong va = (ulong)rng.NextInt64() ^ ((ulong)rng.NextInt64() << 1);
                ulong rebuilt = va & (TArch.PageSize - 1);
                for (int level = 0; level < TArch.LevelCount; level++)
                {
                    int index = TArch.IndexOf(level, va);
                    Assert.IsTrue(index >= 0 && index < TArch.EntriesPerTable(level), $"index {index} out of range at level {level}");
                    rebuilt |= (ulong)index << TArch.LevelShift(level);
                }

                Assert.AreEqual(va & vaMask, rebuilt, $"va 0x{va:x}");
            }

            return true;
        }
    }

    private sealed class KindsAtEachLevel : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            ulong pfn = 0x123UL << 19; // aligned for every leaf size in the specs (s390: 2 GiB), inside every pfn field
            for (int level = 0; level < TArch.LevelCount; level++)
            {
                Assert.IsFalse(TArch.IsValid(level, TArch.EmptyEntryOf(level)), $"an empty entry must be invalid at level {level}");
                if (level < TArch.LastLevel)
                {
                    ulong table = TArch.MakeTable(level, 0x1234);
                    Assert.IsTrue(TArch.IsTable(level, table), $"table at level {level}");
                    Assert.IsTrue(TArch.IsValid(level, table));
                    Assert.IsFalse(TArch.IsLeaf(level, table), $"a table is not a leaf at level {level}");
                    Assert.AreEqual(0x1234UL, TArch.PfnOf(level, table));
                }

                if (TArch.LevelCanMapLeaf(level))
                {
                    ulong leaf = TArch.MakeLeaf(level, pfn);
                    Assert.IsTrue(TArch.IsLeaf(level, leaf), $"leaf at level {level}");
                    Assert.IsTrue(TArch.IsValid(level, leaf));
                    Assert.IsFalse(TArch.IsTable(level, leaf), $"a leaf is not a table at level {level}");
                    Assert.AreEqual(pfn, TArch.PfnOf(level, leaf));
                    ulong next = pfn + (TArch.LevelSize(level) >> TArch.PageShift);
                    ulong moved = TArch.WithPfn(level, leaf, next);
                    Assert.AreEqual(next, TArch.PfnOf(level, moved), "WithPfn replaces the frame");
                    Assert.AreEqual(leaf & ~TArch.PfnMask, moved & ~TArch.PfnMask, "WithPfn keeps the protections");
                }
                else
                {
                    Assert.IsFalse(TArch.IsLeaf(level, TArch.MakeTable(level, 1) | 0xfff), $"level {level} holds no leaves");
                }
            }

            return true;
        }
    }

    private sealed class ReadOnlyTransform : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            ulong pte = TArch.MakeLeaf(TArch.LastLevel, 0xabcde);
            ulong ro = TArch.ToReadOnly(pte);
            Assert.IsTrue(TArch.IsWritable(pte), "PAGE_KERNEL is writable");
            Assert.IsFalse(TArch.IsWritable(ro), "PAGE_KERNEL_RO is not");
            Assert.AreNotEqual(pte, ro);
            Assert.IsTrue(TArch.IsLeaf(TArch.LastLevel, ro), "a read-only page is still a page");
            Assert.AreEqual(0xabcdeUL, TArch.PfnOf(TArch.LastLevel, ro));
            Assert.AreEqual(ro, TArch.ToReadOnly(ro), "read-only is idempotent");
            return true;
        }
    }

    private sealed class ConstantsMatchInfo : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            ArchInfo info = TArch.Info;
            Assert.AreEqual(info.Name, TArch.Name);
            Assert.AreEqual(info.PageShift, TArch.PageShift);
            Assert.AreEqual(1UL << info.PageShift, TArch.PageSize);
            Assert.AreEqual(info.Levels.Count, TArch.LevelCount);
            Assert.AreEqual(info.PfnMask, TArch.PfnMask);
            for (int level = 0; level < info.Levels.Count; level++)
            {
                Assert.AreEqual(info.Levels[level].Shift, TArch.LevelShift(level));
                Assert.AreEqual(info.Levels[level].Bits, TArch.LevelBits(level));
                Assert.AreEqual(info.Levels[level].Size, TArch.LevelSize(level));
                Assert.AreEqual(info.Levels[level].CanMapLeaf || level == info.LastLevel, TArch.LevelCanMapLeaf(level));
            }

            Assert.AreEqual(info.VmemmapStart, TArch.VmemmapStart);
            Assert.AreEqual(info.VmemmapSize, TArch.VmemmapSize);
            Assert.AreEqual(info.StructPageBytes, TArch.StructPageBytes);
            Assert.AreEqual(info.VmemmapBootLevel, TArch.VmemmapBootLevel);
            Assert.AreEqual(info.BreakBeforeMake, TArch.BreakBeforeMake);
            CollectionAssert.AreEqual(System.Linq.Enumerable.ToArray(info.HugePageSizes), TArch.HugePageSizes.ToArray());
            return true;
        }
    }
}
