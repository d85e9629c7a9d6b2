using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using Hvo.Cli;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>simulate's --batch, --fail-alloc and --seed, and every usage error with exit code 2.</summary>
[TestClass]
public sealed class SimulateOptionsTests
{
    private const int Pages = 128;
    private static readonly string[] Small = ["simulate", "--memory", "1G", "--hugepages", $"2M:{Pages}", "--json"];

    /// <summary>The policies batching applies to: the kernel's, and FEAT_BBM level 2's (which changes entries directly too).</summary>
    public static IEnumerable<object[]> Policies => HvoPolicy.All
        .Where(p => p.RequiredWriter is null or EntryWriterKind.Bbml2)
        .Select(p => new object[] { p.Name });

    [TestMethod]
    [DataRow("arm64-bbm-fault")]
    [DataRow("arm64-bbm-af")]
    public void BatchingAStrategyThatBreaksEveryEntryIsAUsageError(string policy)
    {
        var (exit, output, err) = CliRun.InProcess([.. Small, "--policy", policy, .. TestMachines.CliArgs(HvoPolicy.Find(policy)!), "--batch"]);
        Assert.AreEqual(2, exit, output);
        StringAssert.StartsWith(err, $"hvo: --batch: {policy} breaks and flushes every entry it changes");
    }


