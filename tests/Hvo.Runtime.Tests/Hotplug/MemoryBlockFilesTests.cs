using System.Globalization;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Hotplug;

/// <summary>
/// /sys/devices/system/memory as drivers/base/memory.c shows it: the files' formats, and each write's
/// errno (state_store, the device core's online_store, probe_store, auto_online_blocks_store).
/// </summary>
[TestClass]
public sealed class MemoryBlockFilesTests
{
    private const string Mem = "/sys/devices/system/memory/";

    [TestMethod]
    public void BootMemoryIsOnlineBlocksOfOneSectionEachBelow64GiB()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", "boot mem=1G\n", readAtEnd:
            [Mem + "block_size_bytes", Mem + "auto_online_blocks", Mem + "memory0/valid_zones", Mem + "memory1/valid_zones", Mem + "memory7/state",
             Mem + "memory7/online", Mem + "memory7/phys_index", Mem + "memory7/removable", Mem + "memory7/phys_device", Mem + "memory8/state",
             Mem + "memory7", Mem + "memory07/state", Mem + "memory7/state/x"]);
        ulong section = 1UL << o.Arch.SectionShift;

        Assert.AreEqual(section.ToString("x", CultureInfo.InvariantCulture) + "\n", o.Files[Mem + "block_size_bytes"], "hex, no 0x");
        Assert.AreEqual((ulong)(1L << 30) / section, (ulong)o.Blocks.Count, "a block per section of boot memory, none above it");
        Assert.IsTrue(o.Blocks.All(b => b.State == "Online" && !b.HotAdded));
        Assert.AreEqual("offline\n", o.Files[Mem + "auto_online_blocks"]);
        Assert.AreEqual("none\n", o.Files[Mem + "memory0/valid_zones"], "block 0 holds DMA and DMA32");
        Assert.AreEqual("DMA32\n", o.Files[Mem + "memory1/valid_zones"]);
        Assert.AreEqual("online\n", o.Files[Mem + "memory7/state"]);
        Assert.AreEqual("1\n", o.Files[Mem + "memory7/online"]);
        Assert.AreEqual("00000007\n", o.Files[Mem + "memory7/phys_index"]);
        Assert.AreEqual("1\n", o.Files[Mem + "memory7/removable"]);
        Assert.AreEqual("0\n", o.Files[Mem + "memory7/phys_device"]);
        Assert.AreEqual("<ENOENT>", o.Files[Mem + "memory8/state"], "memory above mem= has no block until it is added");
        Assert.AreEqual("<EISDIR>", o.Files[Mem + "memory7"]);
        Assert.AreEqual("<ENOENT>", o.Files[Mem + "memory07/state"], "memoryN has no leading zeros");
        Assert.AreEqual("<ENOTDIR>", o.Files[Mem + "memory7/state/x"]);
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    /// <summary>
    /// x86-64's probe_memory_block_size: one section while boot memory ends below 64 GiB, else the
    /// largest power of two up to 2 GiB the end of boot memory is aligned to. A PC's RAM above
    /// 3 GiB lies from 4 GiB, so N GiB of RAM end at N + 1 GiB.
    /// </summary>
    [TestMethod]
    [DataRow("62G", 128UL << 20)]
    [DataRow("63G", 2UL << 30)]
    [DataRow("64G", 1UL << 30)]
    public void X86BlocksGrowWithTheMachine(string mem, ulong expected)
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", $"boot mem={mem}\n", machineBytes: 65UL << 30, readAtEnd: Mem + "block_size_bytes");

        Assert.AreEqual(expected.ToString("x", CultureInfo.InvariantCulture) + "\n", o.Files[Mem + "block_size_bytes"]);
        Assert.AreEqual(expected >> 12, o.BlockFrames);
    }

    [TestMethod]
    public void Arm64BlocksAreSectionsAndHaveNoProbe()
    {
        foreach (string arch in new[] { "arm64-4k", "arm64-64k" })
        {
            HotplugOutcome o = HotplugRig.Run(arch, "boot mem=2G\necho 0x80000000 > /sys/devices/system/memory/probe\n", machineBytes: 4 * HotplugRig.GiB,
                readAtEnd: [Mem + "block_size_bytes", Mem + "probe", "/sys/module/memory_hotplug/parameters/memmap_on_memory"]);
            ulong section = 1UL << o.Arch.SectionShift;
            Assert.AreEqual(section.ToString("x", CultureInfo.InvariantCulture) + "\n", o.Files[Mem + "block_size_bytes"], arch);
            Assert.AreEqual("<ENOENT>", o.Files[Mem + "probe"], "CONFIG_ARCH_MEMORY_PROBE is x86's");
            Assert.AreEqual("<ENOENT>", o.Files["/sys/module/memory_hotplug/parameters/memmap_on_memory"], "CONFIG_MHP_MEMMAP_ON_MEMORY is modelled on x86-64");
            Assert.AreEqual("sh: /sys/devices/system/memory/probe: Permission denied", o.Lines.Single(), "sysfs creates no file");
        }
    }

    [TestMethod]
    public void StateWritesAndTheirErrnos()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64",
            "boot mem=1000M\n" +
            "echo online > /sys/devices/system/memory/memory3/state\n" +      // online already: device_online returns 1
            "echo onlin > /sys/devices/system/memory/memory3/state\n" +       // not one of the four words
            "echo -n online_movable > /sys/devices/system/memory/memory3/state\n" +
            "echo offline > /sys/devices/system/memory/memory0/state\n" +     // DMA and DMA32: no single zone
            "echo offline > /sys/devices/system/memory/memory7/state\n" +     // 104 MiB present of 128: a hole
            "echo 1 > /sys/devices/system/memory/memory3/online\n" +          // online_store: online already is fine
            "echo maybe > /sys/devices/system/memory/memory3/online\n" +      // kstrtobool
            "echo offline > /sys/devices/system/memory/memory3/state\n" +
            "echo offline > /sys/devices/system/memory/memory3/state\n" +     // offline already
            "echo 0 > /sys/devices/system/memory/memory3/online\n" +
            "cat /sys/devices/system/memory/memory3/state /sys/devices/system/memory/memory3/online /sys/devices/system/memory/memory3/valid_zones\n" +
            "echo online_kernel > /sys/devices/system/memory/memory3/state\n" +
            "cat /sys/devices/system/memory/memory3/valid_zones\n");

        CollectionAssert.AreEqual(new[]
        {
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Invalid argument",
            "offline", "0", "DMA32 Movable",
            "DMA32",
        }, o.Lines);
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    public void ProbeAddsOneOfflineBlockAndRefusesWhatTheKernelRefuses()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64",
            "boot mem=1G\n" +
            "echo 0x40000000 > /sys/devices/system/memory/probe\n" +
            "echo 0x40000000 > /sys/devices/system/memory/probe\n" +           // present now: register_memory_resource
            "echo 0 > /sys/devices/system/memory/probe\n" +                    // boot memory
            "echo 0x40001000 > /sys/devices/system/memory/probe\n" +           // not block-aligned
            "echo 1G > /sys/devices/system/memory/probe\n" +                   // kstrtoull takes no suffix
            "echo 0x80000000 > /sys/devices/system/memory/probe\n" +           // beyond the machine's 2 GiB
            "echo 0x400000000000 > /sys/devices/system/memory/probe\n" +       // beyond MAX_PHYSMEM_BITS (46)
            "echo 99999999999999999999 > /sys/devices/system/memory/probe\n" + // more than 64 bits
            "cat /sys/devices/system/memory/memory8/state /sys/devices/system/memory/memory8/valid_zones /sys/devices/system/memory/memory8/phys_index\n");

        CollectionAssert.AreEqual(new[]
        {
            "sh: echo: write error: File exists",
            "sh: echo: write error: File exists",
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Invalid argument",
            "sh: echo: write error: Argument list too long",
            "sh: echo: write error: Argument list too long",
            "sh: echo: write error: Numerical result out of range",
            "offline", "Normal Movable", "00000008",
        }, o.Lines);
        Assert.IsTrue(o.Block(8).HotAdded);
        Assert.IsTrue(o.KernelLog.Contains("Hotplug memory [0x400000000000-0x400008000000] exceeds maximum addressable range [0-0x3fffffffffff]"), string.Join("\n", o.KernelLog));
        Assert.AreEqual((long)o.BlockFrames, o.OfflineFrames, "the block's frames are present and offline");
        Assert.AreEqual((long)o.BlockFrames * 7, o.AbsentFrames, "the rest of the machine is still absent");
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    public void AutoOnlineBlocksDecidesWhatAProbedBlockBecomes()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64",
            "boot mem=1G memhp_default_state=online\n" +
            "cat /sys/devices/system/memory/auto_online_blocks\n" +
            "echo 0x40000000 > /sys/devices/system/memory/probe\n" +
            "echo online_movable > /sys/devices/system/memory/auto_online_blocks\n" +
            "echo 0x48000000 > /sys/devices/system/memory/probe\n" +
            "echo sideways > /sys/devices/system/memory/auto_online_blocks\n" +
            "cat /sys/devices/system/memory/memory8/valid_zones /sys/devices/system/memory/memory9/valid_zones /sys/devices/system/memory/auto_online_blocks\n");

        CollectionAssert.AreEqual(new[] { "online", "sh: echo: write error: Invalid argument", "Normal", "Movable", "online_movable" }, o.Lines);
        Assert.AreEqual(0, o.OfflineFrames);
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
    }

    [TestMethod]
    public void AnUnknownMemhpDefaultStateIsIgnoredAndABadMemmapOnMemoryIsAnError()
    {
        HotplugOutcome o = HotplugRig.Run("x86_64", "boot mem=1G memhp_default_state=sometimes\ncat /sys/devices/system/memory/auto_online_blocks\n");
        Assert.AreEqual("offline", o.Lines.Single(), "setup_memhp_default_state keeps the default");

        var e = Assert.ThrowsExactly<Hvo.Scenario.ScriptError>(() => HotplugRig.Run("x86_64", "boot mem=1G memory_hotplug.memmap_on_memory=force\n"));
        StringAssert.Contains(e.Message, "hotplug.hvo:1:13: memory_hotplug.memmap_on_memory=force");
    }

    [TestMethod]
    public void PlugLinesAreCheckedBeforeAnythingRuns()
    {
        // A missing address is located after the command's name, as the shell's other commands' are; a redirection at its '>'.
        foreach ((string line, int column) in new[] { ("plug", 5), ("plug zz", 6), ("plug 0x40000000 node=x", 17), ("plug 1 2 3", 6), ("plug 0x40000000 > /tmp/x", 17) })
        {
            var e = Assert.ThrowsExactly<Hvo.Scenario.ScriptError>(() => HotplugRig.Run("x86_64", "boot mem=1G\n" + line + "\n"), line);
            StringAssert.StartsWith(e.Message, $"hotplug.hvo:2:{column}: ", line);
        }
    }

    /// <summary>The sysctl's line and the policy it depends on are the only differences a hot-add makes to meminfo's totals: MemTotal grows by the block when it is onlined.</summary>
    [TestMethod]
    public void OnliningAndOffliningMoveMemTotalAndMemFreeByTheBlock()
    {
        HotplugOutcome before = HotplugRig.Run("x86_64", "boot mem=1G\n");
        HotplugOutcome added = HotplugRig.Run("x86_64", "boot mem=1G\necho 0x40000000 > /sys/devices/system/memory/probe\n");
        HotplugOutcome online = HotplugRig.Run("x86_64", "boot mem=1G\necho 0x40000000 > /sys/devices/system/memory/probe\necho online > /sys/devices/system/memory/memory8/state\n");
        HotplugOutcome offline = HotplugRig.Run("x86_64",
            "boot mem=1G\necho 0x40000000 > /sys/devices/system/memory/probe\necho online > /sys/devices/system/memory/memory8/state\necho offline > /sys/devices/system/memory/memory8/state\n");
        ulong blockKb = before.BlockFrames * before.Arch.PageSize / 1024;
        ulong memmapFrames = before.BlockFrames * (ulong)before.Arch.StructPageBytes / before.Arch.PageSize;
        ulong pageKb = before.Arch.PageSize / 1024;

        Assert.AreEqual(memmapFrames, (ulong)added.HotplugVmemmapFrames, "a struct page per frame of the block, populated when it is added");
        Assert.AreEqual(before.MemInfo.MemTotalKb, added.MemInfo.MemTotalKb, "an offline block is not in MemTotal");
        Assert.AreEqual(before.FreeKb - ((memmapFrames + (ulong)added.HotplugTableFrames) * pageKb), added.FreeKb, "its struct pages came from the page allocator");
        Assert.AreEqual(added.MemInfo.MemTotalKb + blockKb, online.MemInfo.MemTotalKb);
        Assert.AreEqual(added.FreeKb + blockKb, online.FreeKb);
        Assert.AreEqual(added.MemInfo.MemTotalKb, offline.MemInfo.MemTotalKb);
        Assert.AreEqual(added.FreeKb, offline.FreeKb);
        Assert.AreEqual("Normal Movable", offline.Block(8).ValidZones);
        foreach (HotplugOutcome o in new[] { before, added, online, offline })
        {
            Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
        }
    }

    [TestMethod]
    public void NrMemmapPagesCountsTheStructPagesOfHotAddedMemoryFromV611()
    {
        const string Script = "boot mem=1G\necho 0x40000000 > /sys/devices/system/memory/probe\n";
        HotplugOutcome v611 = HotplugRig.Run("x86_64", "boot mem=1G\n", HvoPolicy.Find("v6.11"), readAtEnd: "/proc/vmstat");
        HotplugOutcome added = HotplugRig.Run("x86_64", Script, HvoPolicy.Find("v6.11"), readAtEnd: "/proc/vmstat");
        long before = Counter(v611.Files["/proc/vmstat"], "nr_memmap_pages");

        Assert.AreEqual(before + (long)(added.BlockFrames * (ulong)added.Arch.StructPageBytes / added.Arch.PageSize), Counter(added.Files["/proc/vmstat"], "nr_memmap_pages"));
        Assert.AreEqual(Counter(v611.Files["/proc/vmstat"], "nr_memmap_boot_pages"), Counter(added.Files["/proc/vmstat"], "nr_memmap_boot_pages"));
    }

    private static long Counter(string vmstat, string name) =>
        long.Parse(vmstat.Split('\n').Single(l => l.StartsWith(name + " ", System.StringComparison.Ordinal)).Split(' ')[1], CultureInfo.InvariantCulture);
}
