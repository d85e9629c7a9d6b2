using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Hotplug;

/// <summary>
/// offline_pages on a block holding huge pages: its free huge pages are dissolved, each vmemmap
/// restored first (dissolve_free_hugetlb_folio); a restore that cannot allocate fails the offline
/// with -ENOMEM and leaves the page as it was; a page in use, or anything unmovable, with -EBUSY.
/// Expectations come from the spec's vmemmap arithmetic and the pages the block ended up with.
/// </summary>
[TestClass]
public sealed class OfflineTests
{
    private const string Memory8 = "/sys/devices/system/memory/memory8/state";

    // A 1 GiB machine with 1 GiB to hot-add: the block at 1 GiB probed and onlined to ZONE_MOVABLE,
    // where huge pages go first (GFP_HIGHUSER_MOVABLE); the rest fall back to DMA32.
    private const string Filled =
        "boot mem=1G\n" +
        "echo 0x40000000 > /sys/devices/system/memory/probe\n" +
        "echo online_movable > " + Memory8 + "\n" +
        "echo 96 > /proc/sys/vm/nr_hugepages\n";

    private const string FailNextAllocation =
        "echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-wait\n" +
        "echo 0 > /sys/kernel/debug/fail_page_alloc/min-order\n" +
        "echo 100 > /sys/kernel/debug/fail_page_alloc/probability\n" +
        "echo 1 > /sys/kernel/debug/fail_page_alloc/times\n";

    [TestMethod]
    [DataRow("v5.14")]
    [DataRow("v6.7")]
    [DataRow("v7.1")]
    public void OfflineDissolvesTheBlocksFreeHugePagesRestoringTheirVmemmap(string version)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        HotplugOutcome online = HotplugRig.Run("x86_64", Filled, policy);
        HotplugOutcome offline = HotplugRig.Run("x86_64", Filled + "echo offline > " + Memory8 + "\n", policy);
        ArchInfo info = online.Arch;
        ulong huge = HugeTlbCommandLine.ArchDefaultSize(info);
        long freedEach = (long)HugePageVmemmap.For(info, huge).FreedPages(policy.ReservePages);
        long inBlock = online.PagesIn(8).Count();
        ulong pageKb = info.PageSize / 1024, blockKb = online.BlockFrames * pageKb;

