using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// One kernel version's HVO behaviour, as a small set of choices over the one walk and its
/// visitors, and what it needs of the machine: how live entries change is the machine's
/// (<see cref="MachineConfig.EntryWriter"/>), and a policy written for one entry writer
/// (<see cref="RequiredWriter"/>) is refused on a machine with another (<see cref="Refusal"/>).
/// <see cref="Newest"/> is the default; <see cref="V5_14"/> is the seed patch's.
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
    /// Needs the machine's FEAT_BBM level 2 entry writer (and so CPUs with it).
    /// </summary>
    public static readonly HvoPolicy Arm64Bbml2 = new("arm64-bbml2", 2, false, false, true,
        "arm64 FEAT_BBM level 2 (approach C, Arm ARM D8.16.1-2): direct remap onto an identical page; reserve 2, batched as v6.7")
    {
        RequiredWriter = EntryWriterKind.Bbml2,
    };

    /// <summary>
    /// arm64, break-before-make with faulting readers: Nanyong Sun's "arm64: mm: HVO: support BBM of
    /// vmemmap pgtable safely" (linux-arm-kernel / linux-mm, January 2024; approach A in the later
    /// comparison): vmemmap_update_pmd / vmemmap_update_pte break each entry (invalid), flush it,
    /// then make the new one under init_mm.page_table_lock; a CPU touching that vmemmap meanwhile
    /// takes a kernel fault whose handler waits on the lock and retries. Will Deacon raised
    /// predictability concerns on it (March 2024); the model shows the cost and that no reader sees
    /// wrong bytes. On v6.2's layout (reserve 1, fresh head copy), page by page: the
    /// per-entry flushes replace v6.7's batch flushes. Needs the break-flush-make entry writer.
    /// </summary>
    public static readonly HvoPolicy Arm64BbmFaultRetry = new("arm64-bbm-fault", 1, true, true, false,
        "arm64 break-before-make per entry (Nanyong Sun, 2024): break, flush, make; readers fault and retry")
    {
        RequiredWriter = EntryWriterKind.BreakFlushMake,
    };

    /// <summary>
    /// arm64, clear the access flag + flush + compare-and-exchange: on v6.2's layout, with the
    /// machine's clear-access-flag entry writer (<see cref="EntryWriterKind.ClearAccessFlag"/>:
    /// pte_mkold on the live tail entries, one flush, cmpxchg each, bounded retries against CPUs that
    /// set AF meanwhile). When the retries run out the writer puts the page back on its own frames
    /// and the page stays unoptimized, counted as <see cref="OptimizeFailure.BbmRetriesExhausted"/>.
    /// The PMD split and the restore go by break, flush, make (a restore must not be left half done).
    /// </summary>
    public static readonly HvoPolicy Arm64BbmAccessFlag = new("arm64-bbm-af", 1, true, true, false,
        "arm64 clear-AF + flush + cmpxchg with bounded retries (rolled back when exhausted); split by break-before-make")
    {
        RequiredWriter = EntryWriterKind.ClearAccessFlag,
    };

    /// <summary>
    /// The entry writer the policy was written for; null when it runs on any (the kernel versions',
    /// which change live entries directly where the machine lets them).
    /// </summary>
    public EntryWriterKind? RequiredWriter { get; init; }

    /// <summary>Why a machine configured as <paramref name="config"/> cannot run this policy on <paramref name="arch"/>, or null.</summary>
    public string? Refusal(MachineConfig config, ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(arch);
        EntryWriterKind machine = config.DefaultEntryWriter(arch);
        return RequiredWriter is { } needed && needed != machine
            ? $"{Name} needs the {WriterName(needed)} entry writer; this machine's is {WriterName(machine)}"
            : null;
    }

    /// <summary>An entry writer's name as options and reports spell it.</summary>
    public static string WriterName(EntryWriterKind kind) => kind switch
    {
        EntryWriterKind.Direct => "direct",
        EntryWriterKind.Bbml2 => "bbml2",
        EntryWriterKind.BreakFlushMake => "break-flush-make",
        _ => "clear-af",
    };

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
