using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;

namespace Hvo.Scenario;

/// <summary>What a path names in the simulated file tree.</summary>
public enum ShellFileKind
{
    None,
    File,
    Directory,
}

/// <summary>The files a script's commands reach (<see cref="KernelFiles{TArch}"/>): open, read, write, and the tree for globs.</summary>
public interface IShellFiles
{
    /// <summary>Read a file as cat would: its text, or the errno of the open.</summary>
    Errno Read(string path, out string text);

    /// <summary>Open for writing and write <paramref name="data"/> in one write(2); <paramref name="failedAtOpen"/> tells which failed.</summary>
    Errno Write(string path, string data, out bool failedAtOpen);

    /// <summary>Only the open a redirection or tee makes before anything is written.</summary>
    Errno OpenForWrite(string path);

    /// <summary>
    /// open(O_WRONLY|O_CREAT) as a redirection makes it, truncating (<c>&gt;</c>) unless
    /// <paramref name="append"/> (<c>&gt;&gt;</c>): a kernel file as <see cref="OpenForWrite(string)"/>,
    /// a tmpfs file created or emptied.
    /// </summary>
    Errno OpenForWrite(string path, bool append);

    /// <summary>One write(2) of <paramref name="data"/> to a file opened with <see cref="OpenForWrite(string, bool)"/> (a tmpfs file grows).</summary>
    Errno WriteOpened(string path, string data);

    /// <summary>
    /// write(2)s of <paramref name="bytes"/> zero bytes (from /dev/zero) to a file opened with
    /// <see cref="OpenForWrite(string, bool)"/>; <paramref name="written"/> is how many made it.
    /// </summary>
    Errno WriteZeros(string path, ulong bytes, out ulong written);

    /// <summary>fallocate(2) mode 0 over the first <paramref name="length"/> bytes, creating the file.</summary>
    Errno Fallocate(string path, ulong length);

    /// <summary>unlink(2).</summary>
    Errno Unlink(string path);

    /// <summary>The bytes a file's data occupies (st_blocks * 512), for du; 0 for kernel files.</summary>
    ulong DiskUsage(string path);

    /// <summary>mount -o remount,size=<paramref name="size"/> of the tmpfs mounted on <paramref name="mountPoint"/>.</summary>
    Errno RemountSize(string mountPoint, string size);

    ShellFileKind Kind(string path);

    /// <summary>The names in a directory, sorted (none for anything else).</summary>
    IReadOnlyList<string> Children(string directory);
}

/// <summary>What happens to the machine from outside the kernel that a script may cause (<c>plug</c>).</summary>
public interface IShellFirmware
{
    /// <summary>
    /// The firmware announces a memory device of one memory block at physical <paramref name="physAddr"/>,
    /// on NUMA node <paramref name="node"/> when given; the kernel adds it (acpi_memory_enable_device).
    /// The result is what the kernel logged about it (nothing when all went well).
    /// </summary>
    IReadOnlyList<string> PlugMemoryDevice(ulong physAddr, int? node);
}

/// <summary>Paths as the VFS resolves them.</summary>
public static class KernelFilesPath
{
    /// <summary>The path the VFS would resolve: absolute, <c>.</c> and <c>..</c> and repeated slashes gone; null for a relative path.</summary>
    public static string? Normalize(string path) => Normalize(path, out _);

    /// <inheritdoc cref="Normalize(string)"/>
    public static string? Normalize(string path, out bool trailingSlash)
    {
        ArgumentNullException.ThrowIfNull(path);
        trailingSlash = path.Length > 1 && path.EndsWith('/');
        if (!path.StartsWith('/'))
        {
            return null;
        }

        var parts = new List<string>();
        foreach (string part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                if (parts.Count > 0)
                {
                    parts.RemoveAt(parts.Count - 1);
                }

                continue;
            }

            parts.Add(part);
        }

        return "/" + string.Join('/', parts);
    }

    /// <summary><paramref name="directory"/>/<paramref name="name"/>.</summary>
    public static string Join(string directory, string name) => directory.EndsWith('/') ? directory + name : directory + "/" + name;
}

/// <summary>
/// What a running command can reach of the shell: the files (each failed open counted as a shell
/// error, with a suggestion for a missing path on the diagnostics writer), the machine's firmware,
/// the kernel's log, the shell's options (<c>set</c>), and where the command is in the script.
/// </summary>
public sealed class ShellContext
{
    private readonly TextWriter _diagnostics;
    private readonly Func<IReadOnlyList<string>> _kernelLog;
    private readonly Action<string> _written;

