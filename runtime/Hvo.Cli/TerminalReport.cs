using System;
using System.Globalization;
using System.IO;
using Hvo.Paging;
using Spectre.Console;

namespace Hvo.Cli;

/// <summary>
/// The text report on a terminal: every line of <see cref="SimulationReport.ToText"/> as it is
/// (so the /proc/meminfo block stays in the kernel's format), except the HVO counters, which
/// become a table with their size in bytes and what each counts in the kernel's terms.
/// Redirected output gets <see cref="SimulationReport.ToText"/> unchanged.
/// </summary>
internal static class TerminalReport
{
    private const string CounterPrefix = "HVO ";

    /// <summary>Standard output of this process, and a terminal.</summary>
    public static bool IsTerminal(TextWriter output) => LiveProgress.IsProcessConsole(output) && !Console.IsOutputRedirected;

    /// <summary>A Spectre console on standard output.</summary>
    public static IAnsiConsole OutputConsole() => AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });

    public static void Write(IAnsiConsole console, TextWriter plain, SimulationReport report)
    {
        foreach (string line in report.ToText().Split('\n'))
        {
            if (!line.StartsWith(CounterPrefix, StringComparison.Ordinal) && line.Length > 0)
            {
                plain.WriteLine(line);
            }
            else if (line.Length == 0)
            {
                plain.WriteLine();
            }
        }

        plain.Flush();
        ulong pageSize = ArchRegistry.Find(report.Arch)?.Info.PageSize ?? 4096;
        var table = new Table()
            .Border(TableBorder.Rounded)
            .Title($"HVO under {Markup.Escape(report.Policy)}")
            .AddColumn("counter")
            .AddColumn(new TableColumn("value").RightAligned())
            .AddColumn(new TableColumn("size").RightAligned())
            .AddColumn("what it counts");
        HvoReport h = report.Hvo;
        Row(table, "vmemmap pages freed", h.VmemmapPagesFreed, h.VmemmapPagesFreed * (long)pageSize, "by vmemmap_remap_free");
        Row(table, "vmemmap pages restored", h.VmemmapPagesRestored, h.VmemmapPagesRestored * (long)pageSize, "by hugetlb_vmemmap_restore");
        Row(table, "PTE tables allocated", h.PteTablesAllocated, h.PteTablesAllocated * (long)pageSize, "by splits; never given back");
        Row(table, "PMDs split", h.PmdsSplit, null, "vmemmap PMD -> PTE table");
        Row(table, "optimizations failed", h.OptimizeFailures, null, "-ENOMEM on a split, per try");
        Row(table, "restores failed", h.RestoreFailures, null, "-ENOMEM: page kept, surplus");
        Row(table, "TLB flushes", h.TlbFlushes, null, "range and full flushes");
        Row(table, "net bytes saved", h.NetBytesSaved, h.NetBytesSaved, "freed - restored - tables");
        console.Write(table);
    }

    private static void Row(Table table, string name, long value, long? bytes, string what) =>
        table.AddRow(
            Markup.Escape(name),
            value.ToString(CultureInfo.InvariantCulture),
            bytes is { } b ? Human(b) : string.Empty,
            $"[grey]{Markup.Escape(what)}[/]");

    private static string Human(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = Math.Abs((double)bytes);
        int u = 0;
        while (v >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return (bytes < 0 ? "-" : string.Empty) + v.ToString(u == 0 ? "0" : "0.0", CultureInfo.InvariantCulture) + " " + units[u];
    }
}
