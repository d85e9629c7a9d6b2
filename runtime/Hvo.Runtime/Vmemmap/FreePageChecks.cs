using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.Threading;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>
/// The buddy allocator's checks of a compound page's struct pages when it is freed
/// (free_pages_prepare, free_tail_page_prepare, free_page_is_bad, bad_page), read from the vmemmap
/// as the kernel reads them. For every tail in order: free_tail_page_prepare (page[1]'s mapcounts,
/// which the model keeps none of; page[2]'s _deferred_list empty; page[3] skipped where it holds
/// hugetlb's fields; any other tail's mapping TAIL_MAPPING; then PageTail and compound_head naming
/// this head), one report at most, after which the tail's mapping and compound_head read as
/// cleared; then free_page_is_bad (_mapcount -1, no mapping, _refcount 0, no
/// PAGE_FLAGS_CHECK_AT_FREE flag; the real first tail's PAGE_FLAGS_SECOND cleared first); the head
/// last. Each failure is a bad_page report in the kernel log, in the kernel's words, a burst of 60
/// and then counted only (the model's clock does not run the minute that would reopen it); the
/// first taints the kernel (B). Any report and the block is not freed (<see cref="PageAllocator"/>
/// keeps it off the free lists). Cheap on a correct page: a vmemmap frame still deferred holds the
/// canonical struct pages (<see cref="BootVmemmap{TArch}.FillStructPages"/>) and is not read; only
/// frames written since (a head copy, a restore) are. check_pages_enabled is on, as in
/// distribution kernels built with CONFIG_INIT_ON_ALLOC_DEFAULT_ON (or CONFIG_DEBUG_VM).
/// </summary>
public sealed class FreePageChecks<TArch> : IFreePagesPrepare where TArch : struct, IPagingArch
{
    /// <summary>bad_page's burst: reports printed before it keeps quiet.</summary>
    public const int Burst = 60;

    private readonly Machine<TArch> _machine;
    private readonly Lock _lock = new();
    private readonly List<BadCompoundPage> _bad = [];
    private long _reports;
    private long _suppressed;

    public FreePageChecks(Machine<TArch> machine) => _machine = machine;

    /// <summary>bad_page reports so far, printed or not.</summary>
    public long Reports => Interlocked.Read(ref _reports);

    /// <summary>Reports past the burst, counted but not printed.</summary>
    public long Suppressed => Interlocked.Read(ref _suppressed);

    /// <summary>TAINT_BAD_PAGE: some bad_page report was made.</summary>
    public bool Tainted => Reports > 0;

    /// <summary>The compound pages whose free was refused, oldest first, each with its first wrong struct page.</summary>
    public IReadOnlyList<BadCompoundPage> BadPages
    {
        get
        {
            lock (_lock)
            {
                return [.. _bad];
            }
        }
    }

    /// <inheritdoc/>
    public int Prepare(ulong pfn, int order)
    {
        if (!_machine.Compounds.TryGetPage(pfn, out CompoundPage? page) || page.HeadPfn != pfn || page.Order != order)
        {
            return 0;
        }

        int bad = Check(page, out string? firstWrong);
        if (bad > 0)
        {
            lock (_lock)
            {
                _bad.Add(new BadCompoundPage(page.HeadPfn, page.Order, bad, firstWrong ?? "no struct page differs from its canonical contents"));
            }
        }

        // The checks' own clearing (mapping, compound_head, PG_head) and destroy's: plain pages now.
        _machine.Compounds.Destroy(page);
        return bad;
    }

    private int Check(CompoundPage page, out string? firstWrong)
    {
        firstWrong = null;
        ulong start = _machine.StructPageAddress(page.HeadPfn);
        ulong end = _machine.StructPageAddress(page.HeadPfn + page.Frames);
        var visitor = new CheckVisitor { Owner = this, Page = page, Start = start, End = end };
        _machine.PageTable.WalkRange(start & ~(TArch.PageSize - 1), end, ref visitor);
        if (visitor.HeadWritten)
        {
            // The head last (a head never written is canonical).
            visitor.Bad += FreePageIsBad(page.HeadPfn, visitor.Head);
        }

        if (visitor.Bad > 0)
        {
            visitor.FindFirstWrong = true;
            _machine.PageTable.WalkRange(start & ~(TArch.PageSize - 1), end, ref visitor);
            firstWrong = visitor.FirstWrong;
        }

        return visitor.Bad;
    }

