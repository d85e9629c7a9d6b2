using System.Collections.Generic;
using System.Text;

namespace Hvo.Paging.Ptdump;

/// <summary>
/// The format of a spec that names no kernel format: one line per run,
/// <code>
/// ---[ vmemmap start ]---
/// 0xffffea0000000000-0xffffea0000200000           2M pmd  block RW
/// 0xffffea0000200000-0xffffea0000202000           8K pte  page  RW
/// 0xffffea0000202000-0xffffea0000208000          24K pte  page  ro
/// 0xffffea0000800000-0xffffea0040000000        1016M pmd  none
/// ---[ vmemmap end ]---
/// </code>
/// The range and size as x86 prints them (<c>"0x%016lx-0x%016lx   %9lu%c "</c>, unit B to E), the
/// spec's level name padded to 4, then what the entries are: <c>block</c> (a leaf above the last
/// level), <c>page</c> (a last-level leaf) or <c>none</c> (not valid: a hole), and for a leaf
/// <c>RW</c> or <c>ro</c> as the spec's read-only rule reads it. A table never ends a walk, so it
/// never makes a line. Runs merge on every bit but the output address.
/// </summary>
public readonly struct GenericPtdumpFormat : IPtdumpFormat
{
    public static ulong Prot<TArch>(int level, ulong entry)
        where TArch : struct, IPagingArch => entry & ~TArch.PfnMask;

    public static IReadOnlyList<AddressMarker> VmemmapMarkers<TArch>()
        where TArch : struct, IPagingArch =>
    [
        new AddressMarker(TArch.VmemmapStart, "vmemmap start"),
        new AddressMarker(TArch.VmemmapStart + TArch.VmemmapSize, "vmemmap end"),
    ];

    public static void AppendRun<TArch>(StringBuilder text, PtdumpRun run)
        where TArch : struct, IPagingArch
    {
        PtdumpText.AppendRange(text, run.Start, run.End);
        PtdumpText.AppendSize(text, run.Size, "BKMGTPE");
        text.Append(' ').Append(TArch.Info.Levels[run.Level].Name.PadRight(4)).Append(' ');
        if (!run.Present)
        {
            text.Append("none\n");
            return;
        }

        text.Append(run.Level == TArch.LastLevel ? "page  " : "block ")
            .Append(TArch.IsWritable(run.Prot) ? "RW" : "ro")
            .Append('\n');
    }
}
