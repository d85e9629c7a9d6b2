using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Cli;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

/// <summary><c>hvo run</c> and <c>hvo compare</c>, in-process and as a real process.</summary>
[TestClass]
public sealed class RunCommandTests
{
    private static readonly string[] ContractMeminfo = ["MemTotal", "MemFree", "HugePages_Total", "HugePages_Free", "HugePages_Surp", "Hugepagesize", "Hugetlb"];
    private static readonly string[] ContractHvo = ["vmemmapPagesFreed", "vmemmapPagesRestored", "pteTablesAllocated", "pmdsSplit", "optimizeFailures", "restoreFailures", "tlbFlushes", "netBytesSaved"];

    /// <summary>The examples are written for x86-64, the default architecture.</summary>
    public static IEnumerable<object[]> ExamplesOnArchs => Examples.All.Select(e => new object[] { e.Name, "x86_64" });

    private static (int Exit, string Out, string Err) HvoWithInput(string input, params string[] args) => CliRun.InProcessWithInput(input, args);

    private static (int Exit, string Out, string Err) Hvo(params string[] args) => CliRun.InProcess(args);

    private static long FreedPerPage(string arch, ulong size, HvoPolicy policy) =>
        (long)HugePageVmemmap.For(Archs.Get(arch).Info, size).FreedPages(policy.ReservePages);

    [TestMethod]
    public void ListNamesEveryExampleTheIssueAsksFor()
    {
        var (exit, output, _) = Hvo("run", "--list");
        Assert.AreEqual(0, exit);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.HasCount(Examples.All.Count, lines);
        foreach (string name in new[] { "grow-shrink", "boot-1g", "memory-pressure", "policy-compare" })
        {
            Assert.IsTrue(lines.Any(l => l.StartsWith(name + " ", StringComparison.Ordinal)), name);
        }

        Assert.IsTrue(Examples.All.All(e => e.Description.Length > 20), "each example says what it shows");
    }

    [TestMethod]
    [DynamicData(nameof(ExamplesOnArchs))]
    public void EveryExampleRunsClean(string name, string arch)
    {
        Example example = Examples.Find(name)!;
        ScenarioOutcome o = ScenarioHarness.Run(arch, ScriptParser.Parse(example.Text, name), new ScenarioOptions { EchoCommands = true });
        Assert.AreEqual(0, o.ShellErrors, o.Transcript);
        Assert.IsEmpty(o.Invariants, string.Join("; ", o.Invariants));
    }

    [TestMethod]
    public void RunJsonIsOneDocumentHoldingTheReportAndTheTranscript()
    {
        var (exit, output, err) = Hvo("run", "grow-shrink", "--json");
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output); // the whole of standard output
        JsonElement root = doc.RootElement;
        Assert.AreEqual(0, root.GetProperty("exitStatus").GetInt32());
        Assert.AreEqual(0, root.GetProperty("failedCommands").GetArrayLength());
        JsonElement[] transcript = [.. root.GetProperty("transcript").EnumerateArray()];
        Script script = ScriptParser.Parse(Examples.Find("grow-shrink")!.Text, "grow-shrink");
        CollectionAssert.AreEqual(script.Statements.Select(s => s.Text).ToArray(), transcript.Select(t => t.GetProperty("command").GetString()).ToArray(), "a statement per entry, in order");
        JsonElement meminfo = transcript.First(t => t.GetProperty("command").GetString() == "cat /proc/meminfo");
        StringAssert.StartsWith(meminfo.GetProperty("output").GetString(), "MemTotal:");
        Assert.AreEqual("grow-shrink:" + script.Statements.First(s => s.Text == "cat /proc/meminfo").Location.Line + ":1", meminfo.GetProperty("location").GetString());
        Assert.AreEqual("x86_64", root.GetProperty("arch").GetString());
        Assert.AreEqual(HvoPolicy.Newest.Name, root.GetProperty("policy").GetString());
        Assert.IsTrue(root.GetProperty("hvoEnabled").GetBoolean());
        foreach (string key in ContractMeminfo)
        {
            Assert.IsTrue(root.GetProperty("meminfo").TryGetProperty(key, out _), key);
        }

