using System;
using System.Globalization;

namespace Hvo.Lib;

/// <summary>
/// What <see cref="CmdLine.Memparse"/> read from <paramref name="Text"/>.
/// </summary>
/// <param name="Text">The text parsed.</param>
/// <param name="Bytes">The number shifted by its suffix, wrapped modulo 2^64 where it overflowed, as the kernel's is.</param>
/// <param name="NumberEnd">Where the number stopped: 0 when there was no digit.</param>
/// <param name="End">Where memparse stopped (its <c>retptr</c>): after the suffix, if there was one.</param>
/// <param name="Overflow">The number or its suffix's shift lost bits. The kernel does not notice; callers that refuse such a size do.</param>
public readonly record struct Memparsed(string Text, ulong Bytes, int NumberEnd, int End, bool Overflow)
{
    /// <summary>At least one digit was read.</summary>
    public bool HasNumber => NumberEnd > 0;

    /// <summary>A K, M, G, T, P or E followed the number.</summary>
    public bool HasSuffix => End > NumberEnd;

    /// <summary>What follows the size: the characters memparse left.</summary>
    public string Rest => Text[End..];

    /// <summary>The text is one size and nothing else: a number, an optional suffix, nothing after it, no overflow.</summary>
    public bool IsWhole => HasNumber && End == Text.Length && !Overflow;
}

/// <summary>
/// The kernel's memparse, the one size parser of the simulator, and its inverse. Each caller
/// says what may follow a size: the kernel's own callers of memparse(s, NULL) ignore the rest
/// (demote_size_store), the boot line's <c>mem=</c> and <c>hugepagesz=</c> take only a whole size
/// (<see cref="Memparsed.IsWhole"/>), and the command line's sizes allow a B or iB after it.
/// </summary>
public static class CmdLine
{
    /// <summary>
    /// memparse: a number read as simple_strtoull(ptr, &amp;endptr, 0) reads it (a <c>0x</c> prefix is
    /// hex, another leading <c>0</c> octal; no sign, no blanks), then one optional K, M, G, T, P or E
    /// in either case, each a factor of 1024 more than the one before. A suffix with no number before
    /// it still counts (the size is 0), as in the kernel.
    /// </summary>
    public static Memparsed Memparse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int numberEnd = KernelNumbers.Parse(text, 0, 0, out ulong value, out bool overflow);
        int shift = numberEnd < text.Length ? ShiftOf(text[numberEnd]) : 0;
        if (shift == 0)
        {
            return new Memparsed(text, value, numberEnd, numberEnd, overflow);
        }

        overflow |= value > ulong.MaxValue >> shift;
        return new Memparsed(text, unchecked(value << shift), numberEnd, numberEnd + 1, overflow);
    }

    /// <summary>
    /// A size as the kernel's documentation writes it and memparse reads it back exactly: the
    /// largest K, M, G, T, P or E that divides it (4K, 2M, 1G, 16G), or plain bytes.
    /// </summary>
    public static string FormatSize(ulong bytes)
    {
        const string units = "KMGTPE";
        int u = 0;
        while (u < units.Length && bytes >= 1024 && bytes % 1024 == 0)
        {
            bytes /= 1024;
            u++;
        }

        return bytes.ToString(CultureInfo.InvariantCulture) + (u == 0 ? string.Empty : units[u - 1].ToString());
    }

    private static int ShiftOf(char c) => (c | 0x20) switch
    {
        'k' => 10,
        'm' => 20,
        'g' => 30,
        't' => 40,
        'p' => 50,
        'e' => 60,
        _ => 0,
    };
}
