using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;

namespace Hvo.Scenario;

/// <summary>
/// Sizes as coreutils (xstrtoumax: head -c, dd's bs=) and util-linux (strtosize: fallocate -l) read
/// them: a decimal number, then K, M, G, T, P or E (either case) for powers of 1024, the same with
/// <c>iB</c> too, or with <c>B</c> for powers of 1000; <c>b</c> is 512, and dd adds <c>c</c> (1) and <c>w</c> (2).
/// </summary>
public static class ShellSizes
{
    public static bool TryParse(string text, bool ddUnits, out ulong bytes)
    {
        ArgumentNullException.ThrowIfNull(text);
        bytes = 0;
        int end = 0;
        while (end < text.Length && char.IsAsciiDigit(text[end]))
        {
            end++;
        }

        if (end == 0 || !ulong.TryParse(text.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
        {
            return false;
        }

        string suffix = text[end..];
        ulong unit;
        if (suffix.Length == 0)
        {
            unit = 1;
        }
        else if (suffix == "b")
        {
            unit = 512;
        }
        else if (ddUnits && suffix is "c" or "w")
        {
            unit = suffix == "c" ? 1UL : 2UL;
        }
        else
        {
            int power = "KMGTPE".IndexOf(char.ToUpperInvariant(suffix[0]), StringComparison.Ordinal) + 1;
            string rest = suffix[1..];
            if (power == 0 || rest is not ("" or "iB" or "B"))
            {
                return false;
            }

            ulong radix = rest == "B" ? 1000UL : 1024UL;
            unit = 1;
            for (int i = 0; i < power; i++)
            {
                unit *= radix;
            }
        }

        UInt128 total = (UInt128)n * unit;
        if (total > ulong.MaxValue)
        {
            return false;
        }

        bytes = (ulong)total;
        return true;
    }
}

/// <summary>
/// <c>head [-c SIZE | -n LINES | -LINES] [FILE]</c>: the first bytes or lines of a file or of the
/// pipe's input. <c>head -c SIZE /dev/zero &gt; FILE</c> is how scripts fill a file with SIZE
/// zero bytes: redirected, it writes them to the file itself (<see cref="IShellFiles.WriteZeros"/>);
/// a write that fails ends it with coreutils' <c>head: error writing 'standard output': ...</c> and
/// status 1. To the transcript or a pipe at most 1 MiB of zeros is kept.
/// </summary>
public sealed class HeadCommand : IShellCommand
{
    private const string Usage = "head [-c SIZE | -n LINES] [FILE], e.g. head -c 64M /dev/zero > /dev/shm/f";
    private const ulong TranscriptLimit = 1 << 20;

    public string Name => "head";

    private sealed record Parsed(bool Bytes, ulong Count, string? File);

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        if (Parse(args, out Parsed? p) is { } usage)
        {
            return usage;
        }

        return p!.File is null && !readsInput ? new ShellUsage($"head needs a file, or input from a pipe: {Usage}") : null;
    }

    private static ShellUsage? Parse(IReadOnlyList<string> args, out Parsed? parsed)
    {
        ArgumentNullException.ThrowIfNull(args);
        parsed = null;
        bool bytes = false;
        ulong count = 10;
        string? file = null;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a is "-c" or "-n" || (a.Length > 2 && (a.StartsWith("-c", StringComparison.Ordinal) || a.StartsWith("-n", StringComparison.Ordinal))))
            {
                string value = a.Length > 2 ? a[2..] : i + 1 < args.Count ? args[++i] : string.Empty;
                if (!ShellSizes.TryParse(value, ddUnits: false, out count))
                {
                    return new ShellUsage($"head: invalid number of {(a[1] == 'c' ? "bytes" : "lines")}: '{value}'", i);
                }

                bytes = a[1] == 'c';
                continue;
            }

            if (a.Length > 1 && a[0] == '-' && a[1..].All(char.IsAsciiDigit))
            {
                count = ulong.Parse(a.AsSpan(1), CultureInfo.InvariantCulture);
                bytes = false;
                continue;
            }

            if (a.Length > 1 && a[0] == '-')
            {
                return new ShellUsage($"head: option '{a}' is not supported: {Usage}", i);
            }

            if (file is not null)
            {
                return new ShellUsage($"head takes one file here: {Usage}", i);
            }

            file = a;
        }

