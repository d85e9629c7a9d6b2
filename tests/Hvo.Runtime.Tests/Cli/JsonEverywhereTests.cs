using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Paging;
using Hvo.Runtime.Tests.Paging;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>With --json, standard output is exactly one JSON document, whatever the command; and the README's example and test command are the program's.</summary>
[TestClass]
public sealed class JsonEverywhereTests
{
    public static System.Collections.Generic.IEnumerable<object[]> Commands =>
    [
        [new[] { "specs", "--json" }],
        [new[] { "simulate", "--memory", "1G", "--json" }],
        [new[] { "simulate", "--arch", "arm64-4k", "--memory", "1G", "--json", "--violations", "2" }],
        [new[] { "run", "grow-shrink", "--json" }],
        [new[] { "run", "--list", "--json" }],
        [new[] { "compare", "--memory", "1G", "--policies", "v5.14,v6.7", "--json" }],
        [new[] { "sweep", "--memory", "1G..2G", "--json" }],
        [new[] { "host", "--root", HostFixtures.X86Host61(), "--json" }],
    ];

    [TestMethod]
    [DynamicData(nameof(Commands))]
    public void StandardOutputIsOneJsonDocument(string[] args)
    {
        var (exit, output, err) = CliRun.InProcess(args);
        Assert.AreEqual(0, exit, err);
        var reader = new Utf8JsonReader(System.Text.Encoding.UTF8.GetBytes(output));
        Assert.IsTrue(JsonDocument.TryParseValue(ref reader, out JsonDocument? doc), output);
        using (doc)
        {
            Assert.IsTrue(output[(int)reader.BytesConsumed..].Trim().Length == 0, "nothing after the document: " + output[(int)reader.BytesConsumed..]);
            Assert.IsTrue(doc!.RootElement.ValueKind is JsonValueKind.Object or JsonValueKind.Array);
        }
    }

    [TestMethod]
    public void TheReadmesJsonExampleIsWhatSimulatePrints()
    {
        string readme = File.ReadAllText(Path.Combine(RegistryTests.RepoRoot(), "README.md"));
        int start = readme.IndexOf("```json\n", readme.IndexOf("`hvo simulate --json` prints", StringComparison.Ordinal), StringComparison.Ordinal) + "```json\n".Length;
        string example = readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)];
        var (exit, output, err) = CliRun.InProcess("simulate", "--json");
        Assert.AreEqual(0, exit, err);
        using JsonDocument shown = JsonDocument.Parse(example), printed = JsonDocument.Parse(output);
        Assert.AreEqual(Canonical(printed.RootElement), Canonical(shown.RootElement), "every key and value of the README's example");
    }

    [TestMethod]
    public void CiRunsTheReadmesTestCommand()
    {
        string root = RegistryTests.RepoRoot();
        string readme = File.ReadAllText(Path.Combine(root, "README.md"));
        string command = readme.Split('\n').Select(l => l.Trim()).First(l => l.StartsWith("dotnet test ", StringComparison.Ordinal));
        command = command[..command.IndexOf('#', StringComparison.Ordinal)].Trim();
        StringAssert.Contains(command, "-c Release", "the fast configuration");
        StringAssert.Contains(command, "verbosity=normal", "a line per test: progress");
        string ci = File.ReadAllText(Path.Combine(root, ".ci", "run"));
        string ciCommand = ci.Split('\n').Select(l => l.Trim()).Single(l => l.StartsWith("dotnet test ", StringComparison.Ordinal));
        StringAssert.StartsWith(ciCommand, command + " ", "CI runs the README's command, adding only its logger");
        StringAssert.Contains(ci, "passed, $failed failed");
    }

    private static string Canonical(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "{" + string.Join(",", e.EnumerateObject().Select(p => $"{p.Name}:{Canonical(p.Value)}")) + "}",
        JsonValueKind.Array => "[" + string.Join(",", e.EnumerateArray().Select(Canonical)) + "]",
        _ => e.GetRawText(),
    };
}
