using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Concurrency;

/// <summary>Test data for the SMP tests.</summary>
public static class SmpCases
{
    /// <summary>
    /// (architecture, optimizable huge page size, policy) where the spec's replacement rule is "store":
    /// there a valid PTE may be replaced by another and flushed afterwards, which is what every
    /// policy here does. On arm64 the same policies break BBM by design (why arm64 HVO was
    /// reverted); those architectures are left to the BBM-safe policies' own tests.
    /// </summary>
    /// <remarks>
    /// And, on the architectures with a stricter rule (arm64's break-before-make, s390's invalidate),
    /// the strategies written for it that break live entries (break-flush-make, clear-AF + cmpxchg,
    /// pause-cpus, invalidate): there a reader meets invalid or
    /// access-flag-clear entries, takes the fault and retries, and must still never read wrong bytes.
    /// </remarks>
    public static IEnumerable<object[]> ReaderCases =>
        from e in ArchRegistry.All
        from h in e.Info.HugePageSizes
        from p in HvoPolicy.All
        where e.Info.Replacement != ReplacementRule.Store ? ReadersRetry(p) && p.ForRule == e.Info.Replacement : p.RequiredWriter is null
        where HugePageVmemmap.For(e.Info, h.Size).IsOptimizable(p.ReservePages)
        select new object[] { e.Name, h.Size, p.Name };

    /// <summary>The policy breaks live entries: a reader may fault on them and retries, as the kernel's fault handler would.</summary>
    public static bool ReadersRetry(HvoPolicy p) => p.RequiredWriter is EntryWriterKind.BreakFlushMake or EntryWriterKind.ClearAccessFlag or EntryWriterKind.Invalidate or EntryWriterKind.PauseCpus;

    /// <summary>
    /// (architecture, policy) for every architecture whose boot vmemmap is mapped with blocks, so a
    /// PMD (or larger) leaf is there to split. The split race is about init_mm.page_table_lock, not
    /// about BBM: on arm64 it runs with the BBM checker off (the split itself breaks BBM there).
    /// </summary>
    /// <remarks>
    /// Every policy: under the break-before-make ones the winner breaks the block before it makes
    /// the table, and the loser, which may read the broken entry, waits for the lock and looks again.
    /// </remarks>
    /// <summary>CI's share of <see cref="ReaderCases"/>: each family's representative (<see cref="Archs.IsRepresentative"/>).</summary>
    public static IEnumerable<object[]> ReaderCasesCi => Archs.Representatives(ReaderCases);

    /// <summary>The long category's share: the rest of each family.</summary>
    public static IEnumerable<object[]> ReaderCasesLong => Archs.Others(ReaderCases);

    public static IEnumerable<object[]> SplitCases =>
        from e in ArchRegistry.All
        where e.Info.VmemmapBootLevel < e.Info.LastLevel
        from p in HvoPolicy.All
        where TestMachines.CanRun(p, e.Info)
        select new object[] { e.Name, p.Name };
}

/// <summary>
/// A booted strict-mode machine with several CPUs, an optimizer, and huge pages prepared as
/// compound pages; and what the struct pages of those pages must read as (the canonical bytes).
/// </summary>
public sealed class SmpRig<TArch> : IDisposable where TArch : struct, IPagingArch
{
    private readonly Dictionary<ulong, Canonical> _canonical = new();

    /// <param name="optimizer">Makes the optimizer (a deliberately broken one, say); the policy's plain optimizer by default.</param>
    public SmpRig(HvoPolicy policy, ulong hugePageSize, int cpus, ulong? memory = null, bool? checkBreakBeforeMake = null, Func<Machine<TArch>, HvoPolicy, HvoOptimizer<TArch>>? optimizer = null)
    {
        Machine = Machine<TArch>.Boot(new MachineConfig
        {
            MemoryBytes = memory ?? Math.Max(4UL << 30, hugePageSize * 8),
            Cpus = cpus,
            Strict = true,
            CheckBreakBeforeMake = checkBreakBeforeMake,
            EntryWriter = TestMachines.WriterFor(policy),
            BreakBeforeMakeLevel = TestMachines.BbmLevelFor(policy),
        });
        Optimizer = optimizer?.Invoke(Machine, policy) ?? new HvoOptimizer<TArch>(Machine, policy);
        Policy = policy;
        Order = (int)Math.Log2(hugePageSize >> TArch.PageShift);
    }

