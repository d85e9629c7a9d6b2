using System;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Machine;

/// <summary>
/// A PC's memory map and the reservations of the boot path (docs/ARCHITECTURE.md §5): the e820
/// table, the RAM above 3 GiB moved above the PCI hole, swiotlb, crashkernel=, memmap=, /proc/iomem.
/// </summary>
[TestClass]
public sealed class MemoryMapTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    /// <summary>
    /// MemTotal measured on a QEMU pc machine with 4 GiB and 2 CPUs booting Debian's Linux 6.1.192
    /// (README.md, "The memory map and boot reservations", has the command line). Hvo must come
    /// within 1% of it.
    /// </summary>
    private const double ReferenceMemTotalKb = 4_009_160;

    [TestMethod]
    public void A4GiBPcPrintsItsE820MapAndIomemAndKeepsSwiotlbBelow4GiB()
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=4G\ndmesg\ncat /proc/iomem\n");

        string[] lines = [.. o.Lines().Where(l => !l.Contains(" hash table entries: ", StringComparison.Ordinal))];
        CollectionAssert.AreEqual(
            new[]
            {
                "BIOS-provided physical RAM map:",
                "BIOS-e820: [mem 0x0000000000000000-0x00000000bfffffff] usable",
                "BIOS-e820: [mem 0x00000000c0000000-0x00000000ffffffff] reserved",
                "BIOS-e820: [mem 0x0000000100000000-0x000000013fffffff] usable",
                $"software IO TLB: mapped [mem 0x{(3 * GiB) - Machine<Arch.X86_64>.SwiotlbDefaultBytes:x16}-0x{3 * GiB:x16}] (64MB)",
            },
            lines.Take(5).ToArray(), "the RAM above 3 GiB lies at 4-5 GiB; swiotlb is the highest 64 MiB below 4 GiB");
        StringAssert.StartsWith(lines[5], "Memory: ");
        StringAssert.EndsWith(o.Transcript, "00000000-bfffffff : System RAM\n100000000-13fffffff : System RAM\n");
    }

    /// <summary>
    /// The dentry and inode hash tables (vfs_caches_init_early, from memblock): the lines Debian's
    /// 6.1.192 printed on QEMU's pc machine with 4 and 8 GiB (measured, README.md "The memory map
    /// and boot reservations").
    /// </summary>
    [TestMethod]
    [DataRow("4G", "Dentry cache hash table entries: 524288 (order: 10, 4194304 bytes, linear)", "Inode-cache hash table entries: 262144 (order: 9, 2097152 bytes, linear)")]
    [DataRow("8G", "Dentry cache hash table entries: 1048576 (order: 11, 8388608 bytes, linear)", "Inode-cache hash table entries: 524288 (order: 10, 4194304 bytes, linear)")]
    public void TheDentryAndInodeHashTablesAreTheKernels(string memory, string dentry, string inode)
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", $"boot mem={memory}\ndmesg\n");

        CollectionAssert.AreEqual(new[] { dentry, inode }, o.Lines().Where(l => l.Contains(" hash table entries: ", StringComparison.Ordinal)).ToArray());
    }

    [TestMethod]
    public void MemTotalOf4GiBIsWithinOnePercentOfTheKernelsAndSwiotlbTakesItsSize()
    {
        ScenarioOutcome pc = ScenarioHarness.Run("x86_64", "boot mem=4G\n");
        ScenarioOutcome noTlb = ScenarioHarness.Run("x86_64", "boot mem=4G swiotlb=noforce\n");
        ScenarioOutcome small = ScenarioHarness.Run("x86_64", "boot mem=4G swiotlb=16384\n");

        Assert.AreEqual(Machine<Arch.X86_64>.SwiotlbDefaultBytes >> 10, noTlb.MemInfo.MemTotalKb - pc.MemInfo.MemTotalKb, "IO_TLB_DEFAULT_SIZE");
        Assert.AreEqual((16384UL * 2048) >> 10, noTlb.MemInfo.MemTotalKb - small.MemInfo.MemTotalKb, "swiotlb=N: N slots of 2 KiB");
        double off = Math.Abs(pc.MemInfo.MemTotalKb - ReferenceMemTotalKb) / ReferenceMemTotalKb;
        Assert.IsTrue(off < 0.01, $"MemTotal {pc.MemInfo.MemTotalKb} kB is {off:P2} from the kernel's {ReferenceMemTotalKb} kB");
    }

    [TestMethod]
    [DataRow("x86_64", true)] // 4-level: the vmemmap describes 2^46 bytes, the hole pushes the last GiB past them
    [DataRow("x86_64-la57", false)]
    public void RamTheHolePushesPastTheVmemmapsReachIsIgnored(string arch, bool pushedPast)
    {
        // The largest machine the vmemmap describes, asked for as RAM: the hole moves its last
        // GiB above that reach on 4-level x86-64, where the kernel's memory model ignores it.
        ArchInfo info = Archs.Get(arch).Info;
        ulong describable = info.DescribableBytes(info.RamBase);
        ulong memory = Math.Min(describable, 64UL << 40);
        ulong hole = info.RamHoleEnd - info.RamHoleStart;
        var layout = MachineLayout.For(info, memory);
        ulong ignoredBytes = memory + hole > describable ? memory + hole - describable : 0;
        Assert.AreEqual(ignoredBytes >> info.PageShift, layout.IgnoredFrames);
        Assert.AreEqual((memory - ignoredBytes) >> info.PageShift, layout.RamFrames, "MemTotal counts only what the vmemmap describes");
        Assert.IsLessThanOrEqualTo(describable >> info.PageShift, layout.Frames);
        Assert.IsNull(MachineSize.Check(info, memory, 1), "a machine the vmemmap describes is not refused");
        Assert.AreEqual(pushedPast ? hole >> info.PageShift : 0, layout.IgnoredFrames, "64 TiB of RAM on 4-level paging: the hole's GiB above 2^46 is ignored");
    }

    [TestMethod]
    public void SwiotlbIsOnlyForRamAbove4GiBUnlessForced()
    {
        ScenarioOutcome small = ScenarioHarness.Run("x86_64", "boot mem=2G\ndmesg\n");
        ScenarioOutcome forced = ScenarioHarness.Run("x86_64", "boot mem=2G swiotlb=force\ndmesg\n");

        Assert.IsFalse(small.Transcript.Contains("software IO TLB", StringComparison.Ordinal), "pci_swiotlb_detect: no RAM above MAX_DMA32_PFN");
        System.Text.RegularExpressions.Match tlb = System.Text.RegularExpressions.Regex.Match(forced.Transcript, @"software IO TLB: mapped \[mem 0x([0-9a-f]{16})-0x([0-9a-f]{16})\] \(64MB\)");
        Assert.IsTrue(tlb.Success, forced.Transcript);
        ulong tlbStart = Convert.ToUInt64(tlb.Groups[1].Value, 16), tlbEnd = Convert.ToUInt64(tlb.Groups[2].Value, 16);
        Assert.AreEqual(Machine<Arch.X86_64>.SwiotlbDefaultBytes, tlbEnd - tlbStart);
        Assert.IsTrue(tlbEnd <= (2 * GiB) - (2 * GiB / 4096 * 64), "below the vmemmap's sparse buffer at the top of the RAM");
        Assert.AreEqual(Machine<Arch.X86_64>.SwiotlbDefaultBytes >> 10, small.MemInfo.MemTotalKb - forced.MemInfo.MemTotalKb);
    }

    [TestMethod]
    public void CrashkernelReservesBelow4GiBOnA16MiBBoundaryAndShowsInIomem()
    {
        ScenarioOutcome plain = ScenarioHarness.Run("x86_64", "boot mem=4G\n");
        ScenarioOutcome crash = ScenarioHarness.Run("x86_64", "boot mem=4G crashkernel=256M\ndmesg\ncat /proc/iomem\n");
        ScenarioOutcome ranges = ScenarioHarness.Run("x86_64", "boot mem=4G crashkernel=1G-4G:128M,4G-:192M\n");
        ScenarioOutcome none = ScenarioHarness.Run("x86_64", "boot mem=4G crashkernel=8G-:192M\n");

        // memblock top down below 4 GiB: the RAM there ends at 3 GiB.
        StringAssert.Contains(crash.Transcript, "Reserving 256MB of memory at 2816MB for crashkernel (System RAM: 4096MB)");
        StringAssert.Contains(crash.Transcript, "00000000-bfffffff : System RAM\n  b0000000-bfffffff : Crash kernel\n");
        Assert.AreEqual(256UL << 10, plain.MemInfo.MemTotalKb - crash.MemInfo.MemTotalKb);
        Assert.AreEqual(192UL << 10, plain.MemInfo.MemTotalKb - ranges.MemInfo.MemTotalKb, "4 GiB of RAM falls in 4G-");
        Assert.AreEqual(plain.MemInfo.MemTotalKb, none.MemInfo.MemTotalKb, "no range holds the RAM: no reservation");
    }

    [TestMethod]
    public void MemmapTakesRangesFromTheRamAndRefusesWhatItDoesNotModel()
    {
        ScenarioOutcome plain = ScenarioHarness.Run("x86_64", "boot mem=4G\n");
        ScenarioOutcome memmap = ScenarioHarness.Run("x86_64", "boot mem=4G 'memmap=64M$0x40000000,32M!0x50000000'\n");
        ScenarioOutcome limit = ScenarioHarness.Run("x86_64", "boot memmap=2G\n");

        Assert.AreEqual(96UL << 10, plain.MemInfo.MemTotalKb - memmap.MemInfo.MemTotalKb);
        Assert.AreEqual(ScenarioHarness.Run("x86_64", "boot mem=2G\n").MemInfo.MemTotalKb, limit.MemInfo.MemTotalKb, "memmap=nn is mem=nn");
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => ScriptParser.Parse("boot mem=4G memmap=64M@0x40000000\n", "t.hvo"));
        StringAssert.Contains(e.Message, "memmap=64M@0x40000000: '64M@0x40000000' is not modelled");
        Assert.ThrowsExactly<ScriptError>(() => ScriptParser.Parse("boot crashkernel=lots\n", "t.hvo"));
    }

    /// <summary>
    /// 64 pages of 2 MiB on a 4 GiB PC with HVO: they fill the Normal zone above 4 GiB first, after
    /// the max-order blocks the kernel's own boot allocations took at its start, so the vmemmap PMDs
    /// split are those of the sections the pages land in. Measured on Debian's 6.1.192 in QEMU (4 GiB,
    /// 2 CPUs, nokaslr; /proc/kpageflags' KPF_HUGE after `echo 64`): the pages lie at 4 GiB + 32 MiB
    /// to 4 GiB + 160 MiB, in the two sections from 4 GiB, so two PMDs are split.
    /// </summary>
    [TestMethod]
    public void SixtyFourPagesOnA4GiBPcFillNormalAbove4GiBFirst()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 4 * GiB, Strict = true });
        var hvo = new HvoOptimizer<Arch.X86_64>(m, HvoPolicy.Find("v6.1")!);
        var pool = new HugeTlbPool<Arch.X86_64>(m, hvo);
        Hstate<Arch.X86_64> h = pool.Hstate(2 * MiB);

        pool.SetNrHugepages(h, 64);

        HugePage[] pages = [.. pool.Pages(h)];
        Assert.AreEqual(64, pages.Length);
        Assert.IsTrue(pages.All(p => p.HeadPfn >= (4 * GiB) >> 12), "every page in ZONE_NORMAL, at 4-5 GiB");
        ulong[] sections = [.. pages.Select(p => (p.HeadPfn << 12) / (128 * MiB)).Distinct().Order()];
        long pmds = pages.Select(p => m.StructPageAddress(p.HeadPfn) >> 21).Distinct().LongCount();
        Assert.AreEqual(pmds, hvo.Total.PmdsSplit, "one split per vmemmap PMD the pages' struct pages lie in");
        ulong measuredFirst = (4 * GiB) + (32 * MiB), measuredEnd = (4 * GiB) + (160 * MiB);
        CollectionAssert.AreEqual(new[] { measuredFirst / (128 * MiB), (measuredEnd - 1) / (128 * MiB) }, sections, "the sections the real kernel's pages lay in");
    }
}
