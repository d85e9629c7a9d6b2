using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

namespace Hvo.Scenario;

/// <summary>Arguments a command does not take: the message, and the argument it is about (null: the command as a whole).</summary>
public sealed record ShellUsage(string Message, int? Argument = null);

/// <summary>
/// A command of the script language. The parser looks its name up (<see cref="ShellCommands.Find"/>)
/// and calls <see cref="Check"/> on the arguments written out, so a bad one is a located error
/// before anything runs; the shell calls it again on the expanded arguments, then <see cref="Run"/>.
/// A new command is one more <see cref="ShellCommands.All"/> entry.
/// </summary>
public interface IShellCommand
{
    string Name { get; }

    /// <summary>Why <paramref name="args"/> (the words after the name) are not this command's, or null. <paramref name="readsInput"/>: a pipe feeds it.</summary>
    ShellUsage? Check(IReadOnlyList<string> args, bool readsInput);

    /// <summary>
    /// Run with <paramref name="args"/>; <paramref name="input"/> is what a pipe feeds it (null: none).
    /// Output goes to <paramref name="output"/> (the transcript, the next command or a redirection),
    /// messages to <paramref name="errors"/> (the transcript). The result is the exit status.
    /// </summary>
    int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors);
}

/// <summary>The commands a script may run, by name: the vocabulary of a root shell on a kernel's files.</summary>
public static class ShellCommands
{
    public static IReadOnlyList<IShellCommand> All { get; } =
    [
        new EchoCommand(), new CatCommand(), new SysctlCommand(), new TeeCommand(), new GrepCommand(),
        new SleepCommand(), new SyncCommand(), new ConstantCommand("true", 0), new ConstantCommand("false", 1), new SetCommand(),
        new DmesgCommand(), new PlugCommand(), new HeadCommand(), new DdCommand(), new FallocateCommand(), new RmCommand(),
        new LsCommand(), new DuCommand(), new MountCommand(),
    ];

    public static IShellCommand? Find(string name) => All.FirstOrDefault(c => c.Name == name);

    /// <summary>When <paramref name="command"/> does not take <paramref name="args"/>: say why on <paramref name="errors"/> and give <paramref name="status"/>; null when it does.</summary>
    public static int? Refuse(IShellCommand command, IReadOnlyList<string> args, string? input, TextWriter errors, int status)
    {
        ArgumentNullException.ThrowIfNull(command);
        ArgumentNullException.ThrowIfNull(errors);
        if (command.Check(args, input is not null) is not { } usage)
        {
            return null;
        }

        errors.WriteLine(usage.Message);
        return status;
    }
}

/// <summary><c>echo [-n|-e|-E...] WORD...</c>: the words joined by blanks, and a newline unless <c>-n</c>.</summary>
public sealed class EchoCommand : IShellCommand
{
    public string Name => "echo";

    /// <summary>
    /// bash's echo: leading words made only of n, e and E after a '-' are flags (after quote removal:
    /// echo "-n" is one too); the rest joined by blanks. Escapes are not interpreted.
    /// </summary>
    public static (string Value, bool Newline) Value(ReadOnlySpan<string> words)
    {
        bool newline = true;
        int i = 0;
        for (; i < words.Length && IsFlag(words[i]); i++)
        {
            newline &= !words[i].Contains('n', StringComparison.Ordinal);
        }

        return (string.Join(' ', words[i..].ToArray()), newline);
    }

    public static bool IsFlag(string word) => word.Length >= 2 && word[0] == '-' && word.AsSpan(1).IndexOfAnyExcept("neE") < 0;

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => null;

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        (string value, bool newline) = Value([.. args]);
        output.Write(newline ? value + "\n" : value);
        return 0;
    }
}

