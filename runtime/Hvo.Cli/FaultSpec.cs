using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.Memory;

namespace Hvo.Cli;

/// <summary>
/// <c>--fail-alloc SPEC</c>: the knobs of /sys/kernel/debug/fail_page_alloc as
/// <c>key=value</c> pairs separated by commas, e.g. <c>probability=100,times=-1,min-order=0,site=pte-table</c>.
/// Unset knobs keep the kernel's defaults (probability 0, interval 1, times 1, space 0,
/// min-order 1). <c>site=</c> narrows the failures to some callers (this model's filter; the
/// kernel has none), several joined with <c>+</c>.
/// </summary>
public sealed record FaultSpec(int Probability, ulong Interval, long Times, long Space, int MinOrder, IReadOnlySet<AllocSite>? Sites, long FailNth)
{
    public const string Keys = "probability=0..100, interval=N (>=1), times=N (-1: no limit), space=PAGES, min-order=N, site=NAME[+NAME...], fail-nth=N";

    private static readonly (string Name, AllocSite Site, int Order)[] SiteNames =
    [
        ("huge-page", AllocSite.HugePage, -1),
        ("pte-table", AllocSite.PteTable, 0),
        ("head-page-copy", AllocSite.HeadPageCopy, 0),
        ("vmemmap-restore", AllocSite.VmemmapRestore, 0),
        ("other", AllocSite.Other, -1),
    ];

    public static string SiteList => string.Join(", ", SiteNames.Select(s => s.Name));

    /// <summary>Parse SPEC; a bad part throws a <see cref="UsageException"/> naming it and the accepted keys.</summary>
    public static FaultSpec Parse(string text)
    {
        var fresh = new FaultInjection();
        int probability = fresh.Probability;
        ulong interval = fresh.Interval;
        long times = fresh.Times;
        long space = fresh.Space;
        int minOrder = fresh.MinOrder;
        bool minOrderSet = false;
        HashSet<AllocSite>? sites = null;
        long failNth = 0;
        var seen = new HashSet<string>(StringComparer.Ordinal);

        if (string.IsNullOrWhiteSpace(text))
        {
            throw Bad(text, "is empty");
        }

        foreach (string rawPart in text.Split(','))
        {
            string part = rawPart.Trim();
            int eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == part.Length - 1)
            {
                throw Bad(part, "is not key=value");
            }

            string key = part[..eq].Trim().ToLowerInvariant().Replace('_', '-');
            string value = part[(eq + 1)..].Trim();
            if (!seen.Add(key))
            {
                throw Bad(part, $"sets {key} twice");
            }

            switch (key)
            {
                case "probability":
                    probability = (int)Number(part, value, 0, 100);
                    break;
                case "interval":
                    interval = (ulong)Number(part, value, 1, long.MaxValue);
                    break;
                case "times":
                    times = Number(part, value, -1, long.MaxValue);
                    break;
                case "space":
                    space = Number(part, value, 0, long.MaxValue);
                    break;
                case "min-order":
                    minOrder = (int)Number(part, value, 0, 63);
                    minOrderSet = true;
                    break;
                case "fail-nth":
                    failNth = Number(part, value, 0, long.MaxValue);
                    break;
                case "site":
                    sites = [];
                    foreach (string name in value.Split('+'))
                    {
                        var match = SiteNames.FirstOrDefault(s => string.Equals(s.Name, name.Trim(), StringComparison.OrdinalIgnoreCase));
                        if (match.Name is null)
                        {
                            throw Bad(part, $"names no allocation site '{name.Trim()}'; sites: {SiteList}");
                        }

                        sites.Add(match.Site);
                    }

                    break;
                default:
                    throw Bad(part, $"has an unknown key '{key}'");
            }
        }

        // The kernel's min-order=1 spares order-0 allocations, which is every vmemmap one:
        // a SPEC naming only such sites would fail nothing. Say so rather than run a no-op.
        if (sites is not null && !minOrderSet && minOrder > 0 &&
            sites.All(s => SiteNames.First(n => n.Site == s).Order == 0))
        {
            throw new UsageException($"--fail-alloc: site={string.Join('+', sites.Select(s => SiteNames.First(n => n.Site == s).Name))} allocates order-0 pages, which fail_page_alloc's default min-order=1 spares; add min-order=0");
        }

        return new FaultSpec(probability, interval, times, space, minOrder, sites, failNth);
    }

    /// <summary>Set the knobs on the machine's fail_page_alloc.</summary>
    public void ApplyTo(FaultInjection faults)
    {
        ArgumentNullException.ThrowIfNull(faults);
        faults.Probability = Probability;
        faults.Interval = Interval;
        faults.Times = Times;
        faults.Space = Space;
        faults.MinOrder = MinOrder;
        faults.Sites = Sites;
        faults.FailNth(FailNth);
    }

    private static long Number(string part, string value, long min, long max)
    {
        if (!long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n) || n < min || n > max)
        {
            throw Bad(part, max == long.MaxValue ? $"needs a whole number from {min}" : $"needs a whole number from {min} to {max}");
        }

        return n;
    }

    private static UsageException Bad(string part, string what) =>
        new($"--fail-alloc: '{part}' {what}; SPEC is key=value[,key=value...] with keys {Keys}");
}