        parsed = new Parsed(bytes, count, file);
        return null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        if (ShellCommands.Refuse(this, args, input, errors, 1) is { } refused)
        {
            return refused;
        }

        Parse(args, out Parsed? p);
        if (p!.File is { } zero && KernelFilesPath.Normalize(zero) == "/dev/zero")
        {
            return Zeros(shell, p.Bytes ? p.Count : ulong.MaxValue, output, errors);
        }

        string? text = p.File is null or "-" ? input ?? string.Empty : shell.Read(Name, p.File, errors);
        if (text is null)
        {
            return 1;
        }

        if (p.Bytes)
        {
            output.Write(text[..(int)Math.Min((ulong)text.Length, p.Count)]);
            return 0;
        }

        int at = 0;
        for (ulong line = 0; line < p.Count && at < text.Length; line++)
        {
            int nl = text.IndexOf('\n', at);
            at = nl < 0 ? text.Length : nl + 1;
        }

        output.Write(text[..at]);
        return 0;
    }

    /// <summary>
    /// A write refused for want of space or memory (ENOSPC, ENOMEM) is how a script learns the
    /// tmpfs or the machine is full, reported by the program and its status; any other errno is a
    /// mistake of the script (a wrong path, a kernel file that takes no zeros) and counts as a shell error.
    /// </summary>
    internal static void FullIsNoMistake(ShellContext shell, Errno e)
    {
        if (e is not (Errno.ENOSPC or Errno.ENOMEM))
        {
            shell.CountError();
        }
    }

    private static int Zeros(ShellContext shell, ulong bytes, TextWriter output, TextWriter errors)
    {
        if (output is RedirectedOutput file)
        {
            Errno e = shell.Files.WriteZeros(file.Path, bytes, out _);
            if (e == Errno.None)
            {
                return 0;
            }

            FullIsNoMistake(shell, e);
            errors.WriteLine($"head: error writing 'standard output': {ErrnoText.Message(e)}");
            return 1;
        }

        if (bytes > TranscriptLimit)
        {
            errors.WriteLine($"head: hvo keeps at most {TranscriptLimit} bytes of /dev/zero outside a file; redirect it to one, e.g. > /dev/shm/f");
            return 1;
        }

        output.Write(new string('\0', (int)bytes));
        return 0;
    }
}

/// <summary>
/// <c>dd if=/dev/zero of=FILE bs=SIZE count=N [conv=notrunc] [oflag=append] [status=none|noxfer|progress]</c>:
/// N blocks of zeros written to FILE (opened with O_CREAT, and O_TRUNC unless conv=notrunc or
/// oflag=append). It reports on the transcript as dd does, records in and out then the bytes copied
/// (the elapsed time and rate are left out: the simulated machine has no clock); a failed write is
/// <c>dd: error writing 'FILE': ...</c>, the partial record counted as <c>+1</c>, and status 1.
/// </summary>
public sealed class DdCommand : IShellCommand
{
    private const string Usage = "dd if=/dev/zero of=FILE bs=SIZE count=N [conv=notrunc] [oflag=append] [status=none|noxfer|progress]";

    public string Name => "dd";

    private sealed record Parsed(string Of, ulong Bs, ulong Count, bool Append, string Status);

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => Parse(args, out _);

