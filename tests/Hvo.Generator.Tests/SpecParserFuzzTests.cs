using System;
using System.Globalization;
using System.IO;
using System.Linq;
using CsCheck;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Parsing;
using Hvo.Generator.Tests.Harness;
using Microsoft.CodeAnalysis;

namespace Hvo.Generator.Tests;

/// <summary>
/// The generator never crashes the build: whatever a spec's text, parsing gives a model or a
/// diagnostic inside the file, and never the internal-error catch (HVO017).
/// </summary>
[TestClass]
public sealed class SpecParserFuzzTests
{
    /// <summary>Characters that matter to JSON, to numbers and sizes, to comments, and to UTF-8 offsets.</summary>
    private const string Alphabet = "{}[]\":,/*\n\r\t -+.0123456789abcdefxXGKMTiBE_e\\\u00e9\u2014\U0001D11E";

    private enum Mutation
    {
        Delete,
        Insert,
        Replace,
        Truncate,
    }

    [TestMethod]
    public void MutatedSpec_ParsesToAModelOrDiagnosticsInsideTheText()
    {
        // Each shipped spec as written, and without its comments so that most mutations land in values.
        string[] bases = Repo.SpecPaths
            .Select(p => File.ReadAllText(p))
            .SelectMany(t => new[] { t, WithoutComments(t) })
            .ToArray();
        string path = Repo.SpecPath("fuzzed.json");
        foreach (string b in bases)
        {
            Assert.IsNotNull(SpecParser.Parse(path, b).Model, "the fuzz starts from valid specs");
        }

        Gen<(Mutation Kind, int Position, int Length, string Chars)> mutation = Gen.Select(
            Gen.Enum<Mutation>(),
            Gen.Int[0, int.MaxValue],
            Gen.Int[1, 8],
            Gen.String[Gen.Char[Alphabet], 1, 8]);

        Gen<string> texts = Gen.Select(Gen.OneOf(bases), mutation.Array[1, 4], (b, ms) => ms.Aggregate(b, Apply));

        Check.Sample(texts, text => AssertParsesCleanly(path, text), iter: 1000);
    }

    /// <summary>The spec without its <c>//</c> comments (no spec puts "//" inside a string).</summary>
    private static string WithoutComments(string text) =>
        string.Join("\n", text.Split('\n').Select(line =>
        {
            int comment = line.IndexOf("//", StringComparison.Ordinal);
            return comment < 0 ? line : line.Substring(0, comment).TrimEnd();
        }).Where(line => line.Length > 0));

    private static string Apply(string text, (Mutation Kind, int Position, int Length, string Chars) m)
    {
        int at = text.Length == 0 ? 0 : m.Position % (text.Length + 1);
        int length = Math.Min(m.Length, text.Length - at);
        return m.Kind switch
        {
            Mutation.Delete => text.Remove(at, length),
            Mutation.Insert => text.Insert(at, m.Chars),
            Mutation.Replace => text.Remove(at, length).Insert(at, m.Chars),
            _ => text.Substring(0, at),
        };
    }

    private static void AssertParsesCleanly(string path, string text)
    {
        ParseResult result = SpecParser.Parse(path, text);

        Assert.IsTrue(result.Model is not null || result.Diagnostics.Count > 0, "a model or at least one diagnostic");
        Assert.IsTrue(
            result.Model is null || result.Diagnostics.All(d => d.Descriptor.DefaultSeverity != DiagnosticSeverity.Error),
            "a model only without errors");
        foreach (DiagnosticInfo info in result.Diagnostics)
        {
            Assert.AreNotEqual(DiagnosticDescriptors.InternalError.Id, info.Descriptor.Id, info.ToDiagnostic().ToString());
            SpecLocation? location = info.Location;
            Assert.IsNotNull(location, info.Descriptor.Id);
            Assert.AreEqual(path, location.FilePath);
            Assert.IsTrue(
                location.Start >= 0 && location.Length >= 0 && location.Start + location.Length <= text.Length,
                $"{info.Descriptor.Id} span [{location.Start}, +{location.Length}) in a text of {text.Length}");
            Assert.AreEqual(SpecEdit.PositionOf(text, location.Start), new Microsoft.CodeAnalysis.Text.LinePosition(location.StartLine, location.StartColumn), info.Descriptor.Id);
            Assert.AreEqual(SpecEdit.PositionOf(text, location.Start + location.Length), new Microsoft.CodeAnalysis.Text.LinePosition(location.EndLine, location.EndColumn), info.Descriptor.Id);

            Diagnostic d = info.ToDiagnostic();
            Assert.IsFalse(string.IsNullOrWhiteSpace(d.GetMessage(CultureInfo.InvariantCulture)), info.Descriptor.Id);
        }
    }
}
