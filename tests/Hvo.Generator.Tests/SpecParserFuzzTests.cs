using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using CsCheck;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Emitting;
using Hvo.Generator.Parsing;
using Hvo.Generator.Tests.Harness;
using Hvo.Tests;
using Microsoft.CodeAnalysis;

namespace Hvo.Generator.Tests;

/// <summary>
/// The generator never crashes the build: whatever a spec's text, parsing gives a model or
/// diagnostics inside the file with documented IDs (AnalyzerReleases.Unshipped.md), never the
/// internal-error catch (HVO017); a model renders; and a spec with no error generates code that
/// compiles (issue 6, hostile input).
/// </summary>
/// <remarks>
/// A full generator-driver run with a compilation of its output costs tens of milliseconds
/// where parsing and rendering cost well under one, so each case is parsed and validated
/// directly (and its model rendered through the templates), and the full driver runs, with the
/// generated code compiled, on every spec that came out valid up to <see cref="DriverRunsCi"/>
/// in CI (every 20th in the long run), plus a sample of invalid ones.
/// </remarks>
[TestClass]
public sealed class SpecParserFuzzTests
{
    private const int CiCases = 1000;
    private const int DriverRunsCi = 10;
    private const int DriverBatch = 40;
    private const ulong CiSeed = 0x48564f5f53504543UL; // "HVO_SPEC"

    /// <summary>Characters that matter to JSON, to numbers and sizes, to comments, and to UTF-8 offsets.</summary>
    private const string Alphabet = "{}[]\":,/*\n\r\t -+.0123456789abcdefxXGKMTiBE_e\\\u00e9\u2014\U0001D11E";

