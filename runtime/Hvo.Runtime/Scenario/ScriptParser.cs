using System;
using System.Collections.Generic;
using System.Linq;

namespace Hvo.Scenario;

/// <summary>
/// Parses a script written as a user types it at a root shell (<see cref="ShellLexer"/> has the
/// words and quotes): <c>config</c> lines (how the kernel was built) and a <c>boot</c> line first,
/// then commands of <see cref="ShellCommands"/> joined
/// by <c>;</c>, <c>&amp;&amp;</c>, <c>||</c> and <c>|</c>, redirected with <c>&gt;</c> or
/// <c>&gt;&gt;</c>, <c>for NAME in ...; do ...; done</c> loops, <c>NAME=VALUE</c>, <c>$NAME</c> and
/// <c>${NAME}</c>, globs, and <c>sudo</c> before a command (the script runs as root). A line that is
/// one plain <c>echo</c> or <c>cat</c> is an <see cref="EchoStatement"/> or a <see cref="CatStatement"/>;
/// anything else a <see cref="ShellStatement"/>. Everything outside that vocabulary is refused at its
/// column before anything runs; the parser goes on at the next line, so one <see cref="ScriptError"/>
/// reports every error of the script.
/// </summary>
public static class ScriptParser
{
    private static readonly HashSet<string> Unsupported = new(StringComparer.Ordinal)
    {
        "if", "then", "elif", "else", "fi", "while", "until", "case", "esac", "function", "select", "!", "[[", "]]", "{", "}",
    };

    /// <summary>What a script may say, for messages.</summary>
    public static string Vocabulary =>
        $"commands are config {ConfigStatement.HvoDefaultOnOption}=y|n (before boot), boot (the first line), {string.Join(", ", ShellCommands.All.Select(c => c.Name))} and sudo before any of them; " +
        "joined with ;, &&, || and |, redirected with > or >>, for NAME in ...; do ...; done, NAME=VALUE, $NAME and globs";

    public static Script Parse(string text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(file);
        return new Parser(text, file).Script();
    }

    internal static ScriptError Error(SourceLocation line, int column, string reason) => new(line with { Column = column }, reason);

    private sealed class Parser(string text, string file)
    {
        private readonly ShellLexer _lex = new(text, file);
        private readonly List<ScriptError> _errors = [];
        private bool _anyStatement;

        public Script Script()
        {
            var lines = new List<ScriptLine>();
            while (true)
            {
                Token t = _lex.Peek();
                if (t.Kind == TokenKind.End)
                {
                    break;
                }

                SourceLocation at = _lex.At(t.Start) with { Column = 1 };
                if (t.Kind == TokenKind.Newline)
                {
                    _lex.Next();
                    lines.Add(new BlankLine(at));
                    continue;
                }

                if (t.Kind == TokenKind.Comment)
                {
                    _lex.Next();
                    lines.Add(new CommentLine(at, t.Operator.Trim()));
                    EndOfLine();
                    continue;
                }

                try
                {
                    lines.Add(Statement());
                    EndOfLine();
                }
                catch (ScriptError e)
                {
                    Recover(e);
                }
            }

            if (_errors.Count > 0)
            {
                throw ScriptError.Of(_errors);
            }

            return new Script(file, lines);
        }

        private void Recover(ScriptError e)
        {
            _errors.Add(e);
            _lex.SkipLine();
            if (_lex.Peek().Kind == TokenKind.Newline)
            {
                _lex.Next();
            }
        }

        // In a loop's body: skip to the next ';', line break or 'done', so the loop's end is still found.
        private void RecoverInBody(ScriptError e)
        {
            _errors.Add(e);
            while (true)
            {
                Token t;
                try
                {
                    t = _lex.Peek();
                }
                catch (ScriptError)
                {
                    _lex.SkipLine();
                    return;
                }

                if (t.Kind is TokenKind.Newline or TokenKind.End || t.Is(";") || t.IsKeyword("done"))
                {
                    return;
                }

                _lex.Next();
            }
        }

