using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Hvo.HugeTlb;

/// <summary>
/// A released kernel: a mainline release <c>vMAJOR.MINOR</c>, from v5.14 (the first with HVO) to
/// v7.1 (<see cref="Released"/>), or a stable point release <c>vMAJOR.MINOR.SUBLEVEL</c> on the
/// branch of a mainline release (<see cref="Stable"/>, those where HVO's behaviour changed).
/// Versions compare by number: v5.9 &lt; v5.14 &lt; v6.0, and a point release sorts after its
/// branch's release and before the next: v6.12 &lt; v6.12.111 &lt; v6.12.118 &lt; v6.13. A stable
/// release has what its branch's mainline release has, plus the changes backported to the branch
/// up to its sublevel (<see cref="KernelMilestone.Backports"/>), never a later mainline change.
/// </summary>
/// <param name="Major">The major number.</param>
/// <param name="Minor">The minor number.</param>
/// <param name="Sublevel">The stable point release (the Makefile's SUBLEVEL); 0 for the mainline release.</param>
public readonly record struct KernelVersion(int Major, int Minor, int Sublevel = 0) : IComparable<KernelVersion>
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

    /// <summary>
    /// The stable point releases that change HVO's behaviour as the model sees it, oldest first:
    /// 6.12.111 (the hugetlb fields move to the folio's page[3], and restore resets four struct
    /// pages), 6.12.114 (the first with the vmemmap_walk refactoring and the rollback fix, so a
    /// restore copies the head vmemmap page unreset) and 6.12.118 (the release measured; as 6.12.114
    /// for HVO). README.md lists the other stable changes to mm/hugetlb_vmemmap.c.
    /// </summary>
    public static IReadOnlyList<KernelVersion> Stable { get; } =
    [
        new KernelVersion(6, 12, 111),
        new KernelVersion(6, 12, 114),
        new KernelVersion(6, 12, 118),
    ];

    /// <summary>The mainline release whose stable branch this is (itself for a mainline release).</summary>
    public KernelVersion Branch => new(Major, Minor);

    /// <summary>A stable point release rather than a mainline one.</summary>
    public bool IsStable => Sublevel != 0;

    /// <summary>The oldest and the newest release modelled.</summary>
    public static KernelVersion First => Released[0];

    public static KernelVersion Last => Released[^1];

    /// <summary>
    /// <c>v6.1</c>, <c>6.1</c> (or <c>V6.1</c>): a version of <see cref="Released"/>; <c>v6.12.118</c>:
    /// one of <see cref="Stable"/>; false for anything else.
    /// </summary>
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
        int sublevel = 0;
        if (parts.Length is < 2 or > 3
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int minor)
            || (parts.Length == 3 && !int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out sublevel)))
        {
            return false;
        }

        var v = new KernelVersion(major, minor, sublevel);
        if (!(sublevel == 0 ? Released : Stable).Contains(v))
        {
            return false;
        }

        version = v;
        return true;
    }

    /// <summary>The mainline release after this one in <see cref="Released"/>, or null for the last (and for a stable release).</summary>
    public KernelVersion? Next
    {
        get
        {
            int i = IndexOf(this);
            return i >= 0 && i + 1 < Released.Count ? Released[i + 1] : null;
        }
    }

    /// <summary>
    /// The release before this one: in <see cref="Released"/> for a mainline release (null for the
    /// first); for a stable release, the previous one of <see cref="Stable"/> on its branch, or the
    /// branch's mainline release.
    /// </summary>
    public KernelVersion? Previous
    {
        get
        {
            if (IsStable)
            {
                KernelVersion self = this;
                return Stable.LastOrDefault(s => s.Branch == self.Branch && s < self) is { Sublevel: > 0 } earlier ? earlier : Branch;
            }

            int i = IndexOf(this);
            return i > 0 ? Released[i - 1] : null;
        }
    }

    public int CompareTo(KernelVersion other) =>
        Major != other.Major ? Major.CompareTo(other.Major) : Minor != other.Minor ? Minor.CompareTo(other.Minor) : Sublevel.CompareTo(other.Sublevel);

    public static bool operator <(KernelVersion a, KernelVersion b) => a.CompareTo(b) < 0;

    public static bool operator >(KernelVersion a, KernelVersion b) => a.CompareTo(b) > 0;

    public static bool operator <=(KernelVersion a, KernelVersion b) => a.CompareTo(b) <= 0;

    public static bool operator >=(KernelVersion a, KernelVersion b) => a.CompareTo(b) >= 0;

    public override string ToString() =>
        IsStable ? string.Create(CultureInfo.InvariantCulture, $"v{Major}.{Minor}.{Sublevel}") : string.Create(CultureInfo.InvariantCulture, $"v{Major}.{Minor}");

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

    /// <summary>
    /// v6.15 (6.12.111 on 6.12.y): the folio's hugetlb fields move from page[2] to page[3], whose
    /// mapping free_tail_page_prepare then skips; restore resets four copied struct pages, not three.
    /// </summary>
    HugetlbPage3,

    /// <summary>
    /// v7.1 (6.12.114 on 6.12.y): vmemmap_restore_pte copies the whole page the PTE maps and resets
    /// nothing. Right where that page holds plain tails (v7.1's shared tail page); where the tails
    /// still map the head vmemmap page (6.12.y) every restored page starts with a copy of the head
    /// and the folio's first tails.
    /// </summary>
    RestoreCopiesMapped,
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
    /// <summary>
    /// The stable point releases that took the change, the first on each branch (a release of
    /// <see cref="KernelVersion.Stable"/>); every later point release on that branch has it too.
    /// </summary>
    public IReadOnlyList<KernelVersion> Backports { get; init; } = [];

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
        new(new(6, 15), KernelChange.HugetlbPage3,
            "4eeec8c89a0c (mm: move hugetlb specific things in folio to page[3]) and its fix \"mm, hugetlb: increment the number of pages to be reset on HVO\" (Oscar Salvador, April 2025)",
            "the folio's hugetlb fields (subpool, cgroup pointers, hwpoison list) move from page[2] to page[3], whose mapping then reads NULL: free_tail_page_prepare skips page[3], and restore resets four copied struct pages instead of three (NR_RESET_STRUCT_PAGE)")
        {
            Backports = [new(6, 12, 111)],
        },
        new(new(6, 15), KernelChange.PreHvo,
            "Frank van der Linden's \"hugetlb/CMA improvements for large systems\": b1222550fbf7 (mm/hugetlb: do pre-HVO for bootmem allocated pages), with HUGE_BOOTMEM_HVO and ARCH_WANT_HUGETLB_VMEMMAP_PREINIT on x86-64",
            "pre-HVO: the vmemmap of hugepagesz=1G boot pages is populated already optimized, never allocated in full (x86-64; not modelled: the model populates the vmemmap before it allocates boot pages). The struct pages they leave uninitialized date from v6.7"),
        new(new(7, 1), KernelChange.RestoreCopiesMapped,
            "c0b495b91a47 (mm/hugetlb: refactor code around vmemmap_walk), c7bde43f6daf (mm/hugetlb_vmemmap: fix incorrect vmemmap restore in rollback)",
            "vmemmap_restore_pte copies the whole page the tail PTE maps and resets no struct page: in v7.1 that is the shared page of plain tails. Backported to 6.12.114 without the shared tail page (622026e87c40), where the tails still map the head vmemmap page: every restored vmemmap page starts with copies of the head and the folio's first tails, free_pages_prepare finds them, and the huge page never returns to the buddy allocator")
        {
            Backports = [new(6, 12, 114)],
        },
        new(new(7, 1), KernelChange.SharedTail,
            "Kiryl Shutsemau's \"mm: Eliminate fake head pages from vmemmap optimization\": 8c846c879e22 (mm: rework compound_head() for power-of-2 sizeof(struct page)), 622026e87c40 (mm/hugetlb: remove fake head pages), 32c440d67e6c (mm: drop fake head checks), 01b1d0ffb6f7 (hugetlb: remove VMEMMAP_SYNCHRONIZE_RCU)",
            "tails map one shared read-only page of tail struct pages per zone and order; the head vmemmap page stays unique; no fake heads, no synchronize_rcu and no rcu_read_lock in page_ref_add_unless. Needs a power-of-two struct page and a vmemmap aligned for the mask"),
    ];

    /// <summary>The milestone that turns <paramref name="change"/> on.</summary>
    public static KernelMilestone Of(KernelChange change) => All.First(m => m.Change == change);

    /// <summary>
    /// Is <paramref name="change"/> in <paramref name="version"/>: from its mainline release on, and
    /// on a stable branch from the point release that took it.
    /// </summary>
    public static bool Has(KernelVersion version, KernelChange change) => Of(change).In(version);

    /// <summary>Is this milestone's change in <paramref name="version"/> (mainline, or backported to its stable branch by then)?</summary>
    public bool In(KernelVersion version) =>
        version >= Version || (version.IsStable && Backports.Any(b => b.Branch == version.Branch && b <= version));

    /// <summary>
    /// The newest milestone in <paramref name="version"/>: for a stable release, one backported to
    /// its branch by then if that came after the branch's own milestones.
    /// </summary>
    public static KernelMilestone Latest(KernelVersion version) =>
        All.Where(m => m.In(version)).OrderBy(m => m.Version <= version.Branch ? m.Version : m.Backports.First(b => b.Branch == version.Branch)).Last();

    /// <summary>The stable release of <paramref name="version"/>'s branch that took this milestone's change, or null (none did, or it is mainline's own).</summary>
    public KernelVersion? BackportIn(KernelVersion version) =>
        version.IsStable && Version > version.Branch ? Backports.FirstOrDefault(b => b.Branch == version.Branch && b <= version) is { Sublevel: > 0 } b ? b : null : null;
}
