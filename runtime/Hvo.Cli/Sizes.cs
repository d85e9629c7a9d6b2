using System;
using System.Globalization;

namespace Hvo.Cli;

/// <summary>Sizes on the command line, in the kernel's own forms: 64G, 2M, 1GiB, 4096, 0x1000.</summary>
public static class Sizes
{
    public const string Forms = "a whole number of bytes, \"0x\" hex, or a number with K, M, G, T, P or E (optionally KiB, MiB, ...), e.g. 64G or 2MiB";

    public static bool TryParse(string text, out ulong value) => TryParse(text, out value, out _);

    /// <summary>Parses a size; on failure <paramref name="error"/> says why ("does not fit in 64 bits", "unknown suffix", ...).</summary>
    public static bool TryParse(string text, out ulong value, out string error)
    {
        value = 0;
        error = string.Empty;
        string s = text.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            ReadOnlySpan<char> digits = s.AsSpan(2);
            if (digits.Length == 0 || !IsHex(digits))
            {
                error = $"'{text}' is not a hex number";
                return false;
            }

            if (digits.TrimStart('0').Length > 16 || !ulong.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value))
            {
                error = $"'{text}' does not fit in 64 bits";
                return false;
            }

            return true;
        }

        int end = 0;
        while (end < s.Length && s[end] is >= '0' and <= '9')
        {
            end++;
        }

        if (end == 0)
        {
            error = $"'{text}' is not a size";
            return false;
        }

        string unit = s[end..];
        if (unit.EndsWith("iB", StringComparison.Ordinal) || unit.EndsWith('B'))
        {
            unit = unit.EndsWith("iB", StringComparison.Ordinal) ? unit[..^2] : unit[..^1];
        }

        int shift = unit.ToUpperInvariant() switch
        {
            "" => 0,
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            "P" => 50,
            "E" => 60,
            _ => -1,
        };
        if (shift < 0)
        {
            error = $"'{text}' has an unknown unit '{s[end..]}'";
            return false;
        }

        if (!ulong.TryParse(s.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out ulong mantissa)
            || (shift > 0 && mantissa > ulong.MaxValue >> shift))
        {
            error = $"'{text}' does not fit in 64 bits";
            return false;
        }

        value = mantissa << shift;
        return true;
    }

    /// <summary>A size as the kernel documentation writes it: 4K, 2M, 1G, 16G.</summary>
    public static string Format(ulong v)
    {
        string[] units = ["", "K", "M", "G", "T", "P", "E"];
        int u = 0;
        while (u < units.Length - 1 && v >= 1024 && v % 1024 == 0)
        {
            v /= 1024;
            u++;
        }

        return v.ToString(CultureInfo.InvariantCulture) + units[u];
    }

    private static bool IsHex(ReadOnlySpan<char> digits)
    {
        foreach (char c in digits)
        {
            if (!char.IsAsciiHexDigit(c))
            {
                return false;
            }
        }

        return true;
    }
}