        private void EndOfLine()
        {
            Token t = _lex.Next();
            if (t.Kind == TokenKind.Comment)
            {
                t = _lex.Next();
            }

            if (t.Kind is not (TokenKind.Newline or TokenKind.End))
            {
                throw Unexpected(t);
            }
        }

        // One top-level statement: a list on one line (a loop may span lines), then what kind it is.
        private Statement Statement()
        {
            Token first = _lex.Peek();
            ShellList list = List(topLevel: true);
            int end = _lex.LineEnd(Math.Max(first.Start, _lex.Peek().Start - 1));
            SourceLocation at = _lex.At(first.Start);
            string source = text[first.Start..end].Trim();
            bool isFirst = !_anyStatement;
            _anyStatement = true;
            if (list.Items is [{ Rest: [] } only] && only.First.Commands is [SimpleCommand simple])
            {
                if (simple.Words.Count > 0 && simple.Words[0].Text == "boot" && simple.Words[0].IsLiteral)
                {
                    return Boot(simple, source, isFirst);
                }

                if (simple.Words.Count > 0 && simple.Words[0].Text == "config" && simple.Words[0].IsLiteral)
                {
                    _anyStatement = !isFirst; // the boot line may still follow
                    return Config(simple, source, isFirst);
                }

                if (Plain(simple, source) is { } plain)
                {
                    return plain;
                }
            }

            if (Commands(list).OfType<SimpleCommand>().FirstOrDefault(c => c.Words.Count > 0 && c.Words[0].Text is "boot" or "config") is { } misplaced)
            {
                SourceLocation where = misplaced.Words[0].Location;
                throw Error(where, where.Column, misplaced.Words[0].Text == "boot"
                    ? "'boot' stands alone on the first line: it is the kernel command line the machine boots with, before any command runs"
                    : "'config' stands alone on a line before the boot line: it says how the kernel was built");
            }

            return new ShellStatement(at, source, list);
        }

        private static IEnumerable<ShellCommand> Commands(ShellList list) =>
            list.Items
                .SelectMany(i => new[] { i.First }.Concat(i.Rest.Select(r => r.Pipeline)))
                .SelectMany(p => p.Commands)
                .SelectMany(c => c is ForCommand f ? Commands(f.Body).Prepend(c) : [c]);

        private BootStatement Boot(SimpleCommand boot, string source, bool first)
        {
            SourceLocation at = boot.Location;
            if (!first)
            {
                throw Error(at, at.Column, "'boot' must be the first statement: the machine boots once, before any command runs");
            }

            if (boot.Redirect is { } r)
            {
                throw Error(at, r.Location.Column, "a boot line is a kernel command line: it has no redirection");
            }

            var parameters = new List<ScriptWord>();
            foreach (ShellWord w in boot.Words.Skip(1))
            {
                if (!w.IsLiteral)
                {
                    throw Error(at, w.Location.Column, "a boot line is a kernel command line: write its values, no variables or globs");
                }

                BootLine.CheckSyntax(w.Word, at);
                parameters.Add(w.Word);
            }

            return new BootStatement(at, source, parameters);
        }

        // config CONFIG_NAME=y|n, before the boot line: the one build option modelled.
        private static ConfigStatement Config(SimpleCommand config, string source, bool first)
        {
            SourceLocation at = config.Location;
            if (!first)
            {
                throw Error(at, at.Column, "'config' comes before the boot line: it says how the kernel was built");
            }

            string usage = $"config takes {ConfigStatement.HvoDefaultOnOption}=y or =n (the one build option modelled)";
            if (config.Redirect is { } r)
            {
                throw Error(at, r.Location.Column, usage);
            }

            if (config.Words is not [_, { IsLiteral: true } option] || option.Text.Split('=') is not [ConfigStatement.HvoDefaultOnOption, "y" or "n"])
            {
                throw Error(at, config.Words.Count > 1 ? config.Words[1].Location.Column : at.Column, usage);
            }

            return new ConfigStatement(at, source, ConfigStatement.HvoDefaultOnOption, option.Text.EndsWith("=y", StringComparison.Ordinal));
        }