    private static JsonElement Json(params string[] args)
    {
        var (exit, output, err) = CliRun.InProcess(args);
        Assert.AreEqual(0, exit, err);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    private static long Hvo(JsonElement report, string key) => report.GetProperty("hvo").GetProperty(key).GetInt64();

    [TestMethod]
    [DynamicData(nameof(Policies))]
    public void BatchOnSplitsFlushesOnceRemapsFlushesOnceUnderEveryPolicy(string policy)
    {
        JsonElement r = Json([.. Small, "--policy", policy, .. TestMachines.CliArgs(HvoPolicy.Find(policy)!), "--batch"]);
        Assert.AreEqual(2, Hvo(r, "tlbFlushes"), "hugetlb_vmemmap_optimize_folios: one flush_tlb_all after the split pass, one after the remap pass");
        string expected = HvoPolicy.Find(policy)!.Batched ? policy : policy + "-batched";
        Assert.AreEqual(expected, r.GetProperty("policy").GetString());
    }

    [TestMethod]
    [DynamicData(nameof(Policies))]
    public void BatchOffFlushesPerSplitAndPerPageUnderEveryPolicy(string policy)
    {
        JsonElement r = Json([.. Small, "--policy", policy, .. TestMachines.CliArgs(HvoPolicy.Find(policy)!), "--batch", "off"]);
        Assert.AreEqual(Hvo(r, "pmdsSplit") + Pages, Hvo(r, "tlbFlushes"), "hugetlb_vmemmap_optimize: a range flush per split PMD and one per page");
        Assert.IsTrue(Hvo(r, "pmdsSplit") > 0);
    }

    [TestMethod]
    [DynamicData(nameof(Policies))]
    public void BatchingChangesFlushesNotSavings(string policy)
    {
        string[] machine = TestMachines.CliArgs(HvoPolicy.Find(policy)!);
        JsonElement on = Json([.. Small, "--policy", policy, .. machine, "--batch", "on"]);
        JsonElement off = Json([.. Small, "--policy", policy, .. machine, "--batch", "off"]);
        JsonElement own = Json([.. Small, "--policy", policy, .. machine]);
        ulong freedEach = HugePageVmemmap.For(ArchRegistry.Find("x86_64")!.Info, 2UL << 20).FreedPages(HvoPolicy.Find(policy)!.ReservePages);
        foreach (JsonElement r in new[] { on, off, own })
        {
            Assert.AreEqual((long)(Pages * freedEach), Hvo(r, "vmemmapPagesFreed"));
            Assert.AreEqual(Hvo(on, "pteTablesAllocated"), Hvo(r, "pteTablesAllocated"));
        }

        Assert.AreEqual(HvoPolicy.Find(policy)!.Batched ? Hvo(on, "tlbFlushes") : Hvo(off, "tlbFlushes"), Hvo(own, "tlbFlushes"), "without --batch the policy does what its kernel does");
        Assert.IsTrue(Hvo(off, "tlbFlushes") > Hvo(on, "tlbFlushes"));
    }

    [TestMethod]
    public void TheSameSeedReplaysTheSameFailures()
    {
        string[] args = [.. Small, "--policy", "v5.14", "--fail-alloc", "probability=50,times=-1,min-order=0,site=pte-table", "--seed", "5"];
        var first = CliRun.InProcess(args);
        var again = CliRun.InProcess(args);
        Assert.AreEqual(0, first.Exit, first.Err);
        Assert.AreEqual(first.Out, again.Out, "same seed, same run");
        JsonElement r = JsonDocument.Parse(first.Out).RootElement;
        Assert.IsTrue(Hvo(r, "optimizeFailures") > 0, "split tables failed: " + first.Out);

        var other = CliRun.InProcess([.. Small, "--policy", "v5.14", "--fail-alloc", "probability=50,times=-1,min-order=0,site=pte-table", "--seed", "6"]);
        Assert.AreNotEqual(first.Out, other.Out, "another seed draws other failures");
    }

    [TestMethod]
    public void FailedSplitsLeavePagesUnoptimizedAndTheCountersSaySo()
    {
        JsonElement r = Json([.. Small, "--policy", "v5.14", "--fail-alloc", "probability=100,times=-1,min-order=0,site=pte-table"]);
        Assert.AreEqual(0, Hvo(r, "pmdsSplit"));
        Assert.AreEqual(0, Hvo(r, "vmemmapPagesFreed"));
        Assert.AreEqual(Pages, Hvo(r, "optimizeFailures"), "v5.14 tries each page once");
        JsonElement h = r.GetProperty("hstates").EnumerateArray().Single(x => x.GetProperty("pageSize").GetUInt64() == 2UL << 20);
        Assert.AreEqual(Pages, h.GetProperty("nrHugepages").GetInt32(), "the pages are still allocated");
        Assert.AreEqual(0, h.GetProperty("optimized").GetInt32());
    }

    [TestMethod]
    public void AFailedHugePageEndsTheGrowthAsTheKernelDoes()
    {
        // fail-nth: the 101st huge page allocation fails, and growth stops there.
        JsonElement r = Json([.. Small, "--fail-alloc", "fail-nth=101,site=huge-page"]);
        Assert.AreEqual(100, r.GetProperty("meminfo").GetProperty("HugePages_Total").GetInt32());
    }

    [TestMethod]
    [DataRow("prob=1", "'prob=1'", "unknown key 'prob'")]
    [DataRow("probability", "'probability'", "key=value")]
    [DataRow("=5", "'=5'", "key=value")]
    [DataRow("probability=5,probability=6", "'probability=6'", "twice")]
    [DataRow("site=disk,min-order=0", "'disk'", "pte-table")]
    [DataRow("probability=5,,times=1", "''", "key=value")]
    [DataRow("probability=-1", "'probability=-1'", "echo -1 > /sys/kernel/debug/fail_page_alloc/probability fails with Invalid argument")]
    [DataRow("probability= 5", "'probability= 5'", "Invalid argument")]
    [DataRow("probability=", "'probability='", "Invalid argument")]
    [DataRow("times=99999999999999999999", "'times=99999999999999999999'", "Numerical result out of range")]
    [DataRow("fail-nth=4294967296", "'fail-nth=4294967296'", "echo 4294967296 > /proc/self/fail-nth fails with Numerical result out of range")]
    [DataRow("ignore-gfp-wait=maybe", "'ignore-gfp-wait=maybe'", "Invalid argument")]
    public void ABadFailAllocSpecNamesTheBadPartAndTheKeys(string spec, string part, string why)
    {
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--fail-alloc", spec), "--fail-alloc", part, why, FaultSpec.Keys);
    }

    [TestMethod]
    [DataRow("probability=101,times=-2,interval=0")]
    [DataRow("probability=150,times=-1,interval=0x1")]
    public void ValuesTheKernelTakesAreTakenWithItsMeaning(string knobs)
    {
        // probability over 100 always fails, a negative times has no limit, interval 0 is every call:
        // the same run as probability=100,times=-1 (should_fail).
        JsonElement r = Json([.. Small, "--policy", "v5.14", "--fail-alloc", knobs + ",min-order=0,site=pte-table"]);
        JsonElement every = Json([.. Small, "--policy", "v5.14", "--fail-alloc", "probability=100,times=-1,min-order=0,site=pte-table"]);
        Assert.AreEqual(every.GetRawText(), r.GetRawText());
        Assert.AreEqual(Pages, Hvo(r, "optimizeFailures"));
    }

    [TestMethod]
    public void AnOrderZeroSiteUnderTheKernelsMinOrderIsRefusedRatherThanFailingNothing()
    {
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--fail-alloc", "probability=100,site=pte-table"), "min-order=0");
    }

    [TestMethod]
    public void EveryUsageErrorExits2WithOneMessageAndNoStackTrace()
    {
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--memory", "3X"), "'3X'", Sizes.Forms);
        CliRun.AssertUsageError(CliRun.InProcess(["simulate", "--arch", "sparc64"]), ["'sparc64'", .. ArchRegistry.Names]);
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--hugepages", "3X:4"), "'3X:4'", Sizes.Forms);
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--hugepages", "4M:4"), "4M", "2M", "1G");
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--batch", "sometimes"), "'sometimes'", "on or off");
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--plot", "hvo.pdf"), "'hvo.pdf'", ".svg", ".png");
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--plot", "/no/such/dir/hvo.svg"), "'/no/such/dir/hvo.svg'", "does not exist");
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--seed", "minus-one"), "minus-one");
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--hvo", "maybe"), "'maybe'");
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--nodes", "0"), "--nodes");
    }

    [TestMethod]
    public void HelpShowsWorkedExamplesOfTheNewOptions()
    {
        var (exit, output, _) = CliRun.InProcess("simulate", "--help");
        Assert.AreEqual(0, exit);
        foreach (string example in new[] { "hvo simulate --policy v5.14 --batch", "hvo simulate --batch off", "hvo simulate --fail-alloc probability=", "--seed 7" })
        {
            StringAssert.Contains(output, example);
        }

        StringAssert.Contains(output, "hvo simulate --memory 8G --plot hvo.svg");
    }

    [TestMethod]
    public void RedirectedOutputGetsNoProgress()
    {
        Assert.IsFalse(LiveProgress.IsInteractive(new System.IO.StringWriter()));
        var (exit, _, err) = CliRun.InProcess([.. Small]);
        Assert.AreEqual(0, exit);
        Assert.AreEqual(string.Empty, err, "nothing but the report, and no escape sequences");
    }
}
