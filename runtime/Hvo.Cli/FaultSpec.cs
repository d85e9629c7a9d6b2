using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>
/// <c>--fail-alloc SPEC</c>: <c>key=value</c> pairs separated by commas, e.g.
/// <c>probability=100,times=-1,min-order=0,site=pte-table</c>. Each key but <c>site</c> names a
/// fault-injection file (<see cref="FaultInjectionFiles"/>: the knobs of
/// /sys/kernel/debug/fail_page_alloc, and fail-nth for /proc/self/fail-nth). Its VALUE, everything
/// after the <c>=</c> up to the next comma, is taken exactly when <c>echo VALUE &gt; FILE</c> is,
/// and simulate writes it so. Before them simulate writes N to ignore-gfp-wait and
/// ignore-gfp-highmem, as fail_page_alloc recipes start; other knobs keep the kernel's defaults
/// (probability 0, interval 1, times 1, space 0, min-order 1). <c>site=</c> narrows the failures to
/// some callers (this model's filter; the kernel has none), several joined with <c>+</c>.
/// </summary>
/// <param name="Writes">The files to write, in order, and the value each gets.</param>
/// <param name="Sites">The site filter; null for every site.</param>
public sealed record FaultSpec(IReadOnlyList<(string Path, string Value)> Writes, IReadOnlySet<AllocSite>? Sites)
{
    private static readonly (string Name, AllocSite Site, int Order)[] SiteNames =
    [
        ("huge-page", AllocSite.HugePage, -1),
        ("pte-table", AllocSite.PteTable, 0),
        ("head-page-copy", AllocSite.HeadPageCopy, 0),
        ("vmemmap-restore", AllocSite.VmemmapRestore, 0),
        ("vmemmap-tail", AllocSite.VmemmapTail, 0),
        ("vmemmap-collapse", AllocSite.VmemmapCollapse, -1),
        ("other", AllocSite.Other, -1),
    ];

    /// <summary>The keys, for help and messages.</summary>
    public static string Keys { get; } = $"{string.Join(", ", FaultInjectionFiles.Names)} (each VALUE as echo VALUE > its file takes it), site=NAME[+NAME...]";

    public static string SiteList => string.Join(", ", SiteNames.Select(s => s.Name));

    /// <summary>Parse SPEC; a bad part throws a <see cref="UsageException"/> naming it and the accepted keys.</summary>
    public static FaultSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (string.IsNullOrWhiteSpace(text))
        {
            throw Bad(text, "is empty");
        }

        var writes = new List<(string Path, string Value)>
        {
            (FaultInjectionFiles.PathOf("ignore-gfp-wait")!, "N"),
            (FaultInjectionFiles.PathOf("ignore-gfp-highmem")!, "N"),
        };
        HashSet<AllocSite>? sites = null;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (string raw in text.Split(','))
        {
            string part = raw.Trim();
            int eq = raw.IndexOf('=', StringComparison.Ordinal);
            string key = eq < 0 ? string.Empty : raw[..eq].Trim().ToLowerInvariant().Replace('_', '-');
            if (key.Length == 0)
            {
                throw Bad(part, "is not key=value");
            }

            string value = raw[(eq + 1)..];
            if (!seen.Add(key))
            {
                throw Bad(part, $"sets {key} twice");
            }

            if (key == "site")
            {
                sites = [.. value.Split('+').Select(name => SiteNames.FirstOrDefault(s => string.Equals(s.Name, name.Trim(), StringComparison.OrdinalIgnoreCase)) switch
                {
                    { Name: null } => throw Bad(part, $"names no allocation site '{name.Trim()}'; sites: {SiteList}"),
                    var s => s.Site,
                })];
                continue;
            }

            string path = FaultInjectionFiles.PathOf(key) ?? throw Bad(part, $"has an unknown key '{key}'");
            Errno e = FaultInjectionFiles.Check(key, value + "\n");
            if (e != Errno.None)
            {
                throw Bad(part, $"is refused: echo {value} > {path} fails with {ErrnoText.Message(e)} ({e})");
            }

            writes.Add((path, value));
        }

        // The kernel's min-order=1 spares order-0 allocations, which is every vmemmap one:
        // a SPEC naming only such sites would fail nothing. Say so rather than run a no-op.
        if (sites is not null && !seen.Contains("min-order") && sites.All(s => SiteNames.First(n => n.Site == s).Order == 0))
        {
            throw new UsageException($"--fail-alloc: site={string.Join('+', sites.Select(s => SiteNames.First(n => n.Site == s).Name))} allocates order-0 pages, which fail_page_alloc's default min-order=1 spares; add min-order=0");
        }

        return new FaultSpec(writes, sites);
    }

    private static UsageException Bad(string part, string what) =>
        new($"--fail-alloc: '{part}' {what}; SPEC is key=value[,key=value...] with keys {Keys}");

    /// <summary><paramref name="script"/> with this spec's writes right after its boot line (or first, without one), as simulate makes them.</summary>
    public Script Prepend(Script script)
    {
        ArgumentNullException.ThrowIfNull(script);
        var builder = new ScriptBuilder("--fail-alloc");
        foreach ((string path, string value) in Writes)
        {
            builder.Echo(value, path);
        }

        int at = script.Boot is { } boot ? script.Lines.ToList().IndexOf(boot) + 1 : 0;
        return script with { Lines = [.. script.Lines.Take(at), .. builder.Build().Lines, .. script.Lines.Skip(at)] };
    }
}
