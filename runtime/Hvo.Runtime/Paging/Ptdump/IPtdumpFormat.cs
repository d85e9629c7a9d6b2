using System.Collections.Generic;
using System.Text;

namespace Hvo.Paging.Ptdump;

/// <summary>
/// One kernel's kernel_page_tables format: which bits of an entry make two neighbours differ,
/// and how a run is printed. The walk and the merging are the same for every format
/// (<see cref="PtdumpVisitor{TArch, TFormat}"/>, <see cref="PtdumpState"/>); a format only decodes attributes.
/// Implemented by structs so that the walk is specialized for the format as for the architecture.
/// </summary>
public interface IPtdumpFormat
{
    /// <summary>note_page's <c>prot</c> of a valid <paramref name="entry"/> at <paramref name="level"/> (a hole is 0).</summary>
    static abstract ulong Prot<TArch>(int level, ulong entry)
        where TArch : struct, IPagingArch;

    /// <summary>The markers the kernel prints around the vmemmap region.</summary>
    static abstract IReadOnlyList<AddressMarker> VmemmapMarkers<TArch>()
        where TArch : struct, IPagingArch;

    /// <summary>One line for <paramref name="run"/>, newline included.</summary>
    static abstract void AppendRun<TArch>(StringBuilder text, PtdumpRun run)
        where TArch : struct, IPagingArch;
}
