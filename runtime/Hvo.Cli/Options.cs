using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Linq;
using Hvo.Cli.Reports;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>The options <c>simulate</c>, <c>run</c> and <c>compare</c> share, and their checks (an unknown name lists the known ones).</summary>
internal static class Options
{
    public static Option<string> Arch() => new("--arch") { Description = "Architecture (see 'hvo specs').", DefaultValueFactory = _ => "x86_64" };

    public static Option<string> Policy() => new("--policy")
    {
        Description = $"Kernel behaviour to follow: any release {KernelVersion.First} to {KernelVersion.Last} (v5.14 ... v5.19, v6.0 ... v6.19, v7.0, v7.1; behaviour changes at the milestones {string.Join(", ", KernelMilestone.All.Select(m => m.Version).Distinct())}), a stable release ({string.Join(", ", KernelVersion.Stable)}), or a proposal: {string.Join(", ", HvoPolicy.Strategies.Select(p => p.Name))} (these need the entry writer they were written for); any of them with the suffix {HvoPolicy.CollapseSuffix} for collapse-on-free, which no kernel does (split vmemmap PMDs made leaves again once no page under them is optimized: v6.7{HvoPolicy.CollapseSuffix}). Default {HvoPolicy.Newest.Name}; 'hvo specs' lists the milestones.",
        DefaultValueFactory = _ => HvoPolicy.Newest.Name,
    };

    /// <summary><c>--violations [N]</c>: list the break-before-make findings, all of them or the first N.</summary>
    public static Option<int?> Violations() => new("--violations")
    {
        Description = "On architectures that require break-before-make, list the checker's findings (address, level, old and new entry, kernel step): all, or the first N. JSON always has the array (all, or the first N).",
        Arity = ArgumentArity.ZeroOrOne,
        HelpName = "N",
        CustomParser = r =>
        {
            if (r.Tokens.Count == 0)
            {
                return int.MaxValue;
            }

            string text = r.Tokens[0].Value;
            if (int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n))
            {
                return n;
            }

            r.AddError($"--violations: '{text}' is not a number of findings; use a whole number, or none for all");
            return null;
        },
    };

    /// <summary>
    /// The report as a command shows it: where the checker ran, its findings (in JSON all, or the
    /// first <paramref name="violations"/>) and the policies that keep the rule on <paramref name="arch"/>.
    /// </summary>
    public static SimulationReport Complete(SimulationReport report, ArchInfo arch, int? violations, bool json)
    {
        ArgumentNullException.ThrowIfNull(report);
        if (!report.Hvo.BbmChecked)
        {
            return report;
        }

        int shown = json ? violations ?? int.MaxValue : violations ?? 0;
        return report with
        {
            BreakBeforeMakeFindings = json ? [.. report.AllFindings.Take(shown)] : null,
            BreakBeforeMakeSafePolicies = MachineOptions.SafePolicies(arch),
        };
    }

    public static ArchEntry FindArch(string name, string option = "--arch") =>
        ArchRegistry.Find(name) ?? throw new UsageException($"{option}: unknown architecture '{name}'; known: {string.Join(", ", ArchRegistry.Names)}");

    public static HvoPolicy FindPolicy(string name, string option = "--policy") =>
        HvoPolicy.Find(name) ?? throw new UsageException($"{option}: unknown policy '{name}'; use {HvoPolicy.Accepted}");
}

/// <summary>
/// The machine's hardware and arch code, which a boot line cannot name: <c>--cpu</c> (CPU features)
/// and <c>--entry-writer</c> (how the kernel changes a live page-table entry). A policy written for
/// an entry writer the machine does not have is refused before boot, naming the options that give it.
/// </summary>
internal sealed class MachineOptions
{
    private static readonly EntryWriterKind[] s_writers = Enum.GetValues<EntryWriterKind>();

