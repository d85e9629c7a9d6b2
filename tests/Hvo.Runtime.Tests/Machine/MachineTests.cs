using System;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Tests;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Machine;

[TestClass]
public sealed class MachineTests
{
    public static System.Collections.Generic.IEnumerable<object[]> BootSizes =>
        ArchRegistry.All.SelectMany(e => new[] { 1UL << 30, 64UL << 30 }.Select(size => new object[] { e.Name, size }));

    /// <summary>CI's share of <see cref="BootSizes"/> for reading every struct page: each family's representative.</summary>
    public static System.Collections.Generic.IEnumerable<object[]> BootSizesCi => Archs.Representatives(BootSizes);

    public static System.Collections.Generic.IEnumerable<object[]> BootSizesLong => Archs.Others(BootSizes);

    [TestMethod]
    [DynamicData(nameof(BootSizesCi))]
    public void EveryStructPageReadsThroughTheMmuAsBootWroteIt(string arch, ulong memory) =>
        Archs.Run(arch, new StructPagesAsBootWrote(memory));

    [TestMethod]
    [TestCategory("Long")]
    [DynamicData(nameof(BootSizesLong))]
    public void EveryStructPageReadsThroughTheMmuOnTheRestOfEachFamily(string arch, ulong memory)
    {
        LongRun.Require("every struct page of 64 GiB machines of the specs that differ from CI's only in their levels");
        Archs.Run(arch, new StructPagesAsBootWrote(memory));
    }

    [TestMethod]
    [DynamicData(nameof(BootSizes))]
    public void OwnersAddUpToTheMachineAfterBoot(string arch, ulong memory) =>
        Archs.Run(arch, new OwnersAddUp(memory));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TheVmemmapIsMappedWithTheSpecsBootLeaves(string arch) => Archs.Run(arch, new BootLeaves());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void MemTotalIsMemoryLessWhatBootKept(string arch) => Archs.Run(arch, new MemTotalAccounting());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void StrictModeCatchesAFreeBeforeTheFlush(string arch) => Archs.Run(arch, new FreeBeforeFlush());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AWrittenStructPageIsKeptAndOthersStayDeferred(string arch) => Archs.Run(arch, new WriteMaterializesOneFrame());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void NumaNodesEachHoldTheirOwnVmemmap(string arch) => Archs.Run(arch, new NodeLocalVmemmap());

    internal static Machine<TArch> Boot<TArch>(ulong memory = 1UL << 30, int nodes = 1, bool strict = false)
        where TArch : struct, IPagingArch =>
        Machine<TArch>.Boot(new MachineConfig { MemoryBytes = memory, Nodes = nodes, Strict = strict });

    private sealed class StructPagesAsBootWrote(ulong memory) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Boot<TArch>(memory);
            int size = TArch.StructPageBytes;
            int perPage = (int)TArch.PageSize / size;
            var actual = new byte[TArch.PageSize];
            var expected = new byte[size];
            foreach ((ulong start, ulong end) in m.Layout.RamRanges())
            {
                CheckRange(m, start, end, perPage, size, actual, expected);
            }