/// <summary><c>cat FILE...</c> (<c>-</c> or no file: the pipe's input).</summary>
public sealed class CatCommand : IShellCommand
{
    public string Name => "cat";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0 && !readsInput)
        {
            return new ShellUsage("cat needs a file, e.g. cat /proc/meminfo");
        }

        int option = IndexOf(args, a => a.Length > 1 && a[0] == '-');
        return option >= 0 ? new ShellUsage($"cat: option '{args[option]}' is not supported: cat FILE...", option) : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        if (ShellCommands.Refuse(this, args, input, errors, 1) is { } refused)
        {
            return refused;
        }

        if (args.Count == 0)
        {
            output.Write(input ?? string.Empty);
            return 0;
        }

        int status = 0;
        foreach (string path in args)
        {
            if (path == "-")
            {
                output.Write(input ?? string.Empty);
                continue;
            }

            if (shell.Read(Name, path, errors) is { } text)
            {
                output.Write(text);
            }
            else
            {
                status = 1;
            }
        }

        return status;
    }

    internal static int IndexOf(IReadOnlyList<string> args, Func<string, bool> match)
    {
        for (int i = 0; i < args.Count; i++)
        {
            if (match(args[i]))
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>
/// procps' <c>sysctl</c> on /proc/sys: <c>sysctl KEY...</c> prints <c>KEY = VALUE</c> (a directory:
/// every key under it), <c>sysctl -w KEY=VALUE...</c> (or just <c>KEY=VALUE</c>) writes and prints it,
/// <c>-n</c> prints values only, <c>-q</c> nothing on a write, <c>-a</c> every key. Keys take dots or
/// slashes (<c>vm.nr_hugepages</c>, <c>vm/nr_hugepages</c>). A key that cannot be read or set prints
/// sysctl's message and the status is 255.
/// </summary>
public sealed class SysctlCommand : IShellCommand
{
    private const string ProcSys = "/proc/sys/";
    private const string Usage = "sysctl KEY..., sysctl -w KEY=VALUE..., with -n (values only), -q (quiet) or -a (every key)";

    public string Name => "sysctl";

    private sealed record Parsed(bool Write, bool ValuesOnly, bool Quiet, bool All, List<string> Keys);

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => Parse(args, out _);

    private static ShellUsage? Parse(IReadOnlyList<string> args, out Parsed parsed)
    {
        ArgumentNullException.ThrowIfNull(args);
        parsed = new Parsed(false, false, false, false, []);
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a.Length > 1 && a[0] == '-' && parsed.Keys.Count == 0)
            {
                foreach (char f in a.AsSpan(1))
                {
                    switch (f)
                    {
                        case 'w':
                            parsed = parsed with { Write = true };
                            break;
                        case 'n':
                            parsed = parsed with { ValuesOnly = true };
                            break;
                        case 'q':
                            parsed = parsed with { Quiet = true };
                            break;
                        case 'a' or 'A' or 'X':
                            parsed = parsed with { All = true };
                            break;
                        default:
                            return new ShellUsage($"sysctl: option '-{f}' is not supported: {Usage}", i);
                    }
                }

                continue;
            }

            if (parsed.Write && !a.Contains('=', StringComparison.Ordinal))
            {
                return new ShellUsage($"sysctl -w: '{a}' is not KEY=VALUE, e.g. sysctl -w vm.nr_hugepages=512", i);
            }

            parsed.Keys.Add(a);
        }

        return parsed.Keys.Count == 0 && !parsed.All
            ? new ShellUsage($"sysctl needs a key: {Usage}")
            : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        if (Parse(args, out Parsed p) is { } usage)
        {
            errors.WriteLine(usage.Message);
            return 255;
        }

        int status = 0;
        if (p.All)
        {
            foreach (string path in shell.FilesUnder(ProcSys))
            {
                Show(shell, p, path, output, errors, quietErrors: true);
            }
        }

        foreach (string arg in p.Keys)
        {
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            string key = (eq < 0 ? arg : arg[..eq]).Trim();
            string path = KernelPath(ProcSys + key.Replace('.', '/').TrimStart('/'));
            string name = KeyOf(path);
            if (eq < 0)
            {
                if (shell.Files.Kind(path) == ShellFileKind.Directory)
                {
                    foreach (string under in shell.FilesUnder(path))
                    {
                        Show(shell, p, under, output, errors, quietErrors: true);
                    }

                    continue;
                }

                status |= Show(shell, p, path, output, errors, quietErrors: false) ? 0 : 255;
                continue;
            }

            string value = arg[(eq + 1)..].Trim();
            Errno e = shell.Files.Kind(path) == ShellFileKind.None ? Errno.ENOENT : shell.Write(path, value + "\n", out _); // it stats the key first
            if (e != Errno.None)
            {
                if (e == Errno.ENOENT)
                {
                    shell.CountError();
                }

                errors.WriteLine(e == Errno.ENOENT
                    ? $"sysctl: cannot stat {path}: {ErrnoText.Message(e)}"
                    : e == Errno.EACCES ? $"sysctl: permission denied on key \"{name}\"" : $"sysctl: setting key \"{name}\": {ErrnoText.Message(e)}");
                shell.Suggest(path);
                status = 255;
                continue;
            }

            if (!p.Quiet)
            {
                output.WriteLine(p.ValuesOnly ? value : $"{name} = {value}");
            }
        }

        return status;
    }

    private static bool Show(ShellContext shell, Parsed p, string path, TextWriter output, TextWriter errors, bool quietErrors)
    {
        Errno e = shell.Files.Read(path, out string text);
        if (e != Errno.None)
        {
            if (!quietErrors)
            {
                shell.CountError();
                errors.WriteLine(e == Errno.EACCES ? $"sysctl: permission denied on key \"{KeyOf(path)}\"" : $"sysctl: cannot stat {path}: {ErrnoText.Message(e)}");
                shell.Suggest(path);
            }

            return false;
        }

        foreach (string line in text.TrimEnd('\n').Split('\n'))
        {
            output.WriteLine(p.ValuesOnly ? line : $"{KeyOf(path)} = {line}");
        }

        return true;
    }

    // A key as sysctl prints it: the path under /proc/sys with dots; a path that left /proc/sys (..) as it is.
    private static string KeyOf(string path) =>
        KernelPath(path) is var p && p.StartsWith(ProcSys, StringComparison.Ordinal) ? p[ProcSys.Length..].Replace('/', '.') : p;

    private static string KernelPath(string path) => KernelFilesPath.Normalize(path) ?? path;
}