    public Option<string?> EntryWriter { get; } = new("--entry-writer")
    {
        Description = "How the kernel changes a live page-table entry (its arch code around set_pte_at): " +
            "direct (one store, then a flush: x86-64's rule and mainline's everywhere), bbml2 (FEAT_BBM level 2: equivalent changes in one store, the rest by break-before-make; needs --cpu bbml2), " +
            "break-flush-make (every change of a live entry's output), clear-af (PTEs by clearing the access flag, a flush and a compare-and-exchange; needs an access flag in the spec), " +
            "invalidate (s390: every valid entry invalidated by IPTE/IDTE before a new valid one), pause-cpus (Yu Zhao's: the other CPUs parked by IPI while entries change). " +
            "Default: bbml2 where the architecture requires break-before-make and the CPUs have FEAT_BBM level 2, else direct.",
        HelpName = string.Join("|", s_writers.Select(HvoPolicy.WriterName)),
    };

    public Option<string?> Cpu { get; } = new("--cpu")
    {
        Description = "CPU features, comma-separated: bbml2 (FEAT_BBM level 2), hafdbs (the access flag set in hardware, FEAT_HAFDBS). Default: none.",
        HelpName = "FEATURES",
    };

    public Option<string?> HvoDefaultOn { get; } = new("--hvo-default-on")
    {
        Description = "The kernel's build option CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON: HVO's state when the boot line has no hugetlb_free_vmemmap= (mainline's default: on; Debian builds it off). A script's 'config CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON=y|n' line overrides it.",
        HelpName = "on|off",
    };

    public Option<bool> TlbReach { get; } = new("--tlb-reach")
    {
        Description = "When the run is over, read every struct page of boot memory through the MMU, as a PFN walker (compaction) does, from a cold TLB, and report the TLB misses: one per vmemmap block (PMD) while it is a leaf, one per page once it is split (collapse-on-free, --policy VERSION+collapse, makes split ones leaves again).",
    };

    public Option<int> HostThreads { get; } = new("--host-threads")
    {
        Description = "Host threads for the work the kernel spreads over CPUs at boot (v6.13's parallel allocation of hugepages= pages); 0: one per host processor. The simulated results are the same for any count. Default: 1.",
        HelpName = "N",
        DefaultValueFactory = _ => 1,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(HostThreads);
        command.Options.Add(EntryWriter);
        command.Options.Add(Cpu);
        command.Options.Add(HvoDefaultOn);
        command.Options.Add(TlbReach);
    }

