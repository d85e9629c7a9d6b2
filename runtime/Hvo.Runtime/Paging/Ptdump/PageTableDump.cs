using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;

namespace Hvo.Paging.Ptdump;

/// <summary>
/// /sys/kernel/debug/kernel_page_tables for the simulated kernel page table: a walk of a range
/// (<see cref="PtdumpVisitor{TArch, TFormat}"/>), entries merged into runs as note_page merges them
/// (<see cref="PtdumpState"/>), printed in the kernel format the spec names
/// (<see cref="ArchInfo.Ptdump"/>): <see cref="X86PtdumpFormat"/>, <see cref="Arm64PtdumpFormat"/>
/// or <see cref="GenericPtdumpFormat"/>.
/// </summary>
public static class PageTableDump
{
    /// <summary>The vmemmap region [VMEMMAP_START, VMEMMAP_START + size) with its markers, in the spec's format.</summary>
    public static string DumpVmemmap<TArch>(KernelPageTable<TArch> table)
        where TArch : struct, IPagingArch => DumpVmemmap(table, TArch.Info.Ptdump);

    /// <summary>The vmemmap region with its markers, in <paramref name="format"/>.</summary>
    public static string DumpVmemmap<TArch>(KernelPageTable<TArch> table, PtdumpFormat format)
        where TArch : struct, IPagingArch =>
        Dump(table, TArch.VmemmapStart, VmemmapEnd<TArch>(), format, VmemmapMarkers<TArch>(format));

    /// <summary>[<paramref name="start"/>, <paramref name="end"/>) in the spec's format, without markers.</summary>
    public static string Dump<TArch>(KernelPageTable<TArch> table, ulong start, ulong end)
        where TArch : struct, IPagingArch => Dump(table, start, end, TArch.Info.Ptdump, []);

    /// <summary>
    /// [<paramref name="start"/>, <paramref name="end"/>) in <paramref name="format"/>. Each marker
    /// is printed before the first run when it lies at or before the start, otherwise after the
    /// run that reaches it, and no run continues across it; a marker after the end is not printed.
    /// </summary>
    public static string Dump<TArch>(KernelPageTable<TArch> table, ulong start, ulong end, PtdumpFormat format, IReadOnlyList<AddressMarker> markers)
        where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(markers);
        return format switch
        {
            PtdumpFormat.X86 => Render<TArch, X86PtdumpFormat>(table, start, end, markers),
            PtdumpFormat.Arm64 => Render<TArch, Arm64PtdumpFormat>(table, start, end, markers),
            _ => Render<TArch, GenericPtdumpFormat>(table, start, end, markers),
        };
    }

    /// <summary>The runs of [<paramref name="start"/>, <paramref name="end"/>), merged on the spec's format's bits.</summary>
    public static IReadOnlyList<PtdumpRun> Runs<TArch>(KernelPageTable<TArch> table, ulong start, ulong end)
        where TArch : struct, IPagingArch => Runs(table, start, end, TArch.Info.Ptdump);

    /// <summary>The runs of [<paramref name="start"/>, <paramref name="end"/>), merged on <paramref name="format"/>'s bits.</summary>
    public static IReadOnlyList<PtdumpRun> Runs<TArch>(KernelPageTable<TArch> table, ulong start, ulong end, PtdumpFormat format)
        where TArch : struct, IPagingArch => format switch
        {
            PtdumpFormat.X86 => Walk<TArch, X86PtdumpFormat>(table, start, end, []),
            PtdumpFormat.Arm64 => Walk<TArch, Arm64PtdumpFormat>(table, start, end, []),
            _ => Walk<TArch, GenericPtdumpFormat>(table, start, end, []),
        };

    /// <summary>The markers <paramref name="format"/> prints around the vmemmap of <typeparamref name="TArch"/>.</summary>
    public static IReadOnlyList<AddressMarker> VmemmapMarkers<TArch>(PtdumpFormat format)
        where TArch : struct, IPagingArch => format switch
        {
            PtdumpFormat.X86 => X86PtdumpFormat.VmemmapMarkers<TArch>(),
            PtdumpFormat.Arm64 => Arm64PtdumpFormat.VmemmapMarkers<TArch>(),
            _ => GenericPtdumpFormat.VmemmapMarkers<TArch>(),
        };

    // 0 when the vmemmap ends at the top of the address space (LoongArch's does), as a walk's end.
    private static ulong VmemmapEnd<TArch>()
        where TArch : struct, IPagingArch => TArch.VmemmapStart + TArch.VmemmapSize;

    private static List<PtdumpRun> Walk<TArch, TFormat>(KernelPageTable<TArch> table, ulong start, ulong end, ulong[] markerStarts)
        where TArch : struct, IPagingArch
        where TFormat : struct, IPtdumpFormat
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!PageWalkState.IsRange(start, end))
        {
            throw new ArgumentOutOfRangeException(nameof(end), $"empty range 0x{start:x}-0x{end:x}");
        }

        var state = new PtdumpState(markerStarts);
        var visitor = new PtdumpVisitor<TArch, TFormat>(state);
        table.WalkRange(start, end, ref visitor);
        state.Flush(end);
        return state.Runs;
    }

    private static string Render<TArch, TFormat>(KernelPageTable<TArch> table, ulong start, ulong end, IReadOnlyList<AddressMarker> markers)
        where TArch : struct, IPagingArch
        where TFormat : struct, IPtdumpFormat
    {
        AddressMarker[] sorted = [.. markers.OrderBy(m => m.Start - 1)]; // a marker at 0 is the top: last
        List<PtdumpRun> runs = Walk<TArch, TFormat>(table, start, end, [.. sorted.Select(m => m.Start)]);

        var text = new StringBuilder();
        int next = 0;
        for (; next < sorted.Length && sorted[next].Start != 0 && sorted[next].Start <= start; next++)
        {
            PtdumpText.AppendMarker(text, sorted[next].Name);
        }

        foreach (PtdumpRun run in runs)
        {
            TFormat.AppendRun<TArch>(text, run);
            for (; next < sorted.Length && sorted[next].Start - 1 <= run.End - 1; next++)
            {
                PtdumpText.AppendMarker(text, sorted[next].Name);
            }
        }

        return text.ToString();
    }
}