/// <summary><c>tee [-a] FILE...</c>: its input to its output and, with one write(2), to each file.</summary>
public sealed class TeeCommand : IShellCommand
{
    public string Name => "tee";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        int option = CatCommand.IndexOf(args, a => a.Length > 1 && a[0] == '-' && a is not ("-a" or "--append"));
        return option >= 0 ? new ShellUsage($"tee: option '{args[option]}' is not supported: tee [-a] FILE...", option) : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        if (ShellCommands.Refuse(this, args, input ?? string.Empty, errors, 1) is { } refused)
        {
            return refused;
        }

        string data = input ?? string.Empty;
        int status = 0;
        foreach (string path in args.Where(a => a is not ("-a" or "--append")))
        {
            // tee opens every file first; a write of nothing is no write at all.
            Errno e = data.Length == 0 ? shell.Files.OpenForWrite(path) : shell.Write(path, data, out _);
            if (e != Errno.None)
            {
                if (data.Length == 0)
                {
                    shell.CountError();
                }

                errors.WriteLine($"tee: {path}: {ErrnoText.Message(e)}");
                shell.Suggest(path);

                status = 1;
            }
        }

        output.Write(data);
        return status;
    }
}

/// <summary>
/// <c>grep [-E] [-i] [-v] [-c] [-q] [-n] [-h|-H] [-r] PATTERN [FILE...]</c>: lines matching a basic
/// (or with <c>-E</c> extended) regular expression; several files (or <c>-r</c>) prefix each line with
/// its file. Status 0 when a line matched, 1 when none did, 2 on an error.
/// </summary>
public sealed class GrepCommand : IShellCommand
{
    private const string Usage = "grep [-E] [-i] [-v] [-c] [-q] [-n] [-h|-H] [-r] PATTERN [FILE...]";

