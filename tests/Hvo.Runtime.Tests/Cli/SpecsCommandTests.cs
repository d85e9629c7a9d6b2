using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Cli;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

[TestClass]
public sealed class SpecsCommandTests
{
    private static (int Exit, string Out, string Err) Hvo(params string[] args) => CliRun.InProcess(args);

    [TestMethod]
    public void SpecsJsonListsEveryArchitectureWithItsFreedPages()
    {
        var (exit, output, _) = Hvo("specs", "--json");
        Assert.AreEqual(0, exit);
        using JsonDocument doc = JsonDocument.Parse(output);
        var archs = doc.RootElement.EnumerateArray().ToArray();
        CollectionAssert.AreEquivalent(ArchRegistry.Names.ToArray(), archs.Select(a => a.GetProperty("name").GetString()).ToArray());
        foreach (JsonElement a in archs)
        {
            ArchInfo info = ArchRegistry.Find(a.GetProperty("name").GetString()!)!.Info;
            var sizes = a.GetProperty("hugePageSizes").EnumerateArray().ToArray();
            Assert.AreEqual(info.HugePageSizes.Count, sizes.Length);
            foreach (JsonElement s in sizes)
            {
                HugePageVmemmap g = HugePageVmemmap.For(info, s.GetProperty("size").GetUInt64());
                Assert.AreEqual(g.FreedPages(VmemmapReserve.V5_18), s.GetProperty("freedReserve1").GetUInt64());
                Assert.AreEqual(g.FreedPages(VmemmapReserve.V5_14), s.GetProperty("freedReserve2").GetUInt64());
            }
        }
    }

    /// <summary>Mainline's ARCH_WANT_OPTIMIZE_HUGETLB_VMEMMAP per architecture, as of v7.1: the specs' mainlineHvo.</summary>
    [TestMethod]
    public void SpecsShowS390sTablesEmptyEntriesAndRule()
    {
        var (exit, output, _) = Hvo("specs");
        Assert.AreEqual(0, exit);
        string[] block = output[output.IndexOf("s390x: ", System.StringComparison.Ordinal)..].Split('\n');
        StringAssert.Contains(block[3], "live entries: invalidate");
        StringAssert.Contains(block[4], "tables of pud 16K, pmd 16K, pte 2K (2 to a page before v6.7)");
        StringAssert.Contains(block[4], "empty entries have the invalid bit set: pud 0x24, pmd 0x20, pte 0x400");
    }

    [TestMethod]
    [DataRow("x86_64", "since v5.14")]
    [DataRow("x86_64-la57", "since v5.14")]
    [DataRow("arm64-4k", "on from v5.19, off since v6.3")]
    [DataRow("arm64-64k", "on from v5.19, off since v6.3")]
    [DataRow("riscv64-sv39", "since v6.4")]
    [DataRow("riscv64-sv57", "since v6.4")]
    [DataRow("loongarch64-16k", "since v6.2")]
    [DataRow("loongarch64-4k", "since v6.2")]
    [DataRow("s390x", "on from v6.2, off since v6.18")]
    public void SpecsSayWhetherAndSinceWhenMainlineEnablesHvo(string arch, string mainline)
    {
        var (exit, output, _) = Hvo("specs");
        Assert.AreEqual(0, exit);
        string block = output[output.IndexOf(arch + ": ", System.StringComparison.Ordinal)..];
        Assert.AreEqual("  mainline HVO: " + mainline, block.Split('\n')[1]);

        (exit, output, _) = Hvo("specs", "--json");
        Assert.AreEqual(0, exit);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement m = doc.RootElement.EnumerateArray().Single(a => a.GetProperty("name").GetString() == arch).GetProperty("mainlineHvo");
        Assert.AreEqual(!mainline.Contains("off", System.StringComparison.Ordinal), m.GetProperty("enabled").GetBoolean());
        StringAssert.Contains(mainline, m.GetProperty("since").GetString()!);
    }

    [TestMethod]
    public void SpecsTextHasARowPerHugePageSize()
    {
        var (exit, output, _) = Hvo("specs");
        Assert.AreEqual(0, exit);
        foreach (ArchEntry e in ArchRegistry.All)
        {
            StringAssert.Contains(output, e.Name + ": " + e.Info.Title);
        }

        StringAssert.Contains(output, "not optimizable");
        foreach (global::Hvo.HugeTlb.HvoPolicy p in global::Hvo.HugeTlb.HvoPolicy.Compared)
        {
            StringAssert.Contains(output, "  " + p.Name + " ", "every --policy value is listed");
            if (p.RequiredWriter is { } w)
            {
                string writer = global::Hvo.HugeTlb.HvoPolicy.WriterName(w);
                StringAssert.Contains(output, $"{p.Name,-16} keeps {p.ReservePages} vmemmap page(s) of each huge page, needs the {writer} entry writer (--entry-writer {writer}", "and the writer it needs");
            }
        }

        StringAssert.Contains(output, "(--entry-writer bbml2 --cpu bbml2)");
    }

