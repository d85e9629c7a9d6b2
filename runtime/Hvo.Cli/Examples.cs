using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;

namespace Hvo.Cli;

/// <summary>A scenario shipped inside the command (Examples/*.hvo): its name, the first line of its header comment, and its text.</summary>
internal sealed record Example(string Name, string Description, string Text);

/// <summary>The embedded examples, listed by <c>hvo run --list</c> and run by name.</summary>
internal static class Examples
{
    private const string Prefix = "Hvo.Cli.Examples.";
    private const string Suffix = ".hvo";

    private static readonly Lazy<IReadOnlyList<Example>> Loaded = new(Load);

    public static IReadOnlyList<Example> All => Loaded.Value;

    public static Example? Find(string name) => All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.Ordinal));

    private static IReadOnlyList<Example> Load()
    {
        Assembly assembly = typeof(Examples).Assembly;
        var examples = new List<Example>();
        foreach (string resource in assembly.GetManifestResourceNames().Where(r => r.StartsWith(Prefix, StringComparison.Ordinal) && r.EndsWith(Suffix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using Stream stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            string text = reader.ReadToEnd();
            string first = text.Split('\n').Select(l => l.Trim()).FirstOrDefault(l => l.StartsWith('#')) ?? "#";
            examples.Add(new Example(resource[Prefix.Length..^Suffix.Length], first.TrimStart('#').Trim(), text));
        }

        return examples;
    }
}
