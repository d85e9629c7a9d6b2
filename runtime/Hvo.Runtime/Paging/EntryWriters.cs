using System;
using System.Collections.Generic;

namespace Hvo.Paging;

/// <summary>
/// How the machine's kernel changes a live entry of its page table: the architecture's rule and
/// the CPU's features, as the arch hooks around set_pte_at and pmd_populate_kernel implement it
/// (the arm64 HVO proposals' vmemmap_update_pte / vmemmap_update_pmd). Every walk writes through
/// the one writer its page table has; what a policy asks of the page table stays the same.
/// </summary>
public enum EntryWriterKind
{
    /// <summary>Valid to valid in one store, then the caller's flush: what x86-64 allows, and what mainline does everywhere.</summary>
    Direct,

    /// <summary>
    /// arm64 with FEAT_BBM level 2: a change between equivalent mappings (a block to a table mapping
    /// the same, a leaf to another with the same bytes behind it) in one store; any other change of
    /// a live entry's output by break, flush, make. Needs CPUs with FEAT_BBM level 2.
    /// </summary>
    Bbml2,

    /// <summary>
    /// Break, flush, make for every change of a live entry's output (Nanyong Sun, "arm64: mm: HVO:
    /// support BBM of vmemmap pgtable safely", 2024): the entry is invalid, the TLBs are flushed, then
    /// the new entry is made, under init_mm.page_table_lock; a CPU that translates meanwhile faults,
    /// waits for the lock and retries.
    /// </summary>
    BreakFlushMake,

    /// <summary>
    /// Clear the access flag, flush, compare-and-exchange: in a walk whose caller may give up
    /// (<see cref="PageWalkFlags.MayGiveUp"/>) each PTE to move is aged (pte_mkold: same output, allowed
    /// live) and kept; when the walk is done, one flush per round makes every aged entry uncached,
    /// and each is then installed by compare-and-exchange from its aged value. A CPU that used an
    /// entry meanwhile set its flag again (FEAT_HAFDBS), so its exchange fails and it waits for the
    /// next round; after the retry bound every change is put back and the walk reports
    /// <see cref="PageWalkStatus.WriterGaveUp"/>. Everything else by break, flush, make. Needs a spec
    /// with <c>entry.accessFlag</c>.
    /// </summary>
    ClearAccessFlag,

    /// <summary>
    /// s390's rule (commit 64e2f60f355e): a valid entry is never overwritten by a different valid one.
    /// It is invalidated first, with IPTE for a page-table entry or IDTE for a segment or region entry,
    /// each of which purges the entry from every CPU's TLB, and only then is the new entry stored
    /// (ptep_xchg_direct, pmdp_xchg_direct; __vmem_map_4k_page). A CPU translating meanwhile takes a
    /// translation exception, waits for init_mm.page_table_lock and retries. Attribute-only changes
    /// go the same way: the hardware allows no valid-to-valid store at all.
    /// </summary>
    Invalidate,

    /// <summary>
    /// Yu Zhao's proposal for arm64 ("mm/arm64: re-enable HVO", 2024): before the first change of a live
    /// entry's output in a walk, broadcast a pseudo-NMI IPI that parks every other CPU
    /// (pause_remote_cpus), then clear, flush and write each entry with nobody translating, and resume
    /// them when the walk is over (resume_remote_cpus). In the kernel no reader meets the invalid entry;
    /// the model costs the pause (IPIs, and the steps made while the others spin) but does not stop the
    /// simulated CPUs' threads, so one that translates meanwhile faults and retries as under break,
    /// flush, make, and the reader tests still judge the bytes it reads.
    /// </summary>
    PauseCpus,
}

/// <summary>
/// One <see cref="EntryWriterKind"/> for one architecture: the only code that stores into a live
/// table. The page table's context calls it for every <see cref="IPageTableContext.SetEntry"/>.
/// </summary>
public abstract class EntryWriter<TArch> where TArch : struct, IPagingArch
{
    private protected EntryWriter()
    {
    }

    public abstract EntryWriterKind Kind { get; }

