using System;
using System.Collections.Generic;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>
/// The machine and pools of <c>simulate</c>'s scenario, which <c>simulate</c>, <c>compare</c> and
/// <c>sweep</c> share: <c>--memory</c>, <c>--nodes</c>, <c>--hugepages</c>, <c>--hvo</c>,
/// <c>--fail-alloc</c>, <c>--seed</c>, and (simulate and compare) <c>--ram-base</c>. Each value is checked as <c>simulate</c> always has, with
/// the same messages.
/// </summary>
internal sealed class ShapeOptions
{
    public const string HugepagesForms = "SIZE:COUNT[,SIZE:COUNT...], COUNT a number of pages or a percentage of memory (2M:1024, 1G:50%); each size once";

    public Option<string> Memory { get; } = new("--memory") { Description = "Memory size, e.g. 64G or 1.5T.", DefaultValueFactory = _ => CmdLine.FormatSize(MachineConfig.DefaultMemoryBytes) };

    public Option<int> Nodes { get; } = new("--nodes") { Description = "NUMA nodes (equal contiguous ranges).", DefaultValueFactory = _ => 1, CustomParser = ParseNodes };

    public Option<string?> RamBase { get; } = new("--ram-base") { Description = "Where RAM starts (a physical address, e.g. 0x80000000; a multiple of the memory section); default: the spec's ramBase (RISC-V 0x80000000, else 0). The boot line says mem=SIZE@START.", HelpName = "ADDRESS" };

    public Option<string?> Hugepages { get; } = new("--hugepages") { Description = $"{HugepagesForms}; default: half of memory as pages of the default huge page size (the default hstate's, as /proc/sys/vm/nr_hugepages)." };

    public Option<string?> Hvo { get; } = new("--hvo") { Description = "on|off: hugetlb_free_vmemmap= on the boot line; without it the build default decides (--hvo-default-on, on unless said otherwise)." };

    public Option<string?> FailAlloc { get; } = new("--fail-alloc") { Description = $"fail_page_alloc knobs, key=value[,...]: {FaultSpec.Keys}; sites: {FaultSpec.SiteList}. ignore-gfp-wait and ignore-gfp-highmem start at N; the other knobs keep the kernel's defaults (times=1, min-order=1).", HelpName = "SPEC" };

    public Option<ulong> Seed { get; } = new("--seed") { Description = "Seed of fail_page_alloc's draws: the same seed replays the same failures (default 0).", HelpName = "N", CustomParser = ParseSeed };

    public void AddTo(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.Options.Add(Memory);
        command.Options.Add(Nodes);
        command.Options.Add(RamBase);
        command.Options.Add(Hugepages);
        command.Options.Add(Hvo);
        command.Options.Add(FailAlloc);
        command.Options.Add(Seed);
    }

    /// <summary>The options that describe the machine and its pools (not the seed or the faults), as given on the command line.</summary>
    public IEnumerable<string> MachineGiven(ParseResult p) =>
        new Option[] { Memory, Nodes, RamBase, Hugepages, Hvo }.Where(o => p.GetResult(o) is { Implicit: false }).Select(o => o.Name);

    /// <summary>The scenario the options describe on <paramref name="arch"/>, <paramref name="writes"/> writes of nr_hugepages per size.</summary>
    public SimulateScript Script(ParseResult p, ArchInfo arch, int writes = 1)
    {
        ArgumentNullException.ThrowIfNull(p);
        int nodes = p.GetValue(Nodes);
        ulong? ramBase = ParseRamBase(p.GetValue(RamBase), arch);
        ulong memory = ParseMemory(p.GetValue(Memory)!, arch, nodes, ramBase: ramBase);
        return new SimulateScript(memory, nodes, ParseHvo(p.GetValue(Hvo)), ParseHugepages(p.GetValue(Hugepages), arch, memory), Faults(p), writes) { RamBase = ramBase };
    }

    public FaultSpec? Faults(ParseResult p) => p.GetValue(FailAlloc) is { } spec ? FaultSpec.Parse(spec) : null;

    /// <summary>--ram-base: where RAM starts, an address the spec takes (a memory section, inside what the vmemmap describes); null when not given.</summary>
    public static ulong? ParseRamBase(string? text, ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(arch);
        if (text is null)
        {
            return null;
        }

        if (!Sizes.TryParse(text, out ulong address, out string error))
        {
            throw new UsageException($"--ram-base: {(error.Length == 0 ? $"'{text}' is no address" : error)}; use {Sizes.Forms}");
        }

        if (new MachineConfig { RamBase = address }.RamBaseProblem(arch) is { } where)
        {
            throw new UsageException($"--ram-base: {text}: {where}");
        }

        return address;
    }

