using System;
using System.Collections.Generic;

namespace Hvo.Paging.Reference;

/// <summary>
/// The deliberately plain walker: interprets an <see cref="ArchInfo"/> at run time, looping over
/// the level list and looking every mask up, with no specialization. It is the baseline the
/// generated code is benchmarked against and the oracle it is compared with.
/// </summary>
public sealed class ReferenceWalker
{
    public ReferenceWalker(ArchInfo arch) => Arch = arch;

    public ArchInfo Arch { get; }

    public WalkResult Walk<TCtx>(ref TCtx ctx, ulong rootPfn, ulong va)
        where TCtx : struct, IPageTableContext
    {
        IReadOnlyList<LevelInfo> levels = Arch.Levels;
        ulong table = rootPfn;
        for (int level = 0; level < levels.Count; level++)
        {
            LevelInfo info = levels[level];
            int index = (int)((va >> info.Shift) & (ulong)(info.Entries - 1));
            ulong entry = ctx.Table(table)[index];
            if (level == Arch.LastLevel)
            {
                return new WalkResult(level, table, index, entry, Arch.Page.Matches(entry));
            }

            if (Arch.Table.Matches(entry))
            {
                table = (entry & Arch.PfnMask) >> Arch.PageShift;
                continue;
            }

            bool leaf = info.CanMapLeaf && Arch.Block is not null && Arch.Block.Matches(entry);
            return new WalkResult(level, table, index, entry, leaf);
        }

        throw new InvalidOperationException("an architecture has at least one level");
    }

    /// <summary>The frame a leaf maps at its start, read from the spec's fields.</summary>
    public ulong LeafPfn(int level, ulong entry) =>
        (entry & Arch.PfnMask & ~(Arch.Levels[level].Size - 1)) >> Arch.PageShift;

    /// <summary>The descriptor the kernel builds for a leaf at <paramref name="level"/> mapping <paramref name="pfn"/>.</summary>
    public ulong MakeLeaf(int level, ulong pfn)
    {
        DescriptorKind kind = level == Arch.LastLevel ? Arch.Page : Arch.Block ?? throw new InvalidOperationException("no block kind");
        return kind.Make | ((pfn << Arch.PageShift) & Arch.PfnMask);
    }

    public ulong ToReadOnly(ulong entry) => (entry & ~Arch.ReadOnlyClear) | Arch.ReadOnlySet;

    public bool IsWritable(ulong entry) =>
        Arch.ReadOnlySet != 0 ? (entry & Arch.ReadOnlySet) == 0 : (entry & Arch.ReadOnlyClear) == Arch.ReadOnlyClear;

