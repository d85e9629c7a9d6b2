using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>
/// <c>--cpu</c> and <c>--entry-writer</c>: the hardware and the arch code are the machine's, never the
/// policy's. A policy written for an entry writer the machine lacks is refused before boot with the
/// options that give it; run with those options it keeps arm64's rule.
/// </summary>
[TestClass]
public sealed class MachineOptionsTests
{
    private static readonly string[] Small = ["--memory", "2G"];

    /// <summary>(arch, policy) for every policy written for a writer, on every arch whose machine can have that writer.</summary>
    public static IEnumerable<object[]> WriterPolicies =>
        from e in ArchRegistry.All
        from p in HvoPolicy.All
        where p.RequiredWriter is not null && TestMachines.CanRun(p, e.Info)
        where e.Info.Replacement == ReplacementRule.Store || p.ForRule == e.Info.Replacement // a strategy for another rule breaks this one
        select new object[] { e.Name, p.Name };

    [TestMethod]
    [DynamicData(nameof(WriterPolicies))]
    public void APolicyIsRefusedWithTheOptionsThatGiveItsWriterAndRunsWithThem(string arch, string policy)
    {
        var (exit, _, err) = CliRun.InProcess(["simulate", "--arch", arch, .. Small, "--policy", policy]);
        Assert.AreEqual(2, exit, "refused before boot");
        const string With = "; run it with ";
        StringAssert.StartsWith(err, $"hvo: --policy: {policy} needs the ");
        string[] hint = err[(err.IndexOf(With, StringComparison.Ordinal) + With.Length)..].Trim().Split(' ');

        (exit, string output, err) = CliRun.InProcess(["simulate", "--arch", arch, .. Small, "--policy", policy, .. hint, "--json"]);
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement grown = doc.RootElement.GetProperty("hstates").EnumerateArray().Single(h => h.GetProperty("nrHugepages").GetInt64() > 0);
        Assert.AreEqual(grown.GetProperty("nrHugepages").GetInt64(), grown.GetProperty("optimized").GetInt64(), "every page optimized");
        if (doc.RootElement.TryGetProperty("breakBeforeMakeViolations", out JsonElement v))
        {
            Assert.AreEqual(0, v.GetInt64(), "the policy on its writer keeps the rule");
        }
    }

    [TestMethod]
    [DataRow("--entry-writer", "nope", "--entry-writer: unknown entry writer 'nope'; known: direct, bbml2, break-flush-make, clear-af, invalidate, pause-cpus")]
    [DataRow("--cpu", "bbml2,avx", "--cpu: unknown CPU feature 'avx'; known: bbml2, hafdbs")]
    [DataRow("--host-threads", "-1", "--host-threads: -1 is not a thread count (0 or more; 0: one per host processor)")]
    [DataRow("--entry-writer", "bbml2", "--entry-writer: the FEAT_BBM level 2 entry writer needs CPUs with FEAT_BBM level 2; these have level 0: add --cpu bbml2")]
    [DataRow("--entry-writer", "clear-af", "--entry-writer: the clear-access-flag entry writer needs an access flag in x86_64's entries (spec key entry.accessFlag)")]
    public void AMachineThatCannotBeIsAUsageError(string option, string value, string message)
    {
        foreach (string command in new[] { "simulate", "run", "compare" })
        {
            string[] script = command == "simulate" ? [] : ["grow-shrink"];
            var (exit, _, err) = CliRun.InProcess([command, .. script, "--arch" + (command == "compare" ? "s" : string.Empty), "x86_64", option, value]);
            Assert.AreEqual(2, exit, command);
            Assert.AreEqual($"hvo: {message}", err.Trim(), command);
        }
    }

    [TestMethod]
    public void CpusWithBbml2OnArm64ChooseTheBbml2WriterAndKernelPoliciesKeepTheRule()
    {
        var (exit, output, err) = CliRun.InProcess(["simulate", "--arch", "arm64-4k", .. Small, "--policy", "v6.7", "--json"]);
        Assert.AreEqual(0, exit, err);
        Assert.IsGreaterThan(0L, JsonDocument.Parse(output).RootElement.GetProperty("breakBeforeMakeViolations").GetInt64(), "mainline arm64 writes directly");

        (exit, output, err) = CliRun.InProcess(["simulate", "--arch", "arm64-4k", .. Small, "--policy", "v6.7", "--cpu", "bbml2", "--json"]);
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        Assert.AreEqual(0, doc.RootElement.GetProperty("breakBeforeMakeViolations").GetInt64(), "equivalent changes in one store, the others by break-before-make");
        Assert.IsGreaterThan(2L, doc.RootElement.GetProperty("hvo").GetProperty("tlbRangeFlushes").GetInt64(), "the tails onto the head page are not equivalent: each is broken and flushed");
    }
}