        JsonElement hvo = root.GetProperty("hvo");
        foreach (string key in ContractHvo)
        {
            Assert.IsTrue(hvo.TryGetProperty(key, out _), key);
        }

        // Two cycles of 512 pages: everything freed was restored, and only the tables remain as cost.
        long freed = 2 * 512 * FreedPerPage("x86_64", 2UL << 20, HvoPolicy.Newest);
        Assert.AreEqual(freed, hvo.GetProperty("vmemmapPagesFreed").GetInt64());
        Assert.AreEqual(freed, hvo.GetProperty("vmemmapPagesRestored").GetInt64());
        long tables = hvo.GetProperty("pteTablesAllocated").GetInt64();
        Assert.AreEqual(hvo.GetProperty("pmdsSplit").GetInt64(), tables);
        Assert.AreEqual(-(tables + hvo.GetProperty("sharedTailPages").GetInt64()) * 4096, hvo.GetProperty("netBytesSaved").GetInt64(), "the tables and v7.1's shared tail page");
        Assert.AreEqual(0, root.GetProperty("meminfo").GetProperty("HugePages_Total").GetInt32());
    }

    [TestMethod]
    public void RunReadsStandardInputAndHonoursArchAndPolicy()
    {
        var (exit, output, err) = HvoWithInput("boot mem=1G\necho 3 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/nr_hugepages\n", "run", "-", "--arch", "arm64-4k", "--policy", "v5.14");
        Assert.AreEqual(0, exit, err);
        StringAssert.StartsWith(output, "$ boot mem=1G\n$ echo 3 > /proc/sys/vm/nr_hugepages\n$ cat /proc/sys/vm/nr_hugepages\n3\n\nhvo run: arm64-4k ");
        StringAssert.Contains(output, "policy v5.14");
        long freed = 3 * FreedPerPage("arm64-4k", 2UL << 20, HvoPolicy.V5_14);
        StringAssert.Contains(output, $"HVO vmemmap pages freed:    {freed,12}   (");
    }

    [TestMethod]
    public void NoEchoPrintsOnlyWhatTheCommandsPrint()
    {
        var (exit, output, err) = HvoWithInput("# c\necho hi\ncat /nope\n", "run", "-", "--no-echo");
        Assert.AreEqual(1, exit, "a shell's status: the last command's");
        StringAssert.StartsWith(output, "hi\ncat: /nope: No such file or directory\n\nhvo run:");
        Assert.AreEqual("hvo run: 1 command(s) failed and the script went on (set -e would stop at the first):\n  <stdin>:3:1: cat /nope  (exit status 1)\nhvo run: exit status 1, the last command's, as a shell's\n", err);
    }

    [TestMethod]
    public void ASyntaxErrorPrintsFileLineColumnExits2AndRunsNothing()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hvo-{Guid.NewGuid():N}.hvo");
        File.WriteAllText(path, "boot mem=1G\necho 1 > /proc/sys/vm/nr_hugepages\n  ech 2\n");
        try
        {
            var (exit, output, err) = Hvo("run", path);
            Assert.AreEqual(2, exit);
            Assert.AreEqual(string.Empty, output, "nothing ran");
            StringAssert.StartsWith(err, $"{path}:3:3: unknown command 'ech'");
            Assert.AreEqual(1, err.Count(c => c == '\n'), "one line");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    [DataRow(new[] { "run", "/no/such/script.hvo" }, "hvo: script '/no/such/script.hvo': no such file, and no example has that name; examples: ")]
    [DataRow(new[] { "run" }, "hvo: run: which script?")]
    [DataRow(new[] { "run", "grow-shrink", "--arch", "sparc64" }, "hvo: --arch: unknown architecture 'sparc64'; known: ")]
    [DataRow(new[] { "run", "grow-shrink", "--policy", "v4.0" }, "hvo: --policy: unknown policy 'v4.0'; use a kernel version v5.14 to v7.1")]
    [DataRow(new[] { "compare", "--archs", "x86_64,sparc64" }, "hvo: --archs: unknown architecture 'sparc64'; known: ")]
    [DataRow(new[] { "compare", "--policies", "v5.14,v9" }, "hvo: --policies: unknown policy 'v9'")]
    [DataRow(new[] { "compare", "--policies", "," }, "hvo: --policies: give at least one name")]
    [DataRow(new[] { "compare", "/no/such/script.hvo" }, "hvo: script '/no/such/script.hvo': no such file")]
    public void BadInputIsOneMessageAndExit2(string[] args, string message)
    {
        var (exit, output, err) = Hvo(args);
        Assert.AreEqual(2, exit);
        Assert.AreEqual(string.Empty, output);
        StringAssert.StartsWith(err, message);
        Assert.AreEqual(1, err.Count(c => c == '\n'), err);
        if (message.Contains("known: ", StringComparison.Ordinal) && message.Contains("--arch", StringComparison.Ordinal))
        {
            foreach (string name in ArchRegistry.Names)
            {
                StringAssert.Contains(err, name);
            }
        }
    }

    [TestMethod]
    public void ABootLineTheMachineCannotBootWithIsALocatedErrorToo()
    {
        var (exit, output, err) = HvoWithInput("# big\nboot mem=1P\n", "run", "-");
        Assert.AreEqual(2, exit);
        Assert.AreEqual(string.Empty, output);
        StringAssert.StartsWith(err, "<stdin>:2:6: mem=1P is more than x86_64's vmemmap can describe");
    }

    [TestMethod]
    public void CompareTableIsPlainWhenRedirectedWithAColumnPerRunAndThePoliciesNumbers()
    {
        var (exit, output, err) = Hvo("compare", "policy-compare", "--policies", "v5.14,v6.7");
        Assert.AreEqual(0, exit, err);
        Assert.IsFalse(output.Contains('\u001b', StringComparison.Ordinal), "no ANSI escape when redirected");
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.AreEqual("hvo compare: policy-compare (2 runs)", lines[0]);
        StringAssert.Contains(lines[1], "x86_64 v5.14");
        StringAssert.Contains(lines[1], "x86_64 v6.7");
        string freedRow = lines.Single(l => l.StartsWith("| vmemmap pages freed", StringComparison.Ordinal));
        string[] cells = [.. freedRow.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

        // The example grows 4096 pages, shrinks to 2048 and grows back to 4096.
        foreach ((HvoPolicy policy, int column) in new[] { (HvoPolicy.V5_14, 1), (HvoPolicy.V6_7, 2) })
        {
            long freed = (4096 + 2048) * FreedPerPage("x86_64", 2UL << 20, policy);
            Assert.AreEqual(freed.ToString("N0", CultureInfo.InvariantCulture), cells[column], policy.Name);
        }
    }

    [TestMethod]
    public void CompareJsonIsAnArrayOfReportsOnePerArchAndPolicy()
    {
        // By default each arch runs the policies that apply to it and its machine can run: with
        // break-flush-make as the entry writer, the kernel versions' everywhere, and on arm64-4k, which
        // requires break-before-make, arm64-bbm-fault too (FEAT_BBM level 2 and clear-AF need other writers).
        var (exit, output, err) = Hvo("compare", "grow-shrink", "--archs", "x86_64,arm64-4k", "--entry-writer", "break-flush-make", "--json");
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement[] runs = [.. doc.RootElement.EnumerateArray()];
        string[] kernel = [.. HvoPolicy.All.Where(p => p.RequiredWriter is null).Select(p => p.Name)];
        string[] expected = [.. kernel.Select(p => $"x86_64 {p}"), .. kernel.Append(HvoPolicy.Arm64BbmFaultRetry.Name).Select(p => $"arm64-4k {p}")];
        CollectionAssert.AreEqual(expected, runs.Select(r => $"{r.GetProperty("arch").GetString()} {r.GetProperty("policy").GetString()}").ToArray());
        foreach (JsonElement r in runs)
        {
            HvoPolicy policy = HvoPolicy.Find(r.GetProperty("policy").GetString()!)!;
            Assert.AreEqual(2 * 512 * FreedPerPage(r.GetProperty("arch").GetString()!, 2UL << 20, policy), r.GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64());
        }
    }

    [TestMethod]
    public void ComparePlotDrawsACurveAndAVmemmapMapPerRunThatAgreeWithTheReports()
    {
        string path = Path.Combine(Path.GetTempPath(), $"hvo-compare-{Guid.NewGuid():N}.svg");
        try
        {
            var (exit, output, err) = Hvo("compare", "grow-shrink", "--policies", "v5.14,v6.7", "--archs", "x86_64,arm64-4k", "--json", "--plot", path);
            Assert.AreEqual(0, exit, err);
            StringAssert.Contains(err, $"wrote {path} (4 runs)");
            using JsonDocument doc = JsonDocument.Parse(output);
            System.Xml.Linq.XDocument svg = System.Xml.Linq.XDocument.Load(path);
            Assert.AreEqual("svg", svg.Root!.Name.LocalName);
            string[] texts = [.. svg.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim())];
            foreach (JsonElement run in doc.RootElement.EnumerateArray())
            {
                string label = $"{run.GetProperty("arch").GetString()} {run.GetProperty("policy").GetString()}";
                CollectionAssert.Contains(texts, label, "each run is a curve in the legend");
                Assert.IsTrue(texts.Any(t => t.StartsWith(label + ":", StringComparison.Ordinal)), $"{label} has its vmemmap map");
            }

            // grow-shrink ends with an empty pool: every split leaf holds no optimized page any more.
            long[] splits = [.. doc.RootElement.EnumerateArray().Select(r => r.GetProperty("hvo").GetProperty("pmdsSplit").GetInt64())];
            Assert.AreEqual(splits.Length, texts.Count(t => t.StartsWith("split, no optimized page now: ", StringComparison.Ordinal)));
            foreach (long split in splits)
            {
                CollectionAssert.Contains(texts, $"split, no optimized page now: {split}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void CompareShowsTheBreakBeforeMakeViolationsOfKernelPoliciesOnArm64AndNoneForTheSafeOnes()
    {
        var (exit, output, err) = Hvo("compare", "grow-shrink", "--policies", "v5.14,arm64-bbm-fault", "--archs", "x86_64,arm64-4k", "--entry-writer", "break-flush-make");
        Assert.AreEqual(0, exit, err);
        string row = output.Split('\n').Single(l => l.StartsWith("| rule violations", StringComparison.Ordinal));
        string[] cells = [.. row.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        Assert.AreEqual("not required", cells[1], "x86_64 v5.14");
        Assert.AreEqual("not required", cells[2], "x86_64 arm64-bbm-fault");
        Assert.AreEqual("0", cells[3], "arm64-4k v5.14 on a break-flush-make kernel keeps the rule");
        Assert.AreEqual("0", cells[4], "arm64-4k arm64-bbm-fault keeps it");

        (exit, output, err) = Hvo("compare", "grow-shrink", "--policies", "v5.14,arm64-bbm-af", "--archs", "arm64-4k", "--entry-writer", "clear-af");
        Assert.AreEqual(0, exit, err);
        row = output.Split('\n').Single(l => l.StartsWith("| rule violations", StringComparison.Ordinal));
        cells = [.. row.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        Assert.AreEqual("0", cells[2], "arm64-4k arm64-bbm-af keeps it");

        (exit, output, err) = Hvo("compare", "grow-shrink", "--policies", "v5.14", "--archs", "arm64-4k");
        Assert.AreEqual(0, exit, err);
        row = output.Split('\n').Single(l => l.StartsWith("| rule violations", StringComparison.Ordinal));
        cells = [.. row.Split('|', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        Assert.IsGreaterThan(0L, long.Parse(cells[1], NumberStyles.AllowThousands, CultureInfo.InvariantCulture), "arm64-4k v5.14 writing directly, as mainline, breaks the rule");

        (exit, _, err) = Hvo("compare", "grow-shrink", "--policies", "arm64-bbm-af", "--archs", "x86_64");
        Assert.AreEqual(2, exit, "x86_64 has no access flag");
        StringAssert.Contains(err, "--policies (x86_64)");
    }

    [TestMethod]
    public void CompareWithoutAScriptIsSimulatesDefaultAndReportsTheSame()
    {
        var (exit, output, err) = Hvo("compare", "--policies", HvoPolicy.Newest.Name, "--json");
        Assert.AreEqual(0, exit, err);
        var (simExit, simOutput, _) = Hvo("simulate", "--json");
        Assert.AreEqual(0, simExit);
        using JsonDocument compared = JsonDocument.Parse(output);
        using JsonDocument simulated = JsonDocument.Parse(simOutput);
        JsonElement run = compared.RootElement[0];
        foreach (string part in new[] { "meminfo", "hvo", "hstates" })
        {
            System.Text.Json.Nodes.JsonNode expected = System.Text.Json.Nodes.JsonNode.Parse(simulated.RootElement.GetProperty(part).GetRawText())!;
            if (expected is System.Text.Json.Nodes.JsonArray hstates)
            {
                foreach (System.Text.Json.Nodes.JsonNode? h in hstates)
                {
                    h!.AsObject().Remove("requested"); // what simulate's --hugepages asked; a script asks by its writes
                }
            }

            Assert.IsTrue(
                System.Text.Json.Nodes.JsonNode.DeepEquals(expected, System.Text.Json.Nodes.JsonNode.Parse(run.GetProperty(part).GetRawText())),
                $"{part}: {run.GetProperty(part)} vs {simulated.RootElement.GetProperty(part)}");
        }
    }

    [TestMethod]
    [DataRow("--help", "hvo run --list")]
    [DataRow("run --help", "Example:")]
    [DataRow("compare --help", "Example:")]
    public void HelpShowsAWorkedExample(string args, string expected)
    {
        var (exit, output, _) = Hvo(args.Split(' '));
        Assert.AreEqual(0, exit);
        StringAssert.Contains(output, expected);
    }

    [TestMethod]
    public void AsARealProcessRunAndCompareWorkAndErrorsExit2WithoutAStackTrace()
    {
        var run = Process("run", "memory-pressure");
        Assert.AreEqual(0, run.Exit, run.Err);
        StringAssert.Contains(run.Out, "$ cat /sys/kernel/mm/hugepages/hugepages-2048kB/surplus_hugepages\n256\n");
        StringAssert.Contains(run.Out, "hvo run: x86_64");

        var piped = ProcessWithInput("boot mem=1G\necho 2 > /proc/sys/vm/nr_hugepages\ncat /proc/sys/vm/nr_hugepages\n", "run", "-", "--no-echo", "--json");
        Assert.AreEqual(0, piped.Exit, piped.Err);
        using (JsonDocument doc = JsonDocument.Parse(piped.Out))
        {
            Assert.AreEqual("2\n", doc.RootElement.GetProperty("transcript")[2].GetProperty("output").GetString());
        }

        var compare = Process("compare", "policy-compare", "--policies", "v5.14,v6.7");
        Assert.AreEqual(0, compare.Exit, compare.Err);
        Assert.IsFalse(compare.Out.Contains('\u001b', StringComparison.Ordinal), "redirected: no ANSI");
        StringAssert.Contains(compare.Out, "| TLB flushes ");

        var bad = ProcessWithInput("boot mem=1G\necho 1 | frob\n", "run", "-");
        Assert.AreEqual(2, bad.Exit);
        Assert.AreEqual($"<stdin>:2:10: unknown command 'frob': {ScriptParser.Vocabulary}\n", bad.Err);
        Assert.AreEqual(string.Empty, bad.Out);
    }

    private static (int Exit, string Out, string Err) Process(params string[] args) => ProcessWithInput(string.Empty, args);

    private static (int Exit, string Out, string Err) ProcessWithInput(string input, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "hvo.dll"));
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        using Process p = System.Diagnostics.Process.Start(start)!;
        p.StandardInput.Write(input);
        p.StandardInput.Close();
        System.Threading.Tasks.Task<string> err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output, err.Result);
    }
}
