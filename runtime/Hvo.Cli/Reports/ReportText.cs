using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.Lib;

namespace Hvo.Cli.Reports;

/// <summary>
/// The plain report (<see cref="SimulationReport"/>): a heading, the pool (/proc/meminfo in the kernel's
/// format, each hstate, what was asked and not had), HVO's counters with their sizes in the units of
/// <c>hvo compare</c> (<see cref="Units"/>), and the break-before-make findings where the checker ran.
/// <see cref="TerminalReport"/> shows the same parts, the counters as a table.
/// </summary>
internal static class ReportText
{
    /// <param name="violations">Findings to list: null for none (the count and how to list them), else at most this many.</param>
    public static string Render(SimulationReport r, int? violations = null) => Heading(r) + Pool(r) + Counters(r) + BreakBeforeMake(r, violations);

    /// <summary>What ran on which machine, how long it took, and a blank line.</summary>
    public static string Heading(SimulationReport r) => Lines(o =>
    {
        o.WriteLine($"hvo {r.Command}: {r.Arch} ({r.Title}), {CmdLine.FormatSize(r.MemoryBytes)}, {r.Nodes} node(s), policy {r.Policy}, HVO {(r.HvoEnabled ? "on" : "off")}");
        o.WriteLine($"booted in {r.BootMs:0} ms; {r.WorkLabel} in {r.WorkMs:0} ms; host memory holding the simulated frames: {Units.Kb((ulong)r.HostFrameBytes / 1024)}");
        o.WriteLine($"struct pages initialized at boot (memmap_init): {Units.Count((long)r.StructPagesInitializedAtBoot)}");
        o.WriteLine();
    });

    /// <summary>/proc/meminfo, then each hstate holding pages, then each that grew to less than was asked, and why.</summary>
    public static string Pool(SimulationReport r) => Lines(o =>
    {
        o.Write(r.MemInfo.Format());
        foreach (HstateReport h in r.Hstates.Where(h => h.NrHugepages > 0))
        {
            o.WriteLine($"hugepages-{h.PageSize / 1024}kB: nr_hugepages {h.NrHugepages}, free {h.Free}, surplus {h.Surplus}, vmemmap optimized {h.Optimized}");
        }

        foreach (HstateReport h in r.Hstates.Where(h => h.Requested > h.NrHugepages))
        {
            o.WriteLine(r.Interrupted
                ? $"hugepages-{h.PageSize / 1024}kB: asked for {h.Requested}, the pool grew to {h.NrHugepages}: interrupted (Ctrl-C) before the rest was allocated"
                : $"hugepages-{h.PageSize / 1024}kB: asked for {h.Requested}, the pool grew to {h.NrHugepages}: no memory for more (as echo N > nr_hugepages, the kernel allocates what fits)");
        }

        if (r.MemoryBlocks is { } m)
        {
            o.WriteLine($"memory blocks ({CmdLine.FormatSize(m.BlockSize)} each): {m.Online} online ({m.Movable} in ZONE_MOVABLE), {m.Offline} offline; {m.HotAdded} hot-added ({m.SelfHosted} holding their own struct pages)");
        }
    });

