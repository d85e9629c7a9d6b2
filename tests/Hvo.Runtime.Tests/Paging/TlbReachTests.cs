using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.Cli;
using Hvo.Runtime.Tests.HugeTlb;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Paging;

/// <summary>
/// TLB reach (docs/ARCHITECTURE.md §5): a TLB holds a block as one entry, so a scan of every struct
/// page misses once per vmemmap block while the blocks are leaves, once per page under a split one,
/// and once per block again after collapse-on-free. Expectations from the spec's geometry.
/// </summary>
[TestClass]
public sealed class TlbReachTests
{
    /// <summary>Specs whose vmemmap boots with blocks, on a machine holding a few of them (up to 16 GiB).</summary>
    public static IEnumerable<object[]> BlockArchs =>
        from e in ArchRegistry.All
        where CollapseTests.BootsWithBlocks(e.Info)
        select new object[] { e.Name };

    [TestMethod]
    public void ATlbHoldsABlockAsOneEntryThatAFlushOfAnyOfItsPagesDrops()
    {
        var tlb = new Tlb(0);
        tlb.Insert(new TlbEntry(512, 4096, Writable: true, Level: 1) { Pages = 512 });
        Assert.IsTrue(tlb.TryLookup(700, out TlbEntry hit));
        Assert.AreEqual((700UL, 4096UL + 188, 0L), (hit.Vpn, hit.Pfn, tlb.Misses), "a page of the block, from its frame at that offset");
        Assert.IsFalse(tlb.TryLookup(1024, out _), "the page after the block");
        Assert.IsTrue(tlb.Reaches(4096 + 511, out ulong vpn) && vpn == 1023);
        tlb.Invalidate(1000, 1000);
        Assert.IsFalse(tlb.TryLookup(512, out _), "a flush of one page drops the whole block");
        Assert.IsFalse(tlb.Reaches(4096, out _));
        Assert.AreEqual(2, tlb.Misses);
    }

    [TestMethod]
    [DynamicData(nameof(BlockArchs))]
    public void AScanMissesOncePerBlockThenOncePerPageOfASplitBlockThenOncePerBlockAfterCollapse(string arch) =>
        Archs.Run(arch, new ScanMisses());