            Assert.AreEqual(0, m.Frames.MaterializedFrames - (long)m.Owners.Count(FrameOwner.PageTable), "reading materialized nothing but page tables");
            return true;
        }

        // The RAM of one e820 range (the firmware's hole has no struct pages).
        private static void CheckRange<TArch>(Machine<TArch> m, ulong start, ulong end, int perPage, int size, byte[] actual, byte[] expected)
            where TArch : struct, IPagingArch
        {
            for (ulong first = start; first < end; first += (ulong)perPage)
            {
                // One vmemmap page at a time: the struct pages of perPage consecutive pfns.
                int n = (int)Math.Min((ulong)perPage, end - first);
                Assert.AreEqual(AccessFault.None, m.Mmu.Read(0, m.StructPageAddress(first), actual.AsSpan(0, n * size)));
                for (int i = 0; i < n; i++)
                {
                    ulong pfn = first + (ulong)i;
                    // PG_reserved for what memblock kept; the kernel's own boot allocations came from the buddy.
                    StructPage.Initialize(expected, m.Layout.NodeOf(pfn), m.Layout.ZoneOf(pfn), reserved: m.Owners[pfn] is not (FrameOwner.Free or FrameOwner.Buddy));
                    if (!actual.AsSpan(i * size, size).SequenceEqual(expected))
                    {
                        Assert.Fail($"struct page of pfn 0x{pfn:x} differs from what boot wrote");
                    }
                }
            }
        }
    }

    private sealed class OwnersAddUp(ulong memory) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Boot<TArch>(memory);
            Assert.IsTrue(m.OwnersAddUp());
            ulong frames = memory >> TArch.PageShift;
            ulong vmemmapFrames = (frames * (ulong)TArch.StructPageBytes + TArch.PageSize - 1) / TArch.PageSize;
            Assert.IsTrue((ulong)m.Owners.Count(FrameOwner.BootVmemmap) >= vmemmapFrames, "every struct page is backed");
            Assert.AreEqual(m.BootVmemmap.Frames, (ulong)m.Owners.Count(FrameOwner.BootVmemmap));
            Assert.AreEqual(m.Pages.NrFreePages + m.Pages.PcpPages, m.Owners.Count(FrameOwner.Free), "free: in the buddy or waiting on a per-CPU list");
            Assert.AreEqual(MachineConfig.DefaultBootKernelBytes >> TArch.PageShift, m.BootKernelPages, "the kernel's own boot allocations, whole");
            Assert.AreEqual((long)m.BootKernelPages, m.Owners.Count(FrameOwner.Buddy), "and nothing else allocated");
            return true;
        }
    }

    private sealed class BootLeaves : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Boot<TArch>(4UL << 30);
            for (ulong pfn = m.Layout.FirstPfn; pfn < m.Layout.EndPfn; pfn += m.Layout.Frames / 64)
            {
                WalkResult w = m.PageTable.Walk(m.StructPageAddress(pfn));
                if (m.Layout.IsHole(pfn))
                {
                    Assert.IsFalse(w.IsLeaf, $"pfn 0x{pfn:x} lies in the firmware's hole: no section, no struct pages");
                    continue;
                }

                Assert.IsTrue(w.IsLeaf);
                Assert.AreEqual(TArch.VmemmapBootLevel, w.Level, $"pfn 0x{pfn:x}");
            }

            return true;
        }
    }

    private sealed class MemTotalAccounting : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Boot<TArch>(2UL << 30);
            ulong kept = (ulong)(m.Owners.Count(FrameOwner.Reserved) + m.Owners.Count(FrameOwner.BootVmemmap) + m.Owners.Count(FrameOwner.PageTable));
            Assert.AreEqual((2UL << 30) - (kept << TArch.PageShift), m.MemTotalBytes);
            Assert.AreEqual(MachineConfig.DefaultBootKernelBytes >> TArch.PageShift, m.BootKernelPages);
            Assert.AreEqual(m.MemTotalBytes - ((m.BootKernelPages + (ulong)m.Pages.PcpPages) << TArch.PageShift), m.MemFreeBytes, "nothing allocated but the kernel's own at boot, and pages on the per-CPU lists");
            return true;
        }
    }

    private sealed class FreeBeforeFlush : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Boot<TArch>(strict: true);
            // A data frame mapped by a fresh PTE, read by CPU 1, then unmapped and freed without a flush.
            Assert.IsTrue(m.Pages.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong pfn));
            ulong va = TArch.VmemmapStart + (TArch.VmemmapSize / 2);
            Assert.IsTrue(m.PageTable.TryMap(va, pfn, TArch.PageSize, TArch.LastLevel));
            var b = new byte[8];
            Assert.AreEqual(AccessFault.None, m.Mmu.Read(1, va, b));
            WalkResult pte = m.PageTable.Walk(va);
            var ctx = m.PageTable.Ctx();
            ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, ctx.EmptyEntry(pte.Level), va);

            m.CheckFrameUnreachable(pfn, "test free");

            Violation v = m.Violations.Snapshot().Single();
            Assert.AreEqual(ViolationKind.FreedWhileInTlb, v.Kind);

            ctx.FlushTlbRange(va, va + TArch.PageSize);
            m.Violations.Clear();
            m.CheckFrameUnreachable(pfn, "test free");
            Assert.AreEqual(0, m.Violations.Count, "after the flush the free is safe");
            return true;
        }
    }

    private sealed class WriteMaterializesOneFrame : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Boot<TArch>();
            long before = m.Frames.MaterializedFrames;
            ulong pfn = m.Layout.FirstPfn + (m.Layout.Frames / 2);
            var page = new byte[TArch.StructPageBytes];
            Assert.AreEqual(AccessFault.None, m.ReadStructPage(0, pfn, page));
            StructPage.SetFlags(page, StructPage.Flags(page) | StructPage.PgLocked);
            Assert.AreEqual(AccessFault.None, m.Mmu.Write(0, m.StructPageAddress(pfn), page));

            Assert.AreEqual(before + 1, m.Frames.MaterializedFrames);
            var again = new byte[TArch.StructPageBytes];
            Assert.AreEqual(AccessFault.None, m.ReadStructPage(1, pfn, again));
            CollectionAssert.AreEqual(page, again);
            Assert.AreEqual(AccessFault.None, m.ReadStructPage(1, pfn + 1, again));
            Assert.AreEqual(0UL, StructPage.Flags(again) & StructPage.PgLocked, "its neighbour kept boot's contents");
            Assert.AreEqual(m.Layout.NodeOf(pfn + 1), StructPage.Node(again));
            return true;
        }
    }

    private sealed class NodeLocalVmemmap : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            // Two boot leaves of vmemmap a node at least, or the node before fills the leaf they share (vmemmap_verify).
            using var m = Boot<TArch>(Math.Max(8UL << 30, 4 * Archs.MemoryPerBootLeaf(TArch.Info)), nodes: 2);
            for (int node = 0; node < 2; node++)
            {
                (ulong start, ulong end) = m.Layout.NodeRange(node);
                ulong middle = start + ((end - start) / 2);
                Assert.IsTrue(m.PageTable.TryTranslate(m.StructPageAddress(middle), out ulong pa));
                Assert.AreEqual(node, m.Layout.NodeOf(pa >> TArch.PageShift), "vmemmap_populate allocates on the node it describes");
            }

            return true;
        }
    }
}

