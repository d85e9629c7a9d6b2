using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Versions;

/// <summary>
/// v7.1, "Eliminate fake head pages from vmemmap optimization": tails map one shared read-only page
/// of tail struct pages per zone and order; the head vmemmap page stays unique. And v6.11's
/// /proc/vmstat counters of struct page memory (15995a352474).
/// </summary>
[TestClass]
public sealed class SharedTailTests
{
    private const ulong TwoMiB = 2UL << 20;

    /// <summary>
    /// The number: 64 GiB, 16384 2 MiB pages under v7.1: 7 vmemmap pages freed per huge page,
    /// and free memory (MemFree and the per-CPU lists) below v6.7's by exactly the shared tail pages allocated (one per zone and order used).
    /// </summary>
    [TestMethod]
    public void V71FreesSevenPerPageAndCostsOneTailPagePerZoneAndOrder()
    {
        ArchInfo info = Archs.Get("x86_64").Info;
        string script = "boot mem=64G\necho 16384 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages\n";
        ScenarioOutcome v71 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v7.1"), readAtEnd: "/proc/zoneinfo");
        ScenarioOutcome v67 = ScenarioHarness.Run("x86_64", script, HvoPolicy.Find("v6.7"));
        ulong freedEach = HugePageVmemmap.For(info, TwoMiB).FreedPages(1);
        Assert.AreEqual(7UL, freedEach);
        Assert.AreEqual(16384UL, v71.MemInfo.HugePagesTotal);
        Assert.AreEqual(16384 * (long)freedEach, v71.Counters.Freed);
        Assert.AreEqual(v67.Counters.Freed, v71.Counters.Freed);

        // The pages sit in DMA32 and Normal on x86-64's 64 GiB: one tail page for each zone holding pages.
        long tails = v71.SharedTails;
        Assert.IsTrue(tails is >= 1 and <= 2, $"{tails} shared tail pages");
        Assert.AreEqual(v67.FreeKb - ((ulong)tails * info.PageSize / 1024), v71.FreeKb, "free memory (MemFree and the per-CPU lists) below v6.7's by the shared tail pages");
        Assert.AreEqual(v67.MemInfo.MemTotalKb, v71.MemInfo.MemTotalKb);
        Assert.AreEqual(0, v71.Invariants.Count, string.Join("\n", v71.Invariants));
    }

    /// <summary>v7.0 keeps fake heads (tails map the head vmemmap page): no shared tail page at all.</summary>
    [TestMethod]
    public void V70HasNoSharedTail()
    {
        ScenarioOutcome v70 = ScenarioHarness.Run("x86_64", "boot mem=1G\necho 64 > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find("v7.0"));
        ScenarioOutcome v71 = ScenarioHarness.Run("x86_64", "boot mem=1G\necho 64 > /proc/sys/vm/nr_hugepages\n", HvoPolicy.Find("v7.1"));
        Assert.AreEqual(0L, v70.SharedTails);
        Assert.AreEqual(1L, v71.SharedTails, "1 GiB is all DMA32 and DMA: the pages are in DMA32");
        Assert.AreEqual(0, v71.Invariants.Count, string.Join("\n", v71.Invariants));
    }

    /// <summary>Under v7.1 a tail struct page read through the vmemmap is a plain tail whose compound_info is the mask of its order.</summary>
    [TestMethod]
    public void TailsHoldTheMaskAndNoFakeHead()
    {
        Archs.Run("x86_64", new ReadTails());
    }

    private sealed class ReadTails : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using Machine<TArch> m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = 1UL << 30, Strict = true });
            var hvo = new HvoOptimizer<TArch>(m, HvoPolicy.V7_1);
            var pool = new HugeTlbPool<TArch>(m, hvo);
            Hstate<TArch> h = pool.Hstate(TwoMiB);
            pool.SetNrHugepages(h, 2);
            HugePage[] pages = [.. pool.Pages(h)];
            Assert.IsTrue(pages.All(p => p.VmemmapOptimized));
            int size = TArch.StructPageBytes;
            ulong perVmemmapPage = TArch.PageSize / (ulong)size;
            var sp = new byte[size];
            foreach (HugePage p in pages)
            {
                foreach (ulong index in new[] { perVmemmapPage, perVmemmapPage + 1, p.Frames - 1 })
                {
                    Assert.AreEqual(AccessFault.None, m.ReadStructPage(0, p.HeadPfn + index, sp));
                    Assert.AreEqual(StructPage.CompoundInfoMask(p.Order, size) | 1, StructPage.CompoundHead(sp), "the mask, not the head's address");
                    Assert.AreEqual(0UL, StructPage.Flags(sp) & StructPage.PgHead, "no fake head");
                    ulong va = m.StructPageAddress(p.HeadPfn + index);
                    Assert.AreEqual(m.StructPageAddress(p.HeadPfn), va & (StructPage.CompoundHead(sp) & ~1UL), "the mask finds the head");
                    Assert.AreEqual(AccessFault.WriteProtect, m.Mmu.Translate(0, va, write: true, out _));
                }
            }

            Assert.IsTrue(hvo.TryGetSharedTail(pages[0], out ulong tail) && hvo.TryGetSharedTail(pages[1], out ulong other) && tail == other, "both pages map one tail page");
            Assert.AreEqual(FrameOwner.RuntimeVmemmap, m.Owners[tail]);

            pool.SetNrHugepages(h, 0);
            Assert.AreEqual(FrameOwner.RuntimeVmemmap, m.Owners[tail], "the tail page stays with its zone");
            Assert.AreEqual(0, m.Violations.Count, string.Join("\n", m.Violations.Snapshot()));
            var check = new global::Hvo.Checks.Invariants<TArch>(m, pool);
            Assert.AreEqual(0, check.CheckAll().Count, string.Join("\n", check.CheckAll()));
            return true;
        }
    }

    /// <summary>
    /// The number for v6.11 (15995a352474): after 1024 fresh 2 MiB pages,
    /// nr_memmap_boot_pages + nr_memmap_pages has dropped by exactly 7 x 1024; v6.10 has neither line.
    /// </summary>
    [TestMethod]
    [DataRow("v6.11")]
    [DataRow("v7.0")]
    [DataRow("v7.1")]
    public void NrMemmapDropsBySevenPerFreshPageFromV611(string version)
    {
        ArchInfo info = Archs.Get("x86_64").Info;
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "boot mem=4G\ncat /proc/vmstat\necho 1024 > /proc/sys/vm/nr_hugepages\ncat /proc/vmstat\n", HvoPolicy.Find(version));
        long[] sums = [.. o.Transcript.Split('\n').Where(l => l.StartsWith("nr_memmap", System.StringComparison.Ordinal))
            .Chunk(2).Select(pair => pair.Sum(l => long.Parse(l.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture)))];
        Assert.AreEqual(2, sums.Length, o.Transcript);
        long freedEach = (long)HugePageVmemmap.For(info, TwoMiB).FreedPages(1);
        Assert.AreEqual(freedEach * 1024 - o.SharedTails, sums[0] - sums[1], "7 x 1024 (v7.1: less the shared tail page it allocated)");
    }

    [TestMethod]
    public void V610HasNoMemmapCounters()
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "cat /proc/vmstat\n", HvoPolicy.Find("v6.10"));
        Assert.IsFalse(o.Transcript.Contains("nr_memmap", System.StringComparison.Ordinal), o.Transcript);
        StringAssert.StartsWith(o.Transcript, "nr_free_pages ");
    }
}
