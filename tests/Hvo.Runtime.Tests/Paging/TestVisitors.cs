using System;
using System.Collections.Generic;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Paging;

/// <summary>
/// The visitor of a vmemmap_remap_range-shaped walk, for tests: blocks on the way are split (unless
/// <see cref="SplitOnly"/>, which also stops above the PTEs), every PTE is recorded and, with a
/// <see cref="Transform"/>, changed to what it returns; a hole stops the walk.
/// </summary>
internal struct PteVisitor<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
{
    public List<ulong> Addresses;
    public Func<ulong, ulong>? Transform;
    public bool SplitOnly;

    public static PteVisitor<TArch> Recording(Func<ulong, ulong>? transform = null) => new() { Addresses = [], Transform = transform };

    public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
        SplitOnly && e.Level + 1 == TArch.LastLevel ? WalkAction.Continue : WalkAction.Descend;

    public readonly WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        if (e.Level != TArch.LastLevel)
        {
            return WalkAction.Split;
        }

        Addresses.Add(e.Addr);
        ulong updated = Transform is null ? e.Entry : Transform(e.Entry);
        if (updated != e.Entry)
        {
            ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, updated, e.Addr);
        }

        return WalkAction.Continue;
    }

    public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;
}

/// <summary>One callback a walk made: which, at which entry, and what the visitor answered.</summary>
internal readonly record struct WalkEvent(string Callback, PageWalkEntry Entry, WalkAction Answer);

/// <summary>
/// A visitor that answers at random (from a seed, the same answers for the same sequence of
/// entries) with every action that applies, and records every callback: two walks that see the
/// same entries in the same order get the same answers and record the same events.
/// </summary>
internal struct RandomVisitor<TArch> : IPageWalkVisitor where TArch : struct, IPagingArch
{
    public List<WalkEvent> Events;
    public ulong State;

    /// <summary>When not 0, the first leaf answered with a change gets these bits flipped, then is visited again.</summary>
    public ulong ChangeTo;

    public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
        Record("table", e, Next(8) switch { 0 => WalkAction.Continue, 1 => WalkAction.Stop, _ => WalkAction.Descend });

    public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        ulong r = Next(8);
        if (r == 0 && ChangeTo != 0)
        {
            // Change a leaf and look at it again: the walk must read it anew.
            ctx.SetEntry(e.Level, e.TablePfn, e.Index, e.Entry, e.Entry ^ ChangeTo, e.Addr);
            ChangeTo = 0;
            return Record("leaf", e, WalkAction.Again);
        }

        WalkAction answer = r switch { 1 => WalkAction.Stop, < 5 when e.Level != TArch.LastLevel => WalkAction.Split, _ => WalkAction.Continue };
        return Record("leaf", e, answer);
    }

    public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
        Record("hole", e, Next(16) == 0 ? WalkAction.Stop : WalkAction.Continue);

    private readonly WalkAction Record(string callback, PageWalkEntry e, WalkAction answer)
    {
        Events.Add(new WalkEvent(callback, e, answer));
        return answer;
    }

    private ulong Next(ulong bound)
    {
        State ^= State << 13;
        State ^= State >> 7;
        State ^= State << 17;
        return State % bound;
    }
}

/// <summary>Down to <see cref="Level"/>, split the leaf there, stop at what is there then.</summary>
internal struct SplitAtVisitor : IPageWalkVisitor
{
    public int Level;

    public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
        e.Level < Level ? WalkAction.Descend : WalkAction.Stop;

    public readonly WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
        e.Level == Level ? WalkAction.Split : WalkAction.Stop;

    public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Stop;
}

/// <summary>A look-up's shape: one address, one entry a level, counted.</summary>
internal struct OneAddressVisitor : IPageWalkVisitor
{
    public int Visits;

    static bool IPageWalkVisitor.OneAddress => true;

    public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        Visits++;
        return WalkAction.Descend;
    }

    public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        Visits++;
        return WalkAction.Stop;
    }

    public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        Visits++;
        return WalkAction.Stop;
    }
}
