using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Hotplug;

/// <summary>
/// offline_pages on a block holding shmem pages (docs/ARCHITECTURE.md §5): the range is isolated,
/// its movable pages migrated out (scan_movable_pages, do_migrate_range: the same migration
/// alloc_contig_range uses), then the block goes. A page that cannot move makes the kernel retry
/// until a fatal signal: here -EINTR, the block online, nothing lost.
/// </summary>
[TestClass]
public sealed class OfflineShmemTests
{
    private const string Memory8 = "/sys/devices/system/memory/memory8/state";

    // A 1 GiB machine with the block at 1 GiB hot-added into ZONE_MOVABLE, where shmem's movable
    // pages go first; a text file, then 64 MiB of zeros: the tmpfs lands in the movable block.
    private const string WithShmem =
        "boot mem=1G\n" +
        "echo 0x40000000 > /sys/devices/system/memory/probe\n" +
        "echo online_movable > " + Memory8 + "\n" +
        "mount -o remount,size=100% /dev/shm\n" +
        "echo kept > /dev/shm/text\n" +
        "head -c 64M /dev/zero > /dev/shm/data\n";

    // Then the rest of the machine filled until the page allocator refuses.
    private const string Full = WithShmem + "head -c 2G /dev/zero > /dev/shm/fill\n";
    private const string FillFailed = "head: error writing 'standard output': Cannot allocate memory";

    [TestMethod]
    public void OfflineMovesTheBlocksShmemPagesElsewhereAndKeepsThem()
    {
        HotplugOutcome online = HotplugRig.Run("x86_64", WithShmem, step: new ShmemInBlock());
        HotplugOutcome offline = HotplugRig.Run("x86_64", WithShmem + "echo offline > " + Memory8 + "\ncat /dev/shm/text\n", step: new ShmemInBlock());
        ulong blockKb = online.BlockFrames * (online.Arch.PageSize / 1024);
        long dataPages = (long)(64 * HotplugRig.MiB / online.Arch.PageSize);

        Assert.IsTrue(ShmemPagesInBlock(online) >= dataPages, "the tmpfs's pages went to the movable block first");
        CollectionAssert.AreEqual(new[] { "kept" }, offline.Lines, "the write succeeds and the file reads as it was written");
        Assert.AreEqual("Offline", offline.Block(8).State);
        Assert.AreEqual(0, ShmemPagesInBlock(offline), "no shmem page left in the block");
        Assert.AreEqual(ShmemPages(online), ShmemPages(offline), "every shmem page still there, elsewhere");
        Assert.AreEqual(online.MemInfo.ShmemKb, offline.MemInfo.ShmemKb);
        Assert.AreEqual(online.MemInfo.MemTotalKb - blockKb, offline.MemInfo.MemTotalKb);
        Assert.AreEqual(online.FreeKb - blockKb, offline.FreeKb,
            "the block's free frames go (buddy and per-CPU lists, which offline_pages drains), and the pages that moved out took as many frames elsewhere as they leave in it");
        Assert.AreEqual(0, offline.Invariants.Count, string.Join("\n", offline.Invariants));
    }

    [TestMethod]
    public void AShmemPageWithNowhereToGoEndsTheOfflineWithEintrUntilThereIsRoom()
    {
        HotplugOutcome full = HotplugRig.Run("x86_64", Full, step: new ShmemInBlock());
        HotplugOutcome failed = HotplugRig.Run("x86_64", Full + "echo offline > " + Memory8 + "\ncat " + Memory8 + "\n", step: new ShmemInBlock());
        HotplugOutcome retried = HotplugRig.Run("x86_64", Full + "echo offline > " + Memory8 + "\nrm /dev/shm/fill\necho offline > " + Memory8 + "\ncat /dev/shm/text\n", step: new ShmemInBlock());

        Assert.AreEqual(FillFailed, full.Lines.Single(), "the fill ends when the allocator refuses");
        Assert.IsTrue(ShmemPagesInBlock(full) > 0);
        CollectionAssert.AreEqual(new[] { FillFailed, "sh: echo: write error: Interrupted system call", "online" }, failed.Lines,
            "offline_pages retries the page until a signal ends it; the block stays online");
        Assert.AreEqual(ShmemPages(full), ShmemPages(failed), "no shmem page lost");
        Assert.AreEqual(full.MemInfo.ShmemKb, failed.MemInfo.ShmemKb);
        Assert.AreEqual(full.MemInfo.MemTotalKb, failed.MemInfo.MemTotalKb);
        Assert.AreEqual(0, failed.Invariants.Count, string.Join("\n", failed.Invariants));

        Assert.AreEqual("kept", retried.Lines[^1]);
        Assert.AreEqual("Offline", retried.Block(8).State, "once the fill is gone the pages can move and the block goes");
        Assert.AreEqual(0, ShmemPagesInBlock(retried));
        Assert.AreEqual(0, retried.Invariants.Count, string.Join("\n", retried.Invariants));
    }