    public string Name => "grep";

    private sealed record Parsed(bool Extended, bool IgnoreCase, bool Invert, bool Count, bool Quiet, bool LineNumbers, bool? Names, bool Recursive, string Pattern, List<string> Files);

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        if (Parse(args, out Parsed? p) is { } usage)
        {
            return usage;
        }

        if (p!.Files.Count == 0 && !readsInput)
        {
            return new ShellUsage($"grep {p.Pattern} needs a file, or input from a pipe: {Usage}");
        }

        return Compile(p, out _) is { } bad ? new ShellUsage(bad, args.Count - p.Files.Count - 1) : null;
    }

    private static ShellUsage? Parse(IReadOnlyList<string> args, out Parsed? parsed)
    {
        ArgumentNullException.ThrowIfNull(args);
        parsed = null;
        bool extended = false, ignoreCase = false, invert = false, count = false, quiet = false, numbers = false, recursive = false;
        bool? names = null;
        string? pattern = null;
        var files = new List<string>();
        bool options = true;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (options && a == "--")
            {
                options = false;
                continue;
            }

            if (options && a.Length > 1 && a[0] == '-' && pattern is null)
            {
                for (int j = 1; j < a.Length; j++)
                {
                    switch (a[j])
                    {
                        case 'E':
                            extended = true;
                            break;
                        case 'G':
                            extended = false;
                            break;
                        case 'i':
                            ignoreCase = true;
                            break;
                        case 'v':
                            invert = true;
                            break;
                        case 'c':
                            count = true;
                            break;
                        case 'q':
                            quiet = true;
                            break;
                        case 'n':
                            numbers = true;
                            break;
                        case 'h':
                            names = false;
                            break;
                        case 'H':
                            names = true;
                            break;
                        case 'r' or 'R':
                            recursive = true;
                            break;
                        case 'e' when j == a.Length - 1 && i + 1 < args.Count:
                            pattern = args[++i];
                            break;
                        default:
                            return new ShellUsage($"grep: option '-{a[j]}' is not supported: {Usage}", i);
                    }
                }

                continue;
            }

            if (pattern is null)
            {
                pattern = a;
            }
            else
            {
                files.Add(a);
            }
        }

        if (pattern is null)
        {
            return new ShellUsage($"grep needs a PATTERN: {Usage}");
        }

        parsed = new Parsed(extended, ignoreCase, invert, count, quiet, numbers, names, recursive, pattern, files);
        return null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        if (Parse(args, out Parsed? p) is { } usage)
        {
            errors.WriteLine(usage.Message);
            return 2;
        }

        if (Compile(p!, out Regex? regex) is { } bad)
        {
            errors.WriteLine(bad);
            return 2;
        }

        if (p!.Files.Count == 0 && input is null)
        {
            errors.WriteLine($"grep {p.Pattern} needs a file, or input from a pipe: {Usage}");
            return 2;
        }

        var sources = new List<(string? Name, string Text)>();
        bool error = false;
        if (p!.Files.Count == 0)
        {
            sources.Add((null, input ?? string.Empty));
        }

        foreach (string file in p.Files)
        {
            if (p.Recursive && shell.Files.Kind(file) == ShellFileKind.Directory)
            {
                foreach (string under in shell.FilesUnder(file))
                {
                    if (shell.Files.Read(under, out string t) == Errno.None)
                    {
                        sources.Add((under, t));
                    }
                }

                continue;
            }

            if (shell.Read("grep", file, errors) is { } text)
            {
                sources.Add((file, text));
            }
            else
            {
                error = true;
            }
        }

        bool names = p.Names ?? (p.Files.Count > 1 || p.Recursive);
        bool any = false;
        foreach ((string? name, string text) in sources)
        {
            int matches = 0;
            string[] lines = text.Length == 0 ? [] : text.TrimEnd('\n').Split('\n');
            for (int i = 0; i < lines.Length; i++)
            {
                if (regex!.IsMatch(lines[i]) == p.Invert)
                {
                    continue;
                }

                matches++;
                if (!p.Quiet && !p.Count)
                {
                    output.WriteLine((names && name is not null ? name + ":" : string.Empty) + (p.LineNumbers ? $"{i + 1}:" : string.Empty) + lines[i]);
                }
            }

            if (p.Count && !p.Quiet)
            {
                output.WriteLine((names && name is not null ? name + ":" : string.Empty) + matches.ToString(CultureInfo.InvariantCulture));
            }

            any |= matches > 0;
        }

        return p.Quiet && any ? 0 : error ? 2 : any ? 0 : 1;
    }

    private static string? Compile(Parsed p, out Regex? regex)
    {
        regex = null;
        try
        {
            string pattern = p.Extended ? Brackets(p.Pattern, basic: false) : Brackets(p.Pattern, basic: true);
            regex = new Regex(pattern, RegexOptions.CultureInvariant | (p.IgnoreCase ? RegexOptions.IgnoreCase : RegexOptions.None), TimeSpan.FromSeconds(1));
            return null;
        }
        catch (ArgumentException)
        {
            return $"grep: '{p.Pattern}' is not a valid regular expression";
        }
    }

    /// <summary>
    /// A POSIX regular expression as .NET reads one: bracket expressions with their classes
    /// (<c>[[:digit:]]</c>); in a basic one (<paramref name="basic"/>) <c>\( \) \{ \} \| \+ \?</c> are
    /// the operators and the bare characters are literal, as in GNU grep.
    /// </summary>
    public static string Brackets(string pattern, bool basic)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var s = new StringBuilder();
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                char n = pattern[++i];
                s.Append(basic && n is '(' or ')' or '{' or '}' or '|' or '+' or '?' ? n.ToString() : "\\" + n);
                continue;
            }

            if (basic && c is '(' or ')' or '{' or '}' or '|' or '+' or '?')
            {
                s.Append('\\').Append(c);
                continue;
            }

            if (c == '[')
            {
                int end = BracketEnd(pattern, i);
                if (end < 0)
                {
                    throw new ArgumentException("unterminated [", nameof(pattern));
                }

                s.Append(Bracket(pattern[(i + 1)..end]));
                i = end;
                continue;
            }

            s.Append(c);
        }

        return s.ToString();
    }

    private static int BracketEnd(string p, int open)
    {
        int i = open + 1;
        if (i < p.Length && p[i] == '^')
        {
            i++;
        }

        if (i < p.Length && p[i] == ']')
        {
            i++; // a ']' first is a member
        }

        for (; i < p.Length; i++)
        {
            if (p[i] == '[' && i + 1 < p.Length && p[i + 1] == ':')
            {
                int close = p.IndexOf(":]", i + 2, StringComparison.Ordinal);
                if (close > 0)
                {
                    i = close + 1;
                    continue;
                }
            }

            if (p[i] == ']')
            {
                return i;
            }
        }

        return -1;
    }

    private static string Bracket(string body)
    {
        var s = new StringBuilder("[");
        int i = 0;
        if (body.StartsWith('^'))
        {
            s.Append('^');
            i = 1;
        }

        for (; i < body.Length; i++)
        {
            char c = body[i];
            if (c == '[' && i + 1 < body.Length && body[i + 1] == ':')
            {
                int close = body.IndexOf(":]", i + 2, StringComparison.Ordinal);
                string cls = body[(i + 2)..close];
                s.Append(cls switch
                {
                    "digit" => "0-9",
                    "alpha" => "a-zA-Z",
                    "alnum" => "a-zA-Z0-9",
                    "upper" => "A-Z",
                    "lower" => "a-z",
                    "space" => "\\s",
                    "blank" => " \\t",
                    "xdigit" => "0-9a-fA-F",
                    "punct" => "!-/:-@\\[-`{-~",
                    _ => throw new ArgumentException($"unknown class [:{cls}:]", nameof(body)),
                });
                i = close + 1;
                continue;
            }

            s.Append(c is '\\' or '[' ? "\\" + c : c.ToString());
        }

        return s.Append(']').ToString();
    }
}

