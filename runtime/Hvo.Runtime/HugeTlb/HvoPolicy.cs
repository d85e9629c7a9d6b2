using System;
using System.Collections.Generic;
using System.Linq;

namespace Hvo.HugeTlb;

/// <summary>
/// One kernel version's HVO behaviour, as a small set of choices over the one walk and its
/// visitors. <see cref="Newest"/> is the default; <see cref="V5_14"/> is the seed patch's.
/// </summary>
/// <param name="Name">The kernel version it follows, as the CLI's --policy takes it.</param>
/// <param name="ReservePages">HUGETLB_VMEMMAP_RESERVE_PAGES: vmemmap pages kept per huge page (2 in v5.14, 1 from v5.18).</param>
/// <param name="ResetStructPagesOnRestore">v5.18: the kept page holds the head, so a copied page gets its first struct pages reset (reset_struct_pages).</param>
/// <param name="CopyHead">v6.2+: the kept head vmemmap page is replaced by a fresh copy so the whole original block can go back; the old one is kept if that allocation fails.</param>
/// <param name="Batched">v6.7: hugetlb_vmemmap_optimize_folios splits a whole batch, flushes once, remaps without flushing, flushes once, then frees.</param>
/// <param name="Description">One line for reports.</param>
public sealed record HvoPolicy(string Name, int ReservePages, bool ResetStructPagesOnRestore, bool CopyHead, bool Batched, string Description)
{
    /// <summary>The seed: free_huge_page_vmemmap with two pages kept and split-on-demand.</summary>
    public static readonly HvoPolicy V5_14 = new("v5.14", 2, false, false, false,
        "reserve 2 (head + first tail page), split vmemmap PMDs on demand, flush per split and per page");

    public static readonly HvoPolicy V5_18 = new("v5.18", 1, true, false, false,
        "reserve 1: tails map the head vmemmap page (fake heads), restore resets the copied struct pages");

    public static readonly HvoPolicy V6_2 = new("v6.2", 1, true, true, false,
        "as v5.18, and the head vmemmap page is replaced by a fresh copy so the original block is freed whole");

    public static readonly HvoPolicy V6_7 = new("v6.7", 1, true, true, true,
        "as v6.2, batched: split pass, one flush, remap pass, one flush, then free");

    /// <summary>
    /// arm64, FEAT_BBM level 2: approach C of the 2024 linux-mm discussion of re-enabling arm64 HVO (Yu
    /// Zhao's "mm/arm64: re-enable HVO" cover letter lists it, citing Arm ARM D8.16.1-2): with BBM
    /// level 2 a live entry may be changed directly when the memory at the old and the new output
    /// address holds the same bytes, and a block may become a table mapping the same. v5.18+ maps the
    /// tails onto the head vmemmap page, whose bytes differ (fake heads), so this keeps v5.14's layout:
    /// two pages, tails onto the first tail page, which is identical to them; batched as v6.7.
    /// Needs a CPU with BBM level 2 (<see cref="MachineConfig.BreakBeforeMakeLevel"/>).
    /// </summary>
    public static readonly HvoPolicy Arm64Bbml2 = new("arm64-bbml2", 2, false, false, true,
        "arm64 FEAT_BBM level 2 (approach C, Arm ARM D8.16.1-2): direct remap onto an identical page; reserve 2, batched as v6.7")
    {
        Strategy = BbmStrategy.FeatBbmLevel2,
    };

    /// <summary>
    /// arm64, break-before-make with faulting readers: Nanyong Sun's "arm64: mm: HVO: support BBM of
    /// vmemmap pgtable safely" (linux-arm-kernel / linux-mm, January 2024; approach A in the later
    /// comparison): vmemmap_update_pmd / vmemmap_update_pte break each entry (invalid), flush it,
    /// then make the new one under init_mm.page_table_lock; a CPU touching that vmemmap meanwhile
    /// takes a kernel fault whose handler waits on the lock and retries. Will Deacon raised
    /// predictability concerns on it (March 2024); the model shows the cost and that no reader sees
    /// wrong bytes. On v6.2's layout (reserve 1, fresh head copy), page by page: the
    /// per-entry flushes replace v6.7's batch flushes.
    /// </summary>
    public static readonly HvoPolicy Arm64BbmFaultRetry = new("arm64-bbm-fault", 1, true, true, false,
        "arm64 break-before-make per entry (Nanyong Sun, 2024): break, flush, make; readers fault and retry")
    {
        Strategy = BbmStrategy.BreakFlushMake,
    };

