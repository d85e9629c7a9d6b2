using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Hvo.Generator.Tests.Harness;

/// <summary>What one generator run gave: the driver to run again, the compiled result and the diagnostics.</summary>
internal sealed record GeneratorRun(
    GeneratorDriver Driver,
    Compilation Input,
    Compilation Output,
    ImmutableArray<Diagnostic> Diagnostics,
    GeneratorRunResult Result)
{
    /// <summary>Generated source text by hint name.</summary>
    public IReadOnlyDictionary<string, string> Sources =>
        Result.GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString(), StringComparer.Ordinal);

    /// <summary>Runs the same driver again over <paramref name="compilation"/> (default: the same input).</summary>
    public GeneratorRun Rerun(Compilation? compilation = null) => GeneratorHarness.Run(Driver, compilation ?? Input);

    /// <summary>Runs again after the editor saved <paramref name="edited"/> over <paramref name="old"/>.</summary>
    public GeneratorRun RerunWith(AdditionalText old, AdditionalText edited) =>
        GeneratorHarness.Run(Driver.ReplaceAdditionalText(old, edited), Input);
}

/// <summary>
/// Runs <see cref="HvoGenerator"/> in-process, as the compiler would, over the hand-written
/// contract types (runtime/Hvo.Runtime/Paging/Contract) and in-memory specs.
/// </summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    private static readonly Lazy<CSharpCompilation> s_contract = new(CreateContractCompilation);

    /// <summary>The contract types and the framework, with nothing generated yet.</summary>
    public static CSharpCompilation ContractCompilation => s_contract.Value;

    /// <summary>The shipped specs, each at its real path.</summary>
    public static IReadOnlyList<InMemoryAdditionalText> ShippedSpecs() =>
        Repo.SpecPaths.Select(p => InMemoryAdditionalText.Shipped(Path.GetFileName(p))).ToArray();

    public static GeneratorDriver CreateDriver(IEnumerable<AdditionalText> additionalTexts) =>
        CSharpGeneratorDriver.Create(
            new[] { new HvoGenerator().AsSourceGenerator() },
            additionalTexts,
            ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(params AdditionalText[] additionalTexts) =>
        Run(CreateDriver(additionalTexts), ContractCompilation);

    public static GeneratorRun Run(GeneratorDriver driver, Compilation compilation)
    {
        driver = driver.RunGeneratorsAndUpdateCompilation(compilation, out Compilation output, out ImmutableArray<Diagnostic> diagnostics);
        GeneratorDriverRunResult result = driver.GetRunResult();
        Assert.HasCount(1, result.Results, "one generator ran");
        return new GeneratorRun(driver, compilation, output, diagnostics, result.Results[0]);
    }

    private static CSharpCompilation CreateContractCompilation()
    {
        SyntaxTree[] contract = Directory.GetFiles(Repo.ContractDirectory, "*.cs")
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => CSharpSyntaxTree.ParseText(File.ReadAllText(p), ParseOptions, p))
            .ToArray();
        Assert.IsNotEmpty(contract, "the contract types exist");

        return CSharpCompilation.Create(
            "Hvo.Generator.Tests.Generated",
            contract,
            FrameworkReferences(),
            new CSharpCompilationOptions(
                OutputKind.DynamicallyLinkedLibrary,
                allowUnsafe: true,
                nullableContextOptions: NullableContextOptions.Enable));
    }

    /// <summary>The framework assemblies this test runs on: the trusted platform assemblies of the shared runtime.</summary>
    private static IEnumerable<MetadataReference> FrameworkReferences()
    {
        string runtimeDirectory = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        string tpa = (string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!;
        return tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Where(p => string.Equals(Path.GetDirectoryName(p), runtimeDirectory, StringComparison.Ordinal))
            .OrderBy(p => p, StringComparer.Ordinal)
            .Select(p => MetadataReference.CreateFromFile(p))
            .ToArray();
    }
}
