using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;

namespace Hvo.Scenario;

/// <summary>
/// A script's <c>boot</c> line as the simulated kernel reads its command line: <c>mem=</c> (the
/// memory it boots with; the machine's memory above it can be hot-added later; <c>mem=SIZE@START</c>,
/// the form ARM and MIPS kernels take to override the firmware's memory map, also says where RAM
/// starts), <c>numa=fake=N</c> (N equal nodes), <c>hugetlb_free_vmemmap=</c>,
/// <c>memory_hotplug.memmap_on_memory=</c>, <c>memhp_default_state=</c>, <c>swiotlb=</c>,
/// <c>crashkernel=</c>, <c>memmap=</c>, <c>transparent_hugepage=</c>, and the HugeTLB
/// parameters (<c>hugepagesz=</c>, <c>hugepages=</c>, <c>default_hugepagesz=</c>, parsed by
/// <see cref="HugeTlbCommandLine.Parse"/> with the kernel's warnings). Parameters the kernel does
/// not know are reported as the kernel does (print_unknown_bootoptions) and ignored; other module
/// parameters (with a dot) are ignored silently. A value this model cannot take for <c>mem=</c>,
/// <c>numa=</c>, <c>hugetlb_free_vmemmap=</c> or <c>memory_hotplug.memmap_on_memory=</c> is a
/// <see cref="ScriptError"/> at its column: booting a different machine than the one written would
/// mislead. <c>memhp_default_state=</c> with a value it does not know is ignored, as the kernel does.
/// </summary>
public sealed record BootLine
{
    /// <summary>Parameters the kernel knows but this model gives no meaning: accepted without a notice.</summary>
    private static readonly HashSet<string> KnownElsewhere = new(StringComparer.Ordinal)
    {
        "quiet", "debug", "ro", "rw", "root", "rootfstype", "rootwait", "console", "earlycon", "earlyprintk", "loglevel", "init",
        "nokaslr", "panic", "nosmp", "maxcpus", "nr_cpus", "mitigations", "audit", "selinux",
        "apparmor", "splash", "BOOT_IMAGE", "initrd", "page_owner", "init_on_alloc", "init_on_free", "memblock", "ignore_loglevel",
    };

    /// <summary>The parameters as written, joined by blanks (/proc/cmdline).</summary>
    public string CommandLine { get; init; } = string.Empty;

    public ulong MemoryBytes { get; init; }

    /// <summary>mem=SIZE@START: where RAM starts; null when not given (where the spec puts it).</summary>
    public ulong? RamBase { get; init; }

    public int Nodes { get; init; } = 1;

    /// <summary>hugetlb_free_vmemmap=: null when not given (the build default).</summary>
    public bool? FreeVmemmap { get; init; }

    /// <summary>
    /// The machine's physical memory above <see cref="MemoryBytes"/>: with <c>mem=</c> below the
    /// run's machine size, the rest, which <c>mem=</c> only hides at boot (register_memory_resource
    /// lets memory hotplug add it); none otherwise.
    /// </summary>
    public ulong HotplugBytes { get; init; }

    /// <summary>memory_hotplug.memmap_on_memory= as written (kstrtobool); false when not given.</summary>
    public bool MemmapOnMemory { get; init; }

    /// <summary>memhp_default_state=: what hot-added memory blocks become (auto_online_blocks); offline when not given.</summary>
    public Memory.Hotplug.OnlineType AutoOnlineBlocks { get; init; }

    public HugeTlbCommandLine HugeTlb { get; init; } = HugeTlbCommandLine.Empty;

    /// <summary>swiotlb=N: the bounce buffer's bytes (N slots of 2 KiB, rounded up to a segment of 128); null when not given.</summary>
    public ulong? SwiotlbBytes { get; init; }

    /// <summary>swiotlb=...,force (true) or swiotlb=noforce (false); null when not given.</summary>
    public bool? SwiotlbForce { get; init; }

    /// <summary>transparent_hugepage=: THP's mode at boot; always (the Kconfig default) when not given or not understood.</summary>
    public Memory.ThpMode TransparentHugepages { get; init; } = Memory.ThpMode.Always;

