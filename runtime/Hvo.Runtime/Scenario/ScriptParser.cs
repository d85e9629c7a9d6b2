using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Hvo.Scenario;

/// <summary>
/// Parses a script written as a user types it at a root shell: words split on blanks, single and
/// double quotes, backslash escapes, <c>#</c> comments at the start of a word, and the
/// redirections <c>&gt;</c> and <c>&gt;&gt;</c> (with or without a blank before the file name).
/// The commands are <c>boot</c> (first, once), <c>echo</c>, <c>cat</c>, <c>dmesg</c> and the
/// firmware event <c>plug</c>; anything else a shell
/// would do (pipes, <c>;</c>, variables, substitutions) is refused with a <see cref="ScriptError"/>
/// at its column, before anything runs.
/// </summary>
public static class ScriptParser
{
    private const string Vocabulary = "a line is 'config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y|n' (before boot), 'boot PARAM...' (first), 'echo VALUE > PATH', 'echo VALUE', 'cat PATH...', 'dmesg', 'plug ADDRESS [node=N]' or a '# comment'";

    public static Script Parse(string text, string file)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(file);
        var lines = new List<ScriptLine>();
        string[] raw = text.Split('\n');
        int count = raw.Length > 0 && raw[^1].Length == 0 ? raw.Length - 1 : raw.Length; // a final newline ends the last line
        bool anyStatement = false;
        for (int i = 0; i < count; i++)
        {
            string line = raw[i].TrimEnd('\r');
            var at = new SourceLocation(file, i + 1, 1);
            List<Token> tokens = Tokenize(line, at, out bool comment);
            if (tokens.Count == 0)
            {
                lines.Add(comment ? new CommentLine(at, line.Trim()) : new BlankLine(at));
                continue;
            }

            Statement s = Build(line.Trim(), at, tokens, first: !anyStatement);
            anyStatement |= s is not ConfigStatement;
            lines.Add(s);
        }

