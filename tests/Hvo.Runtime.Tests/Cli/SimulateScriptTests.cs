using System.Linq;
using Hvo.Cli;
using Hvo.HugeTlb;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>simulate's options become a boot line and writes, which run as any script does.</summary>
[TestClass]
public sealed class SimulateScriptTests
{
    [TestMethod]
    public void OptionsBecomeABootLineFaultWritesAndOneWriteOfNrHugepagesPerSize()
    {
        var simulation = new SimulateScript(32UL << 30, 2, false, [(2UL << 20, 2048), (1UL << 30, 8)], FaultSpec.Parse("probability=5,times=-1"));
        string[] lines = [.. simulation.Build().Lines.Select(l => l.Text)];
        const string fail = FaultInjectionFiles.FailPageAllocDir;
        CollectionAssert.AreEqual(
            new[]
            {
                "boot mem=32G numa=fake=2 hugetlb_free_vmemmap=off",
                $"echo N > {fail}ignore-gfp-wait",
                $"echo N > {fail}ignore-gfp-highmem",
                $"echo 5 > {fail}probability",
                $"echo -1 > {fail}times",
                "echo 2048 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
                "echo 8 > /sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
            },
            lines);
    }

    [TestMethod]
    public void PlotWritesGrowEachSizeInEqualStepsSkippingRepeats()
    {
        var simulation = new SimulateScript(1UL << 30, 1, true, [(2UL << 20, 100), (1UL << 30, 2)], null, Writes: SimulateCommand.PlotWrites);
        ulong[] targets = [.. simulation.Build().Statements.OfType<EchoStatement>().Select(e => ulong.Parse(e.Value, System.Globalization.CultureInfo.InvariantCulture))];
        ulong[] Steps(ulong count) => [.. Enumerable.Range(1, SimulateCommand.PlotWrites).Select(i => count * (ulong)i / SimulateCommand.PlotWrites).Distinct()];
        CollectionAssert.AreEqual(Steps(100).Concat(Steps(2)).ToArray(), targets);
        Assert.AreEqual(SimulateCommand.PlotWrites, Steps(100).Length, "100 pages: a distinct count at each write");
        CollectionAssert.AreEqual(new[] { 0UL, 1UL, 2UL }, Steps(2), "2 pages: three distinct counts");
    }

    [TestMethod]
    public void TheDefaultIsHalfOfTheDefaultMemoryAsDefaultHugePages()
    {
        foreach (var entry in Hvo.Paging.ArchRegistry.All)
        {
            SimulateScript d = SimulateScript.Default(entry.Info);
            ulong size = HugeTlbCommandLine.ArchDefaultSize(entry.Info);
            Assert.AreEqual(MachineConfig.DefaultMemoryBytes, d.MemoryBytes);
            CollectionAssert.AreEqual(new[] { (size, MachineConfig.DefaultMemoryBytes / 2 / size) }, d.Pages.ToArray(), entry.Name);
            Assert.AreEqual(d.Pages[0], SimulateCommand.ParseHugepages(null, entry.Info, d.MemoryBytes).Single(), "simulate with no --hugepages");
        }
    }

    [TestMethod]
    public void TheLastCountOfASizeIsTheOneAskedFor()
    {
        var simulation = new SimulateScript(1UL << 30, 1, true, [(2UL << 20, 10), (1UL << 30, 1), (2UL << 20, 30)], null);
        Assert.AreEqual(30UL, simulation.Requested[2UL << 20]);
        Assert.AreEqual(1UL, simulation.Requested[1UL << 30]);
        Assert.AreEqual(41UL, simulation.TotalPages);
        Assert.AreEqual(ulong.MaxValue, new SimulateScript(1UL << 30, 1, true, [(2UL << 20, ulong.MaxValue), (1UL << 30, 1)], null).TotalPages);
    }
}
