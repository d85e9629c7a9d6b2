using System;
using System.Globalization;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Hvo.Tests;

/// <summary>
/// The opt-in long category: tests marked <c>[TestCategory("Long")]</c> run their long form only
/// with <c>HVO_LONG=1</c> (CI leaves it unset, so they report Inconclusive and count as skipped).
/// <c>HVO_LONG_ITER=N</c> scales their iteration counts.
/// </summary>
internal static class LongRun
{
    public static bool Enabled => Environment.GetEnvironmentVariable("HVO_LONG") == "1";

    /// <summary>Stops the calling test as Inconclusive unless the long category is enabled.</summary>
    public static void Require(string what)
    {
        if (!Enabled)
        {
            Assert.Inconclusive($"{what} is opt-in: set HVO_LONG=1 (and HVO_LONG_ITER=N to scale it) to run it");
        }
    }

    /// <summary>HVO_LONG_ITER if set to a positive number, else <paramref name="fallback"/>.</summary>
    public static long Iterations(long fallback)
    {
        string? text = Environment.GetEnvironmentVariable("HVO_LONG_ITER");
        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) && n > 0 ? n : fallback;
    }
}