        return new Script(file, lines);
    }

    private static Statement Build(string text, SourceLocation line, List<Token> tokens, bool first)
    {
        Token command = tokens[0];
        if (command.Redirect)
        {
            throw Error(line, command.Column, $"a line starts with a command; {Vocabulary}");
        }

        var at = line with { Column = command.Column };
        switch (command.Value)
        {
            case "boot":
                if (!first)
                {
                    throw Error(line, command.Column, "'boot' must be the first statement: the machine boots once, before any command runs");
                }

                var parameters = new List<ScriptWord>();
                foreach (Token t in tokens.Skip(1))
                {
                    if (t.Redirect)
                    {
                        throw Error(line, t.Column, "a boot line is a kernel command line: it has no redirection");
                    }

                    BootLine.CheckSyntax(t.Word, line);
                    parameters.Add(t.Word);
                }

                return new BootStatement(at, text, parameters);

            case "config":
                if (!first)
                {
                    throw Error(line, command.Column, "'config' comes before the boot line: it says how the kernel was built");
                }

                if (tokens.Count != 2 || tokens[1].Redirect || tokens[1].Value.Split('=') is not [ConfigStatement.HvoDefaultOnOption, var v] || v is not ("y" or "n"))
                {
                    throw Error(line, tokens.Count > 1 ? tokens[1].Column : command.Column, $"config takes {ConfigStatement.HvoDefaultOnOption}=y or =n (the one build option modelled)");
                }

                return new ConfigStatement(at, text, ConfigStatement.HvoDefaultOnOption, tokens[1].Value.EndsWith("=y", StringComparison.Ordinal));

            case "dmesg":
                if (tokens.Count != 1)
                {
                    throw Error(line, tokens[1].Column, "dmesg takes no arguments here: it prints the kernel log so far");
                }

                return new DmesgStatement(at, text);

            case "echo":
                return BuildEcho(text, line, at, tokens);

            case "plug":
                return BuildPlug(text, line, at, tokens);

            case "cat":
                var paths = new List<ScriptWord>();
                foreach (Token t in tokens.Skip(1))
                {
                    if (t.Redirect)
                    {
                        throw Error(line, t.Column, "cat prints to the transcript; its output cannot be redirected in a script");
                    }

                    paths.Add(t.Word);
                }

                if (paths.Count == 0)
                {
                    throw Error(line, command.Column + 3, "cat needs a file, e.g. cat /proc/meminfo");
                }

                return new CatStatement(at, text, paths);

            default:
                throw Error(line, command.Column, $"unknown command '{command.Value}': {Vocabulary}");
        }
    }

    // echo [-n|-e|-E...] WORD... [> PATH] [WORD...]: bash's echo takes only flag words made of n, e and E
    // (after quote removal: echo "-n" is a flag too).
    private static EchoStatement BuildEcho(string text, SourceLocation line, SourceLocation at, List<Token> tokens)
    {
        bool newline = true;
        int i = 1;
        for (; i < tokens.Count && !tokens[i].Redirect && IsEchoFlag(tokens[i].Value); i++)
        {
            newline &= !tokens[i].Value.Contains('n', StringComparison.Ordinal);
        }

        var words = new List<string>();
        ScriptWord? target = null;
        for (; i < tokens.Count; i++)
        {
            Token t = tokens[i];
            if (!t.Redirect)
            {
                words.Add(t.Value);
                continue;
            }

            if (target is not null)
            {
                throw Error(line, t.Column, "one redirection per line: the value goes to one file");
            }

            if (i + 1 >= tokens.Count || tokens[i + 1].Redirect)
            {
                throw Error(line, t.Column + t.Value.Length, $"'{t.Value}' needs a file name, e.g. echo 1 > /proc/sys/vm/nr_hugepages");
            }

            target = tokens[++i].Word;
        }

        return new EchoStatement(at, text, string.Join(' ', words), newline, target);
    }

    // plug ADDRESS [node=N]: a physical address as the kernel reads numbers (0x hex, 0 octal, decimal).
    private static PlugStatement BuildPlug(string text, SourceLocation line, SourceLocation at, List<Token> tokens)
    {
        const string Usage = "plug takes a physical address and optionally node=N: plug 0x100000000 [node=1]";
        if (tokens.Count is < 2 or > 3 || tokens.Skip(1).Any(t => t.Redirect))
        {
            throw Error(line, tokens.Count > 1 ? tokens[1].Column : tokens[0].Column, Usage);
        }

        if (KernelValues.KstrToULong(tokens[1].Value, 0, out ulong address) != Errno.None)
        {
            throw Error(line, tokens[1].Column, $"'{tokens[1].Value}' is not an address: {Usage}");
        }

        int? node = null;
        if (tokens.Count == 3)
        {
            string word = tokens[2].Value;
            if (!word.StartsWith("node=", StringComparison.Ordinal)
                || !int.TryParse(word["node=".Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n)
                || n >= MachineSize.MaxNodes)
            {
                throw Error(line, tokens[2].Column, $"'{word}': {Usage}, N a node below {MachineSize.MaxNodes}");
            }

            node = n;
        }

        return new PlugStatement(at, text, address, node);
    }

    private static bool IsEchoFlag(string word)
    {
        if (word.Length < 2 || word[0] != '-')
        {
            return false;
        }

        for (int i = 1; i < word.Length; i++)
        {
            if (word[i] is not ('n' or 'e' or 'E'))
            {
                return false;
            }
        }

        return true;
    }

    private static List<Token> Tokenize(string line, SourceLocation at, out bool comment)
    {
        var tokens = new List<Token>();
        comment = false;
        int i = 0;
        while (i < line.Length)
        {
            char c = line[i];
            if (c is ' ' or '\t')
            {
                i++;
                continue;
            }

            if (c == '#')
            {
                comment = true;
                break;
            }

            if (c == '>')
            {
                bool append = i + 1 < line.Length && line[i + 1] == '>';
                tokens.Add(new Token(append ? ">>" : ">", i + 1, Redirect: true, Quoted: false));
                i += append ? 2 : 1;
                continue;
            }

            int start = i;
            var word = new StringBuilder();
            bool quoted = false;
            while (i < line.Length)
            {
                c = line[i];
                if (c is ' ' or '\t')
                {
                    break;
                }

                if (c == '>')
                {
                    if (!quoted && word.Length > 0 && IsDigits(word))
                    {
                        throw Error(at, start + 1, $"'{word}>' redirects file descriptor {word} in a shell, so nothing would be written: put a blank before '>' (echo {word} > PATH)");
                    }

                    break;
                }

                switch (c)
                {
                    case '\'':
                        int close = line.IndexOf('\'', i + 1);
                        if (close < 0)
                        {
                            throw Error(at, i + 1, "unterminated ' quote");
                        }

                        word.Append(line, i + 1, close - i - 1);
                        quoted = true;
                        i = close + 1;
                        continue;

                    case '"':
                        i = DoubleQuoted(line, i, at, word);
                        quoted = true;
                        continue;

                    case '\\':
                        if (i + 1 >= line.Length)
                        {
                            throw Error(at, i + 1, "a line cannot end with '\\': each statement is one line");
                        }

                        word.Append(line[i + 1]);
                        i += 2;
                        continue;

                    case '|' or ';' or '&' or '<' or '`' or '$' or '(' or ')':
                        throw Error(at, i + 1, $"shell syntax '{c}' is not supported: {Vocabulary}");
                }

                word.Append(c);
                i++;
            }

            tokens.Add(new Token(word.ToString(), start + 1, Redirect: false, quoted));
        }

        return tokens;
    }

    // "...": backslash escapes only $ ` " \ ; expansions are not supported.
    private static int DoubleQuoted(string line, int open, SourceLocation at, StringBuilder word)
    {
        int i = open + 1;
        while (i < line.Length)
        {
            char c = line[i];
            if (c == '"')
            {
                return i + 1;
            }

            if (c == '\\' && i + 1 < line.Length && line[i + 1] is '$' or '`' or '"' or '\\')
            {
                word.Append(line[i + 1]);
                i += 2;
                continue;
            }

            if (c is '$' or '`')
            {
                throw Error(at, i + 1, $"shell syntax '{c}' is not supported: {Vocabulary}");
            }

            word.Append(c);
            i++;
        }

        throw Error(at, open + 1, "unterminated \" quote");
    }

    private static bool IsDigits(StringBuilder word)
    {
        for (int i = 0; i < word.Length; i++)
        {
            if (word[i] is < '0' or > '9')
            {
                return false;
            }
        }

        return true;
    }

    internal static ScriptError Error(SourceLocation line, int column, string reason) => new(line with { Column = column }, reason);

    private readonly record struct Token(string Value, int Column, bool Redirect, bool Quoted)
    {
        public ScriptWord Word => new(Value, Column);
    }
}
