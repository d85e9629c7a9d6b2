using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.HugeTlb;

/// <summary>
/// One kernel version's HVO behaviour, as a small set of choices over the one walk and its
/// visitors, and what it needs of the machine: how live entries change is the machine's
/// (<see cref="MachineConfig.EntryWriter"/>), and a policy written for one entry writer
/// (<see cref="RequiredWriter"/>) is refused on a machine with another (<see cref="Refusal"/>).
/// A kernel version's policy is built from the milestones at or before it (<see cref="ForVersion"/>,
/// <see cref="KernelMilestone"/>); <see cref="Newest"/> is the default.
/// </summary>
/// <param name="Name">The kernel version it follows, as the CLI's --policy takes it.</param>
/// <param name="ReservePages">HUGETLB_VMEMMAP_RESERVE_PAGES: vmemmap pages kept per huge page (2 in v5.14, 1 from v5.18).</param>
/// <param name="ResetStructPagesOnRestore">v5.18: the kept page holds the head, so a copied page gets its first struct pages reset (reset_struct_pages).</param>
/// <param name="CopyHead">v6.2+: the kept head vmemmap page is replaced by a fresh copy so the whole original block can go back; the old one is kept if that allocation fails.</param>
/// <param name="Batched">v6.7: the pages of a write are allocated first, then hugetlb_vmemmap_optimize_folios splits the batch, flushes once, remaps without flushing, flushes once, then frees. Before v6.7 each page is optimized as it is allocated.</param>
/// <param name="Description">One line for reports.</param>
public sealed record HvoPolicy(string Name, int ReservePages, bool ResetStructPagesOnRestore, bool CopyHead, bool Batched, string Description)
{
    /// <summary>The kernel release this policy is, or null for a proposal (the arm64-* strategies).</summary>
    public KernelVersion? Version { get; init; }

    /// <summary>The kernel whose page_table_alloc a strategy runs on (s390-safe: v6.2's); null: <see cref="Version"/>.</summary>
    public KernelVersion? PageTablesOf { get; init; }

    /// <summary>
    /// Does this kernel hand out <paramref name="arch"/>'s page tables as fragments of a page? Where the
    /// spec says until which release (levels[].fragmentsUntil: s390 before v6.7, d08d4e7cd6bf) and this
    /// policy's kernel (<see cref="PageTablesOf"/>, else <see cref="Version"/>) is older. A strategy with neither: no.
    /// </summary>
    public bool PageTableFragments(ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(arch);
        return (PageTablesOf ?? Version) is { } v
            && arch.Levels.Any(l => l.FragmentsUntil is { } until && KernelVersion.TryParse(until, out KernelVersion u) && v < u);
    }

    /// <summary>v5.19: /proc/sys/vm/hugetlb_optimize_vmemmap exists (78f39084b41d).</summary>
    public bool HasSysctl { get; init; }

    /// <summary>v5.19: hugetlb_vmemmap_init refuses HVO when sizeof(struct page) is not a power of two ("struct page crosses page boundaries").</summary>
    public bool RequiresPowerOfTwoStructPage { get; init; }

    /// <summary>
    /// v6.0 (66361095129b): memory_hotplug.memmap_on_memory and HVO together; a huge page whose
    /// vmemmap is self-hosted (PageVmemmapSelfHosted) is left unoptimized (vmemmap_should_optimize),
    /// and the sysctl exists whatever memmap_on_memory says. Before, the two exclude each other:
    /// with HVO on at boot memmap_on_memory is not used (v5.14 to v5.18: mhp_supports_memmap_on_memory
    /// says no; v5.19: the parameter itself is ignored and reads N), and with memmap_on_memory on,
    /// v5.19 does not register vm.hugetlb_optimize_vmemmap, so HVO cannot be turned on later.
    /// </summary>
    public bool MemmapOnMemoryWithHvo { get; init; }