/// <summary><c>sleep NUMBER[s|m|h|d]...</c>: nothing happens in a simulated machine while it waits; a bad interval is sleep's error.</summary>
public sealed class SleepCommand : IShellCommand
{
    public string Name => "sleep";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0)
        {
            return new ShellUsage("sleep needs a time, e.g. sleep 1");
        }

        int bad = CatCommand.IndexOf(args, a => !IsInterval(a));
        return bad >= 0 ? new ShellUsage($"sleep: invalid time interval '{args[bad]}'", bad) : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors) =>
        ShellCommands.Refuse(this, args, input, errors, 1) ?? 0;

    private static bool IsInterval(string a)
    {
        string number = a.Length > 0 && a[^1] is 's' or 'm' or 'h' or 'd' ? a[..^1] : a;
        return number.Length > 0 && double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double v) && v >= 0;
    }
}

/// <summary><c>sync</c>: the simulated files have nothing to flush.</summary>
public sealed class SyncCommand : IShellCommand
{
    public string Name => "sync";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.Count > 0 ? new ShellUsage("sync takes no arguments here", 0) : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors) =>
        ShellCommands.Refuse(this, args, input, errors, 1) ?? 0;
}

/// <summary><c>true</c> and <c>false</c>: a status, for <c>&amp;&amp;</c> and <c>||</c>.</summary>
public sealed class ConstantCommand(string name, int status) : IShellCommand
{
    public string Name => name;

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => null;

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors) => status;
}