    public Machine<TArch> Machine { get; }

    public HvoOptimizer<TArch> Optimizer { get; }

    public HvoPolicy Policy { get; }

    public int Order { get; }

    public ulong Frames => 1UL << Order;

    public static int StructPagesPerPage => (int)(TArch.PageSize / (ulong)TArch.StructPageBytes);

    /// <summary>A huge page from the allocator (alloc_fresh_hugetlb_folio by hand), not yet prepared; null when none is left.</summary>
    public HugePage? TryAllocateUnprepared(int node = 0)
    {
        ulong pfn;
        bool ok = Order <= Machine.Layout.MaxOrder
            ? Machine.Pages.TryAllocPages(node, Order, Gfp.Comp | Gfp.ThisNode | Gfp.NoWarn, AllocSite.HugePage, FrameOwner.HugePage, out pfn)
            : Machine.Pages.TryAllocContigPages(node, Frames, Gfp.ThisNode | Gfp.NoWarn, AllocSite.HugePage, FrameOwner.HugePage, out pfn);
        return ok ? new HugePage(pfn, Order, node, fromBoot: false) : null;
    }

    /// <summary>A huge page prepared as a compound page (prep_new_hugetlb_folio).</summary>
    public HugePage Allocate()
    {
        HugePage page = TryAllocateUnprepared() ?? throw new InvalidOperationException("the huge page itself must be allocatable in this test");
        Machine.Compounds.Prep(page);
        return page;
    }

    /// <summary>
    /// Fix what the struct pages of <paramref name="page"/> must read as, from prep_compound_page's
    /// rules, and check that the machine agrees before anything runs. Call before the CPUs start.
    /// </summary>
    public void LearnCanonical(HugePage page)
    {
        int node = Machine.Layout.NodeOf(page.HeadPfn);
        int zone = Machine.Layout.ZoneOf(page.HeadPfn);
        ulong head = Machine.StructPageAddress(page.HeadPfn);
        bool mask = Machine.BootVmemmap.CompoundInfoMask;
        bool page3 = Machine.BootVmemmap.HugetlbPage3;
        int size = TArch.StructPageBytes;
        var c = new Canonical(new byte[size], new byte[size], new byte[size], [new byte[size], new byte[size]]);
        StructPage.InitializeCompound(c.Head, node, zone, 0, head, Order, mask, page3);
        StructPage.InitializeCompound(c.FirstTail, node, zone, 1, head, Order, mask, page3);
        StructPage.InitializeCompound(c.Tail, node, zone, StructPage.FirstPlainTail, head, Order, mask, page3);
        StructPage.InitializeCompound(c.FolioTails[0], node, zone, 2, head, Order, mask, page3);
        StructPage.InitializeCompound(c.FolioTails[1], node, zone, 3, head, Order, mask, page3);
        _canonical[page.HeadPfn] = c;
        string? wrong = FirstWrongStructPage(page, cpu: 0);
        if (wrong is not null)
        {
            throw new InvalidOperationException($"before any CPU ran: {wrong}");
        }
    }

