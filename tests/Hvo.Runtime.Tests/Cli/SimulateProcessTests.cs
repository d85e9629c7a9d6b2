using System.Linq;
using System.Text.Json;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>The built hvo.dll as a real process, output redirected as in a pipeline.</summary>
[TestClass]
public sealed class SimulateProcessTests
{
    [TestMethod]
    public void TheDefaultSimulateSucceedsAndItsJsonHasEveryContractKey()
    {
        // Progress would show at once (delay 0) if redirected output did not turn it off.
        var (exit, output, err) = CliRun.Process(["simulate", "--json"], ("HVO_PROGRESS_DELAY_MS", "0"));
        Assert.AreEqual(0, exit, err);
        Assert.AreEqual(string.Empty, err, "no progress, no escape sequences when redirected");
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        string[] top = ["arch", "policy", "hvoEnabled", "meminfo", "hstates", "hvo"];
        string[] meminfo = ["MemTotal", "MemFree", "HugePages_Total", "HugePages_Free", "HugePages_Surp", "Hugepagesize", "Hugetlb"];
        string[] hstate = ["pageSize", "nrHugepages", "free", "surplus", "optimized"];
        string[] hvo = ["vmemmapPagesFreed", "vmemmapPagesRestored", "pteTablesAllocated", "pmdsSplit", "optimizeFailures", "restoreFailures", "tlbFlushes", "netBytesSaved"];
        foreach (string k in top)
        {
            Assert.IsTrue(root.TryGetProperty(k, out _), k);
        }

        foreach (string k in meminfo)
        {
            Assert.IsTrue(root.GetProperty("meminfo").TryGetProperty(k, out _), k);
        }

        foreach (JsonElement h in root.GetProperty("hstates").EnumerateArray())
        {
            foreach (string k in hstate)
            {
                Assert.IsTrue(h.TryGetProperty(k, out _), k);
            }
        }

        foreach (string k in hvo)
        {
            Assert.IsTrue(root.GetProperty("hvo").TryGetProperty(k, out _), k);
        }

        // The default: x86_64, 64 GiB, half of it as 2 MiB pages.
        Assert.AreEqual("x86_64", root.GetProperty("arch").GetString());
        Assert.AreEqual((64UL << 30) / 2 / (2UL << 20), root.GetProperty("meminfo").GetProperty("HugePages_Total").GetUInt64());
        Assert.AreEqual(ArchRegistry.Find("x86_64")!.Info.HugePageSizes.Count, root.GetProperty("hstates").GetArrayLength());
    }

    [TestMethod]
    public void TheTextReportKeepsTheKernelsMeminfoLines()
    {
        var (exit, output, err) = CliRun.Process(["simulate", "--memory", "2G"]);
        Assert.AreEqual(0, exit, err);
        string[] lines = output.Split('\n');
        Assert.IsTrue(lines.Any(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^MemTotal: {7}[ 0-9]{8} kB$")), output);
        Assert.IsTrue(lines.Any(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^HugePages_Total: {3}[ 0-9]{4}[0-9]$")), output);
        Assert.IsFalse(output.Contains('\u001b', System.StringComparison.Ordinal), "plain text when redirected");
    }

    [TestMethod]
    public void ErrorsInTheRealProcessExit2WithNoStackTrace()
    {
        CliRun.AssertUsageError(CliRun.Process(["simulate", "--memory", "3X"]), "'3X'", "64G");
        CliRun.AssertUsageError(CliRun.Process(["simulate", "--fail-alloc", "probability=-200"]), "'probability=-200'", "Invalid argument");
        CliRun.AssertUsageError(CliRun.Process(["simulate", "--plot", "out.gif"]), "'out.gif'");
    }
}