    /// <summary>
    /// do_migrate_range asks for the new pages on any node with memory but the block's own (its node
    /// mask less the page's node), even where the own node has room for them.
    /// </summary>
    [TestMethod]
    public void OfflineMovesShmemPagesToAnotherNodeWhenThereIsOne()
    {
        const string Script = "boot mem=1G numa=fake=2\nhead -c 300M /dev/zero > /dev/shm/data\n";
        HotplugOutcome before = HotplugRig.Run("x86_64", Script, step: new ShmemInBlock(1));
        HotplugOutcome after = HotplugRig.Run("x86_64", Script + "echo offline > /sys/devices/system/memory/memory1/state\n", step: new ShmemInBlock(1));
        long moved = ShmemPagesInBlock(before);

        Assert.AreEqual(string.Empty, after.Transcript);
        Assert.AreEqual("Offline", after.Block(1).State);
        Assert.IsTrue(moved > 0 && NodeFreePages(before, 0) > moved, $"{moved} shmem pages in the block, room for them on its own node");
        Assert.AreEqual(0, ShmemPagesInBlock(after));
        Assert.AreEqual(NodeShmemPages(before, 1) + moved, NodeShmemPages(after, 1), "every page that moved went to node 1");
        Assert.AreEqual(NodeShmemPages(before, 0) - moved, NodeShmemPages(after, 0));
        Assert.AreEqual(0, after.Invariants.Count, string.Join("\n", after.Invariants));
    }

    private static long ShmemPagesInBlock(HotplugOutcome o) => long.Parse(o.Notes[0], System.Globalization.CultureInfo.InvariantCulture);

    private static long ShmemPages(HotplugOutcome o) => long.Parse(o.Notes[1], System.Globalization.CultureInfo.InvariantCulture);

    private static long NodeShmemPages(HotplugOutcome o, int nid) => long.Parse(o.Notes[2 + (2 * nid)], System.Globalization.CultureInfo.InvariantCulture);

    private static long NodeFreePages(HotplugOutcome o, int nid) => long.Parse(o.Notes[3 + (2 * nid)], System.Globalization.CultureInfo.InvariantCulture);

    // Notes the shmem frames in the block, the shmem frames in all, then each node's shmem and free frames.
    private sealed class ShmemInBlock(ulong id = 8) : IHotplugStep
    {
        public void Run<TArch>(ScenarioSession<TArch> session, List<string> notes)
            where TArch : struct, IPagingArch
        {
            Machine<TArch> m = session.Machine;
            ulong block = m.Hotplug.BlockFrames, start = id * block, end = m.Owners.EndPfn;
            notes.Add(Count(start, start + block, _ => true));
            notes.Add(m.Owners.Count(FrameOwner.Shmem).ToString(System.Globalization.CultureInfo.InvariantCulture));
            for (int nid = 0; nid < m.Layout.Nodes; nid++)
            {
                int n = nid;
                notes.Add(Count(m.Owners.FirstPfn, end, pfn => m.NodeOf(pfn) == n));
                notes.Add(m.Pages.Zones.Where(z => z.Node == n).Sum(z => z.FreePages).ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            string Count(ulong from, ulong to, System.Func<ulong, bool> where)
            {
                long c = 0;
                for (ulong pfn = from; pfn < to; pfn++)
                {
                    c += m.Owners[pfn] == FrameOwner.Shmem && where(pfn) ? 1 : 0;
                }

                return c.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }
}
