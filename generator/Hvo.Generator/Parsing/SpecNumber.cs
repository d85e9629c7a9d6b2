using System;
using System.Globalization;

namespace Hvo.Generator.Parsing;

/// <summary>
/// Numbers in a spec: a JSON whole number, or a string holding hex (<c>"0x1f"</c>), decimal, or a
/// size with a binary suffix (<c>"2MiB"</c>, <c>"1G"</c>, <c>"64K"</c>).
/// </summary>
internal static class SpecNumber
{
    public const string Forms = "a whole number, \"0x\" hex, or a size such as \"2MiB\", \"1G\", \"64K\"";

    public static bool TryParse(JsonNode node, out ulong value, out string error)
    {
        value = 0;
        switch (node.Kind)
        {
            case JsonKind.Number:
                if (ulong.TryParse(node.Text, NumberStyles.None, CultureInfo.InvariantCulture, out value))
                {
                    error = string.Empty;
                    return true;
                }

                error = $"{node.Text} is not a whole number from 0 to 2^64-1; write {Forms}";
                return false;
            case JsonKind.String:
                return TryParse(node.Text ?? string.Empty, out value, out error);
            default:
                error = $"expected a number but found {node.KindName}; write {Forms}";
                return false;
        }
    }

    public static bool TryParse(string text, out ulong value, out string error)
    {
        value = 0;
        error = string.Empty;
        string s = text.Trim();
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            string digits = s.Substring(2).Replace("_", string.Empty);
            if (digits.Length > 0 && digits.Length <= 16
                && ulong.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value))
            {
                return true;
            }

            error = $"\"{text}\" is not a hex number that fits in 64 bits";
            return false;
        }

        int end = 0;
        while (end < s.Length && char.IsDigit(s[end]) && s[end] <= '9')
        {
            end++;
        }

        if (end == 0 || !ulong.TryParse(s.Substring(0, end), NumberStyles.None, CultureInfo.InvariantCulture, out ulong mantissa))
        {
            error = $"\"{text}\" is not a number; write {Forms}";
            return false;
        }

        int shift = SuffixShift(s.Substring(end).Trim());
        if (shift < 0)
        {
            error = $"\"{text}\" has an unknown size suffix; use K, M, G, T, P or E, optionally followed by iB (binary sizes)";
            return false;
        }

        if (shift > 0 && mantissa > (ulong.MaxValue >> shift))
        {
            error = $"\"{text}\" does not fit in 64 bits";
            return false;
        }

        value = mantissa << shift;
        return true;
    }

    private static int SuffixShift(string suffix)
    {
        if (suffix.Length == 0)
        {
            return 0;
        }

        string unit = suffix.EndsWith("iB", StringComparison.Ordinal) ? suffix.Substring(0, suffix.Length - 2) : suffix;
        return unit.ToUpperInvariant() switch
        {
            "K" => 10,
            "M" => 20,
            "G" => 30,
            "T" => 40,
            "P" => 50,
            "E" => 60,
            _ => -1,
        };
    }
}
