namespace Hvo.Generator.Helpers;

internal static class Bits
{
    /// <summary>Bits lo..hi inclusive set (0 &lt;= lo &lt;= hi &lt;= 63).</summary>
    public static ulong Range(int lo, int hi) =>
        (hi >= 63 ? ulong.MaxValue : (1UL << (hi + 1)) - 1) & ~((1UL << lo) - 1);

    public static bool IsPowerOfTwo(ulong v) => v != 0 && (v & (v - 1)) == 0;

    public static string Hex(ulong v) => "0x" + v.ToString("x");

    /// <summary>A size as the kernel documentation writes it: 4K, 2M, 1G, 16G, 1T.</summary>
    public static string Size(ulong v)
    {
        string[] units = { "", "K", "M", "G", "T", "P", "E" };
        int u = 0;
        while (u < units.Length - 1 && v >= 1024 && v % 1024 == 0)
        {
            v /= 1024;
            u++;
        }

        return v + units[u];
    }
}
