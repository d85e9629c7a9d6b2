using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// hugepages= on the boot line is allocated by a padata job from v6.13 (hugetlb_pages_alloc_boot);
/// the simulator spreads the struct page part of it over host threads (docs/ARCHITECTURE.md,
/// boot-time huge pages). Whatever the thread count, the pool holds the same pages in the same
/// order with the same struct pages, and every counter agrees with the serial boot.
/// </summary>
[TestClass]
public sealed class BootAllocThreadsTests
{
    public static IEnumerable<object[]> Cases =>
        from policy in new[] { "v6.7", "v6.13", "v7.1" }
        from nodes in new[] { 1, 2 }
        select new object[] { policy, nodes };

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void ThreadsGiveTheSerialBoot(string policy, int nodes)
    {
        string serial = Boot<Arch.X86_64>(policy, nodes, hostThreads: 1, out int pages);
        Assert.IsTrue(pages > 100, $"the boot line's pages were allocated ({pages})");
        Assert.AreEqual(serial, Boot<Arch.X86_64>(policy, nodes, hostThreads: 2, out _));
        Assert.AreEqual(serial, Boot<Arch.X86_64>(policy, nodes, hostThreads: 3, out _));
    }

    [TestMethod]
    public void ThreadsGiveTheSerialBootOnArm64()
    {
        string serial = Boot<Arch.Arm64_4k>("v6.13", 2, hostThreads: 1, out _);
        Assert.AreEqual(serial, Boot<Arch.Arm64_4k>("v6.13", 2, hostThreads: 2, out _));
    }

    // Everything a boot leaves that threads could change: each node's free list (pfns in order,
    // optimized or not), the struct pages of every page (head, first tail, last tail, read through
    // the MMU), HVO's counters, the violations found, the free and total memory and the owners of
    // the frames.
    private static string Boot<TArch>(string policy, int nodes, int hostThreads, out int pages)
        where TArch : struct, IPagingArch
    {
        var line = HugeTlbCommandLine.Parse("hugepages=600", TArch.Info);
        using Machine<TArch> m = HugeBootPages.Boot<TArch>(new MachineConfig { MemoryBytes = 4UL << 30, Nodes = nodes, HostThreads = hostThreads }, line, out HugeBootPages bootPages);
        var hvo = new HvoOptimizer<TArch>(m, HvoPolicy.Find(policy)!);
        var pool = new HugeTlbPool<TArch>(m, hvo, bootPages);
        // Mainline's PMD split on arm64 skips break-before-make (a finding of its own, counted below).
        List<string> broken = new Invariants<TArch>(m, pool) { IncludeBreakBeforeMake = false }.CheckAll();
        Assert.AreEqual(0, broken.Count, string.Join("\n", broken.Take(5)));

        var text = new System.Text.StringBuilder();
        Span<byte> sp = stackalloc byte[TArch.StructPageBytes];
        pages = 0;
        for (int nid = 0; nid < nodes; nid++)
        {
            foreach (HugePage p in pool.Default.FreeList(nid))
            {
                pages++;
                text.Append($"{nid}:{p.HeadPfn:x}:{p.VmemmapOptimized}");
                foreach (ulong pfn in new[] { p.HeadPfn, p.HeadPfn + 1, p.HeadPfn + p.Frames - 1 })
                {
                    Assert.AreEqual(AccessFault.None, m.ReadStructPage(0, pfn, sp));
                    text.Append(':').Append(Convert.ToHexString(sp));
                }

                text.AppendLine();
            }
        }

        HvoCounters c = hvo.Total;
        text.AppendLine($"optimized {c.OptimizedPages} freed {c.VmemmapPagesFreed} split {c.PmdsSplit} tables {c.PteTablesAllocated}");
        text.AppendLine($"violations {m.Violations.Count}");
        text.AppendLine($"free {m.MemFreeBytes} total {m.MemTotalBytes} nr {pool.NrHugepages(pool.Default)} compounds {m.Compounds.Count}");
        foreach (Hvo.Memory.FrameOwner owner in Enum.GetValues<Hvo.Memory.FrameOwner>())
        {
            text.AppendLine($"{owner} {m.Owners.Count(owner)}");
        }

        return text.ToString();
    }
}
