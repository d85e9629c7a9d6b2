namespace Hvo.Lib;

/// <summary>
/// The digit loop under the kernel's string-to-number helpers (kstrtoull, simple_strtoull and the
/// sysctl parsers): _parse_integer_fixup_radix picks the base from the prefix, _parse_integer
/// reads the digits of that base.
/// </summary>
internal static class KernelNumbers
{
    /// <summary>
    /// _parse_integer_fixup_radix + _parse_integer from <paramref name="start"/>: with
    /// <paramref name="radix"/> 0, a <c>0x</c> followed by a hex digit means hex, another leading
    /// <c>0</c> octal, anything else decimal; with 16 a <c>0x</c> prefix is skipped. Returns the
    /// characters consumed, prefix included (0 when no digit was read); <paramref name="value"/>
    /// wraps modulo 2^64 where <paramref name="overflow"/> is set.
    /// </summary>
    public static int Parse(string text, int start, int radix, out ulong value, out bool overflow)
    {
        value = 0;
        overflow = false;
        int i = start;
        if (radix == 0)
        {
            radix = 10;
            if (i < text.Length && text[i] == '0')
            {
                radix = 8;
                if (i + 2 < text.Length && (text[i + 1] | 0x20) == 'x' && IsDigit(text[i + 2], 16))
                {
                    radix = 16;
                    i += 2;
                }
            }
        }
        else if (radix == 16 && i + 1 < text.Length && text[i] == '0' && (text[i + 1] | 0x20) == 'x')
        {
            i += 2;
        }

        int digits = i;
        while (i < text.Length && IsDigit(text[i], radix))
        {
            ulong d = (ulong)Digit(text[i]);
            if (value > (ulong.MaxValue - d) / (ulong)radix)
            {
                overflow = true;
            }

            value = unchecked((value * (ulong)radix) + d);
            i++;
        }

        return i == digits ? 0 : i - start;
    }

    private static bool IsDigit(char c, int radix) => c < 128 && Digit(c) < radix;

    private static int Digit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'z' => c - 'a' + 10,
        >= 'A' and <= 'Z' => c - 'A' + 10,
        _ => 99,
    };
}