    [TestMethod]
    public void SimulateAndRunReportTheScanAndTheCollapse()
    {
        (int exit, string output, string err) = CliRun.InProcess("simulate", "--memory", "4G", "--hugepages", "2M:0", "--tlb-reach", "--json");
        Assert.AreEqual(0, exit, err);
        using (JsonDocument doc = JsonDocument.Parse(output))
        {
            JsonElement t = doc.RootElement.GetProperty("tlbReach");
            ulong bytes = (4UL << 30) / Arch.X86_64.PageSize * (ulong)Arch.X86_64.StructPageBytes;
            Assert.AreEqual(bytes, t.GetProperty("bytes").GetUInt64());
            Assert.AreEqual((long)(bytes / Arch.X86_64.LevelSize(Arch.X86_64.VmemmapBootLevel)), t.GetProperty("tlbMisses").GetInt64(), "one per 2 MiB of struct pages");
            Assert.IsFalse(doc.RootElement.GetProperty("hvo").TryGetProperty("collapse", out _), "no collapse counters for a kernel's policy");
        }

        // Free memory is MemFree plus the pages on the per-CPU lists (/proc/zoneinfo's pagesets' count).
        const string Free = "grep MemFree /proc/meminfo\ngrep count: /proc/zoneinfo\n";
        const string Script = "boot mem=4G\n" + Free + "echo 1024 > /proc/sys/vm/nr_hugepages\necho 0 > /proc/sys/vm/nr_hugepages\n" + Free;
        (exit, output, err) = CliRun.InProcessWithInput(Script, "run", "-", "--policy", "v6.7+collapse", "--json");
        Assert.AreEqual(0, exit, err);
        using (JsonDocument doc = JsonDocument.Parse(output))
        {
            Assert.AreEqual("v6.7+collapse", doc.RootElement.GetProperty("policy").GetString());
            JsonElement hvo = doc.RootElement.GetProperty("hvo");
            Assert.IsTrue(hvo.GetProperty("pmdsSplit").GetInt64() > 0);
            Assert.AreEqual(hvo.GetProperty("pmdsSplit").GetInt64(), hvo.GetProperty("collapse").GetProperty("pteTablesRecovered").GetInt64());
            string[] outputs = [.. doc.RootElement.GetProperty("transcript").EnumerateArray().Select(s => s.GetProperty("output").GetString()!)];
            long[] free = [.. Enumerable.Range(0, outputs.Length - 1).Where(i => outputs[i].StartsWith("MemFree", StringComparison.Ordinal))
                .Select(i => Numbers(outputs[i]).Single() + (Numbers(outputs[i + 1]).Sum() * (long)(Arch.X86_64.PageSize / 1024)))];
            Assert.AreEqual(2, free.Length);
            Assert.AreEqual(free[0], free[1], "free memory (MemFree and the per-CPU lists) as after boot");
        }

        (exit, output, err) = CliRun.InProcessWithInput(Script, "compare", "-", "--policies", "v6.7,v6.7+collapse", "--tlb-reach");
        Assert.AreEqual(0, exit, err);
        string[] recovered = [.. output.Split('\n').Where(l => l.StartsWith("| PTE tables recovered", StringComparison.Ordinal))];
        Assert.AreEqual(1, recovered.Length, output);
        StringAssert.Contains(recovered[0], "- (never coalesced)");
        string misses = output.Split('\n').Single(l => l.StartsWith("| struct page scan: TLB misses", StringComparison.Ordinal));
        string[] cells = [.. misses.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Skip(1)];
        Assert.AreEqual(2, cells.Length);
        Assert.IsTrue(long.Parse(cells[0], System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture) > long.Parse(cells[1], System.Globalization.NumberStyles.AllowThousands, System.Globalization.CultureInfo.InvariantCulture), "never coalesced misses more than collapsed: " + misses);

        (exit, _, err) = CliRun.InProcess("simulate", "--policy", "v6.7+colapse");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "unknown policy 'v6.7+colapse'");
        StringAssert.Contains(err, "+collapse");
    }

    private sealed class ScanMisses : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = CollapseTests.Memory(TArch.Info) });
            var hvo = new HvoOptimizer<TArch>(m, HvoPolicy.V6_7.WithCollapse());
            var pool = new HugeTlbPool<TArch>(m, hvo);
            ulong leaf = TArch.LevelSize(TArch.VmemmapBootLevel);
            ulong start = m.StructPageAddress(m.Layout.FirstPfn), end = m.StructPageAddress(m.Layout.FirstPfn + m.Layout.Frames);
            long blocks = (long)(((end - 1) / leaf) - (start / leaf) + 1);
            long pagesPerBlock = (long)(leaf / TArch.PageSize);
            Assert.AreEqual((blocks, 0), CollapseTests.BootLevelEntries(m), "booted with blocks only");

            StructPageScanResult booted = StructPageScan.All(m);
            Assert.AreEqual(m.Layout.Frames, booted.StructPages);
            Assert.AreEqual(0, booted.Faults);
            Assert.AreEqual(blocks, booted.TlbMisses, "one miss per block");

            ulong size = HugeTlbCommandLine.ArchDefaultSize(TArch.Info);
            pool.SetNrHugepages(pool.Hstate(size), CollapseTests.Memory(TArch.Info) / 2 / size);
            long split = hvo.Total.PmdsSplit;
            Assert.IsTrue(split > 0);
            Assert.AreEqual(blocks - split + (split * pagesPerBlock), StructPageScan.All(m).TlbMisses, "a miss per page of each split block");

            pool.SetNrHugepages(pool.Hstate(size), 0);
            Assert.AreEqual(split, hvo.Total.PmdsCollapsed);
            Assert.AreEqual(blocks, StructPageScan.All(m).TlbMisses, "collapsed: one per block again");
            return true;
        }
    }

    // The numbers in a command's output (meminfo's kB, zoneinfo's counts).
    private static System.Collections.Generic.IEnumerable<long> Numbers(string output) =>
        System.Text.RegularExpressions.Regex.Matches(output, "[0-9]+").Select(m => long.Parse(m.Value, System.Globalization.CultureInfo.InvariantCulture));
}
