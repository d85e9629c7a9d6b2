using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.Lib;

namespace Hvo.Cli.Reports;

/// <summary>
/// The plain report (<see cref="SimulationReport"/>): a heading, the pool (/proc/meminfo in the kernel's
/// format, each hstate, what was asked and not had), HVO's counters, and the break-before-make
/// count where the checker ran. <see cref="TerminalReport"/> shows the same parts, the counters as a table.
/// </summary>
internal static class ReportText
{
    public static string Render(SimulationReport r) => Heading(r) + Pool(r) + Counters(r) + BreakBeforeMake(r);

    /// <summary>What ran on which machine, how long it took, and a blank line.</summary>
    public static string Heading(SimulationReport r) => Lines(o =>
    {
        o.WriteLine($"hvo {r.Command}: {r.Arch} ({r.Title}), {CmdLine.FormatSize(r.MemoryBytes)}, {r.Nodes} node(s), policy {r.Policy}, HVO {(r.HvoEnabled ? "on" : "off")}");
        o.WriteLine($"booted in {r.BootMs:0} ms; {r.WorkLabel} in {r.WorkMs:0} ms; simulated frame bytes kept: {r.HostFrameBytes / 1024} kB");
        o.WriteLine($"struct pages initialized at boot (memmap_init): {r.StructPagesInitializedAtBoot}");
        o.WriteLine();
    });

    /// <summary>/proc/meminfo, then each hstate holding pages, then each that grew to less than was asked.</summary>
    public static string Pool(SimulationReport r) => Lines(o =>
    {
        o.Write(r.MemInfo.Format());
        foreach (HstateReport h in r.Hstates.Where(h => h.NrHugepages > 0))
        {
            o.WriteLine($"hugepages-{h.PageSize / 1024}kB: nr_hugepages {h.NrHugepages}, free {h.Free}, surplus {h.Surplus}, vmemmap optimized {h.Optimized}");
        }

        foreach (HstateReport h in r.Hstates.Where(h => h.Requested > h.NrHugepages))
        {
            o.WriteLine($"hugepages-{h.PageSize / 1024}kB: asked for {h.Requested}, the pool grew to {h.NrHugepages}: no memory for more (as echo N > nr_hugepages, the kernel allocates what fits)");
        }

        if (r.MemoryBlocks is { } m)
        {
            o.WriteLine($"memory blocks ({CmdLine.FormatSize(m.BlockSize)} each): {m.Online} online ({m.Movable} in ZONE_MOVABLE), {m.Offline} offline; {m.HotAdded} hot-added ({m.SelfHosted} holding their own struct pages)");
        }
    });

    /// <summary>HVO's counters, one a line, and the cmpxchg retries where there were any.</summary>
    public static string Counters(SimulationReport r) => Lines(o =>
    {
        HvoReport h = r.Hvo;
        o.WriteLine($"HVO vmemmap pages freed:    {h.VmemmapPagesFreed,12}");
        o.WriteLine($"HVO vmemmap pages restored: {h.VmemmapPagesRestored,12}");
        o.WriteLine($"HVO PTE tables allocated:   {h.PteTablesAllocated,12}");
        o.WriteLine($"HVO PMDs split:             {h.PmdsSplit,12}");
        o.WriteLine($"HVO optimizations failed:   {h.OptimizeFailures,12}");
        o.WriteLine($"HVO restores failed:        {h.RestoreFailures,12}");
        o.WriteLine($"HVO TLB flushes:            {h.TlbFlushes,12}   (range {h.TlbRangeFlushes}, full {h.TlbFullFlushes})");
        o.WriteLine($"HVO net bytes saved:        {h.NetBytesSaved,12}");
        if (h.BbmRetries > 0 || h.BbmRetriesExhausted > 0)
        {
            o.WriteLine($"HVO cmpxchg retries:        {h.BbmRetries,12}   (pages rolled back: {h.BbmRetriesExhausted})");
        }
    });

    /// <summary>The break-before-make checker's count, where it ran.</summary>
    public static string BreakBeforeMake(SimulationReport r) => r.BreakBeforeMakeViolations is { } v
        ? Lines(o => o.WriteLine($"break-before-make violations: {v,10}"))
        : string.Empty;

    private static string Lines(System.Action<StringWriter> write)
    {
        var o = new StringWriter(CultureInfo.InvariantCulture);
        write(o);
        return o.ToString();
    }
}
