using System;
using System.Collections.Generic;

namespace Hvo.Paging.Reference;

/// <summary>
/// The page-table walk interpreted: the same contract as the generated <see cref="IPagingArch.WalkRange"/>
/// (every entry of the range to the visitor in order, splits with the same fill, barrier, lock,
/// re-check and publish), written as one recursive loop over an <see cref="ArchInfo"/> read at run
/// time, looking every mask up, with no specialization. It is the oracle the generated walk is
/// compared with and the baseline it is benchmarked against (<see cref="KernelPageTable{TArch}.Reference"/>).
/// </summary>
public sealed class ReferenceWalker
{
    public ReferenceWalker(ArchInfo arch) => Arch = arch;

    public ArchInfo Arch { get; }

    /// <summary>The interpreted walk_page_range.</summary>
    public PageWalkResult WalkRange<TCtx, TVisitor>(ref TCtx ctx, ulong rootPfn, ulong start, ulong end, ref TVisitor visitor, PageWalkFlags flags)
        where TCtx : struct, IPageTableContext
        where TVisitor : struct, IPageWalkVisitor
    {
        if (!(TVisitor.OneAddress ? PageWalkState.IsOneAddress(start, end) : PageWalkState.IsRange(start, end)))
        {
            return new PageWalkResult(PageWalkStatus.InvalidRange, start, 0, 0);
        }

        var splits = default(PageWalkState);
        return splits.Result(WalkLevel(ref ctx, 0, rootPfn, start, end, ref visitor, flags, ref splits), end);
    }

    /// <summary>
    /// The frame a leaf maps at its start, read from the spec's fields: frame-number bit 0 sits at
    /// entry bit <see cref="ArchInfo.PfnLo"/>, and a leaf's alignment clears the frame-number bits below its size.
    /// </summary>
    public ulong LeafPfn(int level, ulong entry) =>
        (entry & Arch.PfnMask & ~(((Arch.Levels[level].Size >> Arch.PageShift) - 1) << Arch.PfnLo)) >> Arch.PfnLo;

    /// <summary>
    /// The table a descriptor at <paramref name="level"/> points at, as a <see cref="TableRef"/>: its
    /// frame, and where the table below may start inside a page (<see cref="ArchInfo.OriginInPage"/>), the entry it starts at.
    /// </summary>
    public ulong TablePfn(int level, ulong entry) =>
        ((entry & Arch.PfnMask) >> Arch.PfnLo) | ((entry & Arch.OriginInPage(level + 1)) << (TableRef.OffsetShift - 3));

    /// <summary>The descriptor at <paramref name="level"/> of the table <paramref name="table"/> (a <see cref="TableRef"/>).</summary>
    public ulong MakeTable(int level, ulong table) =>
        (Arch.Levels[level].TableMake ?? Arch.Table.Make) | (((table & TableRef.PfnMask) << Arch.PfnLo) & Arch.PfnMask)
        | ((ulong)TableRef.EntryOffset(table) << 3 & Arch.OriginInPage(level + 1));

    /// <summary>The descriptor the kernel builds for a leaf at <paramref name="level"/> mapping <paramref name="pfn"/>.</summary>
    public ulong MakeLeaf(int level, ulong pfn)
    {
        DescriptorKind kind = level == Arch.LastLevel ? Arch.Page : Arch.Block ?? throw new InvalidOperationException("no block kind");
        ulong make = level == Arch.LastLevel ? kind.Make : Arch.Levels[level].BlockMake ?? kind.Make;
        return make | ((pfn << Arch.PfnLo) & Arch.PfnMask);
    }

    public ulong ToReadOnly(ulong entry) => (entry & ~Arch.ReadOnlyClear) | Arch.ReadOnlySet;

    public bool IsWritable(ulong entry) =>
        Arch.ReadOnlySet != 0 ? (entry & Arch.ReadOnlySet) == 0 : (entry & Arch.ReadOnlyClear) == Arch.ReadOnlyClear;

