using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>Pageblocks with migrate types, the fallback order and stealing (docs/ARCHITECTURE.md §5).</summary>
[TestClass]
public sealed class MobilityTests
{
    private const ulong MiB = 1UL << 20;
    private const ulong GiB = 1UL << 30;

    /// <summary>pageblock_order is HPAGE_PMD_ORDER (a table of 8-byte entries), capped at the highest buddy order.</summary>
    [TestMethod]
    [DataRow("x86_64")]
    [DataRow("arm64-16k")]
    [DataRow("arm64-64k")]
    public void PageblocksArePmdSizedAndMovableAtBoot(string arch)
    {
        ArchInfo info = Archs.Get(arch).Info;
        PageAllocator allocator = Create(arch, 2 * GiB);

        int pmdOrder = info.Levels[^2].Shift - info.PageShift;
        Assert.AreEqual(System.Math.Min(pmdOrder, allocator.MaxOrder), allocator.PageblockOrder);
        Zone zone = allocator.Zones.First(z => z.IsPopulated);
        Assert.AreEqual(0, allocator.PageblocksOf(zone, MigrateType.Unmovable), "memmap_init_range: every pageblock MIGRATE_MOVABLE");
        Assert.AreEqual(zone.FreePages, Enumerable.Range(0, allocator.MaxOrder + 1).Sum(o => zone.FreeBlocks(o, MigrateType.Movable) << o));
    }

    [TestMethod]
    public void AnUnmovableAllocationStealsTheLargestBlockAndTheNextOnesStayInIt()
    {
        PageAllocator allocator = Create("x86_64", 2 * GiB);

        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong first));
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong second));
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Movable, AllocSite.Other, FrameOwner.Buddy, out ulong movable));

        ulong maxBlock = 1UL << allocator.MaxOrder;
        Assert.AreEqual(first & ~(maxBlock - 1), second & ~(maxBlock - 1), "the second unmovable page comes from the stolen block");
        for (ulong p = first & ~(maxBlock - 1); p < (first & ~(maxBlock - 1)) + maxBlock; p += allocator.PageblockFrames)
        {
            Assert.AreEqual(MigrateType.Unmovable, allocator.PageblockMigrateType(p), "a whole max-order block changes type (change_pageblock_range)");
        }

        Assert.AreEqual(MigrateType.Movable, allocator.PageblockMigrateType(movable));
        Assert.AreNotEqual(first & ~(maxBlock - 1), movable & ~(maxBlock - 1), "a movable page stays out of the unmovable block");

        allocator.FreePages(first, 0, FrameOwner.Buddy);
        Zone zone = allocator.Zones.Single(z => z.StartPfn <= first && first < z.EndPfn && z.IsPopulated);
        Assert.IsTrue(Enumerable.Range(0, allocator.MaxOrder + 1).Any(o => zone.FreeBlocks(o, MigrateType.Unmovable) > 0), "freed to its pageblock's list");
    }

    [TestMethod]
    public void PagetypeinfoCountsFreeBlocksPerTypeAndPageblocks()
    {
        PageAllocator allocator = Create("x86_64", 2 * GiB);
        Assert.IsTrue(allocator.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out _));

        string text = allocator.PageTypeInfo();

        StringAssert.StartsWith(text, "Page block order: 9\nPages per block:  512\n\nFree pages count per migrate type at order       0      1");
        Zone dma32 = allocator.GetZone(0, 1);
        string unmovable = text.Split('\n').Single(l => l.StartsWith("Node    0, zone    DMA32, type    Unmovable", System.StringComparison.Ordinal));
        long[] counts = [.. unmovable.Split(' ', System.StringSplitOptions.RemoveEmptyEntries).Skip(6).Select(long.Parse)];
        CollectionAssert.AreEqual(Enumerable.Range(0, allocator.MaxOrder + 1).Select(o => dma32.FreeBlocks(o, MigrateType.Unmovable)).ToArray(), counts);
        StringAssert.Contains(text, $"Node 0, zone    DMA32 {allocator.PageblocksOf(dma32, MigrateType.Unmovable),12} {allocator.PageblocksOf(dma32, MigrateType.Movable),12} ");
        Assert.AreEqual(2, allocator.PageblocksOf(dma32, MigrateType.Unmovable), "one max-order block: two pageblocks");
    }

    [TestMethod]
    public void VmemmapRestoreAndPageTablesAreUnmovableAndHugePagesMovable()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 2 * GiB });
        var pool = new HugeTlbPool<Arch.X86_64>(m, new HvoOptimizer<Arch.X86_64>(m, HvoPolicy.Find("v6.1")!));
        Hstate<Arch.X86_64> h = pool.Hstate(2 * MiB);
        pool.SetNrHugepages(h, 1);
        ulong page = pool.Pages(h).Single().HeadPfn;

        pool.SetNrHugepages(h, 0);

        Assert.AreEqual(MigrateType.Movable, m.Pages.PageblockMigrateType(page), "GFP_HIGHUSER_MOVABLE");
        // From the page allocator: the boot's page tables came from memblock, in pageblocks memmap_init made movable.
        ulong[] restored = [.. Enumerable.Range(0, (int)m.PhysicalFrames).Select(i => m.Layout.FirstPfn + (ulong)i)
            .Where(p => m.Owners[p] is FrameOwner.RuntimeVmemmap or FrameOwner.PageTable && !m.Pages.IsReserved(p))];
        Assert.IsTrue(restored.Length > 0);
        Assert.IsTrue(restored.All(p => m.Pages.PageblockMigrateType(p) == MigrateType.Unmovable), "GFP_KERNEL: unmovable pageblocks");
    }
}
