using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Arch;
using Hvo.Paging;
using Hvo.Paging.Ptdump;

namespace Hvo.Runtime.Tests.Paging;

[TestClass]
public sealed class PtdumpTests
{
    // Golden text, worked out by hand from arch/x86/mm/dump_pagetables.c (note_page, printk_prot)
    // for BuildSmallVmemmap: PAGE_KERNEL_LARGE blocks (0x80000000000001e3: RW PSE GLB NX),
    // PAGE_KERNEL PTEs (0x8000000000000163) and six PAGE_KERNEL_RO PTEs (0x8000000000000161);
    // the rest of pmd table, pud table and the second pgd entry of the 1 TiB region are holes.
    private const string X86Golden = """
        ---[ Vmemmap ]---
        0xffffea0000000000-0xffffea0000200000           2M     RW         PSE     GLB NX pmd
        0xffffea0000200000-0xffffea0000202000           8K     RW                 GLB NX pte
        0xffffea0000202000-0xffffea0000208000          24K     ro                 GLB NX pte
        0xffffea0000208000-0xffffea0000400000        2016K     RW                 GLB NX pte
        0xffffea0000400000-0xffffea0000800000           4M     RW         PSE     GLB NX pmd
        0xffffea0000800000-0xffffea0040000000        1016M                               pmd
        0xffffea0040000000-0xffffea8000000000         511G                               pud
        0xffffea8000000000-0xffffeb0000000000         512G                               pgd
        """ + "\n";

    // Golden text, worked out by hand from arch/arm64/mm/ptdump.c (note_page, dump_prot over
    // pte_bits[]) for BuildSmallVmemmap: PROT_SECT_NORMAL blocks (0x0060000000000701), PAGE_KERNEL
    // PTEs (0x0068000000000703) and six PAGE_KERNEL_RO PTEs (0x0060000000000783). The vmemmap
    // begins in the last pud of pgd entry 507; pgd entries 508 to 511 are empty up to VMEMMAP_END.
    private const string Arm64Golden = """
        ---[ vmemmap start ]---
        0xfffffdffc0000000-0xfffffdffc0200000           2M PMD       RW NX SHD AF        BLK UXN    MEM/NORMAL
        0xfffffdffc0200000-0xfffffdffc0202000           8K PTE       RW NX SHD AF            UXN    MEM/NORMAL
        0xfffffdffc0202000-0xfffffdffc0208000          24K PTE       ro NX SHD AF            UXN    MEM/NORMAL
        0xfffffdffc0208000-0xfffffdffc0400000        2016K PTE       RW NX SHD AF            UXN    MEM/NORMAL
        0xfffffdffc0400000-0xfffffdffc0800000           4M PMD       RW NX SHD AF        BLK UXN    MEM/NORMAL
        0xfffffdffc0800000-0xfffffe0000000000        1016M PMD
        0xfffffe0000000000-0xffffffffc0000000        2047G PGD
        ---[ vmemmap end ]---
        """ + "\n";

    // The generic format (GenericPtdumpFormat's comment) for the same x86_64 table.
    private const string GenericGolden = """
        ---[ vmemmap start ]---
        0xffffea0000000000-0xffffea0000200000           2M pmd  block RW
        0xffffea0000200000-0xffffea0000202000           8K pte  page  RW
        0xffffea0000202000-0xffffea0000208000          24K pte  page  ro
        0xffffea0000208000-0xffffea0000400000        2016K pte  page  RW
        0xffffea0000400000-0xffffea0000800000           4M pmd  block RW
        0xffffea0000800000-0xffffea0040000000        1016M pmd  none
        0xffffea0040000000-0xffffea8000000000         511G pud  none
        0xffffea8000000000-0xffffeb0000000000         512G pgd  none
        ---[ vmemmap end ]---
        """ + "\n";

    [TestMethod]
    public void X86DumpIsTheKernelsKernelPageTablesText()
    {
        using var t = new TestPageTable<X86_64>();
        BuildSmallVmemmap(t);

        Assert.AreEqual(X86Golden, PageTableDump.DumpVmemmap(t.Table));
    }

    [TestMethod]
    public void Arm64DumpIsTheKernelsKernelPageTablesText()
    {
        using var t = new TestPageTable<Arm64_4k>();
        BuildSmallVmemmap(t);

        Assert.AreEqual(Arm64Golden, PageTableDump.DumpVmemmap(t.Table));
    }

    [TestMethod]
    public void GenericDumpPrintsLevelKindAndPermission()
    {
        using var t = new TestPageTable<X86_64>();
        BuildSmallVmemmap(t);

        Assert.AreEqual(GenericGolden, PageTableDump.DumpVmemmap(t.Table, PtdumpFormat.Generic));
    }