    private PageWalkStop WalkLevel<TCtx, TVisitor>(ref TCtx ctx, int level, ulong tablePfn, ulong addr, ulong end, ref TVisitor visitor, PageWalkFlags flags, ref PageWalkState splits)
        where TCtx : struct, IPageTableContext
        where TVisitor : struct, IPageWalkVisitor
    {
        IReadOnlyList<LevelInfo> levels = Arch.Levels;
        LevelInfo info = levels[level];

        // An empty entry may point at a shared table of empty entries (entry.empty "invalidTable"): a hole.
        ulong none = Arch.EmptyIsInvalidTable ? ctx.EmptyEntry(level) : 0;
        while (true)
        {
            ulong boundary = (addr + info.Size) & ~(info.Size - 1);
            ulong next = boundary - 1 < end - 1 ? boundary : end;
            int index = (int)((addr >> info.Shift) & (ulong)(info.Entries - 1));
            while (true)
            {
                ulong entry = ctx.Table(tablePfn)[index];
                var e = new PageWalkEntry(level, tablePfn, index, entry, addr, next);
                bool last = level == Arch.LastLevel;
                WalkAction action;
                if (!last && Arch.Table.Matches(entry) && entry != none) // no table matches 0
                {
                    action = visitor.Table(ref ctx, e);
                    if (action == WalkAction.Descend)
                    {
                        PageWalkStop below = WalkLevel(ref ctx, level + 1, TablePfn(level, entry), addr, next, ref visitor, flags, ref splits);
                        if (below.Stopped)
                        {
                            return below;
                        }

                        break;
                    }
                }
                else if (last ? Arch.Page.Matches(entry) : info.CanMapLeaf && Arch.Block is not null && Arch.Block.Matches(entry))
                {
                    action = visitor.Leaf(ref ctx, e);
                    if (action == WalkAction.Split && !last)
                    {
                        if (!splits.Count(Split(ref ctx, level, tablePfn, index, entry, addr & ~(info.Size - 1), flags)))
                        {
                            return new PageWalkStop(PageWalkStatus.NoMemory, addr);
                        }

                        continue;
                    }
                }
                else
                {
                    action = visitor.Hole(ref ctx, e);
                }

                if (action == WalkAction.Continue)
                {
                    break;
                }

                if (action == WalkAction.Stop)
                {
                    return new PageWalkStop(PageWalkStatus.Stopped, addr);
                }

                if (action != WalkAction.Again)
                {
                    PageWalkState.BadAction(level, "entry", action);
                }
            }

            if (next == end)
            {
                return default;
            }

            addr = next;
        }
    }

    /// <summary>The interpreted split: fill, barrier, lock, re-check, publish, flush, for any level.</summary>
    private SplitStatus Split<TCtx>(ref TCtx ctx, int level, ulong tablePfn, int index, ulong leaf, ulong baseVa, PageWalkFlags flags)
        where TCtx : struct, IPageTableContext
    {
        if (!ctx.TryAllocTable(level + 1, out ulong childPfn))
        {
            return SplitStatus.NoMemory;
        }

        LevelInfo child = Arch.Levels[level + 1];
        ulong first = LeafPfn(level, leaf);
        Span<ulong> entries = ctx.Table(childPfn);
        for (int i = 0; i < child.Entries; i++)
        {
            ulong e = MakeLeaf(level + 1, first + ((ulong)i << (child.Shift - Arch.PageShift)));
            entries[i] = IsWritable(leaf) ? e : ToReadOnly(e);
        }

        ctx.WriteBarrier();
        ctx.LockPageTable();
        try
        {
            if (ctx.Table(tablePfn)[index] != leaf)
            {
                ctx.FreeTable(level + 1, childPfn);
                return SplitStatus.LostRace;
            }

            ulong table = MakeTable(level, childPfn);
            if (ctx.SetEntry(level, tablePfn, index, leaf, table, baseVa) && (flags & PageWalkFlags.NoTlbFlushOnSplit) == 0)
            {
                ctx.FlushTlbRange(baseVa, baseVa + Arch.Levels[level].Size);
            }
        }
        finally
        {
            ctx.UnlockPageTable();
        }

        return SplitStatus.Split;
    }
}
