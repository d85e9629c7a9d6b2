using System;
using System.Globalization;
using System.Linq;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Tests.Harness;
using Microsoft.CodeAnalysis;

namespace Hvo.Generator.Tests;

/// <summary>
/// Every invalid spec gets its own HVO diagnostic at the file, line and column of the offending
/// value (specs/README.md). Each test breaks one value of specs/x86_64.json.
/// </summary>
[TestClass]
public sealed class SpecDiagnosticsTests
{
    private const string SpecFile = "x86_64.json";
    private const string HintName = "X86_64.g.cs";

    private static string Original => Repo.ReadSpec(SpecFile);

    [TestMethod]
    public void HVO001_MalformedJson_PointsAtTheBadCharacter()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"pageShift\": 12,", "12", "@12");

        AssertReportsOnly(DiagnosticDescriptors.MalformedJson, edit, "@");
    }

    [TestMethod]
    public void HVO001_EmptyFile_IsMalformedAtTheStart()
    {
        AssertReportsOnly(DiagnosticDescriptors.MalformedJson, new SpecEdit(string.Empty, 0), "JSON");
    }

    [TestMethod]
    public void HVO002_MissingKey_PointsAtTheObjectThatLacksIt()
    {
        SpecEdit removed = SpecEdit.Remove(Original, "\"sectionShift\": 27,");
        SpecEdit edit = removed.At(removed.Text.IndexOf('{', removed.Text.IndexOf("\"vmemmap\":", StringComparison.Ordinal)));

        AssertReportsOnly(DiagnosticDescriptors.MissingKey, edit, "sectionShift");
    }

    [TestMethod]
    public void HVO003_UnknownKey_IsAWarningAtTheKeyAndCodeIsStillGenerated()
    {
        SpecEdit inserted = SpecEdit.InsertAfter(Original, "\"vaBits\": 48,", "\n  \"pageSize\": 4096,");
        SpecEdit edit = inserted.At(inserted.Text.IndexOf("\"pageSize\"", StringComparison.Ordinal));

        GeneratorRun run = AssertReportsOnly(DiagnosticDescriptors.UnknownKey, edit, "pageSize");

        Assert.AreEqual(DiagnosticSeverity.Warning, Assert.ContainsSingle(run.Diagnostics).Severity);
        Assert.IsTrue(run.Sources.ContainsKey(HintName), "an unknown key is ignored, not fatal");
        Diagnostic[] compileErrors = run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToArray();
        Assert.IsEmpty(compileErrors, string.Join(Environment.NewLine, compileErrors.Select(d => d.ToString())));
    }

    [TestMethod]
    public void HVO004_InvalidValue_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"ptdump\": \"x86\"", "\"x86\"", "\"sparc\"");

        AssertReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "sparc");
    }

    [TestMethod]
    public void HVO004_ZoneEndsOutOfOrder_PointAtTheLaterEnd()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "{ \"name\": \"DMA32\", \"end\": \"4GiB\" }", "\"4GiB\"", "\"8MiB\"");

        AssertReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "zones[1].end");
    }

    [TestMethod]
    public void HVO005_LevelsNotContiguous_PointsAtTheMovedShift()
    {
        // Moving pmd up one bit opens a gap below it and an overlap above it: both are reported.
        SpecEdit edit = SpecEdit.Replace(Original, "{ \"name\": \"pmd\", \"shift\": 21,", "21", "22");
        int pudShift = edit.Text.IndexOf("30", edit.Text.IndexOf("{ \"name\": \"pud\", \"shift\": ", StringComparison.Ordinal), StringComparison.Ordinal);

        GeneratorRun run = Run(edit);

        AssertOnlyId(run, DiagnosticDescriptors.LevelsNotContiguous);
        Assert.HasCount(2, run.Diagnostics, string.Join(Environment.NewLine, run.Diagnostics));
        AssertAt(run.Diagnostics.Single(d => d.GetMessage(CultureInfo.InvariantCulture).StartsWith("Level 'pmd'", StringComparison.Ordinal)), edit, "22");
        AssertAt(run.Diagnostics.Single(d => d.GetMessage(CultureInfo.InvariantCulture).StartsWith("Level 'pud'", StringComparison.Ordinal)), edit.At(pudShift), "pmd");
        Assert.IsFalse(run.Sources.ContainsKey(HintName), "an invalid spec generates no code");
    }

    [TestMethod]
    public void HVO006_LevelsInconsistent_RootNotReachingVaBits_PointsAtTheRootBits()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"shift\": 39, \"bits\": 9 }", "9 }", "8 }");

        AssertReportsOnly(DiagnosticDescriptors.LevelsInconsistent, edit, "pgd");
    }

    [TestMethod]
    public void HVO007_PfnFieldOutOfRange_PointsAtTheBadBound()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"pfn\": { \"lo\": 12, \"hi\": 51 }", "51", "8");

        AssertReportsOnly(DiagnosticDescriptors.PfnFieldOutOfRange, edit, "[12, 8]");
    }

    [TestMethod]
    public void HVO008_PfnFieldOverlap_PointsAtTheMakeValueWithAFrameBit()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"make\": \"0x8000000000000163\"", "\"0x8000000000000163\"", "\"0x8000000000001163\"");

        AssertReportsOnly(DiagnosticDescriptors.PfnFieldOverlap, edit, "0x8000000000001163");
    }

    [TestMethod]
    public void HVO009_AmbiguousKinds_ValueOutsideMask_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"table\": { \"mask\": \"0x81\", \"value\": \"0x01\"", "\"0x01\"", "\"0x03\"");

        AssertReportsOnly(DiagnosticDescriptors.AmbiguousKinds, edit, "entry.kinds.table.value 0x3");
    }

    [TestMethod]
    [DataRow("0x1000", "HVO008", "entry.accessFlag")]
    [DataRow("0x1", "HVO009", "the access flag needs a bit of its own")]
    [DataRow("0x30", "HVO004", "is not one bit")]
    [DataRow("0x200", "HVO004", "is clear in entry.kinds.page.make")]
    public void AccessFlag_OverlappingOrMissingFromPageKernel_PointsAtTheValue(string value, string id, string message)
    {
        SpecEdit inserted = SpecEdit.InsertAfter(Original, "\"readOnly\": { \"clear\": \"0x2\" }", $",\n    \"accessFlag\": \"{value}\"");
        SpecEdit edit = inserted.At(inserted.Text.IndexOf($"\"{value}\"", inserted.Offset, StringComparison.Ordinal));
        DiagnosticDescriptor descriptor = id switch
        {
            "HVO008" => DiagnosticDescriptors.PfnFieldOverlap,
            "HVO009" => DiagnosticDescriptors.AmbiguousKinds,
            _ => DiagnosticDescriptors.InvalidValue,
        };

        AssertReportsOnly(descriptor, edit, message);
    }

    [TestMethod]
    public void HVO010_StructPageNotPowerOfTwo_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"structPageBytes\": 64", "64", "48");

        AssertReportsOnly(DiagnosticDescriptors.StructPageNotPowerOfTwo, edit, "48");
    }

    [TestMethod]
    public void HVO010_StructPageSmallerThanTheKernels_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"structPageBytes\": 64", "64", "32");

        AssertReportsOnly(DiagnosticDescriptors.StructPageNotPowerOfTwo, edit, "32");
    }

    [TestMethod]
    public void HVO011_VmemmapMisaligned_PointsAtTheStart()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"start\": \"0xffffea0000000000\"", "\"0xffffea0000000000\"", "\"0xffffea0000001000\"");

        AssertReportsOnly(DiagnosticDescriptors.VmemmapMisaligned, edit, "0xffffea0000001000");
    }

    [TestMethod]
    public void HVO012_VmemmapTooSmall_PointsAtTheSize()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"size\": \"1TiB\"", "\"1TiB\"", "\"512GiB\"");

        AssertReportsOnly(DiagnosticDescriptors.VmemmapTooSmall, edit, "512G");
    }

    [TestMethod]
    public void HVO013_BadHugePageSize_PointsAtTheSize()
    {
        SpecEdit replaced = SpecEdit.Replace(Original, "\"hugePageSizes\": [\"2MiB\", \"1GiB\"]", "[\"2MiB\", \"1GiB\"]", "[\"4MiB\"]");
        SpecEdit edit = replaced.At(replaced.Offset + 1);

        AssertReportsOnly(DiagnosticDescriptors.BadHugePageSize, edit, "4M");
    }

    [TestMethod]
    public void HVO014_DuplicateName_PointsAtTheLaterSpecsNameAndKeepsTheFirst()
    {
        string text = Original;
        var first = new InMemoryAdditionalText(Repo.SpecPath(SpecFile), text);
        var second = new InMemoryAdditionalText(Repo.SpecPath("zz-copy-of-x86_64.json"), text);
        SpecEdit edit = new(text, text.IndexOf("\"x86_64\"", text.IndexOf("\"name\":", StringComparison.Ordinal), StringComparison.Ordinal));

        GeneratorRun run = GeneratorHarness.Run(first, second);

        AssertOnlyId(run, DiagnosticDescriptors.DuplicateName);
        Diagnostic d = Assert.ContainsSingle(run.Diagnostics);
        AssertAt(d, edit, "x86_64", second.Path);
        Assert.IsTrue(run.Sources.ContainsKey(HintName), "the first spec with the name is still generated");
        Assert.HasCount(2, run.Sources, "one arch plus the registry");
    }

    [TestMethod]
    public void HVO015_InvalidName_PointsAtTheName()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"name\": \"x86_64\"", "\"x86_64\"", "\"X86_64\"");

        AssertReportsOnly(DiagnosticDescriptors.InvalidName, edit, "X86_64");
    }

    [TestMethod]
    public void HVO016_UnknownLevel_BootMappingNamesNoLevel_PointsAtTheName()
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"bootMapping\": \"pmd\"", "\"pmd\"", "\"p4d\"");

        AssertReportsOnly(DiagnosticDescriptors.UnknownLevel, edit, "p4d");
    }

    [TestMethod]
    public void Locations_CountCharactersNotUtf8Bytes()
    {
        // A comment with multi-byte UTF-8 before the broken value: the reader works in bytes, Roslyn in characters.
        string text = "// Größe — naïve ✓ 𝄞\n" + Original;
        SpecEdit edit = SpecEdit.Replace(text, "\"structPageBytes\": 64", "64", "48");

        AssertReportsOnly(DiagnosticDescriptors.StructPageNotPowerOfTwo, edit, "48");
    }

    private static readonly SpecAssert s_spec = new(SpecFile, HintName);

    private static GeneratorRun Run(SpecEdit edit) => s_spec.Run(edit);

    private static GeneratorRun AssertReportsOnly(DiagnosticDescriptor descriptor, SpecEdit edit, string mention) =>
        s_spec.ReportsOnly(descriptor, edit, mention);

    private static void AssertOnlyId(GeneratorRun run, DiagnosticDescriptor descriptor) => SpecAssert.OnlyId(run, descriptor);

    private static void AssertAt(Diagnostic d, SpecEdit edit, string mention, string? path = null) => s_spec.At(d, edit, mention, path);
}
