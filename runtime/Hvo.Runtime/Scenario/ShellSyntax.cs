using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Hvo.Scenario;

/// <summary>
/// A line (or, for a <c>for</c> loop, several) that uses the shell beyond a plain <c>echo</c> or
/// <c>cat</c>: lists (<c>;</c>, <c>&amp;&amp;</c>, <c>||</c>), pipelines, loops, variables, globs,
/// and the other commands (<see cref="ShellCommands"/>). <see cref="Statement.Text"/> is the source
/// as written, line breaks included.
/// </summary>
public sealed record ShellStatement(SourceLocation Location, string Text, ShellList Body) : Statement(Location, Text);

/// <summary>Commands run one after the other (separated by <c>;</c> or line breaks).</summary>
public sealed record ShellList(IReadOnlyList<ShellAndOr> Items);

/// <summary>How a pipeline joins the one before it in an and-or list.</summary>
public enum ShellConnector
{
    /// <summary><c>&amp;&amp;</c>: run when the one before succeeded.</summary>
    And,

    /// <summary><c>||</c>: run when the one before failed.</summary>
    Or,
}

/// <summary>
/// <c>a &amp;&amp; b || c</c>: pipelines run left to right, each after the status of the one before
/// decides; a failure anywhere but in the last does not count against <c>set -e</c>.
/// </summary>
public sealed record ShellAndOr(ShellPipeline First, IReadOnlyList<(ShellConnector Connector, ShellPipeline Pipeline)> Rest);

/// <summary><c>a | b | c</c>: each command's output is the next one's input; the status is the last one's.</summary>
public sealed record ShellPipeline(SourceLocation Location, string Text, IReadOnlyList<ShellCommand> Commands);

/// <summary>A command of a pipeline: a simple command or a loop.</summary>
public abstract record ShellCommand(SourceLocation Location, string Text);

/// <summary>
/// <c>NAME=VALUE...</c> (shell variables, alone on their command) or <c>NAME WORD... [&gt; FILE]</c>:
/// a command of <see cref="ShellCommands"/> with its words as written, expanded when it runs.
/// </summary>
/// <param name="Assignments">Variables to set; a command with a name has none.</param>
/// <param name="Words">The command's name (literal) and its arguments.</param>
/// <param name="Redirect">Where its output goes: <c>&gt;</c> or <c>&gt;&gt;</c> a file, written with one write(2).</param>
public sealed record SimpleCommand(SourceLocation Location, string Text, IReadOnlyList<ShellAssignment> Assignments, IReadOnlyList<ShellWord> Words, ShellRedirect? Redirect)
    : ShellCommand(Location, Text);

/// <summary><c>for NAME in WORD...; do LIST; done</c>: the body once per field the words expand to.</summary>
public sealed record ForCommand(SourceLocation Location, string Text, string Variable, IReadOnlyList<ShellWord> Items, ShellList Body) : ShellCommand(Location, Text);

/// <summary><c>&gt; FILE</c> or <c>&gt;&gt; FILE</c>, and where the operator is.</summary>
public sealed record ShellRedirect(bool Append, ShellWord Target, SourceLocation Location);

/// <summary><c>NAME=VALUE</c>.</summary>
public sealed record ShellAssignment(string Name, ShellWord Value, SourceLocation Location);

/// <summary>A piece of a word: text (quoted or not) or a variable (<c>$NAME</c>, <c>${NAME}</c>, <c>$?</c>).</summary>
public abstract record WordPart;

/// <summary>Text as written, quotes removed. Unquoted text may hold glob characters (<c>*</c>, <c>?</c>, <c>[</c>).</summary>
public sealed record LiteralPart(string Text, bool Quoted) : WordPart;

/// <summary>A variable's value; unquoted, it is split into fields on blanks.</summary>
public sealed record VariablePart(string Name, bool Quoted) : WordPart;

/// <summary>A word of a command as written: its parts, and where it starts.</summary>
public sealed record ShellWord(IReadOnlyList<WordPart> Parts, SourceLocation Location)
{
    /// <summary>No variable and no unquoted glob character: the word is its text.</summary>
    public bool IsLiteral => Parts.All(p => p is LiteralPart l && (l.Quoted || !HasGlob(l.Text)));

    /// <summary>The word's text with quotes removed, when it is literal; variables written as <c>$NAME</c> otherwise.</summary>
    public string Text
    {
        get
        {
            var s = new StringBuilder();
            foreach (WordPart p in Parts)
            {
                s.Append(p switch
                {
                    LiteralPart l => l.Text,
                    VariablePart v => "$" + v.Name,
                    _ => string.Empty,
                });
            }

            return s.ToString();
        }
    }

    /// <summary>Some part is unquoted text.</summary>
    public bool HasUnquotedText => Parts.Any(p => p is LiteralPart { Quoted: false });

    public ScriptWord Word => new(Text, Location.Column);

    public static bool HasGlob(string text) => text.IndexOfAny(['*', '?', '[']) >= 0;
}
