using System;
using System.Globalization;

namespace Hvo.Cli.Reports;

/// <summary>
/// How every report writes sizes and counts: kB (1024 bytes) below a MiB, MiB (2^20 bytes) with one
/// decimal from there, counts with thousands separators. The text report, the terminal table and
/// <c>hvo compare</c>'s table all use these, so a number reads the same everywhere.
/// </summary>
internal static class Units
{
    /// <summary>Said once under a report that shows sizes.</summary>
    public const string Legend = "sizes: kB = 1024 bytes, MiB = 1024 kB (as hvo compare prints them)";

    public static string Count(long n) => n.ToString("N0", CultureInfo.InvariantCulture);

    public static string Kb(ulong kb) => kb.ToString("N0", CultureInfo.InvariantCulture) + " kB";

    /// <summary>Bytes as kB below a MiB, else MiB with one decimal.</summary>
    public static string Size(long bytes) => Math.Abs(bytes) < 1048576
        ? (bytes / 1024).ToString("N0", CultureInfo.InvariantCulture) + " kB"
        : (bytes / 1048576.0).ToString("N1", CultureInfo.InvariantCulture) + " MiB";
}
