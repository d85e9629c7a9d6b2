using System;
using System.Collections.Generic;
using System.Threading;

namespace Hvo.Paging;

/// <summary>
/// The architecture's rule for changing a live entry (the spec's <c>replacement</c>,
/// <see cref="IPagingArch.Replacement"/>), checked on every change of every walk. s390's
/// (<see cref="ReplacementRule.Invalidate"/>): no valid entry may be overwritten by a different valid
/// one at all, attributes included; it must be invalidated (IPTE / IDTE, which purge every CPU's
/// TLB) first. x86-64's (<see cref="ReplacementRule.Store"/>) allows the store and asks for a flush
/// after it, which the TLB model checks (a stale translation, a frame freed while a TLB held it).
/// arm64's break-before-make rule: a live valid entry may not be replaced by a valid entry with a
/// different output address, nor a block by a table, unless the entry was first made invalid
/// and the TLB flushed for it. Every such update is reported with its address and step; the
/// safe sequences are accepted:
/// <list type="bullet">
/// <item>break, flush, make: an invalid entry, a flush covering it, then the new entry;</item>
/// <item>access flag: the live entry's AF cleared (same output address), a flush covering it, then
/// the new entry installed over the still AF-clear entry (a TLB never holds a translation with AF
/// clear, and a CPU that set AF meanwhile makes the writer's compare-and-exchange fail);</item>
/// <item>FEAT_BBM level 2 (<see cref="Level"/> 2): a direct change between equivalent mappings — a
/// leaf to another leaf whose frames hold the same bytes, with the same attributes but for
/// read-only; a block to a table that maps exactly what the block did.</item>
/// </list>
/// </summary>
public sealed class BreakBeforeMakeChecker<TArch> : IPageTableObserver where TArch : struct, IPagingArch
{
    private readonly ViolationLog _violations;
    private readonly Dictionary<(ulong Table, int Index), ulong> _brokenNotFlushed = new();
    private readonly Dictionary<(ulong Table, int Index), ulong> _agedNotFlushed = new();
    private readonly Dictionary<(ulong Table, int Index), ulong> _agedFlushed = new();
    private readonly Lock _lock = new();
    private KernelPageTable<TArch>? _pageTable;
    private Mmu<TArch>? _mmu;

    public BreakBeforeMakeChecker(ViolationLog violations) => _violations = violations;

    /// <summary>The step named in reports of a change whose walk named none.</summary>
    public string Step { get; set; } = "page table update";

    /// <summary>The step named for a block replaced by a table: only the split does that to the vmemmap.</summary>
    public string SplitStep { get; set; } = "split_vmemmap_huge_pmd";

    /// <summary>The rule checked: the spec's; a test may check another.</summary>
    public ReplacementRule Rule { get; set; } = TArch.Replacement;

    /// <summary>Updates checked.</summary>
    public long Checked { get; private set; }

    /// <summary>
    /// The CPUs' FEAT_BBM level (<see cref="MachineConfig.BreakBeforeMakeLevel"/>). At 2 a direct change
    /// between equivalent mappings is accepted; that needs <see cref="Attach"/> to see tables and bytes.
    /// </summary>
    public int Level { get; set; }

    /// <summary>Let the checker read the page table (the entry an update really replaces, a new table) and frame bytes.</summary>
    public void Attach(KernelPageTable<TArch> pageTable, Mmu<TArch> mmu)
    {
        _pageTable = pageTable;
        _mmu = mmu;
    }