    /// <summary>
    /// A machine size for <paramref name="arch"/> with its RAM from <paramref name="ramBase"/> (null:
    /// the spec's): a size (<see cref="Sizes"/>), whole pages, and one <see cref="MachineSize"/> accepts.
    /// </summary>
    public static ulong ParseMemory(string text, ArchInfo arch, int nodes, string option = "--memory", ulong? ramBase = null)
    {
        ArgumentNullException.ThrowIfNull(arch);
        if (!Sizes.TryParse(text, out ulong bytes, out string sizeError) || bytes == 0)
        {
            throw new UsageException($"{option}: {(bytes == 0 && sizeError.Length == 0 ? $"'{text}' is no memory" : sizeError)}; use {Sizes.Forms}");
        }

        // The boot line would round mem= down to pages; the report names the memory, so only exact sizes are taken.
        if (bytes % arch.PageSize != 0)
        {
            throw new UsageException($"{option}: {text} is not a whole number of {CmdLine.FormatSize(arch.PageSize)} pages");
        }

        if (MachineSize.Check(arch, bytes, nodes, ramBase: ramBase) is { } why)
        {
            throw new UsageException($"{option}: {text} {why}");
        }

        return bytes;
    }

    /// <summary>--hvo: hugetlb_free_vmemmap= on or off, or null when not given (the build default decides).</summary>
    public static bool? ParseHvo(string? text) => text switch
    {
        null => null,
        "on" => true,
        "off" => false,
        _ => throw new UsageException($"--hvo: '{text}' is not on or off"),
    };

    /// <summary>The pools asked for: <see cref="HugepagesForms"/>, or half of memory as the default size's pages.</summary>
    public static (ulong Size, ulong Count)[] ParseHugepages(string? text, ArchInfo a, ulong memory)
    {
        ArgumentNullException.ThrowIfNull(a);
        if (string.IsNullOrWhiteSpace(text))
        {
            return SimulateScript.DefaultPages(a, memory);
        }

        var seen = new Dictionary<ulong, string>();
        return [.. text.Split(',').Select(part =>
        {
            string[] kv = part.Split(':');
            if (kv.Length != 2)
            {
                throw new UsageException($"--hugepages: '{part}' is not SIZE:COUNT (e.g. 2M:1024 or 1G:50%); SIZE is {Sizes.Forms}");
            }

            if (!Sizes.TryParse(kv[0], out ulong size, out string sizeError))
            {
                throw new UsageException($"--hugepages: in '{part}' the SIZE {sizeError}; SIZE is {Sizes.Forms}");
            }

            if (!a.HugePageSizes.Any(h => h.Size == size))
            {
                throw new UsageException($"--hugepages: {CmdLine.FormatSize(size)} is not a huge page size of {a.Name}; use one of {string.Join(", ", a.HugePageSizes.Select(h => CmdLine.FormatSize(h.Size)))}");
            }

            if (!seen.TryAdd(size, part))
            {
                throw new UsageException($"--hugepages: {CmdLine.FormatSize(size)} is given twice ('{seen[size]}' and '{part}'); give each size once");
            }

            string count = kv[1].Trim();
            if (count.EndsWith('%'))
            {
                if (!decimal.TryParse(count[..^1], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal percent) || percent > 100)
                {
                    throw new UsageException($"--hugepages: in '{part}' the COUNT '{kv[1]}' is not a percentage of memory from 0% to 100%");
                }

                return (size, (ulong)((decimal)memory * percent / 100 / size));
            }

            if (!ulong.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out ulong pages))
            {
                throw new UsageException($"--hugepages: in '{part}' the COUNT '{kv[1]}' is not a number of pages; use a whole number from 0 to {ulong.MaxValue} (more than fit is allowed: the pool grows to what fits) or a percentage of memory (50%)");
            }

            return (size, pages);
        })];
    }

    private static int ParseNodes(ArgumentResult result)
    {
        string text = result.Tokens.Count == 0 ? string.Empty : result.Tokens[0].Value;
        if (int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && n >= 1 && n <= MachineSize.MaxNodes)
        {
            return n;
        }

        result.AddError($"--nodes: '{text}' is not a node count; use a whole number from 1 to {MachineSize.MaxNodes}");
        return 1;
    }

    private static ulong ParseSeed(ArgumentResult result)
    {
        string text = result.Tokens.Count == 0 ? string.Empty : result.Tokens[0].Value;
        if (ulong.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed))
        {
            return seed;
        }

        result.AddError($"--seed: '{text}' is not a seed; use a whole number from 0 to {ulong.MaxValue}");
        return 0;
    }
}
