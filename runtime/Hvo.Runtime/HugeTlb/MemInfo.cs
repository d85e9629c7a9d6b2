using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Hvo.HugeTlb;

/// <summary>
/// /proc/meminfo's memory totals and its HugeTLB part (meminfo_proc_show, hugetlb_report_meminfo):
/// MemTotal and MemFree from the page allocator, the HugePages_ counts of the default hstate,
/// and Hugetlb, the memory of every hstate's pages. Units are the kernel's: kB or pages.
/// </summary>
public sealed record MemInfo(
    ulong MemTotalKb,
    ulong MemFreeKb,
    ulong HugePagesTotal,
    ulong HugePagesFree,
    ulong HugePagesRsvd,
    ulong HugePagesSurp,
    ulong HugepagesizeKb,
    ulong HugetlbKb)
{
    /// <summary>Shmem: tmpfs and shared memory pages (NR_SHMEM), between MemFree and the HugePages_ lines as the kernel orders them.</summary>
    public ulong ShmemKb { get; init; }

    /// <summary>The kernel's keys with their values, in the kernel's order (for a JSON report).</summary>
    public IReadOnlyList<KeyValuePair<string, ulong>> Fields =>
    [
        new("MemTotal", MemTotalKb),
        new("MemFree", MemFreeKb),
        new("Shmem", ShmemKb),
        new("HugePages_Total", HugePagesTotal),
        new("HugePages_Free", HugePagesFree),
        new("HugePages_Rsvd", HugePagesRsvd),
        new("HugePages_Surp", HugePagesSurp),
        new("Hugepagesize", HugepagesizeKb),
        new("Hugetlb", HugetlbKb),
    ];

    /// <summary>
    /// The lines as the kernel prints them: show_val_kb's <c>"MemTotal:       "</c> then the
    /// value in 8 columns and <c>" kB"</c>; <c>"HugePages_Total:   %5lu"</c> and its siblings;
    /// <c>"Hugepagesize:   %8lu kB"</c>; <c>"Hugetlb:        %8lu kB"</c>.
    /// </summary>
    public string Format()
    {
        var text = new StringBuilder();
        CultureInfo c = CultureInfo.InvariantCulture;
        text.Append(c, $"MemTotal:       {MemTotalKb,8} kB\n");
        text.Append(c, $"MemFree:        {MemFreeKb,8} kB\n");
        text.Append(c, $"Shmem:          {ShmemKb,8} kB\n");
        text.Append(c, $"HugePages_Total:   {HugePagesTotal,5}\n");
        text.Append(c, $"HugePages_Free:    {HugePagesFree,5}\n");
        text.Append(c, $"HugePages_Rsvd:    {HugePagesRsvd,5}\n");
        text.Append(c, $"HugePages_Surp:    {HugePagesSurp,5}\n");
        text.Append(c, $"Hugepagesize:   {HugepagesizeKb,8} kB\n");
        text.Append(c, $"Hugetlb:        {HugetlbKb,8} kB\n");
        return text.ToString();
    }
}
