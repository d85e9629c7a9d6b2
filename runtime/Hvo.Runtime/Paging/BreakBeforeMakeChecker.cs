using System.Collections.Generic;
using System.Threading;
using Hvo.Checks;

namespace Hvo.Paging;

/// <summary>
/// arm64's break-before-make rule: a live valid entry may not be replaced by a valid entry with a
/// different output address, nor a block by a table, unless the entry was first made invalid
/// and the TLB flushed for it. Every such update is reported with its address and step; the
/// safe sequence (invalid, flush, new entry) is accepted.
/// </summary>
public sealed class BreakBeforeMakeChecker<TArch> : IPageTableObserver where TArch : struct, IPagingArch
{
    private readonly ViolationLog _violations;
    private readonly Dictionary<(ulong Table, int Index), ulong> _brokenNotFlushed = new();
    private readonly Lock _lock = new();

    public BreakBeforeMakeChecker(ViolationLog violations) => _violations = violations;

    /// <summary>What the kernel is doing, named in reports ("vmemmap_remap_pte", "split_vmemmap_huge_pmd").</summary>
    public string Step { get; set; } = "page table update";

    /// <summary>Updates checked.</summary>
    public long Checked { get; private set; }

    public void EntryChanging(int level, ulong tablePfn, int index, ulong oldEntry, ulong newEntry, ulong va)
    {
        lock (_lock)
        {
            Checked++;
            bool oldValid = TArch.IsValid(level, oldEntry);
            bool newValid = TArch.IsValid(level, newEntry);
            if (oldValid && !newValid)
            {
                // Break: the entry is invalid until a flush covers it.
                _brokenNotFlushed[(tablePfn, index)] = va;
                return;
            }

            if (!oldValid && newValid && _brokenNotFlushed.Remove((tablePfn, index)))
            {
                Report(level, va, oldEntry, newEntry, "made valid again before a TLB flush followed the break");
                return;
            }

            if (!oldValid || !newValid)
            {
                return;
            }

            if (TArch.IsLeaf(level, oldEntry) && TArch.IsTable(level, newEntry))
            {
                Report(level, va, oldEntry, newEntry, "a live block was replaced by a table without break-before-make");
            }
            else if (TArch.PfnOf(level, oldEntry) != TArch.PfnOf(level, newEntry) || TArch.IsTable(level, oldEntry) != TArch.IsTable(level, newEntry))
            {
                Report(level, va, oldEntry, newEntry, "a live valid entry got a different output address without break-before-make");
            }
        }
    }

    public void Flushed(ulong start, ulong end)
    {
        lock (_lock)
        {
            if (_brokenNotFlushed.Count == 0)
            {
                return;
            }

            var flushed = new List<(ulong, int)>();
            foreach (var kv in _brokenNotFlushed)
            {
                if (kv.Value >= start && kv.Value < end)
                {
                    flushed.Add(kv.Key);
                }
            }

            foreach (var key in flushed)
            {
                _brokenNotFlushed.Remove(key);
            }
        }
    }

    private void Report(int level, ulong va, ulong oldEntry, ulong newEntry, string what) =>
        _violations.Add(new Violation(ViolationKind.BreakBeforeMake, va,
            $"{Step}: {TArch.Info.Levels[level].Name} entry 0x{oldEntry:x16} -> 0x{newEntry:x16}: {what}"));
}