    /// <summary>free_tail_page_prepare then free_page_is_bad for the tail at <paramref name="index"/>: the reports made (0 to 2).</summary>
    private int CheckTail(CompoundPage page, ulong index, ulong address, ReadOnlySpan<byte> p)
    {
        int bad = TailPrepare(page, index, address, p) ? 1 : 0;
        ulong flags = StructPage.Flags(p) & (index == 1 ? ~StructPage.FlagsSecond : ~0UL);

        // free_tail_page_prepare's out: mapping NULL and compound_head cleared, whatever it found.
        return bad + FreePageIsBad(page.HeadPfn + index, new Fields(flags, 0, StructPage.Mapcount(p), StructPage.Refcount(p)));
    }

    private bool TailPrepare(CompoundPage page, ulong index, ulong address, ReadOnlySpan<byte> p)
    {
        ulong head = _machine.StructPageAddress(page.HeadPfn);
        ulong pfn = page.HeadPfn + index;
        switch (index)
        {
            case 1:
                break; // the folio's mapcounts and pincount: not modelled, always as prep left them
            case 2:
                ulong list = address + StructPage.DeferredListOffset;
                if (BinaryPrimitives.ReadUInt64LittleEndian(p[StructPage.DeferredListOffset..]) != list)
                {
                    BadPage(pfn, p, "on deferred list");
                    return true;
                }

                break;
            case 3 when _machine.BootVmemmap.HugetlbPage3:
                break; // the third tail: hugetlb's fields overlap ->mapping
            default:
                if (StructPage.Mapping(p) != StructPage.TailMapping)
                {
                    BadPage(pfn, p, "corrupted mapping in tail page");
                    return true;
                }

                break;
        }

        ulong info = StructPage.CompoundHead(p);
        if ((info & 1) == 0)
        {
            BadPage(pfn, p, "PageTail not set");
            return true;
        }

        ulong named = _machine.BootVmemmap.CompoundInfoMask ? address & (info & ~1UL) : info - 1;
        if (named != head)
        {
            BadPage(pfn, p, "compound_head not consistent");
            return true;
        }

        return false;
    }

    /// <summary>free_page_is_bad / page_bad_reason: the last reason that holds is the one reported.</summary>
    private int FreePageIsBad(ulong pfn, Fields f)
    {
        string? reason = null;
        if (f.Mapcount != -1)
        {
            reason = "nonzero mapcount";
        }

        if (f.Mapping != 0)
        {
            reason = "non-NULL mapping";
        }

        if (f.Refcount != 0)
        {
            reason = "nonzero _refcount";
        }

        if ((f.Flags & StructPage.FlagsCheckAtFree) != 0)
        {
            reason = "PAGE_FLAGS_CHECK_AT_FREE flag(s) set";
        }

        if (reason is null)
        {
            return 0;
        }

        BadPage(pfn, reason, f);
        return 1;
    }

    private void BadPage(ulong pfn, ReadOnlySpan<byte> p, string reason) => BadPage(pfn, reason, Fields.Of(p));

    /// <summary>bad_page: the report (dump_page's first lines), rate-limited; the taint.</summary>
    private void BadPage(ulong pfn, string reason, Fields f)
    {
        long n = Interlocked.Increment(ref _reports);
        if (n > Burst)
        {
            Interlocked.Increment(ref _suppressed);
            return;
        }

        CultureInfo c = CultureInfo.InvariantCulture;
        _machine.Log(string.Create(c, $"BUG: Bad page state in process sh  pfn:{pfn:x5}"));
        _machine.Log(string.Create(c, $"page: refcount:{f.Refcount} mapcount:{f.Mapcount + 1} mapping:{f.Mapping:x16} index:0x0 pfn:0x{pfn:x}"));
        _machine.Log(string.Create(c, $"flags: 0x{f.Flags:x}({StructPage.FlagNames(f.Flags)})"));
        _machine.Log($"page dumped because: {reason}");
        if (n == 1)
        {
            _machine.Log("Disabling lock debugging due to kernel taint");
        }
    }

