using System;
using System.Globalization;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Hvo.Generator.Tests.Harness;

/// <summary>
/// A shipped spec broken on purpose, and what the generator must say about it: exactly one
/// diagnostic of an ID, at the file, line and column of the broken value, naming it.
/// </summary>
internal sealed class SpecAssert(string specFile, string hintName)
{
    public string SpecFile { get; } = specFile;

    /// <summary>The spec as shipped.</summary>
    public string Original => Repo.ReadSpec(SpecFile);

    public GeneratorRun Run(SpecEdit edit) =>
        GeneratorHarness.Run(new InMemoryAdditionalText(Repo.SpecPath(SpecFile), edit.Text));

    /// <summary>The broken spec yields exactly one diagnostic, <paramref name="descriptor"/>, at the edit.</summary>
    public GeneratorRun ReportsOnly(DiagnosticDescriptor descriptor, SpecEdit edit, string mention)
    {
        GeneratorRun run = Run(edit);

        OnlyId(run, descriptor);
        Diagnostic d = Assert.ContainsSingle(run.Diagnostics);
        At(d, edit, mention);
        if (descriptor.DefaultSeverity == DiagnosticSeverity.Error)
        {
            Assert.IsFalse(run.Sources.ContainsKey(hintName), "an invalid spec generates no code");
        }

        return run;
    }

    public static void OnlyId(GeneratorRun run, DiagnosticDescriptor descriptor)
    {
        string all = string.Join(Environment.NewLine, run.Diagnostics);
        Assert.IsNotEmpty(run.Diagnostics, $"{descriptor.Id} is reported");
        foreach (Diagnostic d in run.Diagnostics)
        {
            Assert.AreEqual(descriptor.Id, d.Id, all);
            Assert.AreEqual(descriptor.DefaultSeverity, d.Severity, all);
        }
    }

    public void At(Diagnostic d, SpecEdit edit, string mention, string? path = null)
    {
        FileLinePositionSpan span = d.Location.GetLineSpan();
        Assert.AreEqual(path ?? Repo.SpecPath(SpecFile), span.Path, d.ToString());
        Assert.AreEqual(edit.Position, span.StartLinePosition, $"{d} at '{Excerpt(edit)}'");
        Assert.AreEqual(edit.Offset, d.Location.SourceSpan.Start, d.ToString());

        string message = d.GetMessage(CultureInfo.InvariantCulture);
        Assert.IsFalse(string.IsNullOrWhiteSpace(message), d.Id);
        Assert.Contains(mention, message);
    }

    private static string Excerpt(SpecEdit edit) =>
        edit.Text.Substring(edit.Offset, Math.Min(24, edit.Text.Length - edit.Offset));
}
