using System.Collections.Generic;

namespace Hvo.Scenario;

/// <summary>
/// A scenario as a root shell takes it, parsed (<see cref="ScriptParser"/>): optional
/// <c>config</c> lines and an optional <c>boot</c> line first, then statements (a plain <c>echo</c> or <c>cat</c>, or a
/// <see cref="ShellStatement"/>: lists, pipelines, loops, the other commands), comments and blank
/// lines, each kept with its location so the transcript can show it and errors can point at it.
/// </summary>
/// <param name="File">The name errors use: a path, <c>-</c> for standard input, or an example's name.</param>
/// <param name="Lines">Every line in order, statements and the comments and blank lines between them.</param>
public sealed record Script(string File, IReadOnlyList<ScriptLine> Lines)
{
    /// <summary>The boot line, if the script has one (the first statement after the config lines).</summary>
    public BootStatement? Boot
    {
        get
        {
            foreach (ScriptLine line in Lines)
            {
                if (line is BootStatement b)
                {
                    return b;
                }
            }

            return null;
        }
    }

    /// <summary>CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON as the script's config lines set it, or null when they do not.</summary>
    public bool? HvoDefaultOn
    {
        get
        {
            bool? value = null;
            foreach (ScriptLine line in Lines)
            {
                if (line is ConfigStatement { Name: ConfigStatement.HvoDefaultOnOption } c)
                {
                    value = c.Value;
                }
            }

            return value;
        }
    }

    /// <summary>The statements, boot line included, without comments and blank lines.</summary>
    public IEnumerable<Statement> Statements
    {
        get
        {
            foreach (ScriptLine line in Lines)
            {
                if (line is Statement s)
                {
                    yield return s;
                }
            }
        }
    }
}

/// <summary>One line of a script: its location and its text as written (without the line break).</summary>
public abstract record ScriptLine(SourceLocation Location, string Text);

/// <summary>A blank line.</summary>
public sealed record BlankLine(SourceLocation Location) : ScriptLine(Location, string.Empty);

/// <summary>A line holding only a <c>#</c> comment.</summary>
public sealed record CommentLine(SourceLocation Location, string Text) : ScriptLine(Location, Text);

/// <summary>A command line.</summary>
public abstract record Statement(SourceLocation Location, string Text) : ScriptLine(Location, Text);

/// <summary>A word of a command line (quotes removed) and the column it starts at.</summary>
public readonly record struct ScriptWord(string Value, int Column);

/// <summary>
/// <c>boot PARAM...</c>: the kernel command line the simulated machine boots with. Each parameter is
/// <c>name</c> or <c>name=value</c>; <see cref="BootLine"/> interprets them.
/// </summary>
public sealed record BootStatement(SourceLocation Location, string Text, IReadOnlyList<ScriptWord> Parameters) : Statement(Location, Text);

/// <summary>
/// <c>echo [-n] VALUE... [/// <c>echo [-n] VALUE... [&gt; PATH]</c>: write the words joined by spaces, and a newline unlessgt; PATH]</c> (or <c>/// <c>echo [-n] VALUE... [&gt; PATH]</c>: write the words joined by spaces, and a newline unlessgt;/// <c>echo [-n] VALUE... [&gt; PATH]</c>: write the words joined by spaces, and a newline unlessgt;</c>, <see cref="Append"/>): write the words joined by spaces, and a newline unless
/// <c>-n</c>, to <see cref="Target"/>, or print them when there is no redirection.
/// </summary>
public sealed record EchoStatement(SourceLocation Location, string Text, string Value, bool Newline, ScriptWord? Target, bool Append = false) : Statement(Location, Text)
{
    /// <summary>What write(2) gets: the value and its newline.</summary>
    public string Data => Newline ? Value + "\n" : Value;
}

/// <summary>
/// <c>config CONFIG_NAME=y|n</c>, before the boot line: how the simulated kernel was built. The one
/// option modelled is CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON (<see cref="HvoDefaultOnOption"/>),
/// HVO's state when the boot line does not say (distributions such as Debian build it off).
/// </summary>
public sealed record ConfigStatement(SourceLocation Location, string Text, string Name, bool Value) : Statement(Location, Text)
{
    public const string HvoDefaultOnOption = "CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON";
}

/// <summary><c>cat PATH...</c>: print each file.</summary>
public sealed record CatStatement(SourceLocation Location, string Text, IReadOnlyList<ScriptWord> Paths) : Statement(Location, Text);
