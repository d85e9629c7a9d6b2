using System;
using System.Globalization;

namespace Hvo.Cli;

/// <summary>Sizes on the command line, in the kernel's own forms: 64G, 2M, 1GiB, 4096, 0x1000.</summary>
public static class Sizes
{
    public const string Forms = "a whole number of bytes, \"0x\" hex, or a number with K, M, G, T or P (optionally KiB, MiB, ...), e.g. 64G or 2MiB";

    public static bool TryParse(string text, out ulong value)
    {
        value = 0;
        string s = text.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return s.Length > 2 && s.Length <= 18 && ulong.TryParse(s.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }

        int end = 0;
        while (end < s.Length && s[end] is >= '0' and <= '9')
        {
            end++;
        }

        if (end == 0 || !ulong.TryParse(s.AsSpan(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out ulong mantissa))
        {
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
            _ => -1,
        };
        if (shift < 0 || (shift > 0 && mantissa > ulong.MaxValue >> shift))
        {
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
}