    /// <summary>
    /// Whether memory_hotplug.memmap_on_memory=<paramref name="requested"/> is in effect on a kernel
    /// of this policy with HVO <paramref name="hvoAtBoot"/> at boot: from v6.0 always as asked; before,
    /// only with HVO off at boot.
    /// </summary>
    public bool MemmapOnMemoryInEffect(bool requested, bool hvoAtBoot) => requested && (MemmapOnMemoryWithHvo || !hvoAtBoot);

    /// <summary>
    /// /sys/module/memory_hotplug/parameters/memmap_on_memory: v5.19's setter refused the parameter
    /// while HVO was on (it reads N); v5.14 to v5.18 stored it (Y) and declined it later; v6.0 on
    /// take it.
    /// </summary>
    public bool MemmapOnMemoryParameterReads(bool requested, bool hvoAtBoot) =>
        HasSysctl && !MemmapOnMemoryWithHvo ? MemmapOnMemoryInEffect(requested, hvoAtBoot) : requested;

    /// <summary>How the boot log reports what HVO frees per size.</summary>
    public HvoBootMessage BootMessage { get; init; }

    /// <summary>
    /// v6.10 (bd225530a4c7) to v7.0: synchronize_rcu before remapping or restoring, and
    /// page_ref_add_unless under rcu_read_lock with page_count_writable, against speculative PFN
    /// walkers. v7.1 drops both (01b1d0ffb6f7, 32c440d67e6c): with no fake heads a tail reads refcount 0.
    /// </summary>
    public bool RcuBeforeRemap { get; init; }

    /// <summary>v6.12 (c2a967f6ab0e): the grace period only when some page of the call is really optimized or restored.</summary>
    public bool RcuOnlyWhenOptimizing { get; init; }

    /// <summary>
    /// v6.7 (fde1c4ecf916): memblock leaves a boot-time gigantic page's tail struct pages
    /// uninitialized (MEMBLOCK_RSRV_NOINIT); hugetlb initializes the head vmemmap page's worth, and
    /// the rest only if HVO does not optimize the page.
    /// </summary>
    public bool SkipsBootTailInit { get; init; }

    /// <summary>v6.11 (15995a352474): /proc/vmstat's nr_memmap_pages and nr_memmap_boot_pages.</summary>
    public bool MemmapVmstat { get; init; }

    /// <summary>v6.15: HUGE_BOOTMEM_HVO, boot-time gigantic pages optimized as their vmemmap is populated (x86-64 only).</summary>
    public bool PreHvo { get; init; }

    /// <summary>v7.1: tails map one shared read-only page of tail struct pages per zone and order (vmemmap_tails[]); no fake heads.</summary>
    public bool SharedTail { get; init; }

    /// <summary>
    /// Collapse-on-free, a policy no kernel has (<c>--policy v7.1+collapse</c>): when a huge page is
    /// freed, each split vmemmap PMD its struct pages lie under, with no optimized page left under it,
    /// goes back to one leaf on a fresh PMD-aligned block, giving back its PTE table and the scattered
    /// frames (<see cref="VmemmapCollapse{TArch}"/>). Every kernel since the split (3bc2b6a72596) never coalesces.
    /// </summary>
    public bool CollapseOnFree { get; init; }

    /// <summary>The suffix of a policy's name that turns collapse-on-free on.</summary>
    public const string CollapseSuffix = "+collapse";

    /// <summary>This policy with collapse-on-free (<see cref="CollapseOnFree"/>); its name ends in <see cref="CollapseSuffix"/>.</summary>
    public HvoPolicy WithCollapse() => CollapseOnFree ? this : this with
    {
        Name = Name + CollapseSuffix,
        CollapseOnFree = true,
        Description = Description + "; split vmemmap PMDs collapsed back to a leaf once no page under them is optimized (no kernel does this)",
    };

