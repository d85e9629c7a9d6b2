using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Hvo.HugeTlb;

/// <summary>
/// A released mainline kernel, <c>vMAJOR.MINOR</c>, from v5.14 (the first with HVO) to v7.1
/// (<see cref="Released"/>). Versions compare by number: v5.9 &lt; v5.14 &lt; v6.0.
/// </summary>
public readonly record struct KernelVersion(int Major, int Minor) : IComparable<KernelVersion>
{
    /// <summary>
    /// Every release HVO exists in: v5.14 to v5.19, v6.0 to v6.19, then v7.0 and v7.1 (Linus moved
    /// to 7.0 after 6.19, as he moved to 6.0 after 5.19).
    /// </summary>
    public static IReadOnlyList<KernelVersion> Released { get; } =
    [
        .. Enumerable.Range(14, 6).Select(m => new KernelVersion(5, m)),
        .. Enumerable.Range(0, 20).Select(m => new KernelVersion(6, m)),
        new KernelVersion(7, 0),
        new KernelVersion(7, 1),
    ];

    /// <summary>The oldest and the newest release modelled.</summary>
    public static KernelVersion First => Released[0];

    public static KernelVersion Last => Released[^1];

    /// <summary><c>v6.1</c>, <c>6.1</c> (or <c>V6.1</c>): a version of <see cref="Released"/>; false for anything else.</summary>
    public static bool TryParse(string? text, out KernelVersion version)
    {
        version = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string t = text.Trim();
        if (t[0] is 'v' or 'V')
        {
            t = t[1..];
        }

        string[] parts = t.Split('.');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
        {
            return false;
        }

        var v = new KernelVersion(major, minor);
        if (!Released.Contains(v))
        {
            return false;
        }

        version = v;
        return true;
    }

    /// <summary>The release after this one in <see cref="Released"/>, or null for the last.</summary>
    public KernelVersion? Next
    {
        get
        {
            int i = IndexOf(this);
            return i >= 0 && i + 1 < Released.Count ? Released[i + 1] : null;
        }
    }

    /// <summary>The release before this one in <see cref="Released"/>, or null for the first.</summary>
    public KernelVersion? Previous
    {
        get
        {
            int i = IndexOf(this);
            return i > 0 ? Released[i - 1] : null;
        }
    }

    public int CompareTo(KernelVersion other) => Major != other.Major ? Major.CompareTo(other.Major) : Minor.CompareTo(other.Minor);

    public static bool operator <(KernelVersion a, KernelVersion b) => a.CompareTo(b) < 0;

    public static bool operator >(KernelVersion a, KernelVersion b) => a.CompareTo(b) > 0;

    public static bool operator <=(KernelVersion a, KernelVersion b) => a.CompareTo(b) <= 0;

    public static bool operator >=(KernelVersion a, KernelVersion b) => a.CompareTo(b) >= 0;

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"v{Major}.{Minor}");

    private static int IndexOf(KernelVersion v)
    {
        for (int i = 0; i < Released.Count; i++)
        {
            if (Released[i] == v)
            {
                return i;
            }
        }

        return -1;
    }
}

/// <summary>What a milestone changed: the choice of <see cref="HvoPolicy"/> it turns on.</summary>
public enum KernelChange
{
    /// <summary>v5.14: HVO itself, keeping two vmemmap pages, splitting vmemmap PMDs on demand.</summary>
    Hvo,

    /// <summary>v5.18: one vmemmap page kept; tails map the head vmemmap page (fake heads).</summary>
    ReserveOne,

    /// <summary>v5.19: vm.hugetlb_optimize_vmemmap, and HVO refused where struct page is not a power of two.</summary>
    Sysctl,

    /// <summary>v6.0: memmap_on_memory and HVO together: self-hosted vmemmap is left unoptimized; the boot lines in KiB.</summary>
    MemmapOnMemory,

    /// <summary>v6.2: the head vmemmap page is replaced by a fresh copy.</summary>
    CopyHead,

    /// <summary>
    /// v6.7: the pages of a write are allocated first, then optimized as one batch; the tail struct
    /// pages of a boot-time gigantic page are initialized only when HVO does not optimize it.
    /// </summary>
    Batched,

    /// <summary>v6.10: an RCU grace period before remapping and restoring, against speculative PFN walkers.</summary>
    RcuBeforeRemap,

    /// <summary>v6.11: /proc/vmstat's nr_memmap_pages and nr_memmap_boot_pages.</summary>
    MemmapVmstat,

    /// <summary>v6.12: the grace period only when a page is really optimized or restored.</summary>
    RcuOnlyWhenOptimizing,

    /// <summary>v6.15: boot-time gigantic pages optimized while their vmemmap is populated (x86-64).</summary>
    PreHvo,

    /// <summary>v7.1: one shared read-only page of tail struct pages per zone and order; no fake heads, no RCU step.</summary>
    SharedTail,
}

