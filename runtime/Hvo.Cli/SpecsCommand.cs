using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Cli;

/// <summary><c>hvo specs</c>: every architecture, its geometry, and the vmemmap arithmetic of docs/ARCHITECTURE.md §7.1 derived from its spec.</summary>
public static class SpecsCommand
{
    public static void WriteText(TextWriter o, IEnumerable<ArchInfo> archs)
    {
        bool first = true;
        foreach (ArchInfo a in archs)
        {
            if (!first)
            {
                o.WriteLine();
            }

            first = false;
            o.WriteLine($"{a.Name}: {a.Title}  (specs/{a.SpecFile})");
            o.WriteLine($"  mainline HVO: {MainlineHvo(a)}");
            string levels = string.Join(" ", a.Levels.Select((l, i) =>
                $"{l.Name}[{l.Shift + l.Bits - 1}:{l.Shift}]{(l.CanMapLeaf && i < a.LastLevel ? "*" : string.Empty)}"));
            o.WriteLine($"  page {CmdLine.FormatSize(a.PageSize)}, {a.VaBits}-bit VA, {a.Levels.Count} levels: {levels}   (* may hold a block)");
            ulong bootSize = a.Levels[a.VmemmapBootLevel].Size;
            o.WriteLine($"  vmemmap 0x{a.VmemmapStart:x16} +{CmdLine.FormatSize(a.VmemmapSize)}, struct page {a.StructPageBytes} B, " +
                        $"boot-mapped by {a.Levels[a.VmemmapBootLevel].Name} ({CmdLine.FormatSize(bootSize)}), section {CmdLine.FormatSize(1UL << a.SectionShift)}, " +
                        $"break-before-make: {(a.BreakBeforeMake ? "yes" : "no")}, live entries: {RuleText(a.Replacement)}");
            if (a.RamBase != 0)
            {
                o.WriteLine($"  RAM from 0x{a.RamBase:x} (--ram-base, mem=SIZE@START); the vmemmap begins with the struct page of {(a.VmemmapOffsetByRamBase ? "RAM's first pfn" : "pfn 0")}");
            }

            bool ownTables = a.Levels.Any(l => l.TableBytes != 0), ownEmpty = a.Levels.Any(l => l.Empty is not null);
            if (!a.PageKernelRo || a.EmptyIsInvalidTable || a.PfnLo != a.PageShift || ownTables || ownEmpty)
            {
                var notes = new List<string>();
                if (ownTables)
                {
                    notes.Add("tables of " + string.Join(", ", a.Levels.Select((l, i) => $"{l.Name} {CmdLine.FormatSize((ulong)(l.TableBytes == 0 ? (int)a.PageSize : l.TableBytes))}"
                        + (l.FragmentsUntil is { } until ? $" ({a.FragmentsPerPage(i)} to a page before {until})" : string.Empty))));
                }

                if (ownEmpty)
                {
                    notes.Add("empty entries have the invalid bit set: " + string.Join(", ", a.Levels.Select(l => $"{l.Name} 0x{l.Empty ?? 0:x}")));
                }

                if (a.PfnLo != a.PageShift)
                {
                    notes.Add($"frame number from entry bit {a.PfnLo}");
                }

                if (a.EmptyIsInvalidTable)
                {
                    notes.Add("empty entries point at shared invalid tables");
                }

                if (!a.PageKernelRo)
                {
                    notes.Add("no PAGE_KERNEL_RO: HVO's tail pages stay writable");
                }

                o.WriteLine($"  entries: {string.Join("; ", notes)}");
            }

            o.WriteLine($"  {"huge page",-16} {"vmemmap pages",13} {"freed, reserve 2 (v5.14)",26} {"freed, reserve 1 (v5.18+)",26}");
            foreach (HugePageSizeInfo h in a.HugePageSizes)
            {
                HugePageVmemmap g = HugePageVmemmap.For(a, h.Size);
                string how = h.ContiguousCount > 1 ? $"{h.ContiguousCount}x{a.Levels[h.Level].Name}" : a.Levels[h.Level].Name;
                o.WriteLine($"  {CmdLine.FormatSize(h.Size) + " (" + how + ")",-16} {VmemmapPages(g),13} {Freed(g, VmemmapReserve.V5_14),26} {Freed(g, VmemmapReserve.V5_18),26}");
            }

            o.WriteLine($"  v7.1 shared tail page: {SharedTail(a)}");
            if (a.AccessFlag != 0)
            {
                o.WriteLine($"  access flag: 0x{a.AccessFlag:x} (bit {System.Numerics.BitOperations.TrailingZeroCount(a.AccessFlag)})");
            }
        }

        o.WriteLine();
        o.WriteLine($"kernel versions (--policy): every release {Hvo.HugeTlb.KernelVersion.First} to {Hvo.HugeTlb.KernelVersion.Last}; each behaves as the newest milestone at or before it:");
        foreach (Hvo.HugeTlb.KernelMilestone m in Hvo.HugeTlb.KernelMilestone.All)
        {
            string backports = m.Backports.Count > 0 ? $" (backported: {string.Join(", ", m.Backports)})" : string.Empty;
            o.WriteLine($"  {m.Version,-16} {m.Summary}{backports}  [{m.Commits}]");
        }

        o.WriteLine();
        o.WriteLine("stable releases (--policy): each has its branch's release and what was backported to the branch by then:");
        foreach (Hvo.HugeTlb.HvoPolicy p in Hvo.HugeTlb.HvoPolicy.StableVersions)
        {
            o.WriteLine($"  {p.Name,-16} {p.Description}");
        }

        o.WriteLine();
        o.WriteLine("policies (--policy), the representative versions and the proposals:");
        foreach (Hvo.HugeTlb.HvoPolicy p in Hvo.HugeTlb.HvoPolicy.Compared)
        {
            string needs = p.RequiredWriter is { } w
                ? $", needs the {Hvo.HugeTlb.HvoPolicy.WriterName(w)} entry writer (--entry-writer {Hvo.HugeTlb.HvoPolicy.WriterName(w)}{(w == EntryWriterKind.Bbml2 ? " --cpu bbml2" : string.Empty)})"
                : string.Empty;
            o.WriteLine($"  {p.Name,-16} keeps {p.ReservePages} vmemmap page(s) of each huge page{needs}. {p.Description}");
        }
    }

    public static void WriteJson(TextWriter o, IEnumerable<ArchInfo> archs)
    {
        var doc = archs.Select(a => new
        {
            name = a.Name,
            title = a.Title,
            specFile = a.SpecFile,
            pageSize = a.PageSize,
            vaBits = a.VaBits,
            levels = a.Levels.Select((l, i) => new { name = l.Name, shift = l.Shift, bits = l.Bits, leaf = l.CanMapLeaf && i < a.LastLevel, tableBytes = l.TableBytes == 0 ? (int)a.PageSize : l.TableBytes }),
            vmemmap = new
            {
                start = $"0x{a.VmemmapStart:x}",
                size = a.VmemmapSize,
                structPageBytes = a.StructPageBytes,
                bootMapping = a.Levels[a.VmemmapBootLevel].Name,
                sectionShift = a.SectionShift,
            },
            breakBeforeMake = a.BreakBeforeMake,
            replacement = RuleText(a.Replacement),
            mainlineHvo = new { since = a.MainlineHvoSince, until = a.MainlineHvoUntil, enabled = a.MainlineHvo },
            sharedTail = Hvo.HugeTlb.HvoPolicy.SharedTailProblem(a) is { } why ? why : "allowed",
            ramBase = $"0x{a.RamBase:x}",
            vmemmapOffsetByRamBase = a.VmemmapOffsetByRamBase,
            pfnLo = a.PfnLo,
            pageKernelRo = a.PageKernelRo,
            emptyIsInvalidTable = a.EmptyIsInvalidTable,
            hugePageSizes = a.HugePageSizes.Select(h =>
            {
                HugePageVmemmap g = HugePageVmemmap.For(a, h.Size);
                return new
                {
                    size = h.Size,
                    level = a.Levels[h.Level].Name,
                    contiguous = h.ContiguousCount,
                    vmemmapBytes = g.VmemmapBytes,
                    vmemmapPages = (double)g.VmemmapBytes / a.PageSize,
                    optimizableReserve2 = g.IsOptimizable(VmemmapReserve.V5_14),
                    freedReserve2 = g.FreedPages(VmemmapReserve.V5_14),
                    optimizableReserve1 = g.IsOptimizable(VmemmapReserve.V5_18),
                    freedReserve1 = g.FreedPages(VmemmapReserve.V5_18),
                };
            }),
        });
        o.WriteLine(JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Whether v7.1's shared tail page works here, and how it is mapped.</summary>
    public static string SharedTail(ArchInfo a) => Hvo.HugeTlb.HvoPolicy.SharedTailProblem(a) is { } why
        ? "refused: " + why
        : $"allowed (power-of-two struct page, the vmemmap aligned for the mask){(a.PageKernelRo ? string.Empty : "; mapped writable, no PAGE_KERNEL_RO")}";

    /// <summary>Whether and since when mainline enables HVO here (ARCH_WANT_OPTIMIZE_HUGETLB_VMEMMAP), as the spec's mainlineHvo says.</summary>
    public static string MainlineHvo(ArchInfo a) => (a.MainlineHvoSince, a.MainlineHvoUntil) switch
    {
        (null, _) => "not in mainline",
        ({ } since, null) => $"since {since}",
        ({ } since, { } until) => $"on from {since}, off since {until}",
    };

    private static string VmemmapPages(HugePageVmemmap g) =>
        ((double)g.VmemmapBytes / g.PageSize).ToString("0.#####", CultureInfo.InvariantCulture);

    private static string Freed(HugePageVmemmap g, int reserve) =>
        g.IsOptimizable(reserve) ? g.FreedPages(reserve).ToString(CultureInfo.InvariantCulture) : "not optimizable";

    /// <summary>The spec's replacement rule as specs/README.md spells it.</summary>
    private static string RuleText(Hvo.Paging.ReplacementRule rule) => rule switch
    {
        Hvo.Paging.ReplacementRule.BreakBeforeMake => "breakBeforeMake",
        Hvo.Paging.ReplacementRule.Invalidate => "invalidate",
        _ => "store",
    };
}
