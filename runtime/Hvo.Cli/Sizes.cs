using System;
using System.Linq;
using System.Numerics;
using Hvo.Lib;

namespace Hvo.Cli;

/// <summary>
/// Sizes on the command line: the kernel's memparse (<see cref="CmdLine.Memparse"/>: a number,
/// <c>0x</c> hex or with a leading 0 octal, and an optional K, M, G, T, P or E), and after it, as
/// the one thing the command line adds, an optional <c>B</c>, or <c>iB</c> after a suffix
/// (2MB, 2MiB). Nothing else may follow; blanks around the size are ignored. A decimal number with a
/// suffix (<c>1.5T</c>) is accepted where it is a whole number of bytes; callers check pages.
/// </summary>
public static class Sizes
{
    public const string Forms = "memparse's form: a number of bytes (0x hex, a leading 0 octal) with an optional K, M, G, T, P or E, then optionally B or iB, e.g. 64G or 2MiB; a decimal before a suffix where it makes whole bytes, e.g. 1.5T";

    public static bool TryParse(string text, out ulong value) => TryParse(text, out value, out _);

    /// <summary>Parses a size; on failure <paramref name="error"/> says why ("does not fit in 64 bits", "has an unknown unit", ...).</summary>
    public static bool TryParse(string text, out ulong value, out string error)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        error = string.Empty;
        int dot = text.IndexOf('.', StringComparison.Ordinal);
        if (dot >= 0)
        {
            return TryParseDecimal(text, text.Trim(), out value, out error);
        }

        Memparsed m = CmdLine.Memparse(text.Trim());
        if (!m.HasNumber)
        {
            error = $"'{text}' is not a size";
            return false;
        }

        if (m.NumberEnd == 1 && m.Text[0] == '0' && m.Rest.Length > 0 && (m.Rest[0] | 0x20) == 'x')
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

    // 1.5T: whole digits, '.', digits, then a suffix as memparse reads it; exact in bytes or refused.
    private static bool TryParseDecimal(string original, string text, out ulong value, out string error)
    {
        value = 0;
        error = string.Empty;
        int dot = text.IndexOf('.', StringComparison.Ordinal);
        int end = dot + 1;
        while (end < text.Length && char.IsAsciiDigit(text[end]))
        {
            end++;
        }

        string whole = text[..dot];
        string fraction = text[(dot + 1)..end];
        if (whole.Length == 0 || fraction.Length == 0 || !whole.All(char.IsAsciiDigit) || fraction.Length > 18)
        {
            error = $"'{original}' is not a size";
            return false;
        }

        if (!TryParse("1" + text[end..], out ulong unit, out string unitError))
        {
            error = unitError.Replace($"'1{text[end..]}'", $"'{original}'", StringComparison.Ordinal);
            return false;
        }

        if (unit == 1)
        {
            error = $"'{original}' is a fraction of a byte: a decimal needs a suffix (K, M, G, T, P or E)";
            return false;
        }

        BigInteger scale = BigInteger.Pow(10, fraction.Length);
        BigInteger bytes = BigInteger.Parse(whole + fraction, System.Globalization.CultureInfo.InvariantCulture) * unit;
        if (bytes % scale != 0)
        {
            error = $"'{original}' is not a whole number of bytes";
            return false;
        }

        if (bytes / scale > ulong.MaxValue)
        {
            error = $"'{original}' does not fit in 64 bits";
            return false;
        }

        value = (ulong)(bytes / scale);
        return true;
    }
}