    /// <summary>
    /// arm64, clear the access flag + flush + compare-and-exchange (DESIGN.md 1.4): pte_mkold on the
    /// live tail entries (same output address, allowed), one flush of the range, then cmpxchg each
    /// entry from its AF-clear value to the new one. A CPU that translated meanwhile set AF in hardware
    /// (FEAT_HAFDBS) and may cache the old frame, so its entry's cmpxchg fails and is retried, at most
    /// <see cref="CmpxchgRetries"/> times; then the page is rolled back to its own frames through
    /// break-before-make, counted as <see cref="OptimizeFailure.BbmRetriesExhausted"/>. Without
    /// hardware AF a reader takes an Access flag fault and retries. The PMD split is break, flush,
    /// make. Restore uses break-before-make (it must not be left half done).
    /// </summary>
    public static readonly HvoPolicy Arm64BbmAccessFlag = new("arm64-bbm-af", 1, true, true, false,
        "arm64 clear-AF + flush + cmpxchg with bounded retries (rolled back when exhausted); split by break-before-make")
    {
        Strategy = BbmStrategy.AccessFlagCmpxchg,
    };

    /// <summary>How the policy changes live vmemmap entries (what arm64's break-before-make rule needs).</summary>
    public BbmStrategy Strategy { get; init; }

    /// <summary>The FEAT_BBM level the CPUs need for this policy to keep the rule.</summary>
    public int RequiredBbmLevel => Strategy == BbmStrategy.FeatBbmLevel2 ? 2 : 0;

    /// <summary><see cref="BbmStrategy.AccessFlagCmpxchg"/>: rounds of clear-AF, flush, cmpxchg after the first before giving up.</summary>
    public int CmpxchgRetries { get; init; } = 3;

    public static IReadOnlyList<HvoPolicy> All { get; } = [V5_14, V5_18, V6_2, V6_7, Arm64Bbml2, Arm64BbmFaultRetry, Arm64BbmAccessFlag];

    /// <summary>
    /// The kernel versions' own policies, which change live entries directly: not safe under arm64's
    /// BBM rule, which is why commit 060a2c92d1b6 ("arm64: mm: hugetlb: Disable
    /// HUGETLB_PAGE_OPTIMIZE_VMEMMAP") turned arm64 HVO off again — the Arm architecture deems such
    /// a change UNPREDICTABLE, and a plain break is impossible while the vmemmap may be read concurrently.
    /// </summary>
    public static IReadOnlyList<HvoPolicy> Kernel { get; } = [V5_14, V5_18, V6_2, V6_7];

    /// <summary>The newest kernel behaviour modelled: the default.</summary>
    public static HvoPolicy Newest => V6_7;

    public static HvoPolicy? Find(string name) =>
        All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));

    public override string ToString() => Name;
}

/// <summary>How a policy changes a live vmemmap entry's output address (or a block into a table).</summary>
public enum BbmStrategy
{
    /// <summary>Directly, valid to valid, then one flush: what x86-64 allows; breaks arm64's rule.</summary>
    None,

    /// <summary>Directly, relying on FEAT_BBM level 2 and identical bytes at both output addresses.</summary>
    FeatBbmLevel2,

    /// <summary>Break (invalid), flush, make for each entry; readers fault and retry.</summary>
    BreakFlushMake,

    /// <summary>Clear the access flag, flush, compare-and-exchange; bounded retries, then roll back.</summary>
    AccessFlagCmpxchg,
}

/// <summary>
/// Whether HVO runs: the build default (CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON), the boot
/// parameter hugetlb_free_vmemmap=on|off, and the sysctl vm.hugetlb_optimize_vmemmap, which
/// affects only pages allocated after it changes.
/// </summary>
public sealed class HvoSwitches
{
    public HvoSwitches(bool buildDefault = true, bool? bootParameter = null)
    {
        BuildDefault = buildDefault;
        BootEnabled = bootParameter ?? buildDefault;
        Sysctl = BootEnabled;
    }

    public bool BuildDefault { get; }

    /// <summary>hugetlb_free_vmemmap= on the kernel command line (else the build default).</summary>
    public bool BootEnabled { get; }

    /// <summary>/proc/sys/vm/hugetlb_optimize_vmemmap.</summary>
    public bool Sysctl { get; set; }

    /// <summary>Is a page allocated now optimized?</summary>
    public bool EnabledNow => Sysctl;
}
