using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Hvo.Generator.Tests.Harness;

/// <summary>Where the repository and its shipped specs are, found from the test's own output folder.</summary>
internal static class Repo
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>The folder holding Generated.sln.</summary>
    public static string Root => s_root.Value;

    public static string SpecsDirectory => Path.Combine(Root, "specs");

    public static string ContractDirectory => Path.Combine(Root, "runtime", "Hvo.Runtime", "Paging", "Contract");

    /// <summary>Every shipped spec, ordered by path so that runs are reproducible.</summary>
    public static IReadOnlyList<string> SpecPaths =>
        Directory.GetFiles(SpecsDirectory, "*.json").OrderBy(p => p, StringComparer.Ordinal).ToArray();

    public static string SpecPath(string fileName) => Path.Combine(SpecsDirectory, fileName);

    public static string ReadSpec(string fileName) => File.ReadAllText(SpecPath(fileName));

    private static string FindRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Generated.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no Generated.sln above {AppContext.BaseDirectory}");
    }
}
