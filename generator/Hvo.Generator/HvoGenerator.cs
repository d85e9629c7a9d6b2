using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Emitting;
using Hvo.Generator.Helpers;
using Hvo.Generator.Model;
using Hvo.Generator.Parsing;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Hvo.Generator;

/// <summary>
/// specs/*.json (AdditionalFiles) -> parse and validate -> equatable model -> one specialized
/// paging type per spec plus the registry of all of them.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class HvoGenerator : IIncrementalGenerator
{
    /// <summary>Names of the pipeline steps, for incremental-caching tests.</summary>
    public static class Steps
    {
        public const string Parse = "Parse";
        public const string Model = "Model";
        public const string Unique = "Unique";
        public const string Registry = "Registry";
        public const string Diagnostics = "Diagnostics";
    }

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        IncrementalValuesProvider<ParseResult> parsed = context.AdditionalTextsProvider
            .Where(static text => text.Path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            .Select(static (text, ct) => SpecParser.Parse(text.Path, text.GetText(ct)?.ToString() ?? string.Empty))
            .WithTrackingName(Steps.Parse);

        // Spec diagnostics: their own output, so a message change never regenerates code.
        context.RegisterSourceOutput(
            parsed.Select(static (p, _) => p.Diagnostics).WithTrackingName(Steps.Diagnostics),
            static (spc, diagnostics) =>
            {
                foreach (DiagnosticInfo d in diagnostics)
                {
                    spc.ReportDiagnostic(d.ToDiagnostic());
                }
            });

        // The model alone: where its name sits in the file is not part of it, so an edit that only
        // moves text around (a comment above "name") leaves this step Unchanged.
        IncrementalValuesProvider<ArchModel> models = parsed
            .Where(static p => p.Model is not null)
            .Select(static (p, _) => p.Model!)
            .WithTrackingName(Steps.Model);

        // Names must be unique: the first spec (by file name) keeps a name; later ones are not generated...
        IncrementalValuesProvider<ArchModel> archs = models.Collect()
            .SelectMany(static (all, _) => FirstOfEachName(all))
            .WithTrackingName(Steps.Unique);

        // ...and are reported where their name is written.
        IncrementalValueProvider<EquatableArray<DiagnosticInfo>> duplicates = parsed
            .Where(static p => p.Model is not null)
            .Select(static (p, _) => new NamedSpec(p.Model!.Name, p.Model.TypeName, p.Model.SpecFile, p.NameLocation))
            .Collect()
            .Select(static (all, _) => DuplicateNames(all));

        context.RegisterSourceOutput(duplicates, static (spc, diagnostics) =>
        {
            foreach (DiagnosticInfo d in diagnostics)
            {
                spc.ReportDiagnostic(d.ToDiagnostic());
            }
        });

        context.RegisterSourceOutput(archs, static (spc, model) => Emit(spc, model));

        IncrementalValueProvider<EquatableArray<string>> typeNames = archs
            .Select(static (m, _) => m.TypeName)
            .Collect()
            .Select(static (names, _) => names.ToEquatableArray())
            .WithTrackingName(Steps.Registry);

        context.RegisterSourceOutput(typeNames, static (spc, names) =>
            spc.AddSource("ArchRegistry.g.cs", SourceText.From(Emitter.RenderRegistry(names), System.Text.Encoding.UTF8)));
    }

    private static void Emit(SourceProductionContext spc, ArchModel model)
    {
        string code;
        try
        {
            code = Emitter.RenderArch(model);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            spc.ReportDiagnostic(DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, null, e.GetType().Name, e.Message).ToDiagnostic());
            return;
        }

        spc.AddSource(Emitter.HintName(model), SourceText.From(code, System.Text.Encoding.UTF8));
    }

    /// <summary>Where a spec's name was written, for the duplicate-name diagnostic.</summary>
    private sealed record NamedSpec(string Name, string TypeName, string SpecFile, SpecLocation? NameLocation);

    private static EquatableArray<ArchModel> FirstOfEachName(ImmutableArray<ArchModel> all) =>
        all.OrderBy(m => m.SpecFile, StringComparer.Ordinal)
            .GroupBy(m => m.TypeName, StringComparer.Ordinal)
            .Select(g => g.First())
            .OrderBy(m => m.TypeName, StringComparer.Ordinal)
            .ToEquatableArray();

    private static EquatableArray<DiagnosticInfo> DuplicateNames(ImmutableArray<NamedSpec> all) =>
        all.OrderBy(n => n.SpecFile, StringComparer.Ordinal)
            .GroupBy(n => n.TypeName, StringComparer.Ordinal)
            .SelectMany(g => g.Skip(1).Select(dup => DiagnosticInfo.Create(
                DiagnosticDescriptors.DuplicateName, dup.NameLocation, dup.Name, dup.TypeName, g.First().SpecFile)))
            .ToEquatableArray();
}
