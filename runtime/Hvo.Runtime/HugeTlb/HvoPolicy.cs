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

    public static IReadOnlyList<HvoPolicy> All { get; } = [V5_14, V5_18, V6_2, V6_7];

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
