using System.Globalization;
using System.Text;

namespace Hvo.Paging.Ptdump;

/// <summary>The pieces of a ptdump line every kernel format shares.</summary>
internal static class PtdumpText
{
    /// <summary><c>"---[ %s ]---\n"</c>.</summary>
    public static void AppendMarker(StringBuilder text, string name) =>
        text.Append("---[ ").Append(name).Append(" ]---\n");

    /// <summary><c>"0x%016lx-0x%016lx   "</c>.</summary>
    public static void AppendRange(StringBuilder text, ulong start, ulong end) =>
        text.Append(CultureInfo.InvariantCulture, $"0x{start:x16}-0x{end:x16}   ");

    /// <summary>
    /// <c>"%9lu%c"</c> after note_page's unit loop: step to the next unit of
    /// <paramref name="units"/> while the count is a whole multiple of 1024 and a unit is left.
    /// </summary>
    public static void AppendSize(StringBuilder text, ulong delta, string units)
    {
        int unit = 0;
        while ((delta & 1023) == 0 && unit + 1 < units.Length)
        {
            delta >>= 10;
            unit++;
        }

        text.Append(CultureInfo.InvariantCulture, $"{delta,9}{units[unit]}");
    }
}
