using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using Hvo.Cli;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Bbm;

/// <summary>
/// What each break-before-make strategy costs in TLB flushes against x86_64 on the same scenario
/// (same memory, same page count): every policy on x86_64 and arm64-4k through <c>hvo simulate
/// --json</c>, printed as a table and checked against the strategies' arithmetic.
/// </summary>
[TestClass]
public sealed class BbmFlushCostTests
{
    private const string Memory = "4G";
    private const int Pages = 512;

    public TestContext TestContext { get; set; } = null!;

    private sealed record Run(string Arch, HvoPolicy Policy, long Freed, long Splits, long Range, long Full, long Violations, long Retries)
    {
        public long Total => Range + Full;
    }

    [TestMethod]
    public void ExtraFlushesOfEachStrategyAgainstX86()
    {
        var runs = new List<Run>();
        foreach (string arch in new[] { "x86_64", "arm64-4k" })
        {
            // x86_64 runs the kernel versions' policies: the base each arm64 strategy is compared with.
            foreach (HvoPolicy p in HvoPolicy.All.Where(p => arch == "arm64-4k" || p.RequiredWriter is null))
            {
                runs.Add(Simulate(arch, p));
            }
        }

        Run Get(string arch, HvoPolicy p) => runs.Single(r => r.Arch == arch && r.Policy == p);
        ulong freedPerPage(HvoPolicy p) => HugePageVmemmap.For(ArchRegistry.Find("arm64-4k")!.Info, 2UL << 20).FreedPages(p.ReservePages);

        var table = new StringBuilder();
        table.AppendLine($"hvo simulate --memory {Memory} --hugepages 2M:{Pages} --json, per policy and arch (flushes: range + full)");
        table.AppendLine($"{"policy",-16} {"arch",-9} {"freed",6} {"splits",6} {"range",6} {"full",4} {"per page",8}  {"x86 base",8} {"extra vs base",13} {"extra vs x86 v6.7",17} {"BBM reports",11}");
        foreach (Run r in runs)
        {
            HvoPolicy basis = Base(r.Policy);
            long extraBase = r.Total - Get("x86_64", basis).Total;
            long extraNewest = r.Total - Get("x86_64", HvoPolicy.V6_7).Total;
            table.AppendLine($"{r.Policy.Name,-16} {r.Arch,-9} {r.Freed,6} {r.Splits,6} {r.Range,6} {r.Full,4} {(double)r.Total / Pages,8:0.000}  {basis.Name,8} {extraBase,13:+0;-0;0} {extraNewest,17:+0;-0;0} {r.Violations,11}");
        }

        TestContext.WriteLine(table.ToString());
        Console.WriteLine(table.ToString());

        foreach (Run r in runs)
        {
            Assert.AreEqual(Pages * (long)freedPerPage(r.Policy), r.Freed, $"{r.Policy} on {r.Arch}: the spec's arithmetic");
            bool arm = r.Arch == "arm64-4k";
            if (arm)
            {
                Assert.AreEqual(r.Policy.RequiredWriter is null, r.Violations > 0, $"{r.Policy}: reported exactly when not break-before-make safe");
            }

            switch (r.Policy.RequiredWriter)
            {
                case EntryWriterKind.BreakFlushMake:
                    // One flush per split (its break) and per changed entry: the 7 tails and the head's move to a copy.
                    Assert.AreEqual(r.Splits + (Pages * ((long)freedPerPage(r.Policy) + 1)), r.Range, $"{r.Arch}");
                    Assert.AreEqual(0, r.Full);
                    break;
                case EntryWriterKind.ClearAccessFlag:
                    // Nobody reads the vmemmap meanwhile: one round, one flush per page, as v6.2's one flush after the remap.
                    Assert.AreEqual(r.Splits + Pages, r.Range, $"{r.Arch}");
                    Assert.AreEqual(Get(r.Arch, HvoPolicy.V6_2).Total, r.Total);
                    Assert.AreEqual(0, r.Retries);
                    break;
                case EntryWriterKind.Bbml2:
                    // Batched as v6.7: the same flushes.
                    Assert.AreEqual(Get(r.Arch, HvoPolicy.V6_7).Range, r.Range);
                    Assert.AreEqual(Get(r.Arch, HvoPolicy.V6_7).Full, r.Full);
                    break;
            }
        }
    }

    /// <summary>The kernel policy a strategy changes: what x86_64 runs in its place.</summary>
    private static HvoPolicy Base(HvoPolicy p) => p.RequiredWriter switch
    {
        EntryWriterKind.Bbml2 => HvoPolicy.V6_7,
        null => p,
        _ => HvoPolicy.V6_2,
    };

    private static Run Simulate(string arch, HvoPolicy policy)
    {
        var (exit, output, err) = Hvo.Runtime.Tests.Cli.CliRun.InProcess(["simulate", "--arch", arch, "--memory", Memory, "--hugepages", $"2M:{Pages}", "--policy", policy.Name, .. TestMachines.CliArgs(policy), "--json"]);
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement hvo = doc.RootElement.GetProperty("hvo");
        Assert.AreEqual(Pages, doc.RootElement.GetProperty("meminfo").GetProperty("HugePages_Total").GetInt32());
        long violations = doc.RootElement.TryGetProperty("breakBeforeMakeViolations", out JsonElement v) ? v.GetInt64() : 0;
        return new Run(arch, policy, hvo.GetProperty("vmemmapPagesFreed").GetInt64(), hvo.GetProperty("pmdsSplit").GetInt64(),
            hvo.GetProperty("tlbRangeFlushes").GetInt64(), hvo.GetProperty("tlbFullFlushes").GetInt64(), violations, hvo.GetProperty("bbmRetries").GetInt64());
    }
}
