using System;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Hvo.Runtime.Tests.Paging;

namespace Hvo.Runtime.Tests.Machine;

/// <summary>
/// The shape of the runtime, read from its sources: layers point one way (the machine does not know
/// the HugeTLB pool, the scenarios or the checks built on top of it), and every traversal of a page
/// table is the one generated walk: only the walk's own files index table frames.
/// </summary>
[TestClass]
public sealed partial class LayerTests
{
    private static string Runtime => Path.Combine(RegistryTests.RepoRoot(), "runtime", "Hvo.Runtime");

    [TestMethod]
    public void TheMachineLayersUseNothingAboveThem()
    {
        string[] files =
        [
            .. new[] { "Memory", "Paging", "Vmemmap" }.SelectMany(d => Directory.GetFiles(Path.Combine(Runtime, d), "*.cs", SearchOption.AllDirectories)),
            Path.Combine(Runtime, "Machine.cs"),
            Path.Combine(Runtime, "MachineConfig.cs"),
        ];
        Assert.IsGreaterThan(20, files.Length, "the machine's sources were found");
        var offenders = files
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: f, Line: i + 1, Text: line)))
            .Where(l => Above().IsMatch(l.Text))
            .Select(l => $"{Path.GetRelativePath(Runtime, l.File)}:{l.Line}: {l.Text.Trim()}")
            .ToArray();
        Assert.AreEqual(0, offenders.Length, "the machine refers to a layer above it:\n" + string.Join("\n", offenders));
    }

    [TestMethod]
    public void OnlyTheWalkAndTheEntryWritersIndexPageTables()
    {
        // The walk (generated, and interpreted as its oracle), the page table's context, the entry
        // writers and the two readers of a single entry or a new table (the break-before-make checker,
        // FEAT_BBM level 2's equivalence).
        string[] allowed =
        [
            Path.Combine("Paging", "KernelPageTable.cs"),
            Path.Combine("Paging", "EntryWriters.cs"),
            Path.Combine("Paging", "Equivalence.cs"),
            Path.Combine("Paging", "BreakBeforeMakeChecker.cs"),
            Path.Combine("Paging", "Reference", "ReferenceWalker.cs"),
            Path.Combine("Paging", "Contract", "TableEntries.cs"),
        ];
        var offenders = Directory.GetFiles(Runtime, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Where(f => !allowed.Contains(Path.GetRelativePath(Runtime, f)))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: f, Line: i + 1, Text: line)))
            .Where(l => !l.Text.TrimStart().StartsWith("///", StringComparison.Ordinal) && TableAccess().IsMatch(l.Text))
            .Select(l => $"{Path.GetRelativePath(Runtime, l.File)}:{l.Line}: {l.Text.Trim()}")
            .ToArray();
        Assert.AreEqual(0, offenders.Length, "a page-table traversal outside the walk:\n" + string.Join("\n", offenders));
    }

    [GeneratedRegex(@"\bHvo\.(HugeTlb|Scenario|Checks|Cli)\b|\bHugeTlb\.")]
    private static partial Regex Above();

    [GeneratedRegex(@"\.Table\(|\bTableEntries\.|\.Tables\b")]
    private static partial Regex TableAccess();
}