    /// <summary>
    /// v6.15 (4eeec8c89a0c; 6.12.111 on 6.12.y): the folio's hugetlb fields live in page[3], so its
    /// mapping is not TAIL_MAPPING and free_tail_page_prepare skips it; restore resets four struct pages.
    /// </summary>
    public bool HugetlbPage3 { get; init; }

    /// <summary>
    /// NR_RESET_STRUCT_PAGE: how many struct pages at the start of a restored vmemmap page
    /// reset_struct_pages overwrites with a later tail (3, then 4 with <see cref="HugetlbPage3"/>);
    /// used only where <see cref="ResetStructPagesOnRestore"/>.
    /// </summary>
    public int NrResetStructPage => HugetlbPage3 ? 4 : 3;

    /// <summary>
    /// v7.1 (c0b495b91a47, c7bde43f6daf; 6.12.114 on 6.12.y): vmemmap_restore_pte copies the page the
    /// tail PTE maps as it is. With <see cref="FakeHeads"/> that page is the head vmemmap page, so
    /// every restored page starts with the head and the folio's first tails (the 6.12.114 regression).
    /// </summary>
    public bool RestoreCopiesMapped { get; init; }

    /// <summary>
    /// v5.18 to v7.0: the tail vmemmap pages map the head vmemmap page, so the struct page at the
    /// start of each reads as a head (a fake head, resolved by page_fixed_fake_head).
    /// </summary>
    public bool FakeHeads => ReservePages == 1 && !SharedTail;

    /// <summary>
    /// The policy of kernel <paramref name="version"/>: each choice on from its milestone
    /// (<see cref="KernelMilestone.All"/>); a release between milestones behaves as the one before it.
    /// </summary>
    public static HvoPolicy ForVersion(KernelVersion version)
    {
        if (version < KernelVersion.First || version > KernelVersion.Last)
        {
            throw new ArgumentOutOfRangeException(nameof(version), version, $"HVO versions are {KernelVersion.First} to {KernelVersion.Last}");
        }

        bool Has(KernelChange c) => KernelMilestone.Has(version, c);
        KernelMilestone latest = KernelMilestone.Latest(version);
        string description = latest.BackportIn(version) is { } backport
            ? $"{(backport == version ? string.Empty : $"as {backport}: ")}{latest.Version}'s change backported to {version.Branch}.y: {latest.Summary}"
            : latest.Version == version ? latest.Summary : $"as {latest.Version}: {latest.Summary}";
        return new HvoPolicy(
            version.ToString(),
            Has(KernelChange.ReserveOne) ? VmemmapReserve.V5_18 : VmemmapReserve.V5_14,
            ResetStructPagesOnRestore: Has(KernelChange.ReserveOne) && !Has(KernelChange.SharedTail) && !Has(KernelChange.RestoreCopiesMapped),
            CopyHead: Has(KernelChange.CopyHead),
            Batched: Has(KernelChange.Batched),
            description)
        {
            Version = version,
            HasSysctl = Has(KernelChange.Sysctl),
            RequiresPowerOfTwoStructPage = Has(KernelChange.Sysctl),
            MemmapOnMemoryWithHvo = Has(KernelChange.MemmapOnMemory),
            BootMessage = Has(KernelChange.MemmapOnMemory) ? HvoBootMessage.KiBFreed : Has(KernelChange.Sysctl) ? HvoBootMessage.CanOptimize : HvoBootMessage.CanFree,
            RcuBeforeRemap = Has(KernelChange.RcuBeforeRemap) && !Has(KernelChange.SharedTail),
            RcuOnlyWhenOptimizing = Has(KernelChange.RcuOnlyWhenOptimizing),
            MemmapVmstat = Has(KernelChange.MemmapVmstat),
            SkipsBootTailInit = Has(KernelChange.Batched),
            PreHvo = Has(KernelChange.PreHvo),
            SharedTail = Has(KernelChange.SharedTail),
            HugetlbPage3 = Has(KernelChange.HugetlbPage3),
            RestoreCopiesMapped = Has(KernelChange.RestoreCopiesMapped),
        };
    }

