using System.Linq;
using Hvo.HugeTlb;
using Hvo.Runtime.Tests.Hotplug;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>
/// The kernel's side of the shell: <c>dmesg</c> and <c>plug</c> are commands of <see cref="ShellCommands.All"/>
/// (in lists, pipelines and loops, with variables), reading and writing the session's one kernel
/// log; <c>config</c> is a line of its own before the boot line.
/// </summary>
[TestClass]
public sealed class ShellMachineCommandsTests
{
    [TestMethod]
    public void DmesgIsACommandOfTheShellOverTheSessionsOneLog()
    {
        const string boot = "boot mem=4G hugepagesz=1G hugepages=1 foo=1\n";
        // The boot line's own transcript is its notices as kernel: lines; dmesg prints the log without the prefix.
        static string[] Printed(ScenarioOutcome o) => [.. o.Lines().Where(l => !l.StartsWith("kernel: ", System.StringComparison.Ordinal))];
        string[] log = Printed(ScenarioHarness.Run("x86_64", boot + "dmesg\n", HvoPolicy.Find("v6.1")));
        string[] hugetlb = [.. log.Where(l => l.Contains("HugeTLB", System.StringComparison.Ordinal))];
        Assert.IsGreaterThan(2, hugetlb.Length, string.Join("\n", log));

        ScenarioOutcome o = ScenarioHarness.Run("x86_64",
            boot +
            "sysctl -q -w vm.nr_hugepages=8 && dmesg | grep Unknown\n" +
            "for i in 1 2; do dmesg | grep -c HugeTLB; done\n" +
            "false || dmesg | grep 'KiB vmemmap'\n",
            HvoPolicy.Find("v6.1"));
        CollectionAssert.AreEqual(
            new[] { log.Single(l => l.StartsWith("Unknown", System.StringComparison.Ordinal)), $"{hugetlb.Length}", $"{hugetlb.Length}" }
                .Concat(log.Where(l => l.Contains("KiB vmemmap", System.StringComparison.Ordinal))).ToArray(),
            Printed(o),
            string.Join("\n", o.Lines()));
        Assert.AreEqual(0, o.ExitStatus);
        Assert.IsEmpty(o.Failed);
    }

    [TestMethod]
    public void DmesgWithArgumentsFromAVariableIsRefusedWhenItRuns()
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", "F=-w\ndmesg $F\necho after\n");
        CollectionAssert.AreEqual(new[] { "dmesg takes no arguments here: it prints the kernel log so far", "after" }, o.Lines());
        Assert.HasCount(1, o.Failed);
        Assert.AreEqual(1, o.Failed[0].Status);
    }

    [TestMethod]
    public void PlugRunsInALoopWithVariablesAndItsKernelLinesJoinTheLog()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64",
            "boot mem=1G\n" +
            "for a in 0x40000000 0x48000000; do plug $a; done\n" +
            "plug 0x40000001 && echo announced\n" +
            "dmesg | grep -c PNP0C80\n" +
            "cat /sys/devices/system/memory/memory8/state /sys/devices/system/memory/memory9/state\n");
        CollectionAssert.AreEqual(
            new[] { "kernel: acpi PNP0C80:02: add_memory failed", "announced", "1", "offline", "offline" },
            o.Lines,
            "a misaligned device fails in the kernel, not in the shell: the firmware's event has status 0");
        Assert.IsTrue(o.Block(8).HotAdded && o.Block(9).HotAdded);
        Assert.AreEqual(1, o.KernelLog.Count(l => l == "acpi PNP0C80:02: add_memory failed"), "one log: plug's line is dmesg's");
        Assert.IsEmpty(o.Invariants, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    [DataRow("A=zz\nplug $A\n", "'zz' is not an address: plug takes a physical address and optionally node=N: plug 0x100000000 [node=1]")]
    [DataRow("N=node=x\nplug 0x40000000 $N\n", "'node=x': plug takes a physical address and optionally node=N: plug 0x100000000 [node=1], N a node below 64")]
    public void PlugArgumentsFromVariablesAreCheckedWhenItRuns(string script, string message)
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", "boot mem=1G\n" + script);
        CollectionAssert.AreEqual(new[] { message }, o.Lines);
        Assert.IsFalse(o.Blocks.Any(b => b.HotAdded));
    }

    [TestMethod]
    [DataRow("config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n; echo 1\n", 1, "'config' stands alone on a line before the boot line")]
    [DataRow("echo 1 && config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n\n", 11, "'config' stands alone on a line before the boot line")]
    [DataRow("config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=$V\n", 8, "config takes CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y or =n")]
    [DataRow("config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n > /dev/null\n", 58, "config takes CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y or =n")]
    [DataRow("for i in 1; do plug 0x40000000 > /dev/null; done\n", 32, "plug is the firmware's event, not a program: it has no output to redirect")]
    public void ConfigAndPlugOutOfPlaceAreLocatedErrors(string text, int column, string message)
    {
        var e = Assert.ThrowsExactly<ScriptError>(() => ScriptParser.Parse(text, "t.hvo"));
        StringAssert.Contains(e.Message, $":{column}: {message}");
    }

    [TestMethod]
    public void ConfigLinesMayFollowCommentsAndEachOtherTheLastOneWins()
    {
        Script s = ScriptParser.Parse(
            "# a Debian build\nconfig CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y\nconfig CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n\nboot mem=1G\necho 8 > /proc/sys/vm/nr_hugepages\n",
            "t.hvo");
        Assert.IsFalse(s.HvoDefaultOn);
        Assert.IsNotNull(s.Boot);
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", s, TestMachines.Options(HvoPolicy.Newest) with { EchoCommands = true, DefaultMemoryBytes = ScenarioHarness.GiB });
        Assert.AreEqual(0L, o.Counters.Freed, "built with HVO off by default");
        StringAssert.StartsWith(o.Transcript, "# a Debian build\n$ config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y\n$ config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=n\n$ boot mem=1G\n");
    }

    [TestMethod]
    public void TheVocabularyNamesTheKernelsCommands()
    {
        foreach (string word in new[] { "config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y|n (before boot)", "dmesg", "plug" })
        {
            StringAssert.Contains(ScriptParser.Vocabulary, word);
        }
    }
}
