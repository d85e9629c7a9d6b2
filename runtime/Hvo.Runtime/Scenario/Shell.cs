using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;

namespace Hvo.Scenario;

/// <summary>A command whose failure nothing tested (not on the left of <c>&amp;&amp;</c> or <c>||</c>): where, what ran, its status.</summary>
public sealed record FailedCommand(SourceLocation Location, string Command, int Status);

/// <summary>
/// Runs a script's statements as a POSIX shell would: variables, field splitting and globs,
/// pipelines (each command's output is the next one's input), <c>&amp;&amp;</c> and <c>||</c>,
/// <c>for</c> loops, redirections (the file is opened before the command runs and written once
/// after), <c>set -e</c> (the script stops at the first untested failure), <c>set -u</c>,
/// <c>set -x</c>. It keeps <c>$?</c> and every untested failure (<see cref="Failed"/>).
/// </summary>
public sealed class Shell
{
    private readonly Dictionary<string, string> _variables = new(StringComparer.Ordinal);
    private readonly List<FailedCommand> _failed = [];
    private string _lastCommand = string.Empty;

    public Shell(ShellContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Context = context;
    }

    public ShellContext Context { get; }

    /// <summary><c>$?</c>: the last command's exit status.</summary>
    public int Status { get; private set; }

    /// <summary>Set -e met a failure, or an unset variable under set -u: no command runs after it.</summary>
    public bool Stopped { get; private set; }

    public IReadOnlyList<FailedCommand> Failed => _failed;

    /// <summary>A shell variable's value, or null when unset.</summary>
    public string? Variable(string name) => _variables.GetValueOrDefault(name);

    /// <summary>Run one statement of the script (not the boot line), writing what it prints to <paramref name="output"/>; its status.</summary>
    public int Run(Statement statement, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(statement);
        ArgumentNullException.ThrowIfNull(output);
        if (Stopped)
        {
            return Status;
        }

        try
        {
            Context.Location = statement.Location;
            Status = statement switch
            {
                EchoStatement e => RunPlain("echo", e.Text, e.Location, e.Target?.Value, e.Append, output, o =>
                {
                    o.Write(e.Data);
                    return 0;
                }),
                CatStatement c => RunPlain("cat", c.Text, c.Location, null, false, output, o => ShellCommands.Find("cat")!.Run(Context, [.. c.Paths.Select(p => p.Value)], null, o, output)),
                ShellStatement s => RunList(s.Body, output),
                _ => 0,
            };
        }
        catch (ShellStop stop)
        {
            if (stop.Message.Length > 0)
            {
                output.WriteLine(stop.Message);
                _failed.Add(new FailedCommand(Context.Location, _lastCommand, stop.Status));
            }

            Status = stop.Status;
            Stopped = true;
        }

        return Status;
    }

    // A plain echo or cat: its words are final, so it runs as written.
    private int RunPlain(string name, string text, SourceLocation at, string? target, bool append, TextWriter output, Func<TextWriter, int> run)
    {
        _lastCommand = text;
        return Finish(Redirected(name, target is null ? null : (target, append), output, output, run), at, tested: false);
    }

    private int Finish(int status, SourceLocation at, bool tested)
    {
        Status = status;
        if (status != 0 && !tested)
        {
            _failed.Add(new FailedCommand(at, _lastCommand, status));
            if (Context.ErrExit)
            {
                throw new ShellStop(status);
            }
        }

        return status;
    }

    private int RunList(ShellList list, TextWriter output)
    {
        int status = 0;
        foreach (ShellAndOr item in list.Items)
        {
            status = RunAndOr(item, output);
        }

        return status;
    }

