using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using Hvo.Generator.Model;
using Hvo.Generator.Tests.Harness;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Hvo.Generator.Tests;

/// <summary>
/// The pipeline is incremental: an edit that does not change a spec's model regenerates nothing,
/// and an edit to one spec regenerates only that spec's type.
/// </summary>
[TestClass]
public sealed class IncrementalCachingTests
{
    private const string EditedSpec = "x86_64.json";
    private const string EditedHint = "X86_64.g.cs";

    /// <summary>Every named step of the pipeline, read from <see cref="HvoGenerator.Steps"/> so that a new step is covered.</summary>
    private static readonly string[] s_stepNames = typeof(HvoGenerator.Steps)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(string))
        .Select(f => (string)f.GetRawConstantValue()!)
        .ToArray();

    [TestMethod]
    public void UnrelatedCSharpEdit_LeavesEveryStepCachedOrUnchanged()
    {
        GeneratorRun first = GeneratorHarness.Run(GeneratorHarness.ShippedSpecs().ToArray());
        Compilation edited = first.Input.AddSyntaxTrees(CSharpSyntaxTree.ParseText(
            "namespace Elsewhere { internal sealed class Unrelated { } }", GeneratorHarness.ParseOptions));

        GeneratorRun second = first.Rerun(edited);

        Assert.IsGreaterThanOrEqualTo(5, s_stepNames.Length, string.Join(", ", s_stepNames));
        foreach (string step in s_stepNames)
        {
            AssertAllCachedOrUnchanged(second, step);
        }

        CollectionAssert.AreEquivalent(Array.Empty<string>(), ChangedSources(first, second).ToArray());
    }

    [TestMethod]
    public void EditingOneSpecsTitle_RegeneratesOnlyThatSpecsType()
    {
        IReadOnlyList<InMemoryAdditionalText> specs = GeneratorHarness.ShippedSpecs();
        InMemoryAdditionalText old = specs.Single(s => s.Path == Repo.SpecPath(EditedSpec));
        InMemoryAdditionalText edited = old.WithText(SpecEdit.InsertAfter(old.Text, "\"title\": \"", "Edited: ").Text);
        GeneratorRun first = GeneratorHarness.Run(specs.ToArray());

        GeneratorRun second = first.RerunWith(old, edited);

        foreach (string step in new[] { HvoGenerator.Steps.Parse, HvoGenerator.Steps.Model, HvoGenerator.Steps.Unique })
        {
            (object Value, IncrementalStepRunReason Reason)[] outputs = Outputs(second, step);
            Assert.HasCount(specs.Count, outputs, step);
            (object Value, IncrementalStepRunReason Reason) modified = Assert.ContainsSingle(
                outputs.Where(o => o.Reason == IncrementalStepRunReason.Modified), step);
            Assert.IsTrue(outputs.All(o => o.Reason is IncrementalStepRunReason.Modified or IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged), step);
            if (step == HvoGenerator.Steps.Unique)
            {
                Assert.StartsWith("Edited: ", ((ArchModel)modified.Value).Title);
            }
        }

        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Registry);
        CollectionAssert.AreEqual(new[] { EditedHint }, ChangedSources(first, second).ToArray());
        Assert.Contains("Edited: ", second.Sources[EditedHint]);
    }

    [TestMethod]
    public void CommentEdit_LeavesModelStepUnchanged()
    {
        IReadOnlyList<InMemoryAdditionalText> specs = GeneratorHarness.ShippedSpecs();
        InMemoryAdditionalText old = specs.Single(s => s.Path == Repo.SpecPath(EditedSpec));
        string text = SpecEdit.InsertAfter(old.Text, "// sizeof(struct page) with the usual config", " (an edited comment,\n    // now two lines long)").Text;
        InMemoryAdditionalText edited = old.WithText(text);
        GeneratorRun first = GeneratorHarness.Run(specs.ToArray());

        GeneratorRun second = first.RerunWith(old, edited);

        // The edited file really was read again: its parse gave an equal result.
        Assert.ContainsSingle(Outputs(second, HvoGenerator.Steps.Parse).Where(o => o.Reason == IncrementalStepRunReason.Unchanged));
        Assert.HasCount(specs.Count, Outputs(second, HvoGenerator.Steps.Model));
        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Model);
        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Unique);
        CollectionAssert.AreEqual(Array.Empty<string>(), ChangedSources(first, second).ToArray());
    }

    [TestMethod]
    public void CommentEditAboveTheName_RegeneratesNoCode()
    {
        IReadOnlyList<InMemoryAdditionalText> specs = GeneratorHarness.ShippedSpecs();
        InMemoryAdditionalText old = specs.Single(s => s.Path == Repo.SpecPath(EditedSpec));
        InMemoryAdditionalText edited = old.WithText("// A new first line of commentary.\n" + old.Text);
        GeneratorRun first = GeneratorHarness.Run(specs.ToArray());

        GeneratorRun second = first.RerunWith(old, edited);

        // The name's position moved, but it is not part of the model.
        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Model);
        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Unique);
        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Registry);
        CollectionAssert.AreEqual(Array.Empty<string>(), ChangedSources(first, second).ToArray());
    }

    [TestMethod]
    public void DiagnosticOnlyEdit_ReportsWithoutRegeneratingCode()
    {
        IReadOnlyList<InMemoryAdditionalText> specs = GeneratorHarness.ShippedSpecs();
        InMemoryAdditionalText old = specs.Single(s => s.Path == Repo.SpecPath(EditedSpec));
        InMemoryAdditionalText edited = old.WithText(SpecEdit.InsertAfter(old.Text, "\"vaBits\": 48,", " \"pageSize\": 4096,").Text);
        GeneratorRun first = GeneratorHarness.Run(specs.ToArray());

        GeneratorRun second = first.RerunWith(old, edited);

        Assert.AreEqual("HVO003", Assert.ContainsSingle(second.Diagnostics).Id);
        Assert.ContainsSingle(Outputs(second, HvoGenerator.Steps.Diagnostics).Where(o => o.Reason == IncrementalStepRunReason.Modified));
        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Model);
        AssertAllCachedOrUnchanged(second, HvoGenerator.Steps.Unique);
        CollectionAssert.AreEqual(Array.Empty<string>(), ChangedSources(first, second).ToArray());
    }

    private static (object Value, IncrementalStepRunReason Reason)[] Outputs(GeneratorRun run, string step)
    {
        Assert.IsTrue(
            run.Result.TrackedSteps.TryGetValue(step, out var steps),
            $"step '{step}' was tracked; tracked: {string.Join(", ", run.Result.TrackedSteps.Keys)}");
        return steps!.SelectMany(s => s.Outputs).ToArray();
    }

    private static void AssertAllCachedOrUnchanged(GeneratorRun run, string step)
    {
        (object Value, IncrementalStepRunReason Reason)[] outputs = Outputs(run, step);
        Assert.IsNotEmpty(outputs, step);
        foreach ((object value, IncrementalStepRunReason reason) in outputs)
        {
            Assert.IsTrue(
                reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged,
                $"step '{step}' output {value} was {reason}");
        }
    }

    /// <summary>Hint names whose generated text differs between the runs (both runs generate the same files).</summary>
    private static IEnumerable<string> ChangedSources(GeneratorRun before, GeneratorRun after)
    {
        IReadOnlyDictionary<string, string> a = before.Sources, b = after.Sources;
        CollectionAssert.AreEquivalent(a.Keys.ToArray(), b.Keys.ToArray(), "the same files are generated");
        return a.Keys.Where(k => a[k] != b[k]).OrderBy(k => k, StringComparer.Ordinal);
    }
}