    public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va, string? step)
    {
        lock (_lock)
        {
            Checked++;
            var key = (tablePfn, index);
            if (_pageTable is not null)
            {
                // The writer's idea of the old entry may be stale: a CPU may have set the access flag
                // meanwhile (and cached the translation). A plain store over it is a live change.
                ulong current = TableEntries.Read(_pageTable.Entries(tablePfn), index);
                if (current != oldEntry && current != newEntry && TArch.IsValid(level, current))
                {
                    Report(level, va, current, newEntry, step, $"the entry changed under the writer (it expected 0x{oldEntry:x16}) and was overwritten without a compare-and-exchange");
                    _agedFlushed.Remove(key);
                    _agedNotFlushed.Remove(key);
                    return;
                }
            }

            bool oldValid = TArch.IsValid(level, oldEntry);
            bool newValid = TArch.IsValid(level, newEntry);
            if (oldValid && !newValid)
            {
                // Break: the entry is invalid until a flush covers it.
                _brokenNotFlushed[key] = va;
                _agedFlushed.Remove(key);
                _agedNotFlushed.Remove(key);
                return;
            }

            if (!oldValid && newValid && _brokenNotFlushed.Remove(key))
            {
                Report(level, va, oldEntry, newEntry, step, "made valid again before a TLB flush followed the break");
                return;
            }

            if (!oldValid || !newValid)
            {
                return;
            }

            if (Rule == ReplacementRule.Invalidate)
            {
                // s390: any valid-to-valid store, whatever changed (commit 64e2f60f355e).
                if (oldEntry != newEntry)
                {
                    Report(level, va, oldEntry, newEntry, step, TArch.IsLeaf(level, oldEntry) && TArch.IsTable(level, newEntry)
                        ? "a live block was replaced by a table without invalidating it first (IDTE), as s390 requires"
                        : "a live valid entry was replaced by another valid one without invalidating it first (IPTE/IDTE), as s390 requires");
                }

                return;
            }

            if (Rule == ReplacementRule.Store)
            {
                return; // one store, then the caller's flush: allowed
            }

            bool sameOutput = TArch.PfnOf(level, oldEntry) == TArch.PfnOf(level, newEntry) && TArch.IsTable(level, oldEntry) == TArch.IsTable(level, newEntry);
            if (sameOutput)
            {
                // A change of attributes only (permissions, the access flag): allowed live.
                if (IsAged(level, oldEntry) != IsAged(level, newEntry))
                {
                    _agedFlushed.Remove(key);
                    _agedNotFlushed.Remove(key);
                    if (IsAged(level, newEntry))
                    {
                        _agedNotFlushed[key] = va;
                    }
                }

                return;
            }

            if (IsAged(level, oldEntry) && _agedFlushed.Remove(key))
            {
                // Made over an entry whose AF was cleared and flushed: no TLB can hold it.
                return;
            }

            if (IsAged(level, oldEntry) && _agedNotFlushed.Remove(key))
            {
                Report(level, va, oldEntry, newEntry, step, "an entry with the access flag cleared was replaced before a TLB flush covered it");
                return;
            }

            string level2 = string.Empty;
            if (Level >= 2)
            {
                Inequivalence why = WhyNot(level, oldEntry, newEntry);
                if (why.Kind == InequivalenceKind.None)
                {
                    return;
                }

                level2 = $" (FEAT_BBM level 2 does not cover it: {why})";
            }

            if (TArch.IsLeaf(level, oldEntry) && TArch.IsTable(level, newEntry))
            {
                Report(level, va, oldEntry, newEntry, step, "a live block was replaced by a table without break-before-make" + level2);
            }
            else
            {
                Report(level, va, oldEntry, newEntry, step, "a live valid entry got a different output address without break-before-make" + level2);
            }
        }
    }

    public void Flushed(ulong start, ulong end)
    {
        lock (_lock)
        {
            Expire(_brokenNotFlushed, start, end, null);
            Expire(_agedNotFlushed, start, end, _agedFlushed);
        }
    }

    private static void Expire(Dictionary<(ulong, int), ulong> pending, ulong start, ulong end, Dictionary<(ulong, int), ulong>? into)
    {
        if (pending.Count == 0)
        {
            return;
        }

        var flushed = new List<(ulong, int)>();
        foreach (var kv in pending)
        {
            if (kv.Value >= start && kv.Value < end)
            {
                flushed.Add(kv.Key);
            }
        }

        foreach (var key in flushed)
        {
            if (into is not null)
            {
                into[key] = pending[key];
            }

            pending.Remove(key);
        }
    }

    private static bool IsAged(int level, ulong entry) => Equivalence<TArch>.IsAged(level, entry);

    /// <summary>Why the change is not between equivalent mappings (FEAT_BBM level 2).</summary>
    private Inequivalence WhyNot(int level, ulong oldEntry, ulong newEntry) =>
        _pageTable is null || _mmu is null
            ? new Inequivalence(InequivalenceKind.Shape)
            : Equivalence<TArch>.Check(level, oldEntry, newEntry, _pageTable.Frames.Tables, _mmu.SameBytes);

    private void Report(int level, ulong va, ulong oldEntry, ulong newEntry, string? walkStep, string what)
    {
        string step = level < TArch.LastLevel && TArch.IsLeaf(level, oldEntry) && TArch.IsTable(level, newEntry) ? SplitStep : walkStep ?? Step;
        string name = TArch.Info.Levels[level].Name;
        _violations.Add(new Violation(ViolationKind.BreakBeforeMake, va, $"{step}: {name} entry 0x{oldEntry:x16} -> 0x{newEntry:x16}: {what}")
        {
            Change = new EntryChange(name, oldEntry, newEntry, step, what),
        });
    }
}