    /// <summary><c>hvo.pcp=on|off</c> (Hvo's own parameter, not the kernel's): per-CPU page lists, on unless the line says off (<see cref="MachineConfig.PerCpuPageLists"/>).</summary>
    public bool PerCpuPageLists { get; init; } = true;

    /// <summary><c>hvo.bootmem=SIZE</c> (Hvo's own parameter): the kernel's own allocations at boot (<see cref="MachineConfig.BootKernelBytes"/>).</summary>
    public ulong BootKernelBytes { get; init; } = MachineConfig.DefaultBootKernelBytes;

    /// <summary>crashkernel=: the size chosen for this machine's RAM (0: none) and where, if @OFFSET says.</summary>
    public ulong CrashKernelBytes { get; init; }

    /// <summary>crashkernel=SIZE@OFFSET: the offset; null when memblock chooses.</summary>
    public ulong? CrashKernelBase { get; init; }

    /// <summary>memmap=nn$ss, nn#ss, nn!ss: ranges taken from the RAM (physical start, bytes).</summary>
    public IReadOnlyList<(ulong Start, ulong Bytes)> MemmapReserved { get; init; } = [];

    /// <summary>What the kernel logs about the line before the HugeTLB pool's own messages.</summary>
    public IReadOnlyList<string> Notices { get; init; } = [];

    /// <summary>
    /// The machine to boot. <paramref name="memmapOnMemory"/> is memory_hotplug.memmap_on_memory as
    /// the kernel version ends up with it next to HVO (<see cref="HvoPolicy.MemmapOnMemoryInEffect"/>).
    /// </summary>
    public MachineConfig Config(bool strict, bool memmapOnMemory = false) => new()
    {
        MemoryBytes = MemoryBytes,
        HotplugBytes = HotplugBytes,
        RamBase = RamBase,
        Nodes = Nodes,
        SwiotlbBytes = SwiotlbBytes,
        SwiotlbForce = SwiotlbForce,
        TransparentHugepages = TransparentHugepages,
        PerCpuPageLists = PerCpuPageLists,
        BootKernelBytes = BootKernelBytes,
        CrashKernelBytes = CrashKernelBytes,
        CrashKernelBase = CrashKernelBase,
        Reserved = MemmapReserved,
        Strict = strict,
        MemmapOnMemory = memmapOnMemory,
        AutoOnlineBlocks = AutoOnlineBlocks,
    };

    /// <summary>mhp_online_type_from_str: the four words of a memory block's <c>state</c> (sysfs_streq: a trailing newline allowed).</summary>
    public static bool TryParseOnlineType(string text, out Memory.Hotplug.OnlineType type)
    {
        ArgumentNullException.ThrowIfNull(text);
        string word = text.EndsWith('\n') ? text[..^1] : text;
        (bool ok, type) = word switch
        {
            "offline" => (true, Memory.Hotplug.OnlineType.Offline),
            "online" => (true, Memory.Hotplug.OnlineType.Online),
            "online_kernel" => (true, Memory.Hotplug.OnlineType.OnlineKernel),
            "online_movable" => (true, Memory.Hotplug.OnlineType.OnlineMovable),
            _ => (false, Memory.Hotplug.OnlineType.Offline),
        };
        return ok;
    }

    /// <summary>online_type_to_str: the word for <paramref name="type"/>.</summary>
    public static string OnlineTypeName(Memory.Hotplug.OnlineType type) => type switch
    {
        Memory.Hotplug.OnlineType.Online => "online",
        Memory.Hotplug.OnlineType.OnlineKernel => "online_kernel",
        Memory.Hotplug.OnlineType.OnlineMovable => "online_movable",
        _ => "offline",
    };

