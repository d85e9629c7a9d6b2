using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Hotplug;

/// <summary>
/// memory_hotplug.memmap_on_memory next to HVO, the v6.0 milestone (66361095129b): from v6.0 a memory
/// device's block keeps its struct pages in its own first frames and HVO leaves the huge pages they
/// describe unoptimized (vmemmap_should_optimize); up to v5.19 the two exclude each other, and HVO
/// on at boot wins (v5.19 ignores the parameter, which then reads N; v5.14 to v5.18 keep it, Y,
/// and decline it when adding memory); with memmap_on_memory in effect, v5.19 registers no
/// vm.hugetlb_optimize_vmemmap.
/// </summary>
[TestClass]
public sealed class MemmapOnMemoryTests
{
    private const string Param = "/sys/module/memory_hotplug/parameters/memmap_on_memory";
    private const string Sysctl = "/proc/sys/vm/hugetlb_optimize_vmemmap";

    private static string Plugged(string bootExtra) =>
        $"boot mem=1G memory_hotplug.memmap_on_memory=1{bootExtra}\n" +
        "plug 0x40000000\n" +
        "echo online_movable > /sys/devices/system/memory/memory8/state\n" +
        "echo 96 > /proc/sys/vm/nr_hugepages\n";

    [TestMethod]
    [DataRow("v5.19", false)]
    [DataRow("v6.0", true)]
    public void FromV60TheBlockHostsItsStructPagesAndHvoLeavesItsPagesAlone(string version, bool selfHosted)
    {
        HvoPolicy policy = HvoPolicy.Find(version)!;
        HotplugOutcome plain = HotplugRig.Run("x86_64", "boot mem=1G\n", policy);
        HotplugOutcome onlined = HotplugRig.Run("x86_64", Plugged(string.Empty).Replace("echo 96 > /proc/sys/vm/nr_hugepages\n", string.Empty, System.StringComparison.Ordinal), policy);
        HotplugOutcome filled = HotplugRig.Run("x86_64", Plugged(string.Empty), policy, readAtEnd: Param);
        HotplugOutcome offline = HotplugRig.Run("x86_64", Plugged(string.Empty) + "echo offline > /sys/devices/system/memory/memory8/state\n", policy);
        HotplugOutcome probed = HotplugRig.Run("x86_64", "boot mem=1G memory_hotplug.memmap_on_memory=1\necho 0x40000000 > /sys/devices/system/memory/probe\n", policy);
        ArchInfo info = plain.Arch;
        ulong memmapFrames = plain.BlockFrames * (ulong)info.StructPageBytes / info.PageSize;
        ulong pageKb = info.PageSize / 1024;

        Assert.AreEqual(selfHosted ? memmapFrames : 0, filled.Block(8).SelfHostedFrames);
        Assert.AreEqual(selfHosted ? "Y\n" : "N\n", filled.Files[Param], "v5.19's setter refuses the parameter while HVO is on");

        // MemTotal grows by what the block gives the page allocator: all of it, or all but its own struct pages.
        Assert.AreEqual(plain.MemInfo.MemTotalKb + ((plain.BlockFrames - (selfHosted ? memmapFrames : 0)) * pageKb), onlined.MemInfo.MemTotalKb);

        int inBlock = filled.PagesIn(8).Count();
        Assert.IsTrue(inBlock > 0);
        Assert.AreEqual(selfHosted ? 0 : inBlock, filled.PagesIn(8).Count(p => p.Optimized), "vmemmap_should_optimize: self-hosted struct pages stay");
        Assert.IsTrue(filled.Pages.Except(filled.PagesIn(8)).All(p => p.Optimized), "pages in boot memory are optimized either way");

        Assert.AreEqual("Offline", offline.Block(8).State, "its pages dissolved (nothing to restore when self-hosted)");
        Assert.AreEqual(96 - (ulong)inBlock, offline.MemInfo.HugePagesTotal);
        Assert.AreEqual(0UL, probed.Block(8).SelfHostedFrames, "the probe interface adds memory without MHP_MEMMAP_ON_MEMORY");
        Assert.AreEqual((long)memmapFrames, probed.HotplugVmemmapFrames);
        foreach (HotplugOutcome x in new[] { onlined, filled, offline, probed })
        {
            Assert.AreEqual(0, x.Invariants.Count, string.Join("\n", x.Invariants));
        }
    }

    [TestMethod]
    [DataRow("v5.19", false)]
    [DataRow("v6.0", true)]
    public void WithHvoOffAtBootV519HasNoSysctlToTurnItOnV60Has(string version, bool sysctl)
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", Plugged(" hugetlb_free_vmemmap=off"), HvoPolicy.Find(version), readAtEnd: [Param, Sysctl]);

        Assert.AreEqual(o.BlockFrames * (ulong)o.Arch.StructPageBytes / o.Arch.PageSize, o.Block(8).SelfHostedFrames, "memmap_on_memory in effect without HVO");
        Assert.AreEqual("Y\n", o.Files[Param]);
        Assert.AreEqual(sysctl ? "0\n" : "<ENOENT>", o.Files[Sysctl], "hugetlb_vmemmap_sysctls_init");
        Assert.AreEqual(0, o.Pages.Count(p => p.Optimized));
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    public void V518KeepsTheParameterButDeclinesItWhileHvoIsOn()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", Plugged(string.Empty), HvoPolicy.Find("v5.18"), readAtEnd: [Param, Sysctl]);

        Assert.AreEqual("Y\n", o.Files[Param], "module_param(bool): stored as written");
        Assert.AreEqual(0UL, o.Block(8).SelfHostedFrames, "mhp_supports_memmap_on_memory: !hugetlb_free_vmemmap_enabled");
        Assert.AreEqual("<ENOENT>", o.Files[Sysctl], "no sysctl before v5.19");
        Assert.IsTrue(o.PagesIn(8).All(p => p.Optimized));
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    public void APlugThatFailsIsLoggedAsTheAcpiDriverLogsIt()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", "boot mem=1G\nplug 0x40000000\nplug 0x40000000\nplug 0x44000000\nplug 0x48000000 node=3\ndmesg\n");

        CollectionAssert.AreEqual(new[]
        {
            "kernel: acpi PNP0C80:01: add_memory failed",
            "kernel: acpi PNP0C80:02: add_memory failed",
            "kernel: acpi PNP0C80:03: add_memory failed",
        }, o.Lines.Where(l => l.StartsWith("kernel:", System.StringComparison.Ordinal)).ToArray(), "present already, misaligned, a node the machine lacks");
        Assert.AreEqual(0, o.ShellErrors, "a firmware event is no shell command");
        Assert.AreEqual("Offline", o.Block(8).State);
        Assert.AreEqual(3, o.KernelLog.Count(l => l.EndsWith("add_memory failed", System.StringComparison.Ordinal)));
    }
}
