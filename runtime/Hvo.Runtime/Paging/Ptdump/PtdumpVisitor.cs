namespace Hvo.Paging.Ptdump;

/// <summary>
/// The kernel's ptdump as a visitor of the page-table walk (ptdump_walk_pgd over walk_page_range):
/// every entry of the range goes to <see cref="PtdumpState.NotePage"/> in address order. A table is
/// descended into; a leaf, or an entry that is not valid, is noted for the whole span it covers, so
/// an empty 512 GiB pgd entry costs one note, as the kernel's pte_hole does.
/// </summary>
/// <remarks>
/// Like the kernel's ptdump it takes no page-table lock: a split published while the walk runs
/// shows either as the block it replaced or as the filled table, since a new table's entries
/// are visible before the entry that publishes it.
/// </remarks>
internal readonly struct PtdumpVisitor<TArch, TFormat>(PtdumpState state) : IPageWalkVisitor
    where TArch : struct, IPagingArch
    where TFormat : struct, IPtdumpFormat
{
    public WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Descend;

    public WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        state.NotePage(e.Addr, e.Level, TFormat.Prot<TArch>(e.Level, e.Entry), present: true);
        return WalkAction.Continue;
    }

    public WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
    {
        // ptdump_hole passes a zero entry for an empty upper-level entry; ptdump_pte_entry passes a
        // PTE as it is, present or not.
        ulong prot = e.Level == TArch.LastLevel ? TFormat.Prot<TArch>(e.Level, e.Entry) : 0;
        state.NotePage(e.Addr, e.Level, prot, present: false);
        return WalkAction.Continue;
    }
}
