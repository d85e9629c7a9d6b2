using System;
using System.Text.Json;
using Hvo.Runtime.Tests.Cli;

namespace Hvo.Runtime.Tests.Hotplug;

/// <summary>The report says what memory hotplug changed: the JSON's <c>memoryBlocks</c> and a line of the text report, only when a script changed a block.</summary>
[TestClass]
public sealed class HotplugReportTests
{
    [TestMethod]
    public void RunReportsMemoryBlocksOnlyWhenAScriptChangedThem()
    {
        (int exit, string output, string err) = CliRun.InProcessWithInput(
            "boot mem=1G memory_hotplug.memmap_on_memory=1\n" +
            "echo 0x40000000 > /sys/devices/system/memory/probe\n" +
            "plug 0x48000000\n" +
            "echo online_movable > /sys/devices/system/memory/memory9/state\n" +
            "echo offline > /sys/devices/system/memory/memory3/state\n",
            "run", "-", "--no-echo", "--json");
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output[output.IndexOf('{', StringComparison.Ordinal)..]);
        JsonElement blocks = doc.RootElement.GetProperty("memoryBlocks");
        Assert.AreEqual(128L << 20, blocks.GetProperty("blockSize").GetInt64());
        Assert.AreEqual(8, blocks.GetProperty("online").GetInt32(), "boot's 8 less memory3, plus memory9");
        Assert.AreEqual(1, blocks.GetProperty("movable").GetInt32());
        Assert.AreEqual(2, blocks.GetProperty("offline").GetInt32(), "memory3 and the probed memory8");
        Assert.AreEqual(2, blocks.GetProperty("hotAdded").GetInt32());
        Assert.AreEqual(1, blocks.GetProperty("selfHosted").GetInt32(), "the plugged device, not the probed block");

        (exit, output, err) = CliRun.InProcessWithInput("boot mem=1G\n", "run", "-", "--no-echo", "--json");
        Assert.AreEqual(0, exit, err);
        StringAssert.DoesNotMatch(output, new System.Text.RegularExpressions.Regex("memoryBlocks"), "nothing changed: no key");

        (exit, output, err) = CliRun.InProcessWithInput("boot mem=1G\necho offline > /sys/devices/system/memory/memory3/state\n", "run", "-", "--no-echo");
        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(output, "memory blocks (128M each): 7 online (0 in ZONE_MOVABLE), 1 offline; 0 hot-added (0 holding their own struct pages)\n");
    }
}