        // A lone echo or cat whose words are all written out: the statements the simplest scripts hold.
        private static Statement? Plain(SimpleCommand c, string source)
        {
            if (c.Assignments.Count > 0 || c.Words.Count == 0 || !c.Words.All(w => w.IsLiteral) || c.Redirect is { Target.IsLiteral: false })
            {
                return null;
            }

            string[] words = [.. c.Words.Select(w => w.Text)];
            switch (words[0])
            {
                case "echo":
                    (string value, bool newline) = EchoCommand.Value(words.AsSpan(1));
                    return new EchoStatement(c.Location, source, value, newline, c.Redirect?.Target.Word, c.Redirect?.Append == true);
                case "cat" when c.Redirect is null && words.Length > 1 && !words.Skip(1).Any(w => w.StartsWith('-')):
                    return new CatStatement(c.Location, source, [.. c.Words.Skip(1).Select(w => w.Word)]);
                default:
                    return null;
            }
        }

        // LIST: and-or lists separated by ';' (and, in a loop's body, line breaks), up to the end of
        // the line at top level or 'done' in a body. In a body an error is recorded and the next line parsed.
        private ShellList List(bool topLevel)
        {
            var items = new List<ShellAndOr>();
            while (true)
            {
                Token t = _lex.Peek();
                if (!topLevel)
                {
                    if (t.Kind is TokenKind.Newline or TokenKind.Comment || t.Is(";"))
                    {
                        _lex.Next();
                        continue;
                    }

                    if (t.IsKeyword("done") || t.Kind == TokenKind.End)
                    {
                        return new ShellList(items);
                    }

                    try
                    {
                        items.Add(AndOr());
                    }
                    catch (ScriptError e)
                    {
                        RecoverInBody(e);
                    }

                    continue;
                }

                items.Add(AndOr());
                t = _lex.Peek();
                if (!t.Is(";"))
                {
                    return new ShellList(items);
                }

                _lex.Next();
                t = _lex.Peek();
                if (t.Kind is TokenKind.Newline or TokenKind.End or TokenKind.Comment)
                {
                    return new ShellList(items); // a trailing ';'
                }
            }
        }

        private ShellAndOr AndOr()
        {
            ShellPipeline first = Pipeline();
            var rest = new List<(ShellConnector, ShellPipeline)>();
            while (_lex.Peek() is { } t && (t.Is("&&") || t.Is("||")))
            {
                _lex.Next();
                SkipLineBreaks(); // a line ending with && or || goes on on the next
                rest.Add((t.Is("&&") ? ShellConnector.And : ShellConnector.Or, Pipeline()));
            }

            return new ShellAndOr(first, rest);
        }

        private ShellPipeline Pipeline()
        {
            Token first = _lex.Peek();
            var commands = new List<ShellCommand> { Command(readsInput: false) };
            while (_lex.Peek().Is("|"))
            {
                _lex.Next();
                SkipLineBreaks();
                commands.Add(Command(readsInput: true));
            }

            return new ShellPipeline(_lex.At(first.Start), Source(first.Start, _last), commands);
        }

        private void SkipLineBreaks()
        {
            while (_lex.Peek().Kind is TokenKind.Newline or TokenKind.Comment)
            {
                _lex.Next();
            }
        }

        private int _last;

        private Token Take()
        {
            Token t = _lex.Next();
            _last = t.End;
            return t;
        }

        private string Source(int start, int end) => text[start..Math.Max(start, end)].Trim();

        private ShellCommand Command(bool readsInput)
        {
            Token t = _lex.Peek();
            if (t.IsKeyword("for"))
            {
                return For();
            }

            return Simple(readsInput);
        }