    private static ShellUsage? Parse(IReadOnlyList<string> args, out Parsed? parsed)
    {
        ArgumentNullException.ThrowIfNull(args);
        parsed = null;
        string? input = null, of = null, status = "default";
        ulong bs = 512, count = ulong.MaxValue;
        bool append = false;
        for (int i = 0; i < args.Count; i++)
        {
            int eq = args[i].IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? args[i] : args[i][..eq];
            string value = eq < 0 ? string.Empty : args[i][(eq + 1)..];
            switch (key)
            {
                case "if":
                    input = value;
                    break;
                case "of":
                    of = value;
                    break;
                case "bs" or "obs" or "ibs" when ShellSizes.TryParse(value, ddUnits: true, out ulong size) && size > 0:
                    bs = size;
                    break;
                case "bs" or "obs" or "ibs":
                    return new ShellUsage($"dd: invalid number: '{value}'", i);
                case "count" when ShellSizes.TryParse(value, ddUnits: true, out ulong n):
                    count = n;
                    break;
                case "count":
                    return new ShellUsage($"dd: invalid number: '{value}'", i);
                case "conv" when value == "notrunc":
                case "oflag" when value == "append":
                    append = true;
                    break;
                case "status" when value is "none" or "noxfer" or "progress":
                    status = value;
                    break;
                default:
                    return new ShellUsage($"dd: '{args[i]}' is not supported: {Usage}", i);
            }
        }

        if (input is null || KernelFilesPath.Normalize(input) != "/dev/zero")
        {
            return new ShellUsage($"dd reads only if=/dev/zero here: {Usage}");
        }

        if (of is null || count == ulong.MaxValue)
        {
            return new ShellUsage($"dd needs of=FILE and count=N here: {Usage}");
        }

        parsed = new Parsed(of, bs, count, append, status);
        return null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(errors);
        if (Parse(args, out Parsed? p) is { } usage)
        {
            errors.WriteLine(usage.Message);
            return 1;
        }

        Errno e = shell.Files.OpenForWrite(p!.Of, p.Append);
        if (e != Errno.None)
        {
            shell.CountError();
            errors.WriteLine($"dd: failed to open '{p.Of}': {ErrnoText.Message(e)}");
            shell.Suggest(p.Of);
            return 1;
        }

        ulong full = 0, partial = 0, copied = 0;
        for (ulong block = 0; block < p.Count; block++)
        {
            e = shell.Files.WriteZeros(p.Of, p.Bs, out ulong written);
            copied += written;
            if (e != Errno.None)
            {
                partial = written > 0 ? 1UL : 0UL;
                HeadCommand.FullIsNoMistake(shell, e);
                errors.WriteLine($"dd: error writing '{p.Of}': {ErrnoText.Message(e)}");
                Report(errors, p.Status, block, 1, full, partial, copied);
                return 1;
            }

            full++;
        }

        Report(errors, p.Status, p.Count, 0, full, 0, copied);
        return 0;
    }

    // print_stats: records in and out as full+partial, then the bytes copied.
    private static void Report(TextWriter errors, string status, ulong fullIn, ulong partialIn, ulong fullOut, ulong partialOut, ulong bytes)
    {
        if (status == "none")
        {
            return;
        }

        errors.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{fullIn}+{partialIn} records in"));
        errors.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{fullOut}+{partialOut} records out"));
        if (status != "noxfer")
        {
            errors.WriteLine(bytes == 1 ? "1 byte copied" : string.Create(CultureInfo.InvariantCulture, $"{bytes} bytes{Human(bytes)} copied"));
        }
    }

    // human_readable as dd prints it: " (1.0 MB, 1.0 MiB)" from 1000 bytes up.
    private static string Human(ulong bytes)
    {
        if (bytes < 1000)
        {
            return string.Empty;
        }

        return $" ({Scaled(bytes, 1000, "kMGTPE", "B")}, {Scaled(bytes, 1024, "KMGTPE", "iB")})";
    }

    private static string Scaled(ulong bytes, double radix, string prefixes, string unit)
    {
        double v = bytes;
        int p = -1;
        while (v >= radix && p < prefixes.Length - 1)
        {
            v /= radix;
            p++;
        }

        if (p < 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{bytes} B");
        }

        // Rounded up, one decimal below 10, as coreutils' human_ceiling does.
        string number = v < 10
            ? (Math.Ceiling(v * 10) / 10).ToString("0.0", CultureInfo.InvariantCulture)
            : Math.Ceiling(v).ToString("0", CultureInfo.InvariantCulture);
        return $"{number} {prefixes[p]}{unit}";
    }
}