/// <summary>
/// <c>set -e</c> (stop at the first command that fails outside a test), <c>-u</c> (an unset variable
/// is an error), <c>-x</c> (print each command as <c>+ words</c>), <c>-o pipefail</c>; <c>+</c> turns one off.
/// </summary>
public sealed class SetCommand : IShellCommand
{
    private const string Usage = "set -e, -u, -x, -o errexit|nounset|xtrace|pipefail (+ to turn off)";

    public string Name => "set";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => Apply(args, null);

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(errors);
        if (Apply(args, shell) is { } usage)
        {
            errors.WriteLine(usage.Message);
            return 2;
        }

        return 0;
    }

    private static ShellUsage? Apply(IReadOnlyList<string> args, ShellContext? shell)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Count == 0)
        {
            return new ShellUsage($"set needs an option: {Usage}");
        }

        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a.Length < 2 || a[0] is not ('-' or '+'))
            {
                return new ShellUsage($"set: '{a}': positional parameters are not supported: {Usage}", i);
            }

            bool on = a[0] == '-';
            if (a[1..] == "o")
            {
                if (i + 1 >= args.Count)
                {
                    return new ShellUsage($"set {a} needs an option name: {Usage}", i);
                }

                string name = args[++i];
                char? flag = name switch
                {
                    "errexit" => 'e',
                    "nounset" => 'u',
                    "xtrace" => 'x',
                    "pipefail" => 'p',
                    _ => null,
                };
                if (flag is null)
                {
                    return new ShellUsage($"set -o {name} is not supported: {Usage}", i);
                }

                shell?.SetOption(flag.Value, on);
                continue;
            }

            foreach (char f in a.AsSpan(1))
            {
                if (f is not ('e' or 'u' or 'x'))
                {
                    return new ShellUsage($"set: option '{a[0]}{f}' is not supported: {Usage}", i);
                }

                shell?.SetOption(f, on);
            }
        }

        return null;
    }
}
