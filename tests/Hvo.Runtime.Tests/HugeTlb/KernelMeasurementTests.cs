using System;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// What a real Linux 6.1 x86-64 kernel shows (docs/ARCHITECTURE.md §7.3), on the simulated one: the pool and
/// the v6.1 policy together (reserve 1, no head copy, each page optimized as it is allocated). Every number comes from the spec's arithmetic, none is typed in.
/// </summary>
[TestClass]
public sealed class KernelMeasurementTests
{
    private const ulong TwoMiB = 2UL << 20;

    private static readonly HvoPolicy Linux61 = HvoPolicy.Find("v6.1")!;

    [TestMethod]
    public void GrowingChangesFreeMemoryByThePagesLessWhatHvoFreesPlusTheNewTables()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 16UL << 30, Strict = true });
        var hvo = new HvoOptimizer<Arch.X86_64>(m, Linux61);
        var pool = new HugeTlbPool<Arch.X86_64>(m, hvo);
        ulong freedKb = HugePageVmemmap.For(Arch.X86_64.Info, TwoMiB).FreedPages(Linux61.ReservePages) * Arch.X86_64.PageSize / 1024;
        ulong tableKb = Arch.X86_64.PageSize / 1024;
        const ulong N = 1000;
        long free0 = (long)(TestMachines.FreeBytes(m) / 1024);
        long total0 = (long)(m.MemTotalBytes / 1024);

        pool.SetNrHugepages(pool.Hstate(TwoMiB), N);

        long t = hvo.Total.PmdsSplit;
        ulong[] firstPmds = VmemmapPmdsOf(m, pool);
        Assert.IsTrue(t >= (long)Math.Ceiling(N / 64.0), "at least one vmemmap PMD per 64 pages");
        Assert.AreEqual(firstPmds.Length, t, "T: the vmemmap PMDs holding the new pages' struct pages");
        Assert.AreEqual(-(long)(2048 * N) + (long)(freedKb * N) - (t * (long)tableKb), (long)(TestMachines.FreeBytes(m) / 1024) - free0, "-2048N + 28N - 4T kB");
        Assert.AreEqual((long)(freedKb * N), (long)(m.MemTotalBytes / 1024) - total0, "MemTotal rises by the boot vmemmap given back");

        pool.SetNrHugepages(pool.Hstate(TwoMiB), 0);

        Assert.AreEqual(-(t * (long)tableKb), (long)(TestMachines.FreeBytes(m) / 1024) - free0, "a full cycle costs exactly the tables: restore took 28N kB of ordinary pages back");
        Assert.AreEqual((long)(freedKb * N), (long)(m.MemTotalBytes / 1024) - total0, "MemTotal never comes back down");

        long freeAfterCycle = (long)(TestMachines.FreeBytes(m) / 1024);
        pool.SetNrHugepages(pool.Hstate(TwoMiB), N);
        long newPmds = VmemmapPmdsOf(m, pool).Except(firstPmds).LongCount();
        pool.SetNrHugepages(pool.Hstate(TwoMiB), 0);
        Assert.AreEqual(t + newPmds, hvo.Total.PmdsSplit, "a second cycle splits only the PMDs of ground the first did not cover: on the same ground, none");
        Assert.AreEqual(freeAfterCycle - (newPmds * (long)tableKb), (long)(TestMachines.FreeBytes(m) / 1024), "and costs only their tables");
        Assert.AreEqual(0, m.Violations.Count, string.Join("\n", m.Violations.Snapshot()));
    }

    private static ulong[] VmemmapPmdsOf(Machine<Arch.X86_64> m, HugeTlbPool<Arch.X86_64> pool) =>
        [.. pool.Pages(pool.Hstate(TwoMiB)).Select(p => m.StructPageAddress(p.HeadPfn) >> 21).Distinct()];

    [TestMethod]
    public void BootTimeGiganticPagesWithHvoRaiseMemTotalByWhatTheyFree()
    {
        ulong oneGiB = 1UL << 30;
        long Boot(bool hvoOn)
        {
            var line = HugeTlbCommandLine.Parse("hugepagesz=1G hugepages=3", Arch.X86_64.Info);
            using var m = HugeBootPages.Boot<Arch.X86_64>(new MachineConfig { MemoryBytes = 16UL << 30 }, line, out HugeBootPages bootPages);
            var pool = new HugeTlbPool<Arch.X86_64>(m, new HvoOptimizer<Arch.X86_64>(m, Linux61, new HvoSwitches(bootParameter: hvoOn)), bootPages);
            Assert.AreEqual(3UL, pool.NrHugepages(pool.Hstate(oneGiB)));
            return (long)(m.MemTotalBytes / 1024);
        }

        ulong freedKb = HugePageVmemmap.For(Arch.X86_64.Info, oneGiB).FreedPages(Linux61.ReservePages) * Arch.X86_64.PageSize / 1024;
        Assert.AreEqual((long)(3 * freedKb), Boot(hvoOn: true) - Boot(hvoOn: false), "16380 kB per 1 GiB page");
    }

    [TestMethod]
    public void DemotingAnOptimizedGiganticPageCostsTheDifferenceAndNoNewTable()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8UL << 30, Strict = true });
        var hvo = new HvoOptimizer<Arch.X86_64>(m, Linux61);
        var pool = new HugeTlbPool<Arch.X86_64>(m, hvo);
        Hstate<Arch.X86_64> giant = pool.Hstate(1UL << 30);
        pool.SetNrHugepages(giant, 1);
        long free0 = (long)(TestMachines.FreeBytes(m) / 1024);
        long total0 = (long)(m.MemTotalBytes / 1024);
        long tables0 = hvo.Total.PteTablesAllocated;

        Assert.AreEqual(HugeTlbStatus.Ok, pool.Demote(giant).Status);

        ulong giantKb = HugePageVmemmap.For(Arch.X86_64.Info, 1UL << 30).FreedPages(1) * 4;
        ulong smallKb = HugePageVmemmap.For(Arch.X86_64.Info, TwoMiB).FreedPages(1) * 4;
        Assert.AreEqual(-(long)(giantKb - (512 * smallKb)), (long)(TestMachines.FreeBytes(m) / 1024) - free0, "16380 - 512*28 kB");
        Assert.AreEqual(total0, (long)(m.MemTotalBytes / 1024), "MemTotal does not move");
        Assert.AreEqual(tables0, hvo.Total.PteTablesAllocated, "no new PTE table");
        Assert.AreEqual(512UL, pool.NrHugepages(pool.Hstate(TwoMiB)));
        Assert.AreEqual(512, pool.Pages(pool.Hstate(TwoMiB)).Count(p => p.VmemmapOptimized));
    }
}