/// <summary>
/// <c>fallocate -l SIZE FILE</c>: the first SIZE bytes of FILE allocated (created if need be); on
/// tmpfs every page of the range, or none when one cannot be had (util-linux's
/// <c>fallocate: fallocate failed: ...</c>, status 1).
/// </summary>
public sealed class FallocateCommand : IShellCommand
{
    private const string Usage = "fallocate -l SIZE FILE, e.g. fallocate -l 1G /dev/shm/f";

    public string Name => "fallocate";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => Parse(args, out _, out _);

    private static ShellUsage? Parse(IReadOnlyList<string> args, out ulong length, out string file)
    {
        ArgumentNullException.ThrowIfNull(args);
        length = 0;
        file = string.Empty;
        bool sized = false;
        for (int i = 0; i < args.Count; i++)
        {
            string a = args[i];
            if (a is "-l" or "--length" || a.StartsWith("--length=", StringComparison.Ordinal) || (a.StartsWith("-l", StringComparison.Ordinal) && a.Length > 2))
            {
                string value = a.StartsWith("--length=", StringComparison.Ordinal) ? a[9..] : a.Length > 2 && a[1] == 'l' ? a[2..] : i + 1 < args.Count ? args[++i] : string.Empty;
                if (!ShellSizes.TryParse(value, ddUnits: false, out length) || length == 0)
                {
                    return new ShellUsage($"fallocate: invalid length value specified: '{value}'", i);
                }

                sized = true;
                continue;
            }

            if (a.Length > 1 && a[0] == '-')
            {
                return new ShellUsage($"fallocate: option '{a}' is not supported: {Usage}", i);
            }

            if (file.Length > 0)
            {
                return new ShellUsage($"fallocate takes one file: {Usage}", i);
            }

            file = a;
        }

        return !sized || file.Length == 0 ? new ShellUsage($"fallocate needs a length and a file: {Usage}") : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(errors);
        if (Parse(args, out ulong length, out string file) is { } usage)
        {
            errors.WriteLine(usage.Message);
            return 1;
        }

        Errno e = shell.Files.Fallocate(file, length);
        if (e == Errno.None)
        {
            return 0;
        }

        HeadCommand.FullIsNoMistake(shell, e);
        bool atOpen = e is Errno.ENOENT or Errno.EACCES or Errno.EISDIR or Errno.ENOTDIR;
        errors.WriteLine(atOpen ? $"fallocate: cannot open {file}: {ErrnoText.Message(e)}" : $"fallocate: fallocate failed: {ErrnoText.Message(e)}");
        return 1;
    }
}

/// <summary><c>rm [-f] FILE...</c>: unlink each; without <c>-f</c> a missing file is an error (status 1).</summary>
public sealed class RmCommand : IShellCommand
{
    public string Name => "rm";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        int option = CatCommand.IndexOf(args, a => a.Length > 1 && a[0] == '-' && a != "-f");
        return option >= 0 ? new ShellUsage($"rm: option '{args[option]}' is not supported: rm [-f] FILE...", option)
            : args.All(a => a == "-f") && !args.Contains("-f") ? new ShellUsage("rm: missing operand") : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(errors);
        if (ShellCommands.Refuse(this, args, input, errors, 1) is { } refused)
        {
            return refused;
        }

        bool force = args.Contains("-f");
        int status = 0;
        foreach (string path in args.Where(a => a != "-f"))
        {
            Errno e = shell.Files.Unlink(path);
            if (e == Errno.None || (force && e == Errno.ENOENT))
            {
                continue;
            }

            shell.CountError();
            errors.WriteLine($"rm: cannot remove '{path}': {ErrnoText.Message(e)}");
            status = 1;
        }

        return status;
    }
}

/// <summary><c>ls [-1] PATH...</c>: a directory's names, one a line (as when the output is not a terminal); a file's path.</summary>
public sealed class LsCommand : IShellCommand
{
    public string Name => "ls";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        int option = CatCommand.IndexOf(args, a => a.Length > 1 && a[0] == '-' && a != "-1");
        return option >= 0 ? new ShellUsage($"ls: option '{args[option]}' is not supported: ls [-1] PATH...", option) : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        if (ShellCommands.Refuse(this, args, input, errors, 2) is { } refused)
        {
            return refused;
        }