    private static readonly Lazy<HashSet<string>> s_documented = new(() =>
    [
        .. File.ReadAllLines(Path.Combine(Repo.Root, "generator", "Hvo.Generator", "AnalyzerReleases.Unshipped.md"))
            .Select(line => Regex.Match(line, @"^(HVO\d{3})\s*\|"))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value),
    ]);

    public TestContext TestContext { get; set; } = null!;

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

        FixedSeeds.Sample(texts, text => AssertParsesCleanly(path, text), nameof(MutatedSpec_ParsesToAModelOrDiagnosticsInsideTheText), 1000);
    }

    [TestMethod]
    public void DocumentedIds_AreTheGeneratorsDescriptors()
    {
        string[] descriptors = [.. typeof(DiagnosticDescriptors)
            .GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .Select(f => f.GetValue(null))
            .OfType<DiagnosticDescriptor>()
            .Select(d => d.Id)
            .Order()];

        CollectionAssert.AreEquivalent(descriptors, s_documented.Value.ToArray(), "every descriptor is documented and nothing else is");
    }

    [TestMethod]
    public void GeneratedAndMutatedSpecs_OnlyDocumentedDiagnosticsAndValidOnesCompile() =>
        Fuzz(CiCases, DriverRunsCi, CiSeed);

    [TestMethod]
    [TestCategory("Long")]
    public void ManyGeneratedAndMutatedSpecs_OnlyDocumentedDiagnosticsAndValidOnesCompile()
    {
        LongRun.Require("the long spec fuzz (100 000 generated and mutated specs by default)");
        long cases = LongRun.Iterations(100_000);
        Fuzz(cases, (int)Math.Max(DriverRunsCi, cases / 400), (ulong)Environment.TickCount64);
    }

    /// <summary>
    /// <paramref name="cases"/> specs from <see cref="SpecFuzz.Specs"/>, drawn from one PCG stream
    /// so that CI sees the same ones every run; a failure names the case and prints its text.
    /// </summary>
    private void Fuzz(long cases, int driverRuns, ulong seed)
    {
        string path = Repo.SpecPath("fuzzed.json");
        var pcg = new PCG(11, seed);
        var ids = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var valid = new List<string>();
        var invalid = new List<string>();
        long models = 0;
        var clock = Stopwatch.StartNew();
        for (long i = 0; i < cases; i++)
        {
            string text = SpecFuzz.Specs.Generate(pcg, null, out _);
            try
            {
                ParseResult result = AssertParsesCleanly(path, text);
                foreach (DiagnosticInfo d in result.Diagnostics)
                {
                    ids[d.Descriptor.Id] = ids.GetValueOrDefault(d.Descriptor.Id) + 1;
                }

                if (result.Model is not null)
                {
                    models++;
                    string code = Emitter.RenderArch(result.Model);
                    Assert.IsFalse(string.IsNullOrEmpty(code), "the model renders");
                    if (valid.Count < driverRuns)
                    {
                        valid.Add(text);
                    }
                }
                else if (invalid.Count < driverRuns / 5)
                {
                    invalid.Add(text);
                }
            }
            catch (Exception e)
            {
                throw new AssertFailedException($"fuzz case {i} (seed 0x{seed:x}) failed: {e.Message}\n--- the spec ---\n{text}\n--- end ---", e);
            }
        }

        double parseMs = clock.Elapsed.TotalMilliseconds;
        clock.Restart();
        int driverBatches = 0;
        for (int at = 0; at < Math.Max(valid.Count, invalid.Count); at += DriverBatch)
        {
            AssertGeneratorRunIsClean([.. valid.Skip(at).Take(DriverBatch)], [.. invalid.Skip(at).Take(DriverBatch)]);
            driverBatches++;
        }

        double driverMs = clock.Elapsed.TotalMilliseconds;
        TestContext.WriteLine($"{cases} specs parsed and validated in {parseMs:0} ms ({parseMs * 1000 / cases:0} us each); {models} valid and rendered; "
            + $"{driverBatches} full generator runs over {valid.Count} valid specs (generated code compiled) and {invalid.Count} invalid ones in {driverMs:0} ms; diagnostics by ID: "
            + string.Join(", ", ids.Select(kv => $"{kv.Key} {kv.Value}")));
        Assert.IsGreaterThan(cases / 10, models, "the generated specs are plausible enough that many are valid");
        Assert.IsGreaterThan(10, ids.Count, "the fuzz reaches most diagnostics");
    }

    /// <summary>
    /// The whole generator, as the compiler runs it, over several specs at once (one compilation
    /// costs about a second here; specs with different names generate independent types): no
    /// CS8785 (generator exception), no HVO017, only documented IDs, errors only in the invalid
    /// specs, code for each valid spec, and the generated code compiles without errors.
    /// </summary>
    private static void AssertGeneratorRunIsClean(string[] valid, string[] invalid)
    {
        // One spec per type name: a second spec of the same name would be HVO014.
        var byType = new Dictionary<string, (string Path, string Text)>(StringComparer.Ordinal);
        foreach (string text in valid)
        {
            string type = SpecParser.Parse("x.json", text).Model!.TypeName;
            byType.TryAdd(type, (Repo.SpecPath($"valid{byType.Count}.json"), text));
        }

        (string Path, string Text)[] bad = [.. invalid.Select((t, i) => (Repo.SpecPath($"invalid{i}.json"), t))];
        GeneratorRun run = GeneratorHarness.Run([.. byType.Values.Concat(bad).Select(s => new InMemoryAdditionalText(s.Path, s.Text))]);
        string Specs() => string.Join("\n", byType.Values.Concat(bad).Select(s => $"--- {Path.GetFileName(s.Path)} ---\n{s.Text}"));
        foreach (Diagnostic d in run.Diagnostics)
        {
            Assert.AreNotEqual("CS8785", d.Id, $"the generator threw: {d}\n{Specs()}");
            Assert.AreNotEqual(DiagnosticDescriptors.InternalError.Id, d.Id, $"{d}\n{Specs()}");
            Assert.Contains(d.Id, s_documented.Value, $"{d} is documented");
            Assert.IsTrue(d.Location.IsInSource || d.Location.Kind == LocationKind.ExternalFile, $"{d} has a location");
            if (d.Severity == DiagnosticSeverity.Error)
            {
                Assert.StartsWith("invalid", Path.GetFileName(d.Location.GetLineSpan().Path), $"an error only in an invalid spec: {d}\n{Specs()}");
            }
        }

        string[] expected = [.. byType.Keys.Select(t => t + ".g.cs").Append("ArchRegistry.g.cs").Order(StringComparer.Ordinal)];
        string[] actual = [.. run.Result.GeneratedSources.Select(s => s.HintName).Order(StringComparer.Ordinal)];
        CollectionAssert.AreEqual(expected, actual, "code for each valid spec and the registry, none for an invalid one: " + string.Join(", ", actual));
        Diagnostic[] errors = [.. run.Output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error)];
        Assert.IsEmpty(errors, $"generated code does not compile:\n{string.Join(Environment.NewLine, errors.Take(10))}\n{Specs()}");
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

    private static ParseResult AssertParsesCleanly(string path, string text)
    {
        ParseResult result = SpecParser.Parse(path, text);

        Assert.IsTrue(result.Model is not null || result.Diagnostics.Count > 0, "a model or at least one diagnostic");
        Assert.IsTrue(
            result.Model is null || result.Diagnostics.All(d => d.Descriptor.DefaultSeverity != DiagnosticSeverity.Error),
            "a model only without errors");
        foreach (DiagnosticInfo info in result.Diagnostics)
        {
            Assert.AreNotEqual(DiagnosticDescriptors.InternalError.Id, info.Descriptor.Id, info.ToDiagnostic().ToString());
            Assert.Contains(info.Descriptor.Id, s_documented.Value, $"{info.Descriptor.Id} is listed in AnalyzerReleases.Unshipped.md");
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

        return result;
    }
}