    /// <summary>
    /// The boot line of <paramref name="script"/> for <paramref name="arch"/>; without one,
    /// <paramref name="defaultMemory"/> on one node and nothing else. <c>mem=</c> is rounded down to
    /// whole pages, as the kernel does. A machine <see cref="MachineSize.Check"/> refuses (or larger
    /// than <paramref name="maxMemory"/>, a harness's bound) is a <see cref="ScriptError"/> at the
    /// last <c>mem=</c>, else at <c>numa=</c>, else at the boot line or the script's start.
    /// </summary>
    public static BootLine Resolve(Script script, ArchInfo arch, ulong defaultMemory, ulong maxMemory = ulong.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(arch);
        BootStatement? boot = script.Boot;
        if (boot is null)
        {
            CheckSize(arch, defaultMemory, 1, maxMemory, new SourceLocation(script.File, 1, 1), null);
            return new BootLine { MemoryBytes = defaultMemory };
        }

        ulong memory = defaultMemory;
        ulong? ramBase = null;
        int nodes = 1;
        bool? free = null;
        bool memmapOnMemory = false;
        var autoOnline = Memory.Hotplug.OnlineType.Offline;
        ScriptWord? memWord = null, numaWord = null;
        var hugetlb = new List<string>();
        var unknown = new List<string>();
        ulong? swiotlbBytes = null;
        bool? swiotlbForce = null;
        (string Value, ScriptWord Word)? crash = null;
        var memmapReserved = new List<(ulong Start, ulong Bytes)>();
        var thp = Memory.ThpMode.Always;
        bool pcp = true;
        ulong bootKernelBytes = MachineConfig.DefaultBootKernelBytes;
        var notices = new List<string>();
        foreach (ScriptWord p in boot.Parameters)
        {
            (string name, string? value) = Split(p.Value);
            switch (name)
            {
                case "mem":
                    (ulong bytes, ramBase) = ParseMem(value!, p, boot.Location);
                    memory = bytes / arch.PageSize * arch.PageSize;
                    memWord = p;
                    break;
                case "numa":
                    nodes = ParseNuma(value!, p, boot.Location);
                    numaWord = p;
                    break;
                case "hugetlb_free_vmemmap":
                    free = ParseOnOff(value!, p, boot.Location);
                    break;
                case MemmapOnMemoryParameter:
                    memmapOnMemory = ParseMemmapOnMemory(value, p, boot.Location);
                    break;
                case "memhp_default_state":
                    // setup_memhp_default_state: a word it does not know leaves the default.
                    autoOnline = value is not null && TryParseOnlineType(value, out Memory.Hotplug.OnlineType t) ? t : autoOnline;
                    break;
                case "hugepagesz" or "hugepages" or "default_hugepagesz":
                    hugetlb.Add(p.Value);
                    break;
                case "swiotlb":
                    (ulong? slots, bool? force) = ParseSwiotlb(value);
                    swiotlbBytes = slots is { } n ? n * 2048 : swiotlbBytes;
                    swiotlbForce = force ?? swiotlbForce;
                    break;
                case "crashkernel":
                    crash = (value ?? string.Empty, p);
                    break;
                case "transparent_hugepage":
                    // setup_transparent_hugepage: the three words; anything else is ignored with a warning.
                    switch (value)
                    {
                        case "always": thp = Memory.ThpMode.Always; break;
                        case "madvise": thp = Memory.ThpMode.Madvise; break;
                        case "never": thp = Memory.ThpMode.Never; break;
                        default: notices.Add("transparent_hugepage= cannot parse, ignored"); break;
                    }

                    break;
                case "hvo.pcp":
                    pcp = value switch
                    {
                        "on" => true,
                        "off" => false,
                        _ => throw ScriptParser.Error(boot.Location, p.Column, $"hvo.pcp={value}: Hvo's per-CPU page lists are hvo.pcp=on or hvo.pcp=off"),
                    };
                    break;
                case "hvo.bootmem":
                    bootKernelBytes = value is not null && CmdLine.Memparse(value) is { IsWhole: true, Bytes: var kernelBytes }
                        ? kernelBytes
                        : throw ScriptParser.Error(boot.Location, p.Column, $"hvo.bootmem={value}: Hvo's boot-time kernel allocations take a size (memparse), e.g. hvo.bootmem=32M, or hvo.bootmem=0 for none");
                    break;
                case "memmap":
                    foreach ((ulong start, ulong length, ulong? limit) in ParseMemmap(value, p, boot.Location))
                    {
                        if (limit is { } l)
                        {
                            memory = l / arch.PageSize * arch.PageSize; // memmap=nn: as mem=nn
                            memWord = p;
                        }
                        else
                        {
                            memmapReserved.Add((start, length));
                        }
                    }

                    break;
                default:
                    if (!name.Contains('.', StringComparison.Ordinal) && !KnownElsewhere.Contains(name))
                    {
                        unknown.Add(p.Value);
                    }

                    break;
            }
        }

        CheckSize(arch, memory, nodes, maxMemory, boot.Location, memWord ?? numaWord, ramBase);
        if (unknown.Count > 0)
        {
            notices.Add($"Unknown kernel command line parameters \"{string.Join(' ', unknown)}\", will be passed to user space.");
        }

        (ulong crashBytes, ulong? crashBase) = crash is { } c ? ParseCrashKernel(c.Value, memory, c.Word, boot.Location) : (0, null);
        ulong machine = Math.Min(defaultMemory, maxMemory) / arch.PageSize * arch.PageSize;
        // The machine's memory above mem= (from where RAM starts) is there, hidden, for memory hotplug.
        bool hotpluggable = machine > memory && MachineSize.Check(arch, machine, nodes, maxMemory, ramBase) is null;
        return new BootLine
        {
            CommandLine = string.Join(' ', boot.Parameters.Select(p => p.Value)),
            MemoryBytes = memory,
            HotplugBytes = hotpluggable ? machine - memory : 0,
            MemmapOnMemory = memmapOnMemory,
            AutoOnlineBlocks = autoOnline,
            RamBase = ramBase,
            Nodes = nodes,
            FreeVmemmap = free,
            HugeTlb = HugeTlbCommandLine.Parse(string.Join(' ', hugetlb), arch),
            Notices = notices,
            SwiotlbBytes = swiotlbBytes,
            SwiotlbForce = swiotlbForce,
            TransparentHugepages = thp,
            PerCpuPageLists = pcp,
            BootKernelBytes = bootKernelBytes,
            CrashKernelBytes = crashBytes,
            CrashKernelBase = crashBase,
            MemmapReserved = memmapReserved,
        };
    }