    /// <summary>Every struct page of <paramref name="page"/> read through <paramref name="cpu"/>'s MMU: null if all are canonical, else the first that is not.</summary>
    public string? FirstWrongStructPage(HugePage page, int cpu)
    {
        var bytes = new byte[TArch.StructPageBytes * StructPagesPerPage];
        for (ulong i = 0; i < page.Frames; i += (ulong)StructPagesPerPage)
        {
            int n = (int)Math.Min((ulong)StructPagesPerPage, page.Frames - i);
            Span<byte> read = bytes.AsSpan(0, n * TArch.StructPageBytes);
            AccessFault fault = Machine.Mmu.Read(cpu, Machine.StructPageAddress(page.HeadPfn + i), read);
            if (fault != AccessFault.None)
            {
                return $"{page}: struct page {i} faulted ({fault})";
            }

            for (int k = 0; k < n; k++)
            {
                string? wrong = CheckStructPage(page, i + (ulong)k, read, k);
                if (wrong is not null)
                {
                    return wrong;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Is the struct page at <paramref name="index"/> of <paramref name="page"/>, read as slot
    /// <paramref name="k"/> of <paramref name="read"/> (one access), what it must be? Null if so,
    /// else what is wrong. The head's HPageVmemmapOptimized bit may be either way (it flips while
    /// the readers run). With fake heads (v5.18 to v7.0) an optimized page's tail vmemmap pages show the
    /// head vmemmap page: slot 1 is then the first tail, and slot 0 a fake head, which must resolve
    /// to the real head the way page_fixed_fake_head does (through page[1].compound_head, read in
    /// the same access).
    /// </summary>
    public string? CheckStructPage(HugePage page, ulong index, ReadOnlySpan<byte> read, int k)
    {
        int size = TArch.StructPageBytes;
        ReadOnlySpan<byte> got = read.Slice(k * size, size);
        ulong headAddress = Machine.StructPageAddress(page.HeadPfn);
        Canonical c = _canonical[page.HeadPfn];
        if (index == 0)
        {
            return SameHead(got, c.Head) ? null : Describe(page, index, got, "the head");
        }

        if (SameTail(got, c.Expected(index)))
        {
            return null;
        }

        int slot = (int)(index % (ulong)StructPagesPerPage);
        if (Policy.FakeHeads && index >= (ulong)StructPagesPerPage)
        {
            if (slot is >= 1 and < (int)StructPage.FirstPlainTail && SameTail(got, c.Expected((ulong)slot)))
            {
                return null; // the head vmemmap page's first tails, seen through a tail vmemmap page
            }

            if (slot == 0 && (StructPage.Flags(got) & StructPage.PgHead) != 0)
            {
                // page_fixed_fake_head: a PG_head page at a vmemmap page boundary that is not the head.
                if (k + 1 >= read.Length / size)
                {
                    return Describe(page, index, got, "a fake head read without its page[1]");
                }

                ulong next = StructPage.CompoundHead(read.Slice((k + 1) * size, size));
                bool resolves = (next & 1) != 0 && next - 1 == headAddress;
                return resolves && SameHead(got, c.Head) ? null : Describe(page, index, got, "a fake head that does not resolve to the head");
            }
        }

        return Describe(page, index, got, index == 1 ? "the first tail" : "a tail");
    }

    /// <summary>Vmemmap frames (boot and runtime) now: equal to the boot count once every page is restored.</summary>
    public long VmemmapFrames => Machine.Owners.Count(FrameOwner.BootVmemmap) + Machine.Owners.Count(FrameOwner.RuntimeVmemmap);

    public void Dispose() => Machine.Dispose();

    private static bool SameHead(ReadOnlySpan<byte> got, byte[] head)
    {
        ulong mask = ~StructPage.PgHugeVmemmapOptimized;
        return (StructPage.Flags(got) & mask) == (StructPage.Flags(head) & mask) && got[8..].SequenceEqual(head.AsSpan(8));
    }

    private static bool SameTail(ReadOnlySpan<byte> got, byte[] canonical) => got.SequenceEqual(canonical);

    /// <summary>The head, the first tail, a plain tail, and the second and third tails (the folio's _deferred_list and, from v6.15, hugetlb's fields).</summary>
    private sealed record Canonical(byte[] Head, byte[] FirstTail, byte[] Tail, byte[][] FolioTails)
    {
        public byte[] Expected(ulong index) => index switch
        {
            1 => FirstTail,
            2 or 3 => FolioTails[index - 2],
            _ => Tail,
        };
    }

    private static string Describe(HugePage page, ulong index, ReadOnlySpan<byte> got, string what) =>
        $"{page}: struct page {index} should be {what} but reads {Convert.ToHexString(got[..Math.Min(24, got.Length)])}...";
}