    public ShellContext(IShellFiles files, IShellFirmware firmware, TextWriter diagnostics, Func<IReadOnlyList<string>> kernelLog, Action<string> written)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(firmware);
        ArgumentNullException.ThrowIfNull(diagnostics);
        ArgumentNullException.ThrowIfNull(kernelLog);
        ArgumentNullException.ThrowIfNull(written);
        Files = files;
        Firmware = firmware;
        _diagnostics = diagnostics;
        _kernelLog = kernelLog;
        _written = written;
    }

    public IShellFiles Files { get; }

    public IShellFirmware Firmware { get; }

    /// <summary>
    /// The kernel log so far, oldest first, as <c>dmesg</c> prints it: the session's one log
    /// (<see cref="ScenarioSession{TArch}.KernelLog"/>).
    /// </summary>
    public IReadOnlyList<string> KernelLog => _kernelLog();

    /// <summary>Opens and writes the kernel refused, and files that could not be read: each printed a shell error.</summary>
    public int FileErrors { get; private set; }

    /// <summary>The command running now (for messages).</summary>
    public SourceLocation Location { get; internal set; }

    /// <summary><c>set -e</c>.</summary>
    public bool ErrExit { get; private set; }

    /// <summary><c>set -u</c>.</summary>
    public bool NoUnset { get; private set; }

    /// <summary><c>set -x</c>.</summary>
    public bool XTrace { get; private set; }

    /// <summary><c>set -o pipefail</c>.</summary>
    public bool PipeFail { get; private set; }

    /// <summary><c>set -FLAG</c> (<paramref name="on"/>) or <c>set +FLAG</c>: e, u, x, or p for pipefail.</summary>
    public void SetOption(char flag, bool on)
    {
        switch (flag)
        {
            case 'e':
                ErrExit = on;
                break;
            case 'u':
                NoUnset = on;
                break;
            case 'x':
                XTrace = on;
                break;
            case 'p':
                PipeFail = on;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(flag), flag, "set knows e, u, x and p (pipefail)");
        }
    }

    public void CountError() => FileErrors++;

    /// <summary>A file's text as <paramref name="command"/> reads it; null after printing <c>command: path: error</c> to <paramref name="errors"/>.</summary>
    public string? Read(string command, string path, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        Errno e = Files.Read(path, out string text);
        if (e == Errno.None)
        {
            return text;
        }

        FileErrors++;
        errors.WriteLine($"{command}: {path}: {ErrnoText.Message(e)}");
        Suggest(path);

        return null;
    }

    /// <summary>Write to a file (one open, one write(2)); a failure counts as a shell error, and the write is a point of the run's trace either way.</summary>
    public Errno Write(string path, string data, out bool failedAtOpen)
    {
        Errno e = Files.Write(path, data, out failedAtOpen);
        if (e != Errno.None)
        {
            FileErrors++;
        }

        if (!failedAtOpen)
        {
            _written(path);
        }

        return e;
    }

    /// <summary>One write(2) to a file a redirection opened: a failure counts as a shell error; the write is a point of the run's trace.</summary>
    public Errno WriteOpened(string path, string data)
    {
        Errno e = Files.WriteOpened(path, data);
        if (e != Errno.None)
        {
            FileErrors++;
        }

        _written(path);
        return e;
    }

    /// <summary>Every file under <paramref name="directory"/>, depth first, sorted.</summary>
    public IReadOnlyList<string> FilesUnder(string directory)
    {
        var found = new List<string>();
        void Walk(string dir)
        {
            foreach (string name in Files.Children(dir))
            {
                string path = KernelFilesPath.Join(dir, name);
                if (Files.Kind(path) == ShellFileKind.Directory)
                {
                    Walk(path);
                }
                else
                {
                    found.Add(path);
                }
            }
        }

        if (KernelFilesPath.Normalize(directory) is { } d)
        {
            Walk(d);
        }

        return found;
    }

    /// <summary>After a failed open: if the path does not exist, print the nearest one that does on the diagnostics writer ("did you mean ...?").</summary>
    public void Suggest(string path)
    {
        if (ShellPaths.Nearest(Files, path) is { } near)
        {
            _diagnostics.WriteLine($"hvo: {Location}: {path}: no such file; did you mean {near}?");
        }
    }
}