    // a && b || c: a pipeline runs when the status before it says so; only the last one run is untested.
    private int RunAndOr(ShellAndOr item, TextWriter output)
    {
        int status = RunPipeline(item.First, output, tested: item.Rest.Count > 0);
        for (int i = 0; i < item.Rest.Count; i++)
        {
            (ShellConnector connector, ShellPipeline pipeline) = item.Rest[i];
            if ((connector == ShellConnector.And) != (status == 0))
            {
                continue;
            }

            status = RunPipeline(pipeline, output, tested: i < item.Rest.Count - 1);
        }

        Status = status;
        return status;
    }

    private int RunPipeline(ShellPipeline pipeline, TextWriter output, bool tested)
    {
        string? input = null;
        int status = 0;
        int failed = 0;
        var ran = new List<string>();
        for (int i = 0; i < pipeline.Commands.Count; i++)
        {
            bool last = i == pipeline.Commands.Count - 1;
            var captured = last ? null : new StringWriter(CultureInfo.InvariantCulture) { NewLine = "\n" };
            status = RunCommand(pipeline.Commands[i], input, captured ?? output, output);
            ran.Add(_lastCommand);
            failed = status != 0 ? status : failed;
            input = captured?.ToString();
        }

        _lastCommand = string.Join(" | ", ran);

        if (Context.PipeFail)
        {
            status = failed;
        }

        // A loop's own commands were counted as they ran.
        return Finish(status, pipeline.Location, tested || pipeline.Commands is [ForCommand]);
    }

    private int RunCommand(ShellCommand command, string? input, TextWriter output, TextWriter errors)
    {
        Context.Location = command.Location;
        switch (command)
        {
            case ForCommand loop:
                int status = 0;
                foreach (string value in Expand(loop.Items))
                {
                    _variables[loop.Variable] = value;
                    status = RunList(loop.Body, output);
                }

                _lastCommand = loop.Text;
                return status;

            case SimpleCommand { Words.Count: 0 } assign:
                foreach (ShellAssignment a in assign.Assignments)
                {
                    _variables[a.Name] = string.Concat(Fields(a.Value, split: false));
                }

                _lastCommand = assign.Text;
                return 0;

            case SimpleCommand simple:
                return RunSimple(simple, input, output, errors);

            default:
                throw new InvalidOperationException($"unknown command node {command.GetType().Name}");
        }
    }

    private int RunSimple(SimpleCommand c, string? input, TextWriter output, TextWriter errors)
    {
        string[] words = [.. Expand(c.Words)];
        string name = c.Words[0].Text; // written out, so it expands to itself
        string[] args = words[1..];
        (string Path, bool Append)? redirect = null;
        if (c.Redirect is { } r)
        {
            string[] target = [.. Expand([r.Target])];
            if (target.Length != 1)
            {
                _lastCommand = c.Text;
                errors.WriteLine($"sh: {r.Target.Text}: ambiguous redirect");
                return 1;
            }

            redirect = (target[0], r.Append);
        }

        _lastCommand = string.Join(' ', new[] { name }.Concat(args.Select(Quote))) + (redirect is { } t ? $" {(t.Append ? ">>" : ">")} {t.Path}" : string.Empty);
        if (Context.XTrace)
        {
            errors.WriteLine("+ " + _lastCommand);
        }

        // Each command checks its expanded arguments itself, with its own status for a usage error.
        IShellCommand command = ShellCommands.Find(name)!;
        return Redirected(name, redirect, output, errors, o => command.Run(Context, args, input, o, errors));
    }

    // The shell opens the file first (the command does not run if that fails), then the command's
    // output goes to it in one write(2); a command that printed nothing writes nothing.
    private int Redirected(string name, (string Path, bool Append)? redirect, TextWriter output, TextWriter errors, Func<TextWriter, int> run)
    {
        if (redirect is not { } r)
        {
            return run(output);
        }

        Errno open = Context.Files.OpenForWrite(r.Path, r.Append);
        if (open != Errno.None)
        {
            Context.CountError();
            errors.WriteLine($"sh: {r.Path}: {ErrnoText.Message(open)}");
            Context.Suggest(r.Path);

            return 1;
        }

        var captured = new RedirectedOutput(r.Path);
        int status = run(captured);
        string data = captured.ToString();
        if (data.Length == 0)
        {
            return status;
        }

        Errno written = Context.WriteOpened(r.Path, data);
        if (written != Errno.None)
        {
            errors.WriteLine($"sh: {name}: write error: {ErrnoText.Message(written)}");
            return 1;
        }

        return status;
    }

