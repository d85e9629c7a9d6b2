using System;
using System.Globalization;
using System.IO;
using Spectre.Console;

namespace Hvo.Cli.Reports;

/// <summary>
/// The report on a terminal: the parts of <see cref="ReportText"/> as they are (so the
/// /proc/meminfo block stays in the kernel's format), except HVO's counters, which become a table
/// with their size in bytes and what each counts in the kernel's terms. Redirected output gets
/// <see cref="ReportText.Render"/> unchanged.
/// </summary>
internal static class TerminalReport
{
    /// <summary>Standard output of this process, and a terminal.</summary>
    public static bool IsTerminal(TextWriter output) => HvoCommand.IsTerminal(output);

    /// <summary>A Spectre console on standard output.</summary>
    public static IAnsiConsole OutputConsole() => AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });

    public static void Write(IAnsiConsole console, TextWriter plain, SimulationReport report, int? violations = null)
    {
        ArgumentNullException.ThrowIfNull(console);
        ArgumentNullException.ThrowIfNull(plain);
        ArgumentNullException.ThrowIfNull(report);
        plain.Write(ReportText.Heading(report) + ReportText.Pool(report) + ReportText.BreakBeforeMake(report, violations));
        plain.WriteLine();
        plain.Flush();
        long pageSize = (long)report.PageSize;
        var table = new Table()
            .Border(TableBorder.Rounded)
            .Title($"HVO under {Markup.Escape(report.Policy)}")
            .AddColumn("counter")
            .AddColumn(new TableColumn("value").RightAligned())
            .AddColumn(new TableColumn("size").RightAligned())
            .AddColumn("what it counts");
        HvoReport h = report.Hvo;
        Row(table, "vmemmap pages freed", h.VmemmapPagesFreed, h.VmemmapPagesFreed * pageSize, "by vmemmap_remap_free");
        Row(table, "vmemmap pages restored", h.VmemmapPagesRestored, h.VmemmapPagesRestored * pageSize, "by hugetlb_vmemmap_restore");
        Row(table, "PTE tables allocated", h.PteTablesAllocated, h.PteTablesAllocated * pageSize, "by splits; never given back");
        if (h.PteTableFrames is { } frames)
        {
            Row(table, "PTE table pages", frames, frames * pageSize, "the tables are fragments, several to a page");
        }

        Row(table, "PMDs split", h.PmdsSplit, null, "vmemmap PMD -> PTE table");
        Row(table, "optimizations failed", h.OptimizeFailures, null, "-ENOMEM on a split, per try");
        Row(table, "restores failed", h.RestoreFailures, null, "-ENOMEM: page kept, surplus");
        Row(table, "TLB flushes", h.TlbFlushes, null, "range and full flushes");
        Row(table, "net bytes saved", h.NetBytesSaved, h.NetBytesSaved, "freed - restored - tables");
        if (h.Collapse is { } c)
        {
            Row(table, "PTE tables recovered", c.PteTablesRecovered, c.PteTablesRecovered * pageSize, "collapse-on-free (no kernel does it)");
            Row(table, "collapse bytes copied", c.BytesCopied, c.BytesCopied, "into the new PMD-aligned blocks");
            Row(table, "collapse TLB flushes", c.TlbFlushes, null, "in the TLB flushes above");
            Row(table, "collapses failed", c.Failures, null, "-ENOMEM: left split");
        }

        if (report.TlbReach is { } t)
        {
            Row(table, "struct page scan TLB misses", t.TlbMisses, null, $"{t.MissesPerGiB} per GiB of struct pages, {t.StructPages} read");
        }

        console.Write(table);
        console.WriteLine(Units.Legend);
    }

    private static void Row(Table table, string name, long value, long? bytes, string what) =>
        table.AddRow(
            Markup.Escape(name),
            value.ToString(CultureInfo.InvariantCulture),
            bytes is { } b ? Units.Size(b) : string.Empty,
            $"[grey]{Markup.Escape(what)}[/]");
}