        string[] paths = [.. args.Where(a => a != "-1")];
        int status = 0;
        foreach (string path in paths.Length == 0 ? ["/"] : paths)
        {
            switch (shell.Files.Kind(path))
            {
                case ShellFileKind.Directory:
                    if (paths.Length > 1)
                    {
                        output.WriteLine(path + ":");
                    }

                    foreach (string name in shell.Files.Children(path))
                    {
                        output.WriteLine(name);
                    }

                    break;
                case ShellFileKind.File:
                    output.WriteLine(path);
                    break;
                default:
                    shell.CountError();
                    errors.WriteLine($"ls: cannot access '{path}': No such file or directory");
                    status = 2;
                    break;
            }
        }

        return status;
    }
}

/// <summary><c>du [-k|-s] PATH...</c>: the KiB a file's data occupies (a directory: its files' sum), then a tab and the path.</summary>
public sealed class DuCommand : IShellCommand
{
    public string Name => "du";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        int option = CatCommand.IndexOf(args, a => a.Length > 1 && a[0] == '-' && a is not ("-k" or "-s" or "-sk" or "-ks"));
        return option >= 0 ? new ShellUsage($"du: option '{args[option]}' is not supported: du [-k|-s] PATH...", option)
            : args.All(a => a.StartsWith('-')) ? new ShellUsage("du needs a path here, e.g. du /dev/shm") : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(errors);
        if (ShellCommands.Refuse(this, args, input, errors, 1) is { } refused)
        {
            return refused;
        }

        int status = 0;
        foreach (string path in args.Where(a => !a.StartsWith('-')))
        {
            ShellFileKind kind = shell.Files.Kind(path);
            if (kind == ShellFileKind.None)
            {
                shell.CountError();
                errors.WriteLine($"du: cannot access '{path}': No such file or directory");
                status = 1;
                continue;
            }

            ulong bytes = kind == ShellFileKind.File ? shell.Files.DiskUsage(path)
                : shell.FilesUnder(path).Aggregate(0UL, (sum, f) => sum + shell.Files.DiskUsage(f));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{bytes >> 10}\t{path}"));
        }

        return status;
    }
}

/// <summary>
/// <c>mount -o remount,size=SIZE /dev/shm</c>: a new size limit for the tmpfs (SIZE as the kernel
/// reads it: K, M, G... or a percentage of RAM, <c>50%</c>); one below what its files use is refused
/// (shmem_reconfigure), with mount's message and status 32. Nothing else is mounted here.
/// </summary>
public sealed class MountCommand : IShellCommand
{
    private const string Usage = "mount -o remount,size=SIZE /dev/shm (SIZE such as 4G or 90%)";

    public string Name => "mount";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => Parse(args, out _, out _);

    private static ShellUsage? Parse(IReadOnlyList<string> args, out string size, out string target)
    {
        ArgumentNullException.ThrowIfNull(args);
        size = target = string.Empty;
        bool remount = false;
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i] == "-o" && i + 1 < args.Count)
            {
                foreach (string option in args[++i].Split(','))
                {
                    if (option == "remount")
                    {
                        remount = true;
                    }
                    else if (option.StartsWith("size=", StringComparison.Ordinal))
                    {
                        size = option[5..];
                    }
                    else
                    {
                        return new ShellUsage($"mount: option '{option}' is not supported: {Usage}", i);
                    }
                }

                continue;
            }

            if (args[i].StartsWith('-') || target.Length > 0)
            {
                return new ShellUsage($"mount: '{args[i]}' is not supported: {Usage}", i);
            }

            target = args[i];
        }

        return !remount || size.Length == 0 || target.Length == 0 ? new ShellUsage($"mount: only a remount with size= is supported: {Usage}") : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(errors);
        if (Parse(args, out string size, out string target) is { } usage)
        {
            errors.WriteLine(usage.Message);
            return 1;
        }

        Errno e = shell.Files.RemountSize(target, size);
        if (e == Errno.None)
        {
            return 0;
        }

        shell.CountError();
        errors.WriteLine($"mount: {target}: mount point not mounted or bad option.");
        return 32;
    }
}