    /// <summary>HVO's counters, one a line, pages with their size; the cmpxchg retries where there were any.</summary>
    public static string Counters(SimulationReport r) => Lines(o =>
    {
        HvoReport h = r.Hvo;
        long page = (long)r.PageSize;
        o.WriteLine($"HVO vmemmap pages freed:    {h.VmemmapPagesFreed,12}   ({Units.Size(h.VmemmapPagesFreed * page)})");
        o.WriteLine($"HVO vmemmap pages restored: {h.VmemmapPagesRestored,12}   ({Units.Size(h.VmemmapPagesRestored * page)})");
        o.WriteLine($"HVO PTE tables allocated:   {h.PteTablesAllocated,12}   ({Units.Size(h.PteTablesAllocated * page)})");
        if (h.PteTableFrames is { } frames)
        {
            o.WriteLine($"HVO PTE table pages:        {frames,12}   ({Units.Size(frames * page)}; the tables are fragments, several to a page)");
        }
        o.WriteLine($"HVO PMDs split:             {h.PmdsSplit,12}");
        o.WriteLine($"HVO optimizations failed:   {h.OptimizeFailures,12}");
        o.WriteLine($"HVO restores failed:        {h.RestoreFailures,12}");
        o.WriteLine($"HVO TLB flushes:            {h.TlbFlushes,12}   (range {h.TlbRangeFlushes}, full {h.TlbFullFlushes})");
        o.WriteLine($"HVO net bytes saved:        {h.NetBytesSaved,12}   ({Units.Size(h.NetBytesSaved)})");
        if (h.BbmRetries > 0 || h.BbmRetriesExhausted > 0)
        {
            o.WriteLine($"HVO cmpxchg retries:        {h.BbmRetries,12}   (pages rolled back: {h.BbmRetriesExhausted})");
        }

        if (h.EntryInvalidations > 0)
        {
            o.WriteLine($"HVO entries invalidated:    {h.EntryInvalidations,12}   (break or IPTE/IDTE before a new entry)");
        }

        if (h.CpuPauses > 0)
        {
            o.WriteLine($"HVO CPU pauses:             {h.CpuPauses,12}   (IPIs {h.PauseIpis}, paused CPU-steps {h.PausedCpuSteps})");
        }

        if (h.Collapse is { } c)
        {
            o.WriteLine($"HVO PTE tables recovered:   {c.PteTablesRecovered,12}   ({Units.Size(c.PteTablesRecovered * page)}; collapse-on-free, no kernel does it)");
            o.WriteLine($"HVO collapse bytes copied:  {c.BytesCopied,12}   ({Units.Size(c.BytesCopied)})");
            o.WriteLine($"HVO collapse TLB flushes:   {c.TlbFlushes,12}   (in the flushes above)");
            o.WriteLine($"HVO collapses failed:       {c.Failures,12}   (no PMD-aligned block: left split)");
        }

        if (r.TlbReach is { } t)
        {
            o.WriteLine($"struct page scan:           {t.StructPages,12}   struct pages ({Units.Size((long)t.Bytes)}) read from a cold TLB");
            o.WriteLine($"struct page scan TLB misses:{t.TlbMisses,12}   ({t.MissesPerGiB} per GiB of struct pages)");
        }

        o.WriteLine(Units.Legend);
    });

    /// <summary>
    /// The break-before-make checker's count where it ran; when it found any, the first
    /// <paramref name="violations"/> findings (address, level, old and new entry, kernel step) or how to
    /// list them, and the policies that keep the rule here.
    /// </summary>
    public static string BreakBeforeMake(SimulationReport r, int? violations = null) => r.BreakBeforeMakeViolations is { } v
        ? Lines(o =>
        {
            // The count is of the architecture's replacement rule: arm64's break-before-make, s390's invalidation.
            o.WriteLine(Hvo.Paging.ArchRegistry.Find(r.Arch)?.Info.Replacement == Hvo.Paging.ReplacementRule.Invalidate
                ? $"invalidate-first violations:  {v,10}"
                : $"break-before-make violations: {v,10}");
            if (v == 0)
            {
                return;
            }

            if (violations is not { } n)
            {
                o.WriteLine("  (--violations [N] lists them: address, level, old and new entry, kernel step)");
            }
            else
            {
                foreach (BbmFinding f in r.AllFindings.Take(n))
                {
                    o.WriteLine($"  {f.Address} {f.Level,-4} {f.OldEntry} -> {f.NewEntry}  {f.Step}: {f.Rule}");
                }

                if (r.AllFindings.Count > n)
                {
                    o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ... {r.AllFindings.Count - n} more (--violations with no number lists all)"));
                }
            }

            if (r.BreakBeforeMakeSafePolicies is { Count: > 0 } safe)
            {
                o.WriteLine($"safe on {r.Arch}: {string.Join(", ", safe.Select(p => $"--policy {p.Policy} {p.Options}"))}");
            }
        })
        : string.Empty;

    private static string Lines(System.Action<StringWriter> write)
    {
        var o = new StringWriter(CultureInfo.InvariantCulture);
        write(o);
        return o.ToString();
    }
}
