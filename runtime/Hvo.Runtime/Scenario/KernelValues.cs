using System;
using Hvo.Lib;

namespace Hvo.Scenario;

/// <summary>
/// How the kernel reads a number or a boolean written to a file: kstrtoull (sysfs stores),
/// proc_doulongvec_minmax / proc_dointvec (sysctls), simple_attr_write (debugfs numbers) and
/// kstrtobool (debugfs booleans). Each returns the errno the write would fail with.
/// </summary>
public static class KernelValues
{
    /// <summary>
    /// kstrtoull(buf, base): an optional '+', digits of <paramref name="radix"/> (0: a 0x prefix
    /// means hex, a leading 0 octal), at most one trailing newline. No digits, a sign, other
    /// characters: -EINVAL; more than 64 bits: -ERANGE.
    /// </summary>
    public static Errno KstrToULong(string text, int radix, out ulong value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        int i = 0;
        if (i < text.Length && text[i] == '+')
        {
            i++;
        }

        int consumed = KernelNumbers.Parse(text, i, radix, out value, out bool overflow);
        if (overflow)
        {
            value = 0;
            return Errno.ERANGE;
        }

        i += consumed;
        if (i < text.Length && text[i] == '\n')
        {
            i++;
        }

        if (consumed == 0 || i != text.Length)
        {
            value = 0; // only a whole number is stored
            return Errno.EINVAL;
        }

        return Errno.None;
    }

    /// <summary>kstrtoll: as <see cref="KstrToULong"/> with an optional '-'; out of the signed range: -ERANGE.</summary>
    public static Errno KstrToLong(string text, int radix, out long value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        bool negative = text.StartsWith('-');
        Errno e = KstrToULong(negative ? text[1..] : text, radix, out ulong magnitude);
        if (e != Errno.None)
        {
            return e;
        }

        if (negative ? magnitude > (ulong)long.MaxValue + 1 : magnitude > long.MaxValue)
        {
            return Errno.ERANGE;
        }

        value = negative ? (long)(0 - magnitude) : (long)magnitude;
        return Errno.None;
    }

    /// <summary>
    /// A sysctl write of one unsigned long (proc_doulongvec_minmax): blanks skipped, then one
    /// number with base prefixes (strtoul_lenient, base 0), followed by a blank, a newline or the
    /// end. A minus sign, no number, overflow, or any other character: -EINVAL. Further
    /// numbers are ignored (the table holds one value).
    /// </summary>
    public static Errno ProcULong(string text, out ulong value)
    {
        value = 0;
        if (!ProcNumber(text, out bool negative, out ulong magnitude) || negative)
        {
            return Errno.EINVAL;
        }

        value = magnitude;
        return Errno.None;
    }

    /// <summary>A sysctl write of one int (proc_dointvec, proc_dointvec_minmax): as <see cref="ProcULong"/>, a sign allowed, within int.</summary>
    public static Errno ProcInt(string text, out int value)
    {
        value = 0;
        if (!ProcNumber(text, out bool negative, out ulong magnitude) || magnitude > (negative ? (ulong)int.MaxValue + 1 : int.MaxValue))
        {
            return Errno.EINVAL;
        }

        value = negative ? (int)(0 - (long)magnitude) : (int)magnitude;
        return Errno.None;
    }

    /// <summary>kstrtobool: y, Y, t, T, 1, "on" are true; n, N, f, F, 0, "off" are false; only the first one or two characters count.</summary>
    public static bool TryParseBool(string text, out bool value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = false;
        if (text.Length == 0)
        {
            return false;
        }

        switch (text[0])
        {
            case 'y' or 'Y' or 't' or 'T' or '1':
                value = true;
                return true;
            case 'n' or 'N' or 'f' or 'F' or '0':
                return true;
            case 'o' or 'O' when text.Length > 1:
                switch (text[1])
                {
                    case 'n' or 'N':
                        value = true;
                        return true;
                    case 'f' or 'F':
                        return true;
                }

                break;
        }

        return false;
    }

    // proc_skip_spaces + proc_get_long: one number, then a blank, newline or nothing.
    private static bool ProcNumber(string text, out bool negative, out ulong value)
    {
        ArgumentNullException.ThrowIfNull(text);
        value = 0;
        negative = false;
        int i = 0;
        while (i < text.Length && IsSpace(text[i]))
        {
            i++;
        }

        if (i < text.Length && text[i] == '-')
        {
            negative = true;
            i++;
        }

        int consumed = KernelNumbers.Parse(text, i, 0, out value, out bool overflow);
        if (consumed == 0 || overflow)
        {
            return false;
        }

        i += consumed;
        return i == text.Length || text[i] is ' ' or '\t' or '\n';
    }

    private static bool IsSpace(char c) => c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f';
}
