using System;
using System.IO;
using System.Linq;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>Where <c>hvo run</c> and <c>hvo compare</c> get a script: a file, <c>-</c> for standard input, or an example's name.</summary>
internal static class ScriptSource
{
    /// <summary>The script named by <paramref name="name"/>, parsed. A missing file is a <see cref="UsageException"/>; a syntax error a <see cref="ScriptError"/>.</summary>
    public static Script Load(string name, TextReader input)
    {
        if (name.StartsWith("--", StringComparison.Ordinal))
        {
            throw new UsageException($"{name}: no such option here ('hvo COMMAND --help' lists them; a SCRIPT does not start with --)");
        }

        if (name == "-")
        {
            return ScriptParser.Parse(input.ReadToEnd(), "<stdin>");
        }

        if (File.Exists(name))
        {
            string text;
            try
            {
                text = File.ReadAllText(name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UsageException($"script '{name}': {e.Message}");
            }

            return ScriptParser.Parse(text, name);
        }

        if (Examples.Find(name) is { } example)
        {
            return ScriptParser.Parse(example.Text, example.Name);
        }

        string what = Directory.Exists(name) ? "is a directory" : "no such file";
        throw new UsageException($"script '{name}': {what}, and no example has that name; examples: {string.Join(", ", Examples.All.Select(e => e.Name))} (hvo run --list)");
    }
}