    /// <summary>The seed: free_huge_page_vmemmap with two pages kept and split-on-demand.</summary>
    public static readonly HvoPolicy V5_14 = ForVersion(new(5, 14));

    public static readonly HvoPolicy V5_18 = ForVersion(new(5, 18));

    public static readonly HvoPolicy V6_2 = ForVersion(new(6, 2));

    public static readonly HvoPolicy V6_7 = ForVersion(new(6, 7));

    public static readonly HvoPolicy V7_1 = ForVersion(new(7, 1));

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
        ForRule = ReplacementRule.BreakBeforeMake,
        HasSysctl = true,
        RequiresPowerOfTwoStructPage = true,
        MemmapOnMemoryWithHvo = true,
        BootMessage = HvoBootMessage.KiBFreed,
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
        ForRule = ReplacementRule.BreakBeforeMake,
        HasSysctl = true,
        RequiresPowerOfTwoStructPage = true,
        MemmapOnMemoryWithHvo = true,
        BootMessage = HvoBootMessage.KiBFreed,
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
        ForRule = ReplacementRule.BreakBeforeMake,
        HasSysctl = true,
        RequiresPowerOfTwoStructPage = true,
        MemmapOnMemoryWithHvo = true,
        BootMessage = HvoBootMessage.KiBFreed,
    };

    /// <summary>
    /// s390, invalidate before a new valid entry: v6.2's layout (reserve 1, a fresh head copy), page by
    /// page, with the machine's invalidate entry writer: every live entry HVO changes (the segment
    /// split, each tail remap, each restore) is first invalidated by IPTE or IDTE, which purges it from
    /// every CPU's TLB, and only then rewritten, as the architecture demands and as
    /// __vmem_map_4k_page does for the kernel's own mappings. What the HVO code lacked the hooks for
    /// when commit 64e2f60f355e turned s390 HVO off in v6.18.
    /// </summary>
    public static readonly HvoPolicy S390Safe = V6_2 with
    {
        Name = "s390-safe",
        Description = "s390 invalidate-then-set (IPTE/IDTE before every new valid entry, as 64e2f60f355e demands); v6.2's layout, page by page",
        Version = null,
        PageTablesOf = new KernelVersion(6, 2), // v6.2's page tables: 2 KiB fragments, as the kernel it fixes
        RequiredWriter = EntryWriterKind.Invalidate,
        ForRule = ReplacementRule.Invalidate,
    };

    /// <summary>
    /// arm64, pause the other CPUs: Yu Zhao's "mm/arm64: re-enable HVO" (RFC August 2024, v2 November
    /// 2024; approach D of its comparison). Each walk that changes a live entry's output first parks
    /// every other CPU with a pseudo-NMI IPI (pause_remote_cpus), clears, flushes and writes the
    /// entries, then resumes them; on v6.7's batched layout, as the series ("mm/hugetlb_vmemmap: batch
    /// update PTEs") was. Never merged: Marc Zyngier called it stop_machine() in disguise. Needs the
    /// pause-cpus entry writer.
    /// </summary>
    public static readonly HvoPolicy Arm64PauseCpus = V6_7 with
    {
        Name = "arm64-pause",
        Description = "arm64 pause the other CPUs by IPI, then clear, flush, write (Yu Zhao, 2024); v6.7's batched layout",
        Version = null,
        RequiredWriter = EntryWriterKind.PauseCpus,
        ForRule = ReplacementRule.BreakBeforeMake,
    };

    /// <summary>
    /// The entry writer the policy was written for; null when it runs on any (the kernel versions',
    /// which change live entries directly where the machine lets them).
    /// </summary>
    public EntryWriterKind? RequiredWriter { get; init; }

    /// <summary>
    /// The architecture rule (spec key replacement) a strategy was written for: its policies are an
    /// architecture's safe strategies only where the spec has that rule. Null for the kernel versions'.
    /// </summary>
    public ReplacementRule? ForRule { get; init; }

    /// <summary>Why a machine configured as <paramref name="config"/> cannot run this policy on <paramref name="arch"/>, or null.</summary>
    public string? Refusal(MachineConfig config, ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(arch);
        EntryWriterKind machine = config.DefaultEntryWriter(arch);
        if (SharedTail && SharedTailProblem(arch, config.RamBase) is { } problem)
        {
            return $"{Name}'s shared tail page {problem}";
        }

        return RequiredWriter is { } needed && needed != machine
            ? $"{Name} needs the {WriterName(needed)} entry writer; this machine's is {WriterName(machine)}"
            : null;
    }

    /// <summary>
    /// Why v7.1's shared tail page cannot work on <paramref name="arch"/> with its RAM from
    /// <paramref name="ramBase"/> (null: where the spec puts it), or null: compound_info as a mask
    /// needs a power-of-two struct page, and every head struct page naturally aligned, so the
    /// kernel's vmemmap pointer (VMEMMAP_START, less the first RAM pfn's struct pages where the spec
    /// offsets it by RAM's start) aligned to the struct pages of the largest huge page.
    /// </summary>
    public static string? SharedTailProblem(ArchInfo arch, ulong? ramBase = null)
    {
        ArgumentNullException.ThrowIfNull(arch);
        if (!System.Numerics.BitOperations.IsPow2(arch.StructPageBytes))
        {
            return $"needs a power-of-two struct page; {arch.Name}'s is {arch.StructPageBytes} bytes";
        }

        ulong largest = arch.HugePageSizes.Max(h => h.Size);
        ulong align = largest / arch.PageSize * (ulong)arch.StructPageBytes;
        if (arch.VmemmapStart % align != 0)
        {
            return $"needs VMEMMAP_START aligned to {align} bytes (the struct pages of a {largest >> 20} MiB page) so that a tail's mask finds its head; {arch.Name}'s 0x{arch.VmemmapStart:x} is not";
        }

        ulong start = ramBase ?? arch.RamBase;
        ulong vmemmap = arch.VmemmapStart - (arch.VmemmapFirstPfn(start) * (ulong)arch.StructPageBytes);
        return vmemmap % align != 0
            ? $"needs the vmemmap aligned to {align} bytes (the struct pages of a {largest >> 20} MiB page) so that a tail's mask finds its head; with RAM from 0x{start:x} {arch.Name}'s starts at 0x{vmemmap:x}"
            : null;
    }

    /// <summary>An entry writer's name as options and reports spell it.</summary>
    public static string WriterName(EntryWriterKind kind) => kind switch
    {
        EntryWriterKind.Direct => "direct",
        EntryWriterKind.Bbml2 => "bbml2",
        EntryWriterKind.BreakFlushMake => "break-flush-make",
        EntryWriterKind.Invalidate => "invalidate",
        EntryWriterKind.PauseCpus => "pause-cpus",
        _ => "clear-af",
    };

    /// <summary>
    /// Representative kernel versions for the broad suites, one per layout: v5.14 (reserve 2), v5.18
    /// (fake heads), v6.2 (head copy), v6.7 (batched), v7.1 (shared tail, no RCU step). Their own policies change live entries
    /// directly: not safe under arm64's BBM rule, which is why commit 060a2c92d1b6 ("arm64: mm:
    /// hugetlb: Disable HUGETLB_PAGE_OPTIMIZE_VMEMMAP") turned arm64 HVO off again — the Arm
    /// architecture deems such a change UNPREDICTABLE, and a plain break is impossible while the
    /// vmemmap may be read concurrently.
    /// </summary>
    public static IReadOnlyList<HvoPolicy> Kernel { get; } = [V5_14, V5_18, V6_2, V6_7, V7_1];

    /// <summary>What <c>hvo compare</c> runs by default: the representative versions and the strategies the machine can run.</summary>
    public static IReadOnlyList<HvoPolicy> Compared { get; } = [.. Kernel, Arm64Bbml2, Arm64BbmFaultRetry, Arm64BbmAccessFlag, Arm64PauseCpus, S390Safe];

    /// <summary>
    /// The policies broad suites and <c>hvo compare</c> run by default: representative kernel
    /// versions (<see cref="Kernel"/>) and the arm64 strategies. Every other release is
    /// <see cref="Find"/>'s, and <see cref="Milestones"/> lists where behaviour changes.
    /// </summary>
    public static IReadOnlyList<HvoPolicy> All { get; } = [.. Kernel, Arm64Bbml2, Arm64BbmFaultRetry, Arm64BbmAccessFlag, Arm64PauseCpus, S390Safe];

    /// <summary>The arm64 strategies: proposals, not releases; each needs its entry writer.</summary>
    public static IReadOnlyList<HvoPolicy> Strategies { get; } = [Arm64Bbml2, Arm64BbmFaultRetry, Arm64BbmAccessFlag, Arm64PauseCpus, S390Safe];

    /// <summary>Every release from v5.14 to v7.1 (<see cref="KernelVersion.Released"/>).</summary>
    public static IReadOnlyList<HvoPolicy> Versions { get; } = [.. KernelVersion.Released.Select(ForVersion)];

    /// <summary>The release of each milestone (<see cref="KernelMilestone.All"/>): where behaviour changes.</summary>
    public static IReadOnlyList<HvoPolicy> Milestones { get; } = [.. KernelMilestone.All.Select(m => m.Version).Distinct().Select(ForVersion)];

    /// <summary>The stable point releases where behaviour changes on their branch (<see cref="KernelVersion.Stable"/>).</summary>
    public static IReadOnlyList<HvoPolicy> StableVersions { get; } = [.. KernelVersion.Stable.Select(ForVersion)];

    /// <summary>The newest kernel behaviour modelled: the default.</summary>
    public static HvoPolicy Newest => V7_1;

    /// <summary>A release (<c>v6.1</c>, <c>6.12</c>), a stable release (<c>v6.12.118</c>) or a strategy's name, either with <see cref="CollapseSuffix"/>; null for anything else.</summary>
    public static HvoPolicy? Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.EndsWith(CollapseSuffix, StringComparison.OrdinalIgnoreCase))
        {
            return Find(name[..^CollapseSuffix.Length])?.WithCollapse();
        }

        if (KernelVersion.TryParse(name, out KernelVersion v))
        {
            return (v.IsStable ? StableVersions : Versions).First(p => p.Version == v);
        }

        return Strategies.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>What --policy accepts, for messages: the version range and the strategies.</summary>
    public static string Accepted => $"a kernel version {KernelVersion.First} to {KernelVersion.Last} ({string.Join(", ", KernelVersion.Released)}), a stable release ({string.Join(", ", KernelVersion.Stable)}) or {string.Join(", ", Strategies.Select(p => p.Name))}, any of them with {CollapseSuffix} (collapse-on-free)";

    public override string ToString() => Name;
}

/// <summary>How hugetlb reports at boot what HVO frees for each huge page size.</summary>
public enum HvoBootMessage
{
    /// <summary>v5.14 to v5.18, hugetlb_vmemmap_init: <c>HugeTLB: can free N vmemmap pages for hugepages-2048kB</c>, only when HVO is on at boot.</summary>
    CanFree,

    /// <summary>v5.19: <c>HugeTLB: can optimize N vmemmap pages for hugepages-2048kB</c>.</summary>
    CanOptimize,

    /// <summary>v6.0 on, report_hugepages: <c>HugeTLB: 28 KiB vmemmap can be freed for a 2.00 MiB page</c>, after the size's <c>registered</c> line.</summary>
    KiBFreed,
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
