namespace Hvo.Paging.Ptdump;

/// <summary>
/// The kernel's ptdump_walk_pgd over one range, for any spec: every entry of the range is read
/// once (READ_ONCE) and handed to <see cref="PtdumpState.NotePage"/> in address order. A table
/// is descended into; a leaf, or an entry that is not valid, is noted for the whole span it
/// covers, so an empty 512 GiB pgd entry costs one note, as the kernel's pte_hole does.
/// </summary>
/// <remarks>
/// Like the kernel's walker it takes no page-table lock: a split published while the walk runs
/// shows either as the block it replaced or as the filled table, since a new table's entries
/// are visible before the entry that publishes it.
/// </remarks>
internal static class PtdumpWalker
{
    /// <summary>Note every entry of [<paramref name="start"/>, <paramref name="end"/>), then flush at <paramref name="end"/>.</summary>
    public static void Walk<TArch, TCtx, TFormat>(ref TCtx ctx, ulong rootPfn, ulong start, ulong end, PtdumpState state)
        where TArch : struct, IPagingArch
        where TCtx : struct, IPageTableContext
        where TFormat : struct, IPtdumpFormat
    {
        WalkTable<TArch, TCtx, TFormat>(ref ctx, 0, rootPfn, start, end, state);
        state.Flush(end);
    }

    /// <summary>The entries of the table at <paramref name="level"/> that cover [<paramref name="start"/>, <paramref name="end"/>).</summary>
    private static void WalkTable<TArch, TCtx, TFormat>(ref TCtx ctx, int level, ulong tablePfn, ulong start, ulong end, PtdumpState state)
        where TArch : struct, IPagingArch
        where TCtx : struct, IPageTableContext
        where TFormat : struct, IPtdumpFormat
    {
        ulong entryMask = TArch.LevelSize(level) - 1;
        ulong addr = start;
        while (true)
        {
            // pgd_addr_end and friends: the next entry's address, or the end of the range. It
            // wraps to 0 after the last entry of the address space.
            ulong next = (addr | entryMask) + 1;
            if (next == 0 || next > end)
            {
                next = end;
            }

            ulong entry = TableEntries.Load(ctx.Table(tablePfn), TArch.IndexOf(level, addr));
            if (level < TArch.LastLevel && TArch.IsTable(level, entry))
            {
                WalkTable<TArch, TCtx, TFormat>(ref ctx, level + 1, TArch.PfnOf(level, entry), addr, next, state);
            }
            else if (TArch.IsValid(level, entry))
            {
                state.NotePage(addr, level, TFormat.Prot<TArch>(level, entry), present: true);
            }
            else
            {
                // ptdump_hole passes a zero entry for an empty upper-level entry; ptdump_pte_entry
                // passes a PTE as it is, present or not.
                ulong prot = level == TArch.LastLevel ? TFormat.Prot<TArch>(level, entry) : 0;
                state.NotePage(addr, level, prot, present: false);
            }

            if (next == end)
            {
                return;
            }

            addr = next;
        }
    }
}