    [TestMethod]
    public void SimulateArm64WithABreakBeforeMakePolicyReportsNoViolationAndTheFlushes()
    {
        var (exit, output, err) = Hvo("simulate", "--arch", "arm64-4k", "--memory", "2G", "--hugepages", "2M:64", "--policy", "arm64-bbm-fault");
        Assert.AreEqual(2, exit, "the machine's entry writer is direct unless told otherwise");
        StringAssert.Contains(err, "hvo: --policy: arm64-bbm-fault needs the break-flush-make entry writer; this machine's is direct; run it with --entry-writer break-flush-make");

        (exit, output, err) = Hvo("simulate", "--arch", "arm64-4k", "--memory", "2G", "--hugepages", "2M:64", "--policy", "arm64-bbm-fault", "--entry-writer", "break-flush-make");
        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(output, "break-before-make violations:          0");
        StringAssert.Contains(output, "full 0)");

        (exit, output, err) = Hvo("simulate", "--arch", "arm64-4k", "--memory", "2G", "--hugepages", "2M:64", "--policy", "v6.7", "--json");
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        Assert.IsTrue(doc.RootElement.GetProperty("breakBeforeMakeViolations").GetInt64() > 0, "v6.7 remaps live entries directly");
        Assert.AreEqual(2, doc.RootElement.GetProperty("hvo").GetProperty("tlbFullFlushes").GetInt64());
    }

    [TestMethod]
    public void SimulateJsonHasEveryContractKeyAndCountersThatAddUp()
    {
        var (exit, output, err) = Hvo("simulate", "--memory", "2G", "--hugepages", "2M:256", "--policy", "v5.14", "--json");
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        Assert.AreEqual("x86_64", root.GetProperty("arch").GetString());
        Assert.AreEqual("v5.14", root.GetProperty("policy").GetString());
        Assert.IsTrue(root.GetProperty("hvoEnabled").GetBoolean());
        foreach (string key in new[] { "MemTotal", "MemFree", "HugePages_Total", "HugePages_Free", "HugePages_Surp", "Hugepagesize", "Hugetlb" })
        {
            Assert.IsTrue(root.GetProperty("meminfo").TryGetProperty(key, out _), key);
        }

        Assert.AreEqual(256, root.GetProperty("meminfo").GetProperty("HugePages_Total").GetInt32());
        JsonElement hvo = root.GetProperty("hvo");
        ulong freedPerPage = HugePageVmemmap.For(ArchRegistry.Find("x86_64")!.Info, 2UL << 20).FreedPages(VmemmapReserve.V5_14);
        Assert.AreEqual((long)(256 * freedPerPage), hvo.GetProperty("vmemmapPagesFreed").GetInt64());
        long tables = hvo.GetProperty("pteTablesAllocated").GetInt64();
        Assert.AreEqual(hvo.GetProperty("pmdsSplit").GetInt64(), tables);
        Assert.AreEqual(tables + 256, hvo.GetProperty("tlbFlushes").GetInt64(), "v5.14: one flush per split and one per page");
        Assert.AreEqual(((long)(256 * freedPerPage) - tables) * 4096, hvo.GetProperty("netBytesSaved").GetInt64());
        var hstate = root.GetProperty("hstates").EnumerateArray().Single(h => h.GetProperty("pageSize").GetUInt64() == 2UL << 20);
        Assert.AreEqual(256, hstate.GetProperty("optimized").GetInt32());
    }

    [TestMethod]
    public void SimulateRejectsAnUnknownPolicyNamingTheKnownOnes()
    {
        var (exit, _, err) = Hvo("simulate", "--policy", "v4.0");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "v4.0");
        StringAssert.Contains(err, "v5.14");
    }

    [TestMethod]
    public void UnknownArchitectureListsTheKnownOnesAndExits2()
    {
        var (exit, _, err) = Hvo("simulate", "--arch", "sparc64");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "sparc64");
        foreach (string name in ArchRegistry.Names)
        {
            StringAssert.Contains(err, name);
        }
    }

    [TestMethod]
    public void BadSizeSaysWhichFormsAreAcceptedAndExits2()
    {
        var (exit, _, err) = Hvo("simulate", "--memory", "3X");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "'3X'");
        StringAssert.Contains(err, "64G");
    }

    [TestMethod]
    public void UnknownOptionExits2()
    {
        var (exit, _, err) = Hvo("specs", "--frobnicate");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "--frobnicate");
    }
}