[TestClass]
public sealed class MachinePtdumpTests
{
    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void AFreshBootsVmemmapDumpsAsRunsOfTheBootLevel(string arch) => Archs.Run(arch, new FreshBootDump());

    [TestMethod]
    public void AFreshX86BootShowsPmdRunsInTheKernelsFormat()
    {
        using var m = MachineTests.Boot<Hvo.Arch.X86_64>(1UL << 30);
        string dump = Hvo.Paging.Ptdump.PageTableDump.DumpVmemmap(m.PageTable);
        string[] lines = dump.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual("---[ Vmemmap ]---", lines[0]);
        // 1 GiB of 4 KiB pages: 262144 struct pages = 16 MiB of vmemmap = 8 PMD leaves.
        Assert.AreEqual("0xffffea0000000000-0xffffea0001000000          16M     RW         PSE     GLB NX pmd", lines[1]);
    }

    private sealed class FreshBootDump : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = MachineTests.Boot<TArch>(1UL << 30);
            var runs = Hvo.Paging.Ptdump.PageTableDump.Runs(m.PageTable, TArch.VmemmapStart, TArch.VmemmapStart + TArch.VmemmapSize);
            var present = runs.Where(r => r.Present).ToArray();
            Assert.AreEqual(1, present.Length, "one run: every leaf alike");
            Assert.AreEqual(TArch.VmemmapBootLevel, present[0].Level);
            Assert.AreEqual((ulong)m.Owners.Count(FrameOwner.BootVmemmap) << TArch.PageShift, present[0].Size);
            return true;
        }
    }
}

[TestClass]
public sealed class VmemmapFallbackTests
{
    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void WhereNoBlockCanBeHadTheVmemmapIsMappedWithBasePages(string arch) => Archs.Run(arch, new Fallback());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TryMapLargestUsesTheBiggestLeafThatFits(string arch) => Archs.Run(arch, new Largest());

    private sealed class Fallback : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            ulong memory = 512UL << 20;
            ulong leaf = TArch.LevelSize(TArch.VmemmapBootLevel);
            if (TArch.VmemmapBootLevel == TArch.LastLevel || leaf >= memory)
            {
                return true; // base pages already: nothing to fall back from
            }

            // One page reserved in every boot-leaf-sized block of RAM: no aligned block is free anywhere.
            ulong ram = TArch.Info.RamBase;
            var holes = Enumerable.Range(0, (int)(memory / leaf)).Select(i => (ram + ((ulong)i * leaf), TArch.PageSize)).ToArray();
            using var m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = memory, Reserved = holes });

            WalkResult w = m.PageTable.Walk(m.StructPageAddress(m.Layout.FirstPfn + (m.Layout.Frames / 2)));
            Assert.AreEqual(TArch.LastLevel, w.Level, "vmemmap_populate_basepages");
            Assert.IsTrue(w.IsLeaf);
            var page = new byte[TArch.StructPageBytes];
            for (ulong pfn = m.Layout.FirstPfn; pfn < m.Layout.EndPfn; pfn += 997)
            {
                Assert.AreEqual(AccessFault.None, m.ReadStructPage(0, pfn, page));
                Assert.AreEqual(m.Layout.NodeOf(pfn), StructPage.Node(page));
                Assert.AreEqual(m.Layout.ZoneOf(pfn), StructPage.Zone(page));
            }

            Assert.IsTrue(m.OwnersAddUp());
            return true;
        }
    }

    private sealed class Largest : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            int top = Enumerable.Range(0, TArch.LastLevel).First(TArch.LevelCanMapLeaf);
            ulong big = TArch.LevelSize(top);
            ulong va = TArch.VmemmapStart + big;
            va &= ~(big - 1);
            ulong pfn = (TestPageTable<TArch>.DataPfn + (big >> TArch.PageShift)) & ~((big >> TArch.PageShift) - 1);
            if (pfn + ((big + TArch.PageSize) >> TArch.PageShift) >= t.Store.Frames)
            {
                return true; // the largest leaf does not fit this test store
            }

            Assert.IsTrue(t.Table.TryMapLargest(va, pfn, big + TArch.PageSize));

            Assert.AreEqual(top, t.Table.Walk(va).Level);
            Assert.AreEqual(TArch.LastLevel, t.Table.Walk(va + big).Level);
            Assert.IsTrue(t.Table.TryTranslate(va + big, out ulong pa));
            Assert.AreEqual((pfn << TArch.PageShift) + big, pa);
            return true;
        }
    }
}