    /// <summary>Visits the compound page's vmemmap pages: checks the tails of those whose frame was written, or finds the first wrong struct page.</summary>
    private struct CheckVisitor : IPageWalkVisitor
    {
        public FreePageChecks<TArch> Owner;
        public CompoundPage Page;
        public ulong Start;
        public ulong End;
        public int Bad;
        public bool HeadWritten;
        public Fields Head;
        public bool FindFirstWrong;
        public string? FirstWrong;

        public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;

        public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            Machine<TArch> machine = Owner._machine;
            ulong leafStart = e.Addr & ~(TArch.LevelSize(e.Level) - 1);
            ulong frame = TArch.PfnOf(e.Level, e.Entry) + ((e.Addr - leafStart) >> TArch.PageShift);
            int size = TArch.StructPageBytes;
            for (ulong va = e.Addr & ~(TArch.PageSize - 1); va < e.Next && va < End; va += TArch.PageSize, frame++)
            {
                // A frame never written holds the struct pages its origin gives: canonical, nothing to find.
                if (!machine.Frames.IsMaterialized(frame) && machine.BootVmemmap.TryGetVirtualAddress(frame, out _))
                {
                    continue;
                }

                ReadOnlySpan<byte> bytes = machine.Mmu.FrameContents(frame);
                ulong from = Math.Max(va, Start);
                ulong to = Math.Min(va + TArch.PageSize, End);
                for (ulong a = from; a + (ulong)size <= to; a += (ulong)size)
                {
                    ulong index = (a - Start) / (ulong)size;
                    ReadOnlySpan<byte> p = bytes.Slice((int)(a - va), size);
                    if (FindFirstWrong)
                    {
                        if (FirstWrong is null && Wrong(machine, a, p, index) is { } field)
                        {
                            FirstWrong = string.Create(CultureInfo.InvariantCulture, $"the struct page of pfn 0x{Page.HeadPfn + index:x} (index {index} of the huge page: vmemmap page {index * (ulong)size / TArch.PageSize}, slot {index % (TArch.PageSize / (ulong)size)}) {field}");
                            return WalkAction.Stop;
                        }
                    }
                    else if (index > 0)
                    {
                        Bad += Owner.CheckTail(Page, index, a, p);
                    }
                    else
                    {
                        (HeadWritten, Head) = (true, Fields.Of(p));
                    }
                }
            }

            return WalkAction.Continue;
        }

        private static string? Wrong(Machine<TArch> machine, ulong address, ReadOnlySpan<byte> read, ulong index)
        {
            Span<byte> canonical = stackalloc byte[TArch.StructPageBytes];
            machine.BootVmemmap.FillStructPages(address, canonical);
            if (index == 0)
            {
                // HPageVmemmapOptimized is the pool's to set and clear: not a field the free checks see.
                StructPage.SetFlags(canonical, StructPage.Flags(canonical) | (StructPage.Flags(read) & StructPage.PgHugeVmemmapOptimized));
            }

            return StructPage.FirstDifference(read, canonical) is { } d ? "has " + d : null;
        }
    }
}

/// <summary>The fields of a struct page free_page_is_bad looks at, as it sees them.</summary>
internal readonly record struct Fields(ulong Flags, ulong Mapping, int Mapcount, int Refcount)
{
    public static Fields Of(ReadOnlySpan<byte> p) => new(StructPage.Flags(p), StructPage.Mapping(p), StructPage.Mapcount(p), StructPage.Refcount(p));
}

/// <summary>A compound page whose free free_pages_prepare refused: its head, order, the reports, and the first struct page that differs from what it should hold.</summary>
public readonly record struct BadCompoundPage(ulong HeadPfn, int Order, int Reports, string FirstWrong)
{
    /// <summary>What the invariant checks say of it: the page lost, and its first wrong struct page.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"huge page 0x{HeadPfn:x} order {Order} was lost: free_pages_prepare made {Reports} bad_page reports and kept it off the free lists; first wrong: {FirstWrong}");
}