    /// <summary>
    /// The interpreted split: the same contract as the generated SplitLeaf (fill, barrier, lock,
    /// re-check, publish, flush), one loop for every level.
    /// </summary>
    public SplitStatus SplitLeaf<TCtx>(ref TCtx ctx, ulong rootPfn, int level, ulong va, SplitFlags flags)
        where TCtx : struct, IPageTableContext
    {
        WalkResult at = Walk(ref ctx, rootPfn, va);
        if (at.Level > level)
        {
            return SplitStatus.NotLeaf;
        }

        if (at.Level < level || !at.IsLeaf || level == Arch.LastLevel)
        {
            return SplitStatus.NotMapped;
        }

        if (!ctx.TryAllocTable(level + 1, out ulong childPfn))
        {
            return SplitStatus.NoMemory;
        }

        LevelInfo child = Arch.Levels[level + 1];
        ulong first = LeafPfn(level, at.Entry);
        Span<ulong> entries = ctx.Table(childPfn);
        for (int i = 0; i < child.Entries; i++)
        {
            ulong e = MakeLeaf(level + 1, first + ((ulong)i << (child.Shift - Arch.PageShift)));
            entries[i] = IsWritable(at.Entry) ? e : ToReadOnly(e);
        }

        ctx.WriteBarrier();
        ctx.LockPageTable();
        try
        {
            if (ctx.Table(at.TablePfn)[at.Index] != at.Entry)
            {
                ctx.FreeTable(level + 1, childPfn);
                return SplitStatus.LostRace;
            }

            ctx.SetEntry(level, at.TablePfn, at.Index, at.Entry, Arch.Table.Make | ((childPfn << Arch.PageShift) & Arch.PfnMask), va);
            ulong baseVa = va & ~(Arch.Levels[level].Size - 1);
            if ((flags & SplitFlags.NoTlbFlush) == 0)
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

    /// <summary>
    /// The interpreted vmemmap_remap_range: the same contract as the generated RemapWalk (split
    /// leaves on the way, visit every last-level entry of [start, end) in order, stop at the first
    /// failure), written as one recursive loop over the spec's levels.
    /// </summary>
    public RemapWalkResult RemapWalk<TCtx, TVisitor>(ref TCtx ctx, ulong rootPfn, ulong start, ulong end, ref TVisitor visitor, RemapWalkFlags flags)
        where TCtx : struct, IPageTableContext
        where TVisitor : struct, IRemapPteVisitor
    {
        if (start >= end || ((start | end) & (Arch.PageSize - 1)) != 0)
        {
            return new RemapWalkResult(RemapWalkStatus.InvalidRange, 0, 0, start);
        }

        var stats = default(RemapWalkStats);
        RemapWalkStatus status = RemapLevel(ref ctx, rootPfn, 0, rootPfn, start, end, ref visitor, flags, ref stats);
        return new RemapWalkResult(status, stats.Splits, stats.RacesLost, status == RemapWalkStatus.Ok ? end : stats.StoppedAt);
    }

    private RemapWalkStatus RemapLevel<TCtx, TVisitor>(ref TCtx ctx, ulong rootPfn, int level, ulong tablePfn, ulong addr, ulong end, ref TVisitor visitor, RemapWalkFlags flags, ref RemapWalkStats stats)
        where TCtx : struct, IPageTableContext
        where TVisitor : struct, IRemapPteVisitor
    {
        LevelInfo info = Arch.Levels[level];
        while (addr != end)
        {
            int index = (int)((addr >> info.Shift) & (ulong)(info.Entries - 1));
            ulong entry = ctx.Table(tablePfn)[index];
            if (level == Arch.LastLevel)
            {
                if (!Arch.Page.Matches(entry))
                {
                    stats.StoppedAt = addr;
                    return RemapWalkStatus.NotMapped;
                }

                ulong updated = visitor.RemapPte(addr, entry);
                if (updated != entry)
                {
                    ctx.SetEntry(level, tablePfn, index, entry, updated, addr);
                }

                addr += info.Size;
                continue;
            }

            ulong boundary = (addr + info.Size) & ~(info.Size - 1);
            ulong next = boundary - 1 < end - 1 ? boundary : end;
            if (info.CanMapLeaf && Arch.Block is not null && Arch.Block.Matches(entry))
            {
                SplitFlags split = (flags & RemapWalkFlags.NoTlbFlushOnSplit) != 0 ? SplitFlags.NoTlbFlush : SplitFlags.None;
                switch (SplitLeaf(ref ctx, rootPfn, level, addr, split))
                {
                    case SplitStatus.NoMemory:
                        stats.StoppedAt = addr;
                        return RemapWalkStatus.NoMemory;
                    case SplitStatus.Split:
                        stats.Splits++;
                        break;
                    case SplitStatus.LostRace:
                        stats.RacesLost++;
                        break;
                }

                entry = ctx.Table(tablePfn)[index];
            }

            if (!Arch.Table.Matches(entry))
            {
                stats.StoppedAt = addr;
                return RemapWalkStatus.NotMapped;
            }

            if (level + 1 < Arch.LastLevel || (flags & RemapWalkFlags.SplitOnly) == 0)
            {
                RemapWalkStatus status = RemapLevel(ref ctx, rootPfn, level + 1, (entry & Arch.PfnMask) >> Arch.PageShift, addr, next, ref visitor, flags, ref stats);
                if (status != RemapWalkStatus.Ok)
                {
                    return status;
                }
            }

            addr = next;
        }

        return RemapWalkStatus.Ok;
    }
}
