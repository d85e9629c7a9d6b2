using System;
using Hvo.Lib;

namespace Hvo.Cli;

/// <summary>
/// Sizes on the command line: the kernel's memparse (<see cref="CmdLine.Memparse"/>: a number,
/// <c>0x</c> hex or with a leading 0 octal, and an optional K, M, G, T, P or E), and after it, as
/// the one thing the command line adds, an optional <c>B</c>, or <c>iB</c> after a suffix
/// (2MB, 2MiB). Nothing else may follow; blanks around the size are ignored.
/// </summary>
public static class Sizes
{
    public const string Forms = "memparse's form: a number of bytes (0x hex, a leading 0 octal) with an optional K, M, G, T, P or E, then optionally B or iB, e.g. 64G or 2MiB";

    public static bool TryParse(string text, out ulong value) => TryParse(text, out value, out _);

    /// <summary>Parses a size; on failure <paramref name="error"/> says why ("does not fit in 64 bits", "has an unknown unit", ...).</summary>
    public static bool TryParse(string text, out ulong value, out string error)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        error = string.Empty;
        Memparsed m = CmdLine.Memparse(text.Trim());
        if (!m.HasNumber)
        {
            error = $"'{text}' is not a size";
            return false;
        }

        if (m.NumberEnd == 1 && m.Rest.Length > 0 && (m.Rest[0] | 0x20) == 'x')
        {
            error = $"'{text}' is not a hex number"; // 0x with no hex digit after it: memparse read the 0
            return false;
        }

        if (m.Rest is not ("" or "B") && !(m.HasSuffix && m.Rest == "iB"))
        {
            error = $"'{text}' has an unknown unit '{m.Text[m.NumberEnd..]}'";
            return false;
        }

        if (m.Overflow)
        {
            error = $"'{text}' does not fit in 64 bits";
            return false;
        }

        value = m.Bytes;
        return true;
    }
}