    private static string Quote(string word) =>
        word.Length > 0 && word.All(ch => char.IsAsciiLetterOrDigit(ch) || "_+=:,./@%-*?[]".Contains(ch, StringComparison.Ordinal))
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    // Words to fields: variables, field splitting of unquoted ones, then globs over the simulated files.
    private IEnumerable<string> Expand(IEnumerable<ShellWord> words)
    {
        foreach (ShellWord w in words)
        {
            foreach (string field in Fields(w, split: true))
            {
                yield return field;
            }
        }
    }

    private List<string> Fields(ShellWord word, bool split)
    {
        var fields = new List<string>();
        var current = new StringBuilder();
        var literal = new List<bool>(); // per character of current: quoted or from a variable (never a glob)
        bool any = false;      // the field exists even if empty ("" or text)
        bool glob = false;

        void End()
        {
            if (any || current.Length > 0)
            {
                string text = current.ToString();
                bool[] lit = [.. literal];
                IReadOnlyList<string> matches = glob ? ShellPaths.Glob(Context.Files, text, i => lit[i]) : [];
                fields.AddRange(matches.Count > 0 ? matches : [text]);
            }

            current.Clear();
            literal.Clear();
            any = false;
            glob = false;
        }

        foreach (WordPart part in word.Parts)
        {
            switch (part)
            {
                case LiteralPart l:
                    current.Append(l.Text);
                    literal.AddRange(Enumerable.Repeat(l.Quoted, l.Text.Length));
                    any |= l.Quoted || l.Text.Length > 0;
                    glob |= split && !l.Quoted && ShellWord.HasGlob(l.Text);
                    break;

                case VariablePart v:
                    string value = Value(v.Name);
                    if (v.Quoted || !split)
                    {
                        current.Append(value);
                        literal.AddRange(Enumerable.Repeat(true, value.Length));
                        any |= v.Quoted;
                        break;
                    }

                    string[] pieces = value.Split([' ', '\t', '\n'], StringSplitOptions.None);
                    for (int i = 0; i < pieces.Length; i++)
                    {
                        if (i > 0)
                        {
                            End();
                        }

                        current.Append(pieces[i]);
                        literal.AddRange(Enumerable.Repeat(true, pieces[i].Length));
                    }

                    break;
            }
        }

        End();
        return split ? fields : [string.Concat(fields)];
    }

    private string Value(string name)
    {
        if (name == "?")
        {
            return Status.ToString(CultureInfo.InvariantCulture);
        }

        if (_variables.TryGetValue(name, out string? value))
        {
            return value;
        }

        if (Context.NoUnset)
        {
            throw new ShellStop(1, $"sh: {name}: unbound variable");
        }

        return string.Empty;
    }

    /// <summary>The script stops here (set -e after a failure, set -u on an unset variable).</summary>
    private sealed class ShellStop(int status, string message = "") : Exception(message)
    {
        public int Status { get; } = status;
    }
}

/// <summary>
/// A command's standard output while a redirection sends it to <see cref="Path"/> (already opened):
/// what it prints is written there in one write(2) after it ran, and a command that produces bulk
/// data (<c>head -c 1G /dev/zero</c>) writes it to the file itself instead (<see cref="IShellFiles.WriteZeros"/>).
/// </summary>
public sealed class RedirectedOutput : StringWriter
{
    public RedirectedOutput(string path)
        : base(CultureInfo.InvariantCulture)
    {
        Path = path;
        CoreNewLine = ['\n'];
    }

    public string Path { get; }
}