        Assert.IsTrue(inBlock > 0 && inBlock < 96, $"{inBlock} pages in the movable block");
        Assert.IsTrue(online.PagesIn(8).All(p => p.Optimized), "the hot-added block's pages are optimized like any other");
        Assert.AreEqual(string.Empty, offline.Transcript);
        Assert.AreEqual("Offline", offline.Block(8).State);
        Assert.AreEqual(96 - (ulong)inBlock, offline.MemInfo.HugePagesTotal, "dissolved pages leave the pool");
        Assert.AreEqual(0, offline.PagesIn(8).Count());
        Assert.AreEqual(online.Counters.Restored + (inBlock * freedEach), offline.Counters.Restored, "each dissolved page's vmemmap restored");
        Assert.AreEqual(0, offline.Counters.RestoreFailures);
        Assert.AreEqual(online.MemInfo.MemTotalKb - blockKb, offline.MemInfo.MemTotalKb);
        Assert.AreEqual(
            online.FreeKb - blockKb + ((ulong)inBlock * (huge / 1024)) - ((ulong)(inBlock * freedEach) * pageKb),
            offline.FreeKb,
            "the block's free frames go, its huge pages' frames went with it, and the restores took pages elsewhere");
        Assert.AreEqual(0, offline.Invariants.Count, string.Join("\n", offline.Invariants));
        Assert.AreEqual(0, online.Invariants.Count, string.Join("\n", online.Invariants));
    }

    [TestMethod]
    [DataRow("v5.18")]
    [DataRow("v7.1")]
    public void AFailedRestoreFailsTheOfflineWithEnomemAndLeavesThePageIntact(string version)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        HotplugOutcome online = HotplugRig.Run("x86_64", Filled, policy);
        HotplugOutcome failed = HotplugRig.Run("x86_64", Filled + FailNextAllocation + "echo offline > " + Memory8 + "\ncat " + Memory8 + "\n", policy);
        HotplugOutcome retried = HotplugRig.Run("x86_64", Filled + FailNextAllocation + "echo offline > " + Memory8 + "\necho offline > " + Memory8 + "\n", policy);
        long inBlock = online.PagesIn(8).Count();

        CollectionAssert.AreEqual(new[] { "sh: echo: write error: Cannot allocate memory", "online" }, failed.Lines, "offline_pages returns dissolve's -ENOMEM, and the block stays online");
        Assert.AreEqual(1, failed.Counters.RestoreFailures);
        Assert.AreEqual(online.Counters.Restored, failed.Counters.Restored);
        Assert.AreEqual(online.FreeMemInfo, failed.FreeMemInfo, "nothing dissolved, nothing leaked: meminfo as before the attempt (MemFree with the per-CPU lists, which the offline drained)");
        CollectionAssert.AreEquivalent(online.PagesIn(8).ToArray(), failed.PagesIn(8).ToArray(), "the block's pages are all still in the pool, optimized, free");
        Assert.AreEqual(0, failed.Invariants.Count, string.Join("\n", failed.Invariants));

        Assert.AreEqual("Offline", retried.Block(8).State, "once the allocation can be had, the offline goes through");
        Assert.AreEqual(96 - (ulong)inBlock, retried.MemInfo.HugePagesTotal);
        Assert.AreEqual(0, retried.Invariants.Count, string.Join("\n", retried.Invariants));
    }

    [TestMethod]
    public void AHugePageInUseFailsTheOfflineWithEbusyUntilItIsReleased()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", Filled, step: new TakeTheBlocksPagesIntoUse());

        CollectionAssert.AreEqual(new[] { "EBUSY", "Online", "in use: ok", "None", "Offline" }, o.Notes.ToArray());
        Assert.AreEqual(0, o.PagesIn(8).Count());
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    public void BootMemoryHoldingKernelAllocationsCannotGoOffline()
    {
        // memblock allocates from the top: the last boot block holds the vmemmap and the page tables.
        HotplugOutcome before = HotplugRig.Run("x86_64", "boot mem=1G\n");
        HotplugOutcome o = HotplugRig.Run("x86_64", "boot mem=1G\necho offline > /sys/devices/system/memory/memory7/state\ncat /sys/devices/system/memory/memory7/state\n");

        CollectionAssert.AreEqual(new[] { "sh: echo: write error: Device or resource busy", "online" }, o.Lines);
        Assert.AreEqual(before.MemInfo, o.MemInfo, "the isolated free pages went back");
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    public void AHotAddThatCannotAllocateItsStructPagesFailsWithEnomemAndLeavesNothing()
    {
        HotplugOutcome before = HotplugRig.Run("x86_64", "boot mem=1G\n");
        HotplugOutcome o = HotplugRig.Run("x86_64",
            "boot mem=1G\n" + FailNextAllocation + "echo -1 > /sys/kernel/debug/fail_page_alloc/times\necho 0x40000000 > /sys/devices/system/memory/probe\n");

        Assert.AreEqual("sh: echo: write error: Cannot allocate memory", o.Lines.Single());
        Assert.AreEqual(before.Blocks.Count, o.Blocks.Count);
        Assert.AreEqual(before.AbsentFrames, o.AbsentFrames);
        Assert.AreEqual(0, o.HotplugVmemmapFrames);
        Assert.AreEqual(before.MemInfo, o.MemInfo);
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    /// <summary>
    /// The order-9 block fails (fail-nth), base pages follow, and the hundredth allocation after it
    /// fails too: what was mapped is unmapped and freed; the PTE table stays, as split tables do.
    /// </summary>
    [TestMethod]
    public void AHotAddThatFailsHalfWayUnmapsAndFreesWhatItHadMapped()
    {
        HotplugOutcome before = HotplugRig.Run("x86_64", "boot mem=1G\n");
        HotplugOutcome o = HotplugRig.Run("x86_64",
            "boot mem=1G\n" +
            "echo N > /sys/kernel/debug/fail_page_alloc/ignore-gfp-wait\n" +
            "echo 0 > /sys/kernel/debug/fail_page_alloc/min-order\n" +
            "echo 100 > /sys/kernel/debug/fail_page_alloc/probability\n" +
            "echo 100 > /sys/kernel/debug/fail_page_alloc/interval\n" +
            "echo 2 > /sys/kernel/debug/fail_page_alloc/times\n" +
            "echo 1 > /proc/self/fail-nth\n" +
            "echo 0x40000000 > /sys/devices/system/memory/probe\n" +
            "echo 0x40000000 > /sys/devices/system/memory/probe\n",
            step: new MappingLevel());

        Assert.AreEqual("sh: echo: write error: Cannot allocate memory", o.Lines.Single(), "the second probe, with no failure left, goes through");
        Assert.AreEqual($"level {o.Arch.VmemmapBootLevel}", o.Notes.Single(), "the empty PTE table was freed: a PMD leaf again");
        Assert.AreEqual((long)(o.BlockFrames * (ulong)o.Arch.StructPageBytes / o.Arch.PageSize), o.HotplugVmemmapFrames, "only the second attempt's frames count");
        Assert.AreEqual(before.FreeKb - ((ulong)(o.HotplugVmemmapFrames + o.HotplugTableFrames) * o.Arch.PageSize / 1024), o.FreeKb, "the first attempt gave everything back");
        Assert.AreEqual(before.AbsentFrames - (long)o.BlockFrames, o.AbsentFrames);
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    /// <summary>vmemmap_populate: a PMD leaf of struct pages from the page allocator, or base pages where no such block can be had.</summary>
    [TestMethod]
    public void AHotAddedBlocksStructPagesAreMappedWithTheBootLeavesOrBasePages()
    {
        HotplugOutcome pmd = HotplugRig.Run("x86_64", "boot mem=1G\necho 0x40000000 > /sys/devices/system/memory/probe\n", step: new MappingLevel());
        HotplugOutcome pte = HotplugRig.Run("x86_64",
            "boot mem=1G\n" + FailNextAllocation + "echo 9 > /sys/kernel/debug/fail_page_alloc/min-order\necho 0x40000000 > /sys/devices/system/memory/probe\n",
            step: new MappingLevel());
        ArchInfo info = pmd.Arch;
        ulong memmapFrames = pmd.BlockFrames * (ulong)info.StructPageBytes / info.PageSize;

        Assert.AreEqual($"level {info.VmemmapBootLevel}", pmd.Notes.Single());
        Assert.AreEqual($"level {info.LastLevel}", pte.Notes.Single(), "the order-9 block failed: base pages");
        Assert.AreEqual((long)memmapFrames, pte.HotplugVmemmapFrames);
        Assert.IsTrue(pte.HotplugTableFrames > pmd.HotplugTableFrames, "base pages need a PTE table");
        Assert.AreEqual(0, pmd.Invariants.Count + pte.Invariants.Count, string.Join("\n", pmd.Invariants.Concat(pte.Invariants)));
    }

    /// <summary>Every huge page of block 8 taken into use, the others released; offline; release; offline again.</summary>
    private sealed class TakeTheBlocksPagesIntoUse : IHotplugStep
    {
        public void Run<TArch>(ScenarioSession<TArch> session, List<string> notes)
            where TArch : struct, IPagingArch
        {
            HugeTlbPool<TArch> pool = session.Pool;
            ulong blockStart = session.Machine.Hotplug.Block(8)!.StartPfn, blockEnd = session.Machine.Hotplug.Block(8)!.EndPfn;
            var taken = new List<HugePage>();
            while (pool.AllocForUse(pool.Default) is { } page)
            {
                taken.Add(page);
            }

            foreach (HugePage page in taken.Where(p => p.HeadPfn < blockStart || p.HeadPfn >= blockEnd))
            {
                pool.Release(page);
            }

            notes.Add(session.Files.Write(Memory8, "offline\n", out _).ToString());
            notes.Add(session.Machine.Hotplug.Block(8)!.State.ToString());
            notes.Add(pool.Pages(pool.Default).Count(p => p.HeadPfn >= blockStart && p.HeadPfn < blockEnd && p.State == HugePageState.InUse) > 0 ? "in use: ok" : "none in use");
            foreach (HugePage page in taken.Where(p => p.HeadPfn >= blockStart && p.HeadPfn < blockEnd))
            {
                pool.Release(page);
            }

            notes.Add(session.Files.Write(Memory8, "offline\n", out _).ToString());
            notes.Add(session.Machine.Hotplug.Block(8)!.State.ToString());
        }
    }

    /// <summary>The level of the leaf that maps block 8's first struct page.</summary>
    private sealed class MappingLevel : IHotplugStep
    {
        public void Run<TArch>(ScenarioSession<TArch> session, List<string> notes)
            where TArch : struct, IPagingArch
        {
            ulong start = session.Machine.Hotplug.Block(8)!.StartPfn;
            notes.Add($"level {session.Machine.PageTable.Walk(session.Machine.StructPageAddress(start)).Level}");
        }
    }
}
