using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Hvo.Cli;

/// <summary>A HugeTLB pool of the host: its page size, its pages (surplus included), and per node where there are several.</summary>
internal sealed record HostPool(ulong Size, ulong Total, ulong Surplus, IReadOnlyList<ulong> PerNode);

/// <summary>
/// What <c>hvo host</c> reads of a machine under a root directory (<c>/</c>, or a test's tree):
/// uname's machine and release (<c>/proc/sys/kernel/{arch,osrelease}</c>), /proc/meminfo,
/// /proc/cmdline, /proc/sys/vm's HVO switch, the pools in /sys/kernel/mm/hugepages and per node in
/// /sys/devices/system/node, the memory blocks of /sys/devices/system/memory, and the kernel's
/// configuration (/proc/config.gz or /boot/config-RELEASE). A file that is missing, unreadable or
/// holds what the kernel would not write is a note, never an exception.
/// </summary>
internal sealed class HostFacts
{
    private readonly string _root;
    private readonly List<string> _notes = [];

    private HostFacts(string root) => _root = root;

    public string? Machine { get; private set; }

    public string? Release { get; private set; }

    /// <summary>MAJOR.MINOR of the release, when it starts with them.</summary>
    public (int Major, int Minor)? Version { get; private set; }

    public ulong? MemTotalKb { get; private set; }

    /// <summary>meminfo's Hugepagesize: the default huge page size, in bytes.</summary>
    public ulong? DefaultHugePageSize { get; private set; }

    /// <summary>The machine's memory: its online memory blocks, else MemTotal rounded up to a GiB.</summary>
    public ulong? MemoryBytes { get; private set; }

    public string MemorySource { get; private set; } = string.Empty;

    public int Nodes { get; private set; } = 1;

    public IReadOnlyList<HostPool> Pools { get; private set; } = [];

    public string? CommandLine { get; private set; }

    /// <summary>/proc/sys/vm/hugetlb_optimize_vmemmap (v5.19 on, where some size is optimizable); null when absent.</summary>
    public bool? Sysctl { get; private set; }

    /// <summary>CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP: true, false (not set), null when no configuration could be read.</summary>
    public bool? Built { get; private set; }

    /// <summary>CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON, where the configuration says.</summary>
    public bool? DefaultOn { get; private set; }

    public string ConfigSource { get; private set; } = string.Empty;

    /// <summary>The CPUs have LA57 and the kernel was built for 5-level paging and not told no5lvl.</summary>
    public bool FiveLevel { get; private set; }

    /// <summary>What could not be read or made sense of, one line each.</summary>
    public IReadOnlyList<string> Notes => _notes;

    public static HostFacts Read(string root)
    {
        var f = new HostFacts(root);
        f.ReadUname();
        f.ReadMeminfo();
        f.CommandLine = f.Text("/proc/cmdline", essential: false)?.Trim();
        f.ReadSysctl();
        f.ReadNodes();
        f.ReadPools();
        f.ReadMemory();
        f.ReadConfig();
        return f;
    }

    /// <summary>hugetlb_free_vmemmap= on the command line: true, false, or null when absent.</summary>
    public bool? BootParameter =>
        CommandLine is { } line && Regex.Match(line, @"(?:^|\s)hugetlb_free_vmemmap=(\S+)") is { Success: true } m
            ? m.Groups[1].Value is "on" or "y" or "1" or "Y" ? true : m.Groups[1].Value is "off" or "n" or "0" or "N" ? false : null
            : null;

