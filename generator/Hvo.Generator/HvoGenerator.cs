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

        IncrementalValuesProvider<NamedModel> models = parsed
            .Where(static p => p.Model is not null)
            .Select(static (p, _) => new NamedModel(p.Model!, p.NameLocation))
            .WithTrackingName(Steps.Model);

        // Names must be unique: the first spec (by path) keeps a name, later ones are reported and skipped.
        IncrementalValueProvider<UniqueModels> unique = models.Collect()
            .Select(static (all, _) => UniqueModels.From(all));

        context.RegisterSourceOutput(unique.Select(static (u, _) => u.Duplicates), static (spc, duplicates) =>
        {
            foreach (DiagnosticInfo d in duplicates)
            {
                spc.ReportDiagnostic(d.ToDiagnostic());
            }
        });

        IncrementalValuesProvider<ArchModel> archs = unique
            .SelectMany(static (u, _) => u.Models)
            .WithTrackingName(Steps.Unique);

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

    /// <summary>A model with where its name was written, for duplicate-name diagnostics.</summary>
    private sealed record NamedModel(ArchModel Model, SpecLocation? NameLocation);

    private sealed record UniqueModels(EquatableArray<ArchModel> Models, EquatableArray<DiagnosticInfo> Duplicates)
    {
        public static UniqueModels From(ImmutableArray<NamedModel> all)
        {
            var kept = new Dictionary<string, NamedModel>(StringComparer.Ordinal);
            var duplicates = new List<DiagnosticInfo>();
            foreach (NamedModel m in all.OrderBy(m => m.NameLocation?.FilePath ?? m.Model.SpecFile, StringComparer.Ordinal))
            {
                if (kept.TryGetValue(m.Model.TypeName, out NamedModel? first))
                {
                    duplicates.Add(DiagnosticInfo.Create(
                        DiagnosticDescriptors.DuplicateName, m.NameLocation, m.Model.Name, m.Model.TypeName, first.Model.SpecFile));
                }
                else
                {
                    kept.Add(m.Model.TypeName, m);
                }
            }

            return new UniqueModels(
                kept.Values.Select(m => m.Model).OrderBy(m => m.TypeName, StringComparer.Ordinal).ToEquatableArray(),
                duplicates.ToEquatableArray());
        }
    }
}