/// <summary>
/// A kernel release where HVO's behaviour changed, with the commits that changed it. Every other
/// release behaves as the newest milestone at or before it (<see cref="HvoPolicy.ForVersion"/>).
/// </summary>
/// <param name="Version">The first release with the change.</param>
/// <param name="Change">The choice it turns on.</param>
/// <param name="Commits">The mainline commits (ids and subjects), or the series, that made the change.</param>
/// <param name="Summary">What changed, in one line.</param>
public sealed record KernelMilestone(KernelVersion Version, KernelChange Change, string Commits, string Summary)
{
    /// <summary>The milestones, oldest first.</summary>
    public static IReadOnlyList<KernelMilestone> All { get; } =
    [
        new(new(5, 14), KernelChange.Hvo,
            "f41f2ed43ca5 (mm: hugetlb: free the vmemmap pages associated with each HugeTLB page)",
            "HVO: reserve 2 (head + first tail vmemmap page), vmemmap PMDs split on demand, a flush per split and per page, each page optimized as it is allocated"),
        new(new(5, 18), KernelChange.ReserveOne,
            "e7d324850bfc (mm: hugetlb: free the 2nd vmemmap page associated with each HugeTLB page)",
            "reserve 1: tails map the head vmemmap page (fake heads); restore resets the copied struct pages"),
        new(new(5, 19), KernelChange.Sysctl,
            "78f39084b41d (mm: hugetlb_vmemmap: add hugetlb_optimize_vmemmap sysctl), 0effdf461c57 (mm: hugetlb_vmemmap: disable hugetlb_optimize_vmemmap when struct page crosses page boundaries)",
            "/proc/sys/vm/hugetlb_optimize_vmemmap; HVO refused where sizeof(struct page) is not a power of two; the boot line says \"can optimize\""),
        new(new(6, 0), KernelChange.MemmapOnMemory,
            "66361095129b (mm: memory_hotplug: make hugetlb_optimize_vmemmap compatible with memmap_on_memory)",
            "boot lines in KiB (report_hugepages); memory_hotplug.memmap_on_memory=1 with HVO: a hot-added block's self-hosted struct pages are left unoptimized (vmemmap_should_optimize), where before HVO on at boot turned memmap_on_memory off"),
        new(new(6, 2), KernelChange.CopyHead,
            "11aad2631bf7 (mm/hugetlb_vmemmap: remap head page to newly allocated page)",
            "the head vmemmap page is replaced by a fresh copy, so the whole original block is freed"),
        new(new(6, 7), KernelChange.Batched,
            "d67e32f26713 (hugetlb: restructure pool allocations), 79359d6d24df (hugetlb: perform vmemmap optimization on a list of pages), f4b7e3efaddb (hugetlb: batch PMD split for bulk vmemmap dedup), f13b83fdd996 (hugetlb: batch TLB flushes when freeing vmemmap); fde1c4ecf916 (mm: hugetlb: skip initialization of gigantic tail struct pages if freed by HVO)",
            "a write's pages are allocated first, then optimized as a batch: split pass, one flush, remap pass, one flush, free; a boot-time gigantic page's tail struct pages are initialized only if HVO does not optimize it"),
        new(new(6, 10), KernelChange.RcuBeforeRemap,
            "bd225530a4c7 (mm/hugetlb_vmemmap: fix race with speculative PFN walkers)",
            "synchronize_rcu before remapping or restoring (once per batch, HVO off too), and page_ref_add_unless under rcu_read_lock with page_count_writable: a speculative get_page_unless_zero no longer writes a read-only tail"),
        new(new(6, 11), KernelChange.MemmapVmstat,
            "15995a352474 (mm: report per-page metadata information)",
            "/proc/vmstat nr_memmap_pages and nr_memmap_boot_pages"),
        new(new(6, 12), KernelChange.RcuOnlyWhenOptimizing,
            "c2a967f6ab0e (mm/hugetlb_vmemmap: don't synchronize_rcu() without HVO)",
            "the grace period only when a page of the call is really optimized or restored"),
        new(new(6, 15), KernelChange.PreHvo,
            "Frank van der Linden's \"hugetlb/CMA improvements for large systems\": b1222550fbf7 (mm/hugetlb: do pre-HVO for bootmem allocated pages), with HUGE_BOOTMEM_HVO and ARCH_WANT_HUGETLB_VMEMMAP_PREINIT on x86-64",
            "pre-HVO: the vmemmap of hugepagesz=1G boot pages is populated already optimized, never allocated in full (x86-64; not modelled: the model populates the vmemmap before it allocates boot pages). The struct pages they leave uninitialized date from v6.7"),
        new(new(7, 1), KernelChange.SharedTail,
            "Kiryl Shutsemau's \"mm: Eliminate fake head pages from vmemmap optimization\": 8c846c879e22 (mm: rework compound_head() for power-of-2 sizeof(struct page)), 622026e87c40 (mm/hugetlb: remove fake head pages), 32c440d67e6c (mm: drop fake head checks), 01b1d0ffb6f7 (hugetlb: remove VMEMMAP_SYNCHRONIZE_RCU)",
            "tails map one shared read-only page of tail struct pages per zone and order; the head vmemmap page stays unique; no fake heads, no synchronize_rcu and no rcu_read_lock in page_ref_add_unless. Needs a power-of-two struct page and a vmemmap aligned for the mask"),
    ];

    /// <summary>The milestone that turns <paramref name="change"/> on.</summary>
    public static KernelMilestone Of(KernelChange change) => All.First(m => m.Change == change);

    /// <summary>Is <paramref name="change"/> in <paramref name="version"/>?</summary>
    public static bool Has(KernelVersion version, KernelChange change) => version >= Of(change).Version;

    /// <summary>The newest milestone at or before <paramref name="version"/>.</summary>
    public static KernelMilestone Latest(KernelVersion version) => All.Last(m => m.Version <= version);
}