    /// <summary>
    /// setup_io_tlb_npages: an optional number of 2 KiB slots (rounded up to IO_TLB_SEGSIZE, 128), an
    /// optional second number (the areas, v6.2), then "force" or "noforce"; anything else after the
    /// numbers is ignored, as the kernel does.
    /// </summary>
    private static (ulong? Slots, bool? Force) ParseSwiotlb(string? value)
    {
        string rest = value ?? string.Empty;
        ulong? slots = null;
        int end = KernelNumbers.Parse(rest, 0, 0, out ulong n, out _);
        if (end > 0 && char.IsAsciiDigit(rest[0]))
        {
            slots = (n + 127) / 128 * 128;
            rest = rest[end..];
        }

        rest = rest.StartsWith(',') ? rest[1..] : rest;
        end = rest.Length > 0 && char.IsAsciiDigit(rest[0]) ? KernelNumbers.Parse(rest, 0, 0, out _, out _) : 0;
        rest = rest[end..];
        rest = rest.StartsWith(',') ? rest[1..] : rest;
        return (slots, rest switch { "force" => true, "noforce" => false, _ => null });
    }

    /// <summary>
    /// parse_crashkernel: SIZE, SIZE@OFFSET, or ranges START-[END]:SIZE,... (the first whose range
    /// holds the system's RAM; none: no reservation) with an optional @OFFSET. The ",high" and ",low"
    /// forms are not modelled.
    /// </summary>
    private static (ulong Bytes, ulong? Base) ParseCrashKernel(string value, ulong ram, ScriptWord word, SourceLocation line)
    {
        ScriptError Bad() => ScriptParser.Error(line, word.Column,
            $"crashkernel={value}: use SIZE, SIZE@OFFSET or ranges START-[END]:SIZE[,...][@OFFSET] (memparse sizes, e.g. crashkernel=256M or crashkernel=1G-4G:192M,4G-:256M); ',high' and ',low' are not modelled");
        int at = value.LastIndexOf('@');
        string sizes = at < 0 ? value : value[..at];
        ulong? offset = null;
        if (at >= 0)
        {
            offset = CmdLine.Memparse(value[(at + 1)..]) is { IsWhole: true, Bytes: var o } ? o : throw Bad();
        }

        if (!sizes.Contains(':', StringComparison.Ordinal))
        {
            return CmdLine.Memparse(sizes) is { IsWhole: true, Bytes: var b } ? (b, offset) : throw Bad();
        }

        foreach (string range in sizes.Split(','))
        {
            int colon = range.IndexOf(':', StringComparison.Ordinal);
            int dash = range.IndexOf('-', StringComparison.Ordinal);
            if (colon < 0 || dash < 0 || dash > colon
                || CmdLine.Memparse(range[..dash]) is not { IsWhole: true, Bytes: var start }
                || CmdLine.Memparse(range[(colon + 1)..]) is not { IsWhole: true, Bytes: var size })
            {
                throw Bad();
            }

            string endText = range[(dash + 1)..colon];
            ulong end = endText.Length == 0 ? ulong.MaxValue : CmdLine.Memparse(endText) is { IsWhole: true, Bytes: var e } && e > start ? e : throw Bad();
            if (ram >= start && ram < end)
            {
                return (size, offset);
            }
        }

        return (0, null);
    }