        // for NAME in WORD... ; do LIST ; done   (';' or line breaks before do and done)
        private ForCommand For()
        {
            Token start = Take();
            SourceLocation at = _lex.At(start.Start);
            Token name = Take();
            if (name.Kind != TokenKind.Word || !name.Word!.IsLiteral || !ShellLexer.IsName(name.Word.Text))
            {
                throw Error(at, name.Column, "for needs a variable name: for NAME in WORD...; do ...; done");
            }

            Token inWord = Take();
            if (!inWord.IsKeyword("in"))
            {
                throw Error(at, inWord.Column, $"for {name.Word.Text} needs 'in' and the values: for {name.Word.Text} in WORD...; do ...; done");
            }

            var items = new List<ShellWord>();
            while (_lex.Peek() is { Kind: TokenKind.Word } w)
            {
                items.Add(Take().Word!);
            }

            Token sep = _lex.Peek();
            if (sep.Is(";") || sep.Kind is TokenKind.Newline or TokenKind.Comment)
            {
                Take();
                SkipLineBreaks();
            }
            else
            {
                throw Unexpected(sep);
            }

            Token doWord = Take();
            if (!doWord.IsKeyword("do"))
            {
                throw Error(_lex.At(doWord.Start), doWord.Column, $"for {name.Word.Text} in ...: 'do' is missing before the loop's commands");
            }

            ShellList body = List(topLevel: false);
            Token done = _lex.Peek();
            if (!done.IsKeyword("done"))
            {
                throw Error(at, start.Column, "this for loop has no 'done'");
            }

            Take();
            if (body.Items.Count == 0)
            {
                throw Error(_lex.At(done.Start), done.Column, "the loop has no command between 'do' and 'done'");
            }

            return new ForCommand(at, Source(start.Start, _last), name.Word.Text, items, body);
        }

        private SimpleCommand Simple(bool readsInput)
        {
            Token first = _lex.Peek();
            SourceLocation line = _lex.At(first.Start);
            var assignments = new List<ShellAssignment>();
            var words = new List<ShellWord>();
            ShellRedirect? redirect = null;
            while (true)
            {
                Token t = _lex.Peek();
                if (t.Kind == TokenKind.Word)
                {
                    Take();
                    ShellWord w = t.Word!;
                    if (words.Count == 0 && Assignment(w) is { } a)
                    {
                        assignments.Add(a);
                    }
                    else
                    {
                        words.Add(w);
                    }

                    continue;
                }

                if (t.Is(">") || t.Is(">>"))
                {
                    if (words.Count == 0 && assignments.Count == 0)
                    {
                        throw Error(line, t.Column, $"a line starts with a command; {Vocabulary}");
                    }

                    if (redirect is not null)
                    {
                        throw Error(line, t.Column, "one redirection per line: the value goes to one file");
                    }

                    Take();
                    Token target = _lex.Peek();
                    if (target.Kind != TokenKind.Word)
                    {
                        throw Error(line, t.Column + t.Operator.Length, $"'{t.Operator}' needs a file name, e.g. echo 1 > /proc/sys/vm/nr_hugepages");
                    }

                    Take();
                    redirect = new ShellRedirect(t.Operator == ">>", target.Word!, _lex.At(t.Start));
                    continue;
                }

                if (t.Kind == TokenKind.Operator && t.Operator is "&" or "<" or "<<" or "(" or ")" or ";;")
                {
                    throw Error(line, t.Column, t.Operator switch
                    {
                        "&" => "running a command in the background ('&') is not supported: the script runs one command at a time",
                        "(" or ")" => $"shell syntax '{t.Operator}' is not supported: no subshells or functions; {Vocabulary}",
                        _ => $"shell syntax '{t.Operator}' is not supported: {Vocabulary}",
                    });
                }

                break;
            }

            if (words.Count == 0 && assignments.Count == 0)
            {
                Token t = _lex.Peek();
                throw t.Kind is TokenKind.Newline or TokenKind.End or TokenKind.Comment
                    ? Error(line, t.Column, "a command is missing here")
                    : Unexpected(t);
            }

            var command = new SimpleCommand(line, Source(first.Start, _last), assignments, words, redirect);
            if (words.Count == 0)
            {
                if (redirect is not null)
                {
                    throw Error(line, redirect.Location.Column, "a redirection needs a command before it");
                }

                return command;
            }

            if (assignments.Count > 0)
            {
                throw Error(line, words[0].Location.Column, $"{assignments[0].Name}=... before a command is not supported: set the variable on its own ({assignments[0].Name}=VALUE; COMMAND)");
            }

            return Check(command with { Words = StripSudo(words) }, readsInput);
        }

