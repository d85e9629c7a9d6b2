using System;
using System.Collections.Generic;
using System.Linq;

namespace Hvo.Scenario;

/// <summary>
/// A <see cref="Script"/> written in code, for a driver that turns its own options into commands
/// (<c>hvo simulate</c>): each line is what a script file would hold, with its location, and for
/// the values a shell line can hold, <see cref="ScriptParser.Parse"/> of the lines' text gives the
/// same statements.
/// </summary>
public sealed class ScriptBuilder(string file)
{
    private const string Plain = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+=:,./@%-";
    private readonly List<ScriptLine> _lines = [];

    /// <summary><c>boot PARAM...</c>, the first statement; each parameter is checked as the parser checks it (a <see cref="ScriptError"/> for a bad value).</summary>
    public ScriptBuilder Boot(params IEnumerable<string> parameters)
    {
        if (_lines.Any(l => l is Statement))
        {
            throw new InvalidOperationException("'boot' must be the first statement");
        }

        SourceLocation at = Next();
        var words = new List<ScriptWord>();
        string text = "boot";
        foreach (string p in parameters)
        {
            if (p.Length == 0 || p.Any(char.IsWhiteSpace))
            {
                throw new ArgumentException($"a kernel command line parameter is one word: '{p}'", nameof(parameters));
            }

            var word = new ScriptWord(p, text.Length + 2);
            BootLine.CheckSyntax(word, at);
            words.Add(word);
            text += " " + p;
        }

        _lines.Add(new BootStatement(at, text, words));
        return this;
    }

    /// <summary><c>echo VALUE &gt; PATH</c>: write <paramref name="value"/> and a newline to <paramref name="path"/>.</summary>
    public ScriptBuilder Echo(string value, string path)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(path);
        if (value.Length >= 2 && value[0] == '-' && value.Skip(1).All(c => c is 'n' or 'e' or 'E'))
        {
            throw new ArgumentException($"echo takes '{value}' as a flag, not as a value to write", nameof(value));
        }

        if (path.Length == 0 || path.Any(c => !Plain.Contains(c, StringComparison.Ordinal)))
        {
            throw new ArgumentException($"'{path}' is not a kernel file's path", nameof(path));
        }

        string text = $"echo {Quote(value)} > {path}";
        _lines.Add(new EchoStatement(Next(), text, value, Newline: true, new ScriptWord(path, text.Length - path.Length + 1)));
        return this;
    }

    public Script Build() => new(file, [.. _lines]);

    private SourceLocation Next() => new(file, _lines.Count + 1, 1);

    // As a shell reads it back: plain words as they are, anything else in single quotes ('\'' for a quote).
    private static string Quote(string value) =>
        value.Length > 0 && value.All(c => Plain.Contains(c, StringComparison.Ordinal))
            ? value
            : "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