    /// <summary>
    /// parse_memmap_opt, each comma-separated entry: nn$ss (reserved), nn#ss (ACPI data), nn!ss
    /// (persistent memory): taken from the usable RAM; a bare nn limits the RAM as mem=nn does.
    /// nn@ss (more RAM) and exactmap (a whole map) are not modelled.
    /// </summary>
    private static IEnumerable<(ulong Start, ulong Bytes, ulong? Limit)> ParseMemmap(string? value, ScriptWord word, SourceLocation line)
    {
        ScriptError Bad(string entry) => ScriptParser.Error(line, word.Column,
            $"memmap={value}: '{entry}' is not modelled; use nn$ss, nn#ss or nn!ss (take [ss, ss+nn) from the RAM) or nn (as mem=nn), memparse sizes, e.g. memmap=64M$0x40000000");
        var entries = new List<(ulong, ulong, ulong?)>();
        foreach (string entry in (value ?? string.Empty).Split(','))
        {
            Memparsed size = CmdLine.Memparse(entry);
            if (!size.HasNumber)
            {
                throw Bad(entry);
            }

            if (size.IsWhole)
            {
                entries.Add((0, 0, size.Bytes));
                continue;
            }

            char kind = entry[size.End];
            if (kind is not ('$' or '#' or '!') || CmdLine.Memparse(entry[(size.End + 1)..]) is not { IsWhole: true, Bytes: var start } || size.Bytes == 0)
            {
                throw Bad(entry);
            }

            entries.Add((start, size.Bytes, null));
        }

        return entries;
    }

    /// <summary>The checks that need no architecture, made while parsing, so a bad line stops the script before it runs.</summary>
    internal static void CheckSyntax(ScriptWord word, SourceLocation line)
    {
        (string name, string? value) = Split(word.Value);
        switch (name)
        {
            case "mem":
                ParseMem(value, word, line);
                break;
            case "numa":
                ParseNuma(value, word, line);
                break;
            case "hugetlb_free_vmemmap":
                ParseOnOff(value, word, line);
                break;
            case MemmapOnMemoryParameter:
                ParseMemmapOnMemory(value, word, line);
                break;
            case "crashkernel":
                ParseCrashKernel(value ?? string.Empty, 0, word, line);
                break;
            case "memmap":
                ParseMemmap(value, word, line);
                break;
        }
    }

    /// <summary>The module parameter on the command line: memory_hotplug.memmap_on_memory.</summary>
    public const string MemmapOnMemoryParameter = "memory_hotplug.memmap_on_memory";