        private static ShellAssignment? Assignment(ShellWord w)
        {
            if (w.Parts is not [LiteralPart { Quoted: false } head, ..])
            {
                return null;
            }

            int eq = head.Text.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !ShellLexer.IsName(head.Text[..eq]))
            {
                return null;
            }

            var value = new List<WordPart>();
            if (eq + 1 < head.Text.Length)
            {
                value.Add(new LiteralPart(head.Text[(eq + 1)..], false));
            }

            value.AddRange(w.Parts.Skip(1));
            return new ShellAssignment(head.Text[..eq], new ShellWord(value, w.Location with { Column = w.Location.Column + eq + 1 }), w.Location);
        }

        // sudo COMMAND: the script runs as root, so sudo runs its command as it is.
        private static List<ShellWord> StripSudo(List<ShellWord> words)
        {
            int i = 0;
            while (i < words.Count && words[i].IsLiteral && words[i].Text == "sudo")
            {
                i++;
                if (i < words.Count && words[i].IsLiteral && words[i].Text.StartsWith('-'))
                {
                    throw Error(words[i].Location, words[i].Location.Column, "sudo: options are not supported: the script runs as root, so sudo only runs the command after it");
                }
            }

            if (i > 0 && i == words.Count)
            {
                throw Error(words[0].Location, words[0].Location.Column, "sudo needs a command: sudo COMMAND");
            }

            return i == 0 ? words : words.GetRange(i, words.Count - i);
        }

        // The command is one of the vocabulary, and its arguments, where written out, are ones it takes.
        private static SimpleCommand Check(SimpleCommand c, bool readsInput)
        {
            ShellWord name = c.Words[0];
            SourceLocation at = name.Location;
            if (!name.IsLiteral)
            {
                throw Error(at, at.Column, "a command's name is written out, not taken from a variable or a glob");
            }

            if (name.Text is "boot" or "config")
            {
                return c; // the statement decides whether it may be here
            }

            if (Unsupported.Contains(name.Text) || name.Text is "do" or "done" or "in")
            {
                throw Error(at, at.Column, name.Text is "do" or "done" or "in"
                    ? $"'{name.Text}' outside a for loop: for NAME in WORD...; do ...; done"
                    : $"'{name.Text}' is not supported: {Vocabulary}");
            }

            IShellCommand command = ShellCommands.Find(name.Text)
                ?? throw Error(at, at.Column, $"unknown command '{name.Text}': {Vocabulary}");
            if (command is PlugCommand && c.Redirect is { } redirect)
            {
                throw Error(at, redirect.Location.Column, "plug is the firmware's event, not a program: it has no output to redirect");
            }
            if (c.Words.Skip(1).All(w => w.IsLiteral))
            {
                string[] args = [.. c.Words.Skip(1).Select(w => w.Text)];
                if (command.Check(args, readsInput) is { } usage)
                {
                    int column = usage.Argument is { } i && i < args.Length ? c.Words[i + 1].Location.Column : at.Column + name.Text.Length;
                    throw Error(at, column, usage.Message);
                }
            }

            return c;
        }

        private ScriptError Unexpected(Token t)
        {
            SourceLocation at = _lex.At(t.Start);
            string what = t.Kind switch
            {
                TokenKind.Word => $"'{t.Word!.Text}'",
                TokenKind.Operator => $"'{t.Operator}'",
                _ => "the end of the line",
            };
            string reason = t.Kind == TokenKind.Operator && t.Operator is "&" or "<" or "<<" or "(" or ")" or ";;"
                ? $"shell syntax '{t.Operator}' is not supported: {Vocabulary}"
                : t.IsKeyword("done") || t.IsKeyword("do")
                    ? $"'{t.Word!.Text}' outside a for loop: for NAME in WORD...; do ...; done"
                    : $"unexpected {what} here";
            return new ScriptError(at, reason);
        }

        private static ScriptError Error(SourceLocation at, int column, string reason) => ScriptParser.Error(at, column, reason);
    }
}
