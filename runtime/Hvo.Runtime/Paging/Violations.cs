using System.Collections.Generic;
using System.Threading;

namespace Hvo.Paging;

public enum ViolationKind
{
    /// <summary>A TLB hit returned a translation the page table no longer holds, with no flush in between.</summary>
    StaleTranslation,

    /// <summary>A frame was freed while a page-table entry still mapped it.</summary>
    FreedWhileMapped,

    /// <summary>A frame was freed while a CPU's TLB could still reach it (freed before the flush).</summary>
    FreedWhileInTlb,

    /// <summary>
    /// A live valid entry was changed against the architecture's replacement rule: without an invalid
    /// entry and a flush in between (arm64's break-before-make), or without invalidating it first (s390).
    /// </summary>
    BreakBeforeMake,
}

/// <summary>One broken rule, with where and at which step.</summary>
public sealed record Violation(ViolationKind Kind, ulong Address, string Detail)
{
    /// <summary>The entry's change, for a violation about one (break-before-make); null otherwise.</summary>
    public EntryChange? Change { get; init; }

    public override string ToString() => $"{Kind} at 0x{Address:x16}: {Detail}";
}

/// <summary>A page-table entry replaced by another: its level's name, the two values, the kernel step (the walk's, e.g. vmemmap_remap_pte) and what rule the change broke.</summary>
public sealed record EntryChange(string Level, ulong OldEntry, ulong NewEntry, string Step, string What);

/// <summary>The violations the machine's checkers recorded; the simulation keeps running after each.</summary>
public sealed class ViolationLog
{
    private readonly List<Violation> _items = new();
    private readonly Lock _lock = new();

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _items.Count;
            }
        }
    }

    public void Add(Violation v)
    {
        lock (_lock)
        {
            _items.Add(v);
        }
    }

    public IReadOnlyList<Violation> Snapshot()
    {
        lock (_lock)
        {
            return _items.ToArray();
        }
    }

    public int CountOf(ViolationKind kind)
    {
        lock (_lock)
        {
            return _items.FindAll(v => v.Kind == kind).Count;
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            _items.Clear();
        }
    }
}