/// <summary>Globs and near misses over the simulated tree.</summary>
public static class ShellPaths
{
    /// <summary>
    /// The existing path closest to <paramref name="path"/>: each component that does not exist is
    /// replaced by the name in its directory fewest edits away (at most a third of its length, and at
    /// least 2), if any. Null when nothing is close, or the path exists.
    /// </summary>
    public static string? Nearest(IShellFiles files, string path)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (KernelFilesPath.Normalize(path) is not { } p || files.Kind(p) != ShellFileKind.None)
        {
            return null;
        }

        string dir = "/";
        foreach (string part in p.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            IReadOnlyList<string> names = files.Children(dir);
            string? pick = names.Contains(part) ? part : names
                .Select(n => (Name: n, Distance: Distance(n, part)))
                .Where(x => x.Distance <= Math.Max(2, part.Length / 3))
                .OrderBy(x => x.Distance)
                .ThenBy(x => x.Name, StringComparer.Ordinal)
                .Select(x => x.Name)
                .FirstOrDefault();
            if (pick is null)
            {
                return null;
            }

            dir = KernelFilesPath.Join(dir, pick);
        }

        return dir;
    }

    /// <summary>
    /// The paths a glob matches, sorted, as a shell's pathname expansion: <c>*</c>, <c>?</c> and
    /// <c>[...]</c> within a component, never across a <c>/</c>; a leading dot only by a dot. An
    /// unquoted character is given as is; <paramref name="literal"/> marks those that were quoted.
    /// </summary>
    public static IReadOnlyList<string> Glob(IShellFiles files, string pattern, Func<int, bool> literal)
    {
        ArgumentNullException.ThrowIfNull(files);
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(literal);
        if (!pattern.StartsWith('/'))
        {
            return []; // the script's working directory holds nothing
        }

        var current = new List<string> { "/" };
        int start = 1;
        while (start <= pattern.Length && current.Count > 0)
        {
            int slash = pattern.IndexOf('/', start);
            int end = slash < 0 ? pattern.Length : slash;
            if (end == start)
            {
                start = end + 1;
                continue;
            }

            var regex = new System.Text.StringBuilder("^");
            bool wild = false;
            for (int i = start; i < end; i++)
            {
                char c = pattern[i];
                if (literal(i) || c is not ('*' or '?' or '['))
                {
                    regex.Append(System.Text.RegularExpressions.Regex.Escape(c.ToString()));
                    continue;
                }

                wild = true;
                if (c == '*')
                {
                    regex.Append("[^/]*");
                }
                else if (c == '?')
                {
                    regex.Append("[^/]");
                }
                else
                {
                    int close = pattern.IndexOf(']', i + 2 <= end ? i + 2 : end);
                    if (close < 0 || close >= end)
                    {
                        regex.Append("\\[");
                        continue;
                    }

                    string set = pattern[(i + 1)..close];
                    regex.Append('[').Append(set.StartsWith('!') ? "^" + set[1..] : set).Append(']');
                    i = close;
                }
            }

            var matcher = new System.Text.RegularExpressions.Regex(regex.Append('$').ToString(), System.Text.RegularExpressions.RegexOptions.CultureInvariant);
            string component = pattern[start..end];
            var next = new List<string>();
            foreach (string dir in current)
            {
                if (!wild)
                {
                    string path = KernelFilesPath.Join(dir, component);
                    if (files.Kind(path) != ShellFileKind.None)
                    {
                        next.Add(path);
                    }

                    continue;
                }

                foreach (string name in files.Children(dir))
                {
                    if ((!name.StartsWith('.') || component.StartsWith('.')) && matcher.IsMatch(name))
                    {
                        next.Add(KernelFilesPath.Join(dir, name));
                    }
                }
            }

            current = slash < 0 ? next : [.. next.Where(p => files.Kind(p) == ShellFileKind.Directory)];
            start = end + 1;
        }

        return [.. current.Order(StringComparer.Ordinal)];
    }

    /// <summary>Levenshtein distance.</summary>
    public static int Distance(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var previous = new int[b.Length + 1];
        var row = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (int i = 1; i <= a.Length; i++)
        {
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                row[j] = Math.Min(Math.Min(row[j - 1] + 1, previous[j] + 1), previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }

            (previous, row) = (row, previous);
        }

        return previous[b.Length];
    }
}