    /// <summary>The writer of <paramref name="kind"/>.</summary>
    /// <param name="kind">Which writer.</param>
    /// <param name="sameBytes">Do two frames hold the same bytes (the <see cref="EntryWriterKind.Bbml2"/> writer's test of equivalence)?</param>
    /// <param name="accessFlagRetries">Rounds after the first before the <see cref="EntryWriterKind.ClearAccessFlag"/> writer gives up.</param>
    /// <param name="cpus">The machine's CPUs: a <see cref="EntryWriterKind.PauseCpus"/> pause parks all but one.</param>
    public static EntryWriter<TArch> Create(EntryWriterKind kind, Func<ulong, ulong, bool>? sameBytes, int accessFlagRetries, int cpus = 1) => kind switch
    {
        EntryWriterKind.Direct => Direct,
        EntryWriterKind.Invalidate => Invalidate,
        EntryWriterKind.PauseCpus => new PauseCpusWriter(Math.Max(1, cpus)),
        EntryWriterKind.Bbml2 => new Bbml2Writer(sameBytes ?? throw new ArgumentNullException(nameof(sameBytes), "FEAT_BBM level 2 needs to compare frame contents")),
        EntryWriterKind.BreakFlushMake => BreakFlushMake,
        EntryWriterKind.ClearAccessFlag => TArch.AccessFlag != 0
            ? new ClearAccessFlagWriter(accessFlagRetries)
            : throw new ArgumentException($"{TArch.Name} has no access flag in its entries (spec key entry.accessFlag)", nameof(kind)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>Store and leave the flush to the caller.</summary>
    public static EntryWriter<TArch> Direct { get; } = new DirectWriter();

    /// <summary>Break, flush, make wherever a live entry's output changes.</summary>
    public static EntryWriter<TArch> BreakFlushMake { get; } = new BreakFlushMakeWriter();

    /// <summary>Invalidate (IPTE / IDTE, purging every CPU's TLB), then store, for every change of a valid entry into another.</summary>
    public static EntryWriter<TArch> Invalidate { get; } = new InvalidateWriter();

    /// <summary>Change the entry; true when the change still needs the caller's TLB flush.</summary>
    internal abstract bool Set(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va);

    /// <summary>The walk is over (<paramref name="status"/>): make what was deferred; the walk's final status.</summary>
    internal virtual PageWalkStatus Finish(ref KernelPageTable<TArch>.Context ctx, PageWalkStatus status) => status;

    /// <summary>
    /// Does the change give a live entry another output (other frames, or a block for a table or back)?
    /// An empty entry (0, or a pointer at the shared invalid table) is not live.
    /// </summary>
    internal static bool MovesOutput(ulong empty, int level, ulong oldEntry, ulong newEntry) =>
        oldEntry != empty && newEntry != empty && TArch.IsValid(level, oldEntry) && TArch.IsValid(level, newEntry) &&
        (TArch.IsTable(level, oldEntry) != TArch.IsTable(level, newEntry) || TArch.PfnOf(level, oldEntry) != TArch.PfnOf(level, newEntry));

    /// <summary>One store; a flush is due if the old entry was live (an empty one was never cached).</summary>
    private protected static bool Store(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
    {
        ctx.Store(level, tablePfn, index, oldEntry, newEntry, va);
        return oldEntry != ctx.EmptyEntry(level) && TArch.IsValid(level, oldEntry);
    }

    /// <summary>
    /// Under init_mm.page_table_lock: break (an invalid entry), flush what it mapped, make. A CPU that
    /// translates meanwhile faults; the fault handler waits on the lock, then retries.
    /// </summary>
    private protected static bool BreakThenMake(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
    {
        ulong size = TArch.LevelSize(level);
        ulong start = va & ~(size - 1);
        ctx.LockPageTable();
        try
        {
            ulong empty = ctx.EmptyEntry(level); // pmd_clear: 0, the shared invalid table on LoongArch, the invalid bit on s390
            ctx.Store(level, tablePfn, index, oldEntry, empty, va);
            ctx.Invalidated();
            ctx.FlushTlbRange(start, start + size);
            ctx.Store(level, tablePfn, index, empty, newEntry, va);
        }
        finally
        {
            ctx.UnlockPageTable();
        }

        return false;
    }

    private sealed class DirectWriter : EntryWriter<TArch>
    {
        public override EntryWriterKind Kind => EntryWriterKind.Direct;

        internal override bool Set(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va) =>
            Store(ref ctx, level, tablePfn, index, oldEntry, newEntry, va);
    }

    private sealed class BreakFlushMakeWriter : EntryWriter<TArch>
    {
        public override EntryWriterKind Kind => EntryWriterKind.BreakFlushMake;

        internal override bool Set(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va) =>
            MovesOutput(ctx.EmptyEntry(level), level, oldEntry, newEntry)
                ? BreakThenMake(ref ctx, level, tablePfn, index, oldEntry, newEntry, va)
                : Store(ref ctx, level, tablePfn, index, oldEntry, newEntry, va);
    }

    private sealed class InvalidateWriter : EntryWriter<TArch>
    {
        public override EntryWriterKind Kind => EntryWriterKind.Invalidate;

        // The invalid entry and its purge are one instruction on s390 (IPTE/IDTE): the break and the
        // flush of BreakThenMake, counted once each as an invalidation and a flush.
        internal override bool Set(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va) =>
            ReplacesValid(ctx.EmptyEntry(level), level, oldEntry, newEntry)
                ? BreakThenMake(ref ctx, level, tablePfn, index, oldEntry, newEntry, va)
                : Store(ref ctx, level, tablePfn, index, oldEntry, newEntry, va);
    }

    private sealed class PauseCpusWriter(int cpus) : EntryWriter<TArch>
    {
        public override EntryWriterKind Kind => EntryWriterKind.PauseCpus;

        internal override bool Set(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
        {
            if (!MovesOutput(ctx.EmptyEntry(level), level, oldEntry, newEntry))
            {
                return Store(ref ctx, level, tablePfn, index, oldEntry, newEntry, va);
            }

            if (!ctx.Paused)
            {
                // vmemmap_update_pte_range_start: local_irq_disable, pause_remote_cpus (one broadcast
                // of IPI_CPU_STOP_NMI, the others spin until resumed). Once per walk: the walk is the
                // batch of one huge page's entries (or of a batch of pages).
                ctx.Pause(cpus - 1);
            }

            // Clear, flush, write with the other CPUs parked: the same three steps as break, flush,
            // make, every one of them time the parked CPUs spin.
            BreakThenMake(ref ctx, level, tablePfn, index, oldEntry, newEntry, va);
            return false;
        }

        // vmemmap_update_pte_range_end: resume_remote_cpus, local_irq_enable.
        internal override PageWalkStatus Finish(ref KernelPageTable<TArch>.Context ctx, PageWalkStatus status)
        {
            ctx.Resume();
            return status;
        }
    }

    /// <summary>
    /// Does the change replace a valid entry by a different valid one (s390's rule: any such change,
    /// attributes too, needs the invalidation first)? An empty entry is not valid.
    /// </summary>
    internal static bool ReplacesValid(ulong empty, int level, ulong oldEntry, ulong newEntry) =>
        oldEntry != newEntry && oldEntry != empty && newEntry != empty && TArch.IsValid(level, oldEntry) && TArch.IsValid(level, newEntry);

    private sealed class Bbml2Writer(Func<ulong, ulong, bool> sameBytes) : EntryWriter<TArch>
    {
        public override EntryWriterKind Kind => EntryWriterKind.Bbml2;

        internal override bool Set(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va) =>
            MovesOutput(ctx.EmptyEntry(level), level, oldEntry, newEntry) && Equivalence<TArch>.Check(level, oldEntry, newEntry, ctx.Tables, sameBytes) != Inequivalence.None
                ? BreakThenMake(ref ctx, level, tablePfn, index, oldEntry, newEntry, va)
                : Store(ref ctx, level, tablePfn, index, oldEntry, newEntry, va);
    }

    private sealed class ClearAccessFlagWriter(int retries) : EntryWriter<TArch>
    {
        [ThreadStatic]
        private static Rounds? t_spare;

        public override EntryWriterKind Kind => EntryWriterKind.ClearAccessFlag;

        internal override bool Set(ref KernelPageTable<TArch>.Context ctx, int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
        {
            bool moves = MovesOutput(ctx.EmptyEntry(level), level, oldEntry, newEntry);
            if (!moves || level != TArch.LastLevel || (ctx.Flags & PageWalkFlags.MayGiveUp) == 0)
            {
                return moves
                    ? BreakThenMake(ref ctx, level, tablePfn, index, oldEntry, newEntry, va)
                    : Store(ref ctx, level, tablePfn, index, oldEntry, newEntry, va);
            }

            // pte_mkold: the same output, so allowed on a live entry; a TLB never caches it while clear.
            ulong aged = oldEntry & ~TArch.AccessFlag;
            if (aged != oldEntry)
            {
                ctx.Store(level, tablePfn, index, oldEntry, aged, va);
            }

            if (ctx.Deferred is null)
            {
                ctx.Deferred = t_spare ?? new Rounds();
                t_spare = null;
            }

            ctx.Deferred.Pending.Add(new DeferredChange(level, tablePfn, index, oldEntry, newEntry, va));
            return false;
        }

        internal override PageWalkStatus Finish(ref KernelPageTable<TArch>.Context ctx, PageWalkStatus status)
        {
            if (ctx.Deferred is not { } r)
            {
                return status;
            }

            ctx.Deferred = null;
            try
            {
                return Install(ref ctx, r) ? status : PageWalkStatus.WriterGaveUp;
            }
            finally
            {
                r.Clear();
                t_spare = r;
            }
        }

        /// <summary>The rounds of flush and compare-and-exchange; false when the retries ran out and everything was put back.</summary>
        private bool Install(ref KernelPageTable<TArch>.Context ctx, Rounds r)
        {
            for (int round = 0; round <= retries && r.Pending.Count > 0; round++)
            {
                if (round > 0)
                {
                    // A CPU used these since they were aged, and set the flag again: age them again.
                    ctx.Retries += r.Pending.Count;
                    foreach (DeferredChange c in r.Pending)
                    {
                        ulong current = ctx.Load(c.TablePfn, c.Index);
                        if ((current & TArch.AccessFlag) != 0)
                        {
                            ctx.Store(c.Level, c.TablePfn, c.Index, current, current & ~TArch.AccessFlag, c.Va);
                        }
                    }
                }

                // One flush for the round: after it no TLB holds any of the aged entries.
                ctx.FlushTlbRange(r.Pending[0].Va, r.Pending[^1].Va + TArch.PageSize);
                r.Failed.Clear();
                foreach (DeferredChange c in r.Pending)
                {
                    (ctx.CompareExchange(c.Level, c.TablePfn, c.Index, c.Old & ~TArch.AccessFlag, c.New, c.Va) ? r.Done : r.Failed).Add(c);
                }

                (r.Pending, r.Failed) = (r.Failed, r.Pending);
            }

            if (r.Pending.Count == 0)
            {
                return true;
            }

            // Retries exhausted: every entry back to its own frame. A changed one by break, flush,
            // make (readers fault meanwhile); an unchanged one just gets its access flag back.
            foreach (DeferredChange c in r.Done)
            {
                BreakThenMake(ref ctx, c.Level, c.TablePfn, c.Index, ctx.Load(c.TablePfn, c.Index), c.Old, c.Va);
            }

            foreach (DeferredChange c in r.Pending)
            {
                ulong current = ctx.Load(c.TablePfn, c.Index);
                if (current != c.Old)
                {
                    ctx.Store(c.Level, c.TablePfn, c.Index, current, c.Old, c.Va);
                }
            }

            return false;
        }
    }

    /// <summary>A PTE change the clear-access-flag writer makes once its walk is over.</summary>
    internal readonly record struct DeferredChange(int Level, ulong TablePfn, int Index, ulong Old, ulong New, ulong Va);

    /// <summary>One walk's deferred changes: waiting, installed, and failed in the current round. Reused per thread.</summary>
    internal sealed class Rounds
    {
        public List<DeferredChange> Pending = new();
        public List<DeferredChange> Done = new();
        public List<DeferredChange> Failed = new();

        public void Clear()
        {
            Pending.Clear();
            Done.Clear();
            Failed.Clear();
        }
    }
}