    /// <summary>The HugeTLB parameters of the command line (hugepagesz=, hugepages=, default_hugepagesz=), in order, for the simulated boot line.</summary>
    public IReadOnlyList<string> HugeTlbParameters =>
        CommandLine is null ? [] : [.. CommandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries).TakeWhile(w => w != "--").Where(w => w.StartsWith("hugepagesz=", StringComparison.Ordinal) || w.StartsWith("hugepages=", StringComparison.Ordinal) || w.StartsWith("default_hugepagesz=", StringComparison.Ordinal))];

    private string Path(string absolute) => System.IO.Path.Join(_root, absolute.TrimStart('/'));

    private string? Text(string absolute, bool essential)
    {
        string path = Path(absolute);
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            if (essential)
            {
                _notes.Add($"{absolute}: missing");
            }

            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _notes.Add($"{absolute}: cannot be read ({e.Message})");
            return null;
        }
    }

    private ulong? Number(string absolute, bool essential, int radix = 10)
    {
        string? text = Text(absolute, essential)?.Trim();
        if (text is null)
        {
            return null;
        }

        string digits = radix == 16 && text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? text[2..] : text;
        if (ulong.TryParse(digits, radix == 16 ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
        {
            return n;
        }

        _notes.Add($"{absolute}: '{Shorten(text)}' is not a number");
        return null;
    }

    private static string Shorten(string s) => s.Length > 40 ? s[..40] + "..." : s;

    private void ReadUname()
    {
        Release = Text("/proc/sys/kernel/osrelease", essential: true)?.Trim();
        Machine = Text("/proc/sys/kernel/arch", essential: false)?.Trim();
        if (Machine is null && _root == "/")
        {
            // Older kernels have no /proc/sys/kernel/arch: uname's machine is the process's architecture.
            Machine = RuntimeInformation.OSArchitecture switch
            {
                Architecture.X64 => "x86_64",
                Architecture.Arm64 => "aarch64",
                Architecture.RiscV64 => "riscv64",
                Architecture.LoongArch64 => "loongarch64",
                var other => other.ToString().ToLowerInvariant(),
            };
        }
        else if (Machine is null)
        {
            _notes.Add("/proc/sys/kernel/arch: missing (uname's machine)");
        }

        if (Release is not null)
        {
            Match m = Regex.Match(Release, @"^(\d+)\.(\d+)");
            if (m.Success && int.TryParse(m.Groups[1].Value, CultureInfo.InvariantCulture, out int major) && int.TryParse(m.Groups[2].Value, CultureInfo.InvariantCulture, out int minor))
            {
                Version = (major, minor);
            }
            else
            {
                _notes.Add($"/proc/sys/kernel/osrelease: '{Shorten(Release)}' is not a kernel release (MAJOR.MINOR...)");
            }
        }
    }

    private void ReadMeminfo()
    {
        string? text = Text("/proc/meminfo", essential: true);
        if (text is null)
        {
            return;
        }

        ulong? Field(string name)
        {
            Match m = Regex.Match(text, $@"^{name}:\s*(\S+)", RegexOptions.Multiline);
            if (!m.Success)
            {
                _notes.Add($"/proc/meminfo: no {name} line");
                return null;
            }

            if (ulong.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v))
            {
                return v;
            }

            _notes.Add($"/proc/meminfo: {name} '{Shorten(m.Groups[1].Value)}' is not a number");
            return null;
        }

        MemTotalKb = Field("MemTotal");
        DefaultHugePageSize = Field("Hugepagesize") * 1024;
    }

    private void ReadSysctl()
    {
        if (File.Exists(Path("/proc/sys/vm/hugetlb_optimize_vmemmap")))
        {
            Sysctl = Number("/proc/sys/vm/hugetlb_optimize_vmemmap", essential: true) is { } v ? v != 0 : null;
        }
    }

    private void ReadNodes()
    {
        string dir = Path("/sys/devices/system/node");
        if (!Directory.Exists(dir))
        {
            return;
        }

        int count = Directory.GetDirectories(dir).Count(d => Regex.IsMatch(System.IO.Path.GetFileName(d), @"^node\d+$"));
        Nodes = Math.Max(1, count);
    }

    private void ReadPools()
    {
        string dir = Path("/sys/kernel/mm/hugepages");
        if (!Directory.Exists(dir))
        {
            _notes.Add("/sys/kernel/mm/hugepages: missing (no HugeTLB here, or sysfs not mounted)");
            return;
        }

        var pools = new List<HostPool>();
        foreach (string sub in Directory.GetDirectories(dir).Order(StringComparer.Ordinal))
        {
            string name = System.IO.Path.GetFileName(sub);
            Match m = Regex.Match(name, @"^hugepages-(\d+)kB$");
            if (!m.Success || !ulong.TryParse(m.Groups[1].Value, CultureInfo.InvariantCulture, out ulong kb))
            {
                continue;
            }

            string rel = $"/sys/kernel/mm/hugepages/{name}";
            ulong total = Number(rel + "/nr_hugepages", essential: true) ?? 0;
            ulong surplus = Number(rel + "/surplus_hugepages", essential: false) ?? 0;
            var perNode = new List<ulong>();
            for (int nid = 0; nid < Nodes && Nodes > 1; nid++)
            {
                perNode.Add(Number($"/sys/devices/system/node/node{nid}/hugepages/{name}/nr_hugepages", essential: true) ?? 0);
            }

            pools.Add(new HostPool(kb * 1024, total, surplus, perNode));
        }

        Pools = pools;
    }

    private void ReadMemory()
    {
        if (Number("/sys/devices/system/memory/block_size_bytes", essential: false, radix: 16) is { } block && block > 0)
        {
            string dir = Path("/sys/devices/system/memory");
            int online = Directory.GetDirectories(dir).Count(d => Regex.IsMatch(System.IO.Path.GetFileName(d), @"^memory\d+$")
                && (Text($"/sys/devices/system/memory/{System.IO.Path.GetFileName(d)}/online", essential: false)?.Trim() ?? "1") == "1");
            if (online > 0)
            {
                MemoryBytes = block * (ulong)online;
                MemorySource = $"{online} online memory blocks of {Lib.CmdLine.FormatSize(block)}";
                return;
            }
        }

        if (MemTotalKb is { } kb)
        {
            const ulong GiB = 1UL << 30;
            MemoryBytes = ((kb * 1024) + GiB - 1) / GiB * GiB;
            MemorySource = "MemTotal rounded up to a GiB (the kernel's own memory is not in MemTotal)";
        }
    }

    private void ReadConfig()
    {
        string? config = null;
        string gz = Path("/proc/config.gz");
        if (File.Exists(gz))
        {
            try
            {
                using var file = File.OpenRead(gz);
                using var unzip = new GZipStream(file, CompressionMode.Decompress);
                using var reader = new StreamReader(unzip);
                config = reader.ReadToEnd();
                ConfigSource = "/proc/config.gz";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                _notes.Add($"/proc/config.gz: cannot be read ({e.Message})");
            }
        }

        if (config is null && Release is not null && !Release.Contains('/', StringComparison.Ordinal))
        {
            config = Text($"/boot/config-{Release}", essential: false);
            ConfigSource = config is null ? string.Empty : $"/boot/config-{Release}";
        }

        if (config is null)
        {
            return;
        }

        bool? Option(string name) =>
            Regex.IsMatch(config, $"^CONFIG_{name}=y", RegexOptions.Multiline) ? true
            : Regex.IsMatch(config, $"^# CONFIG_{name} is not set", RegexOptions.Multiline) || !config.Contains("CONFIG_", StringComparison.Ordinal) ? false
            : null;

        Built = Option("HUGETLB_PAGE_OPTIMIZE_VMEMMAP") ?? false;
        DefaultOn = Option("HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON") ?? false;
        string? cpuinfo = Text("/proc/cpuinfo", essential: false);
        FiveLevel = Option("X86_5LEVEL") == true && cpuinfo is not null && Regex.IsMatch(cpuinfo, @"^flags\s*:.*\bla57\b", RegexOptions.Multiline)
            && !(CommandLine?.Split(' ').Contains("no5lvl") ?? false);
    }
}
