using System;
using System.Globalization;
using System.Linq;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Parsing;
using Hvo.Generator.Tests.Harness;
using Microsoft.CodeAnalysis;

namespace Hvo.Generator.Tests;

/// <summary>
/// Hostile values (issue 6): every number beyond 64 bits, negative or fractional count, size
/// suffix overflow, shift of 64 or more, unicode digit or undecodable string is exactly one
/// diagnostic at the value; and text the spec carries into the generated code (the title) cannot
/// break it. The regressions of what the spec fuzz (<see cref="SpecParserFuzzTests"/>) found.
/// </summary>
[TestClass]
public sealed class SpecHostileValueTests
{
    private const string SpecFile = "x86_64.json";

    private static string Original => Repo.ReadSpec(SpecFile);

    [TestMethod]
    [DataRow("\"pageShift\": 12,", "12", "99999999999999999999", "is not a whole number from 0 to 2^64-1")]
    [DataRow("\"pageShift\": 12,", "12", "18446744073709551616", "is not a whole number from 0 to 2^64-1")]
    [DataRow("\"pageShift\": 12,", "12", "\"18446744073709551616\"", "is not a number")]
    [DataRow("\"pageShift\": 12,", "12", "\"\u0661\u0662\"", "is not a number")]
    [DataRow("\"pageShift\": 12,", "12", "\"\uff11\uff12\"", "is not a number")]
    [DataRow("\"vaBits\": 48,", "48", "-1", "is not a whole number")]
    [DataRow("\"vaBits\": 48,", "48", "\"-1\"", "is not a number")]
    [DataRow("\"vaBits\": 48,", "48", "48.0", "is not a whole number")]
    [DataRow("\"vaBits\": 48,", "48", "4.8e1", "is not a whole number")]
    [DataRow("\"vaBits\": 48,", "48", "true", "expected a number but found a boolean")]
    [DataRow("{ \"name\": \"pmd\", \"shift\": 21,", "21", "64", "out of range")]
    [DataRow("{ \"name\": \"pmd\", \"shift\": 21,", "21", "\"0x40\"", "out of range")]
    [DataRow("{ \"name\": \"pmd\", \"shift\": 21,", "21", "4294967317", "out of range")]
    [DataRow("\"pfn\": { \"lo\": 12, \"hi\": 51 }", "51", "64", "out of range")]
    [DataRow("\"sectionShift\": 27,", "27", "64", "out of range")]
    [DataRow("\"structPageBytes\": 64,", "64", "1e3", "is not a whole number")]
    [DataRow("\"size\": \"1TiB\",", "\"1TiB\"", "\"99999999999EiB\"", "does not fit in 64 bits")]
    [DataRow("\"size\": \"1TiB\",", "\"1TiB\"", "\"16EiB\"", "does not fit in 64 bits")]
    [DataRow("\"size\": \"1TiB\",", "\"1TiB\"", "\"1YiB\"", "unknown size suffix")]
    [DataRow("\"start\": \"0xffffea0000000000\",", "\"0xffffea0000000000\"", "\"0x1ffffea0000000000\"", "fits in 64 bits")]
    [DataRow("\"start\": \"0xffffea0000000000\",", "\"0xffffea0000000000\"", "18446744073709551616", "is not a whole number")]
    [DataRow("\"start\": \"0xffffea0000000000\",", "\"0xffffea0000000000\"", "\"0x\"", "is not a hex number")]
    [DataRow("\"hugePageSizes\": [\"2MiB\", \"1GiB\"],", "\"2MiB\"", "\"17179869184G\"", "does not fit in 64 bits")]
    [DataRow("{ \"name\": \"DMA32\", \"end\": \"4GiB\" }", "\"4GiB\"", "\"99999999999EiB\"", "does not fit in 64 bits")]
    [DataRow("\"readOnly\": { \"clear\": \"0x2\" }", "\"0x2\"", "-2", "is not a whole number")]
    public void HostileNumber_IsOneInvalidValueDiagnosticAtTheValue(string context, string oldValue, string newValue, string mention)
    {
        SpecEdit edit = SpecEdit.Replace(Original, context, oldValue, newValue);

        AssertOneDiagnosticAt(edit, DiagnosticDescriptors.InvalidValue, mention);
    }