    /// <summary><paramref name="options"/> with the machine the command line describes.</summary>
    public ScenarioOptions Apply(ParseResult p, ScenarioOptions options)
    {
        EntryWriterKind? writer = p.GetValue(EntryWriter) is { } name ? ParseWriter(name) : null;
        int bbmLevel = 0;
        bool hafdbs = false;
        foreach (string feature in (p.GetValue(Cpu) ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (feature.ToLowerInvariant())
            {
                case "bbml2":
                    bbmLevel = 2;
                    break;
                case "hafdbs":
                    hafdbs = true;
                    break;
                default:
                    throw new UsageException($"--cpu: unknown CPU feature '{feature}'; known: bbml2, hafdbs");
            }
        }

        bool defaultOn = p.GetValue(HvoDefaultOn)?.Trim().ToLowerInvariant() switch
        {
            null or "on" or "y" => true,
            "off" or "n" => false,
            { } other => throw new UsageException($"--hvo-default-on: '{other}' is not on or off"),
        };
        int hostThreads = p.GetValue(HostThreads);
        if (hostThreads < 0)
        {
            throw new UsageException($"--host-threads: {hostThreads} is not a thread count (0 or more; 0: one per host processor)");
        }

        return options with { HostThreads = hostThreads, EntryWriter = writer, BbmLevel = bbmLevel, HardwareAccessFlag = hafdbs, HvoDefaultOn = defaultOn, TlbReach = p.GetValue(TlbReach) };
    }

    /// <summary>Refuse a machine whose entry writer needs what its CPUs or its spec lack, whatever the policy.</summary>
    public static void CheckMachine(ScenarioOptions options, ArchInfo arch)
    {
        if (options.Refusal(arch) is { } refusal)
        {
            CheckMachine(refusal);
        }
    }

    private static void CheckMachine(MachineRefusal refusal, string policyOption = "--policy")
    {
        if (refusal.ArchRefusesPolicy)
        {
            throw new UsageException($"{policyOption}: {refusal.Reason}");
        }

        if (refusal.NeedsWriter is null)
        {
            string fix = refusal.NeedsBbmLevel2 ? ": add --cpu bbml2" : string.Empty;
            throw new UsageException($"--entry-writer: {refusal.Reason}{fix}");
        }
    }

    private static EntryWriterKind ParseWriter(string name)
    {
        foreach (EntryWriterKind kind in s_writers)
        {
            if (HvoPolicy.WriterName(kind) == name.Trim().ToLowerInvariant())
            {
                return kind;
            }
        }

        throw new UsageException($"--entry-writer: unknown entry writer '{name}'; known: {string.Join(", ", s_writers.Select(HvoPolicy.WriterName))}");
    }

    /// <summary>Refuse, before boot, a run whose machine cannot have its entry writer or cannot run its policy, naming what would let it.</summary>
    public static void Check(ScenarioOptions options, ArchInfo arch, string policyOption = "--policy")
    {
        if (options.Refusal(arch) is not { } refusal)
        {
            return;
        }

        CheckMachine(refusal, policyOption);
        throw new UsageException($"{policyOption}: {refusal.Reason}; run it with {Hint(options, arch, refusal)}");
    }

    /// <summary>
    /// The fewest options that let <paramref name="options"/>' policy run on <paramref name="arch"/>
    /// (the CPUs alone where the machine then chooses the writer); empty when it runs as it is, null
    /// when no options give it (its writer needs what the spec lacks).
    /// </summary>
    public static string? OptionsFor(ScenarioOptions options, ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Refusal(arch) is not { } refusal)
        {
            return string.Empty;
        }

        if (refusal.NeedsWriter is not { } needed)
        {
            return null;
        }

        ScenarioOptions given = options with { EntryWriter = needed, BbmLevel = refusal.NeedsBbmLevel2 ? 2 : options.BbmLevel };
        return given.Refusal(arch) is null ? Hint(options, arch, refusal) : null;
    }

    // The writer's option, or --cpu bbml2 alone where the machine then chooses the bbml2 writer itself.
    private static string Hint(ScenarioOptions options, ArchInfo arch, MachineRefusal refusal)
    {
        EntryWriterKind needed = refusal.NeedsWriter ?? throw new InvalidOperationException("a policy refusal names the writer it needs");
        ScenarioOptions cpuOnly = options with { BbmLevel = refusal.NeedsBbmLevel2 ? 2 : options.BbmLevel };
        return refusal.NeedsBbmLevel2 && cpuOnly.Refusal(arch) is null
            ? "--cpu bbml2"
            : $"--entry-writer {HvoPolicy.WriterName(needed)}{(refusal.NeedsBbmLevel2 ? " --cpu bbml2" : string.Empty)}";
    }

    /// <summary>
    /// The policies that keep break-before-make on <paramref name="arch"/>: those written for an entry
    /// writer other than direct that a machine of this architecture can have, with the options that give it.
    /// </summary>
    public static IReadOnlyList<SafePolicy> SafePolicies(ArchInfo arch) =>
        [.. HvoPolicy.All
            .Where(p => p.RequiredWriter is { } w && w != EntryWriterKind.Direct && p.ForRule == arch.Replacement)
            .Select(p => (Policy: p, Options: OptionsFor(new ScenarioOptions { Policy = p }, arch)))
            .Where(x => x.Options is not null)
            .Select(x => new SafePolicy(x.Policy.Name, x.Options!))];
}
