using Hvo.Lib;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>One memory check, MachineSize.Check, answers simulate's --memory and the boot line's mem= alike.</summary>
[TestClass]
public sealed class MachineSizeTests
{
    /// <summary>Machines on either side of each limit: a max-order block per node, the vmemmap's reach, the frame store.</summary>
    public static System.Collections.Generic.IEnumerable<object[]> Cases()
    {
        foreach (ArchEntry e in ArchRegistry.All)
        {
            ArchInfo a = e.Info;
            ulong block = a.PageSize << MachineLayout.DefaultMaxOrder(a.PageShift);
            ulong describable = a.VmemmapSize / (ulong)a.StructPageBytes * a.PageSize;
            yield return [e.Name, block, 1, true];
            yield return [e.Name, block - a.PageSize, 1, false];
            yield return [e.Name, 4 * block, 4, true];
            yield return [e.Name, 4 * block, 5, false];
            yield return [e.Name, 64 * block, 64, true];
            if (describable <= FrameStore.MaxBytes)
            {
                yield return [e.Name, describable + a.PageSize, 1, false];
            }
            else
            {
                yield return [e.Name, FrameStore.MaxBytes + a.PageSize, 1, false];
            }
        }
    }

    /// <summary>The machines of <see cref="Cases"/> that must be refused.</summary>
    public static System.Collections.Generic.IEnumerable<object[]> Refused() =>
        System.Linq.Enumerable.Where(Cases(), c => !(bool)c[3]);

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void EachLimitAcceptsTheMachineAtItAndRefusesTheOnePast(string arch, ulong memory, int nodes, bool boots)
    {
        string? why = MachineSize.Check(Archs.Get(arch).Info, memory, nodes);
        Assert.AreEqual(boots, why is null, why);
    }

    [TestMethod]
    [DynamicData(nameof(Refused))]
    public void SimulateAndTheBootLineRefuseTheSameMachinesForTheSameReason(string arch, ulong memory, int nodes, bool boots)
    {
        Assert.IsFalse(boots);
        string why = MachineSize.Check(Archs.Get(arch).Info, memory, nodes) ?? throw new AssertFailedException("a refused machine has a reason");
        string size = CmdLine.FormatSize(memory);
        var (exit, output, err) = CliRun.InProcess("simulate", "--arch", arch, "--memory", size, "--nodes", nodes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.AreEqual(2, exit, output);
        Assert.AreEqual($"hvo: --memory: {size} {why}\n", err);

        string line = $"boot mem={size} numa=fake={nodes}";
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => ScenarioHarness.Run(arch, line));
        Assert.AreEqual($"test.hvo:1:6: mem={size} {why}", e.Message);
    }

    [TestMethod]
    public void WithoutMemTheDefaultMemoryIsCheckedAtNumaOrAtTheScriptsStart()
    {
        ArchInfo info = Archs.Get("arm64-64k").Info;
        string? why = MachineSize.Check(info, ScenarioHarness.GiB, 64);
        Assert.IsNotNull(why);
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => ScenarioHarness.Run("arm64-64k", "boot quiet numa=fake=64"));
        Assert.AreEqual($"test.hvo:1:12: the memory without mem= (1G) {why}", e.Message);

        var options = new ScenarioOptions { DefaultMemoryBytes = 256UL << 20 };
        e = Assert.ThrowsExactly<ScriptError>(() => ScenarioHarness.Run("arm64-64k", ScriptParser.Parse("cat /proc/meminfo\n", "t.hvo"), options));
        Assert.AreEqual($"t.hvo:1:1: the memory without mem= (256M) {MachineSize.Check(info, 256UL << 20, 1)}", e.Message);
    }

    [TestMethod]
    public void TheDefaultMachineIsSimulatesDefaultAndTheBootLinesWithoutMem()
    {
        Assert.AreEqual(MachineConfig.DefaultMemoryBytes, new ScenarioOptions().DefaultMemoryBytes);
        var (exit, output, err) = CliRun.InProcess("simulate", "--help");
        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(output, $"[default: {CmdLine.FormatSize(MachineConfig.DefaultMemoryBytes)}]");
        Assert.IsTrue(MachineSize.Check(Archs.Get("x86_64").Info, MachineConfig.DefaultMemoryBytes, MachineSize.MaxNodes) is null);
        Assert.ThrowsExactly<ScriptError>(() => ScriptParser.Parse($"boot numa=fake={MachineSize.MaxNodes + 1}", "t"));
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--nodes", (MachineSize.MaxNodes + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)), $"1 to {MachineSize.MaxNodes}");
    }
}
