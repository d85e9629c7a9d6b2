using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Vmemmap;

/// <summary>
/// Restored and copied vmemmap frames hold bytes only where they differ from what the vmemmap
/// produces (Machine.CopyFrame, docs/ARCHITECTURE.md §5): grow/shrink cycles leave host memory
/// where the first one left it, and the frames written are exactly the split PTE tables and
/// v7.1's shared tail pages. 6.12.114's restore (and 6.12.118's) copies the head page unreset, bytes no struct
/// page there holds, so those frames are written.
/// </summary>
[TestClass]
public sealed class LazyRestoreTests
{
    private const int Pages = 256;

    /// <summary>Each milestone whose restore or copy differs, and the stable releases around 6.12.114.</summary>
    public static IEnumerable<object[]> FlatPolicies =>
        from arch in new[] { "x86_64", "arm64-4k" }
        from policy in new[] { "v5.14", "v5.18", "v6.2", "v6.7", "v6.12", "v6.15", "v7.1", "v6.12.111" }
        select new object[] { arch, policy };

    [TestMethod]
    [DynamicData(nameof(FlatPolicies))]
    public void GrowShrinkCyclesWriteOnlyTablesAndSharedTails(string arch, string policy)
    {
        (long tables, long sharedTails, long[] written) = Archs.Run(arch, new Cycles(HvoPolicy.Find(policy)!, 3));

        Assert.AreEqual(tables + sharedTails, written[0], "after one cycle only PTE tables and shared tails hold bytes");
        Assert.AreEqual(written[0], written[1], "the second cycle adds no host memory");
        Assert.AreEqual(written[0], written[2], "nor the third");
    }

    [TestMethod]
    [DataRow("v6.12.114")]
    [DataRow("v6.12.118")]
    public void SixTwelveOneFourteenOnWritesTheUnresetHeadCopies(string policy)
    {
        (long tables, long sharedTails, long[] written) = Archs.Run("x86_64", new Cycles(HvoPolicy.Find(policy)!, 1));

        // Each restored page's tail vmemmap pages hold copies of its head page: bytes, every one.
        long restoredFrames = Pages * (long)HugePageVmemmap.For<Arch.X86_64>(2UL << 20).FreedPages(1);
        Assert.AreEqual(tables + sharedTails + restoredFrames, written[0]);
    }

    /// <summary>Boot 1 GiB, then cycles of nr_hugepages = Pages and 0: the frames written beyond boot's after each, and the tables and shared tails allocated.</summary>
    private sealed class Cycles(HvoPolicy policy, int cycles) : IArchVisitor<(long Tables, long SharedTails, long[] Written)>
    {
        public (long Tables, long SharedTails, long[] Written) Visit<TArch>() where TArch : struct, IPagingArch
        {
            var options = TestMachines.Options(policy) with { EchoCommands = false };
            using var s = ScenarioSession<TArch>.Boot(ScriptParser.Parse("boot mem=1G\n", "cycles.hvo"), options);
            long boot = s.Machine.Frames.MaterializedFrames;
            var written = new long[cycles];
            for (int i = 0; i < cycles; i++)
            {
                Assert.AreEqual(Errno.None, s.Files.Write("/proc/sys/vm/nr_hugepages", Pages + "\n", out _));
                Assert.AreEqual((ulong)Pages, s.Pool.MemInfo().HugePagesTotal);
                Assert.AreEqual(Errno.None, s.Files.Write("/proc/sys/vm/nr_hugepages", "0\n", out _));
                written[i] = s.Machine.Frames.MaterializedFrames - boot;
            }

            HvoCounters c = s.Optimizer.Total;
            Assert.AreEqual((long)Pages * cycles, c.VmemmapPagesRestored / (long)HugePageVmemmap.For<TArch>(2UL << 20).FreedPages(policy.ReservePages), "every page was restored");
            return (c.PteTablesAllocated, c.SharedTailPages, written);
        }
    }
}