    [TestMethod]
    public void DumpOfARangeHasNoMarkersAndClipsItsEnds()
    {
        using var t = new TestPageTable<X86_64>();
        BuildSmallVmemmap(t);
        ulong start = X86_64.VmemmapStart;

        string text = PageTableDump.Dump(t.Table, start + 0x100000, start + 0x203000);

        Assert.AreEqual(
            "0xffffea0000100000-0xffffea0000200000           1M     RW         PSE     GLB NX pmd\n" +
            "0xffffea0000200000-0xffffea0000202000           8K     RW                 GLB NX pte\n" +
            "0xffffea0000202000-0xffffea0000203000           4K     ro                 GLB NX pte\n",
            text);
    }

    [TestMethod]
    public void AMarkerEndsTheRunThatReachesItAndPrintsAfterIt()
    {
        using var t = new TestPageTable<X86_64>();
        BuildSmallVmemmap(t);
        ulong start = X86_64.VmemmapStart;

        // Inside the block at 4M: the run breaks at the first entry at or after the marker.
        string text = PageTableDump.Dump(t.Table, start + 0x400000, start + 0x800000, PtdumpFormat.X86, [new AddressMarker(start + 0x500000, "Middle")]);

        Assert.AreEqual(
            "0xffffea0000400000-0xffffea0000600000           2M     RW         PSE     GLB NX pmd\n" +
            "---[ Middle ]---\n" +
            "0xffffea0000600000-0xffffea0000800000           2M     RW         PSE     GLB NX pmd\n",
            text);
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void PresentRunsCoverExactlyTheMappedBytes(string arch) => Archs.Run(arch, new PresentRunsCoverMapping());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void RunsTileTheRangeAndAdjacentRunsDiffer(string arch) => Archs.Run(arch, new RunsTileAndDiffer());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void PmdMappedVmemmapShowsPmdRuns(string arch) => Archs.Run(arch, new PmdMappedShowsPmdRuns());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void OutputAddressDoesNotBreakARun(string arch) => Archs.Run(arch, new OutputAddressIgnored());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void EmptyVmemmapIsOneHoleAtTheRoot(string arch) => Archs.Run(arch, new EmptyVmemmapIsOneRootHole());

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void VmemmapDumpHasOneLinePerRunBetweenTheFormatsMarkers(string arch) => Archs.Run(arch, new OneLinePerRun());

    /// <summary>
    /// Four PMD leaves at the vmemmap start, as vmemmap_populate maps them; the second split into
    /// a PTE table; PTEs 2 to 7 of it remapped read-only. Returns the bytes mapped.
    /// </summary>
    internal static ulong BuildSmallVmemmap<TArch>(TestPageTable<TArch> t)
        where TArch : struct, IPagingArch
    {
        int pmd = PmdLevel<TArch>();
        ulong pmdSize = TArch.LevelSize(pmd);
        ulong page = TArch.PageSize;
        ulong start = TArch.VmemmapStart;
        Assert.IsTrue(t.Table.TryMap(start, TestPageTable<TArch>.DataPfn, 4 * pmdSize, pmd));
        Assert.AreEqual(SplitStatus.Split, t.Table.SplitLeaf(pmd, start + pmdSize));
        var readOnly = PteVisitor<TArch>.Recording(TArch.ToReadOnly);
        PageWalkResult remap = t.Table.WalkRange(start + pmdSize + (2 * page), start + pmdSize + (8 * page), ref readOnly);
        Assert.IsTrue(remap.Done, remap.ToString());
        Assert.AreEqual(0, remap.Splits, "the range lies in the table split already");
        return 4 * pmdSize;
    }

    /// <summary>The pmd: the level above the PTEs, which holds blocks in every shipped spec.</summary>
    private static int PmdLevel<TArch>()
        where TArch : struct, IPagingArch
    {
        int pmd = TArch.LastLevel - 1;
        Assert.IsTrue(TArch.LevelCanMapLeaf(pmd), $"{TArch.Name}: level {pmd} cannot hold a block");
        return pmd;
    }

    private static ulong VmemmapEnd<TArch>()
        where TArch : struct, IPagingArch => TArch.VmemmapStart + TArch.VmemmapSize;

    private static IReadOnlyList<PtdumpRun> VmemmapRuns<TArch>(TestPageTable<TArch> t)
        where TArch : struct, IPagingArch => PageTableDump.Runs(t.Table, TArch.VmemmapStart, VmemmapEnd<TArch>());

    private sealed class PresentRunsCoverMapping : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            ulong mapped = BuildSmallVmemmap(t);

            // Three base pages far into the region, with a hole before them.
            ulong pages = 3 * TArch.PageSize;
            ulong far = TArch.VmemmapStart + (TArch.VmemmapSize / 2);
            Assert.IsTrue(t.Table.TryMap(far, TestPageTable<TArch>.DataPfn, pages, TArch.LastLevel));
            mapped += pages;

            IReadOnlyList<PtdumpRun> runs = VmemmapRuns(t);

            ulong present = runs.Where(r => r.Present).Aggregate(0UL, (sum, r) => sum + r.Size);
            Assert.AreEqual(mapped, present, $"{TArch.Name}: bytes in present runs");
            Assert.IsTrue(runs.Where(r => r.Present).All(r => t.Table.TryTranslate(r.Start, out _) && t.Table.TryTranslate(r.End - 1, out _)), "present runs translate");
            Assert.IsTrue(runs.Where(r => !r.Present).All(r => !t.Table.TryTranslate(r.Start, out _) && !t.Table.TryTranslate(r.End - 1, out _)), "holes do not");
            return true;
        }
    }

    private sealed class RunsTileAndDiffer : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            BuildSmallVmemmap(t);

            IReadOnlyList<PtdumpRun> runs = VmemmapRuns(t);

            Assert.AreEqual(TArch.VmemmapStart, runs[0].Start);
            Assert.AreEqual(VmemmapEnd<TArch>(), runs[^1].End);
            for (int i = 1; i < runs.Count; i++)
            {
                PtdumpRun a = runs[i - 1];
                PtdumpRun b = runs[i];
                Assert.AreEqual(a.End, b.Start, $"run {i} follows run {i - 1}");
                Assert.IsTrue(a.Level != b.Level || a.Prot != b.Prot || a.Present != b.Present, $"runs {i - 1} and {i} should have merged: {a} {b}");
            }

            // The split PMD shows as PTE runs: writable, read-only, writable.
            int pte = TArch.LastLevel;
            PtdumpRun[] ptes = [.. runs.Where(r => r.Level == pte && r.Present)];
            Assert.AreEqual(3, ptes.Length, string.Join(", ", ptes));
            Assert.AreEqual(6 * TArch.PageSize, ptes[1].Size, "the six read-only PTEs");
            Assert.AreNotEqual(ptes[0].Prot, ptes[1].Prot);
            Assert.AreEqual(ptes[0].Prot, ptes[2].Prot);
            return true;
        }
    }

    private sealed class PmdMappedShowsPmdRuns : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            int pmd = PmdLevel<TArch>();
            ulong size = 5 * TArch.LevelSize(pmd);
            Assert.IsTrue(t.Table.TryMap(TArch.VmemmapStart, TestPageTable<TArch>.DataPfn, size, pmd));

            IReadOnlyList<PtdumpRun> runs = VmemmapRuns(t);

            Assert.AreEqual(new PtdumpRun(TArch.VmemmapStart, TArch.VmemmapStart + size, pmd, runs[0].Prot, Present: true), runs[0]);
            Assert.AreEqual(1, runs.Count(r => r.Present), "one run for all five blocks");
            string firstRunLine = PageTableDump.DumpVmemmap(t.Table).Split('\n')[1];
            StringAssert.Contains(firstRunLine.ToUpperInvariant(), " " + TArch.Info.Levels[pmd].Name.ToUpperInvariant(), firstRunLine);
            return true;
        }
    }

    private sealed class OutputAddressIgnored : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            int pmd = PmdLevel<TArch>();
            ulong size = TArch.LevelSize(pmd);
            ulong framesPerBlock = size >> TArch.PageShift;

            // Two neighbouring blocks whose frames are far apart and in the opposite order.
            Assert.IsTrue(t.Table.TryMap(TArch.VmemmapStart, TestPageTable<TArch>.DataPfn + (8 * framesPerBlock), size, pmd));
            Assert.IsTrue(t.Table.TryMap(TArch.VmemmapStart + size, TestPageTable<TArch>.DataPfn, size, pmd));

            IReadOnlyList<PtdumpRun> runs = VmemmapRuns(t);

            Assert.AreEqual(2 * size, runs[0].Size);
            Assert.IsTrue(runs[0].Present);
            return true;
        }
    }

    private sealed class EmptyVmemmapIsOneRootHole : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();

            IReadOnlyList<PtdumpRun> runs = VmemmapRuns(t);

            Assert.AreEqual(1, runs.Count, string.Join(", ", runs));
            Assert.AreEqual(new PtdumpRun(TArch.VmemmapStart, VmemmapEnd<TArch>(), 0, 0, Present: false), runs[0]);
            return true;
        }
    }

    private sealed class OneLinePerRun : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var t = new TestPageTable<TArch>();
            BuildSmallVmemmap(t);
            IReadOnlyList<AddressMarker> markers = PageTableDump.VmemmapMarkers<TArch>(TArch.Info.Ptdump);

            string[] lines = PageTableDump.DumpVmemmap(t.Table).Split('\n');

            Assert.AreEqual(string.Empty, lines[^1], "the text ends with a newline");
            string[] expectedMarkers = [.. markers.Select(m => $"---[ {m.Name} ]---")];
            string[] actualMarkers = [.. lines.Where(l => l.StartsWith("---[", StringComparison.Ordinal))];
            CollectionAssert.AreEqual(expectedMarkers, actualMarkers);
            Assert.AreEqual(expectedMarkers[0], lines[0]);
            Assert.AreEqual(VmemmapRuns(t).Count, lines.Count(l => l.StartsWith("0x", StringComparison.Ordinal)));
            return true;
        }
    }
}