    [TestMethod]
    public void NegativeContiguousCount_IsOneDiagnosticAtTheCount()
    {
        SpecEdit inserted = SpecEdit.Replace(Original, "\"contiguous\": [],", "[]", "[{ \"level\": \"pte\", \"count\": -16, \"bit\": 52 }]");

        AssertOneDiagnosticAt(inserted.At(inserted.Text.IndexOf("-16", StringComparison.Ordinal)), DiagnosticDescriptors.InvalidValue, "-16");
    }

    /// <summary>Found by the fuzz: <c>"\ud800"</c> made System.Text.Json's GetString throw, which surfaced as HVO017.</summary>
    [TestMethod]
    [DataRow("\"title\": \"x86-64, 4 KiB pages, 4-level paging (48-bit VA)\",", "\"x86-64, 4 KiB pages, 4-level paging (48-bit VA)\"", "\"\\ud800\"")]
    [DataRow("\"title\": \"x86-64, 4 KiB pages, 4-level paging (48-bit VA)\",", "\"x86-64, 4 KiB pages, 4-level paging (48-bit VA)\"", "\"ok \\udc00 then\"")]
    [DataRow("\"title\":", "\"title\"", "\"ti\\ud834tle\"")]
    public void LoneSurrogateEscape_IsMalformedJsonAtTheString(string context, string oldValue, string newValue)
    {
        SpecEdit edit = SpecEdit.Replace(Original, context, oldValue, newValue);

        AssertOneDiagnosticAt(edit, DiagnosticDescriptors.MalformedJson, "surrogate");
    }

    /// <summary>
    /// Found by the fuzz: the title goes into a C# string literal and a doc comment of the
    /// generated type; a newline (or U+2028, U+2029, U+0085, which C# also counts as line breaks)
    /// ended both, and the generated code did not compile.
    /// </summary>
    [TestMethod]
    [DataRow("line one\\nline two; cr\\r tab\\t nul\\u0000 bell\\u0007; separators \u2028 \u2029 \u0085 here")]
    [DataRow("quotes \\\" backslash \\\\ xml <summary> & </summary> */ /* // #if emoji \U0001F600 \u00e9 end \\\\")]
    public void AnyTitle_GeneratesCodeThatCompiles(string jsonTitle)
    {
        SpecEdit edit = SpecEdit.Replace(Original, "\"title\": \"x86-64, 4 KiB pages, 4-level paging (48-bit VA)\",", "x86-64, 4 KiB pages, 4-level paging (48-bit VA)", jsonTitle);
        GeneratorRun run = GeneratorHarness.Run(new InMemoryAdditionalText(Repo.SpecPath(SpecFile), edit.Text));

        Assert.IsEmpty(run.Diagnostics, string.Join(Environment.NewLine, run.Diagnostics));
        Assert.IsTrue(run.Sources.ContainsKey("X86_64.g.cs"));
        Diagnostic[] errors = [.. run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error)];
        Assert.IsEmpty(errors, string.Join(Environment.NewLine, errors.Take(5)));

        // The title survives as the spec wrote it: the literal in the generated code decodes to it.
        string expected = SpecParser.Parse(Repo.SpecPath(SpecFile), edit.Text).Model!.Title;
        StringAssert.Contains(run.Sources["X86_64.g.cs"], Emitting.ArchTemplateModel.Literal(expected));
    }

    private static void AssertOneDiagnosticAt(SpecEdit edit, DiagnosticDescriptor descriptor, string mention)
    {
        ParseResult result = SpecParser.Parse(Repo.SpecPath(SpecFile), edit.Text);

        string all = string.Join(Environment.NewLine, result.Diagnostics.Select(d => d.ToDiagnostic()));
        DiagnosticInfo d = Assert.ContainsSingle(result.Diagnostics, all);
        Assert.AreEqual(descriptor.Id, d.Descriptor.Id, all);
        Assert.IsNull(result.Model, "no model");
        Assert.IsNotNull(d.Location);
        Assert.AreEqual(edit.Offset, d.Location.Start, $"{all} at '{edit.Text.Substring(edit.Offset, Math.Min(20, edit.Text.Length - edit.Offset))}'");
        Assert.AreEqual(edit.Position.Line, d.Location.StartLine);
        Assert.AreEqual(edit.Position.Character, d.Location.StartColumn);
        StringAssert.Contains(d.ToDiagnostic().GetMessage(CultureInfo.InvariantCulture), mention, all);
    }
}