    // The parameter's kstrtobool (a bare name is true, KERNEL_PARAM_OPS_FL_NOARG); "force" (v6.6) is not modelled.
    private static bool ParseMemmapOnMemory(string? value, ScriptWord word, SourceLocation line)
    {
        if (value is null)
        {
            return true;
        }

        // From v6.6 set_memmap_mode takes "force" before kstrtobool (which would read it as 'f', false).
        if (value is not ("force" or "FORCE") && KernelValues.TryParseBool(value, out bool on))
        {
            return on;
        }

        throw ScriptParser.Error(line, word.Column, $"{MemmapOnMemoryParameter}={value}: use 1 or 0 (y/n, on/off); 'force' is not modelled");
    }

    private static void CheckSize(ArchInfo arch, ulong memory, int nodes, ulong maxMemory, SourceLocation line, ScriptWord? at, ulong? ramBase = null)
    {
        if (MachineSize.Check(arch, memory, nodes, maxMemory, ramBase) is { } why)
        {
            string what = at is { } w && w.Value.StartsWith("mem=", StringComparison.Ordinal) ? w.Value : $"the memory without mem= ({CmdLine.FormatSize(memory)})";
            throw ScriptParser.Error(line, at?.Column ?? line.Column, $"{what} {why}");
        }
    }

    private static (string Name, string? Value) Split(string parameter)
    {
        int eq = parameter.IndexOf('=', StringComparison.Ordinal);
        return eq < 0 ? (parameter, null) : (parameter[..eq], parameter[(eq + 1)..]);
    }

    // parse_memopt: memparse, whose rest the kernel ignores; here the value must be one whole size,
    // or, as ARM's and MIPS's early mem= take it, a size, '@' and where the memory starts.
    private static (ulong Bytes, ulong? Start) ParseMem(string? value, ScriptWord word, SourceLocation line)
    {
        int at = value?.IndexOf('@', StringComparison.Ordinal) ?? -1;
        string? size = at < 0 ? value : value![..at];
        if (size is null || CmdLine.Memparse(size) is not { IsWhole: true, Bytes: var bytes and not 0 })
        {
            throw ScriptParser.Error(line, word.Column, $"mem={value} is not a memory size: use a number of bytes with an optional K, M, G, T, P or E suffix (memparse), e.g. mem=64G, or mem=SIZE@START to say where RAM starts, e.g. mem=16G@0x80000000");
        }

        if (at < 0)
        {
            return (bytes, null);
        }

        string start = value![(at + 1)..];
        if (CmdLine.Memparse(start) is not { IsWhole: true, Bytes: var ramBase })
        {
            throw ScriptParser.Error(line, word.Column + "mem=".Length + at + 1, $"mem={value}: '{start}' is not where RAM starts: use an address with an optional K, M, G, T, P or E suffix (memparse), e.g. mem=16G@0x80000000");
        }

        return (bytes, ramBase);
    }

    private static int ParseNuma(string? value, ScriptWord word, SourceLocation line)
    {
        if (value is null || !value.StartsWith("fake=", StringComparison.Ordinal))
        {
            throw ScriptParser.Error(line, word.Column, $"numa={value}: only numa=fake=N (N equal nodes, 1 to {MachineSize.MaxNodes}) is modelled");
        }

        string n = value["fake=".Length..];
        if (!int.TryParse(n, NumberStyles.None, CultureInfo.InvariantCulture, out int nodes) || nodes < 1 || nodes > MachineSize.MaxNodes)
        {
            throw ScriptParser.Error(line, word.Column + "numa=fake=".Length, $"numa=fake={n}: the node count is a number from 1 to {MachineSize.MaxNodes} (the other numa=fake= forms are not modelled)");
        }

        return nodes;
    }

    // hugetlb_vmemmap_early_param: kstrtobool ("on", "off", "y", "n", "1", "0").
    private static bool ParseOnOff(string? value, ScriptWord word, SourceLocation line)
    {
        if (value is not null && KernelValues.TryParseBool(value, out bool on))
        {
            return on;
        }

        throw ScriptParser.Error(line, word.Column, $"hugetlb_free_vmemmap={value}: use on or off");
    }
}
