using System;
using Hvo.Memory;

namespace Hvo.Paging;

/// <summary>Why a change of a live entry is not between equivalent mappings, or <see cref="None"/>.</summary>
public enum InequivalenceKind
{
    None,

    /// <summary>The leaves differ in more than their output and read-only bits.</summary>
    Attributes,

    /// <summary>The old and the new frames hold different bytes.</summary>
    Bytes,

    /// <summary>The new table does not map what the block mapped there.</summary>
    Table,

    /// <summary>Neither a leaf to a leaf nor a block to a table.</summary>
    Shape,
}

/// <summary>What made a change inequivalent: the kind and the numbers that show it.</summary>
public readonly record struct Inequivalence(InequivalenceKind Kind, ulong A = 0, ulong B = 0)
{
    public static Inequivalence None => default;

    public override string ToString() => Kind switch
    {
        InequivalenceKind.None => "equivalent",
        InequivalenceKind.Attributes => $"attributes differ in 0x{A:x}",
        InequivalenceKind.Bytes => $"frame 0x{A:x} and frame 0x{B:x} hold different bytes",
        InequivalenceKind.Table => $"entry {A} of the new table does not map what the block mapped there",
        _ => "not a leaf to leaf or block to table change",
    };
}

/// <summary>
/// FEAT_BBM level 2's condition for changing a live entry in one store (Arm ARM D8.16.1-2, as the 2024
/// discussion of re-enabling arm64 HVO reads it): a leaf to a leaf with the same attributes but for
/// the output address and read-only, whose frames hold the same bytes; or a block to a table that
/// maps exactly what the block did, with the same permissions and access flag. The
/// <see cref="EntryWriterKind.Bbml2"/> writer and the break-before-make checker both ask it.
/// </summary>
public static class Equivalence<TArch> where TArch : struct, IPagingArch
{
    public static Inequivalence Check(int level, ulong oldEntry, ulong newEntry, TableView tables, Func<ulong, ulong, bool> sameBytes)
    {
        ArgumentNullException.ThrowIfNull(sameBytes);
        if (TArch.IsLeaf(level, oldEntry) && TArch.IsLeaf(level, newEntry))
        {
            // The same attributes but for the output address and read-only (PAGE_KERNEL <-> PAGE_KERNEL_RO).
            ulong ignored = TArch.PfnMask | TArch.Info.ReadOnlyClear | TArch.Info.ReadOnlySet;
            if (((oldEntry ^ newEntry) & ~ignored) != 0)
            {
                return new Inequivalence(InequivalenceKind.Attributes, (oldEntry ^ newEntry) & ~ignored);
            }

            ulong frames = TArch.LevelSize(level) >> TArch.PageShift;
            ulong from = TArch.PfnOf(level, oldEntry), to = TArch.PfnOf(level, newEntry);
            for (ulong i = 0; i < frames; i++)
            {
                if (!sameBytes(from + i, to + i))
                {
                    return new Inequivalence(InequivalenceKind.Bytes, from + i, to + i);
                }
            }

            return Inequivalence.None;
        }

        if (TArch.IsLeaf(level, oldEntry) && TArch.IsTable(level, newEntry) && level < TArch.LastLevel)
        {
            int child = level + 1;
            ulong step = TArch.LevelSize(child) >> TArch.PageShift;
            ulong first = TArch.PfnOf(level, oldEntry);
            Span<ulong> table = tables.Table(TArch.PfnOf(level, newEntry));
            for (int i = 0; i < TArch.EntriesPerTable(child); i++)
            {
                ulong e = TableEntries.Read(table, i);
                if (!TArch.IsLeaf(child, e) || TArch.PfnOf(child, e) != first + ((ulong)i * step) ||
                    TArch.IsWritable(e) != TArch.IsWritable(oldEntry) || IsAged(child, e) != IsAged(level, oldEntry))
                {
                    return new Inequivalence(InequivalenceKind.Table, (ulong)i);
                }
            }

            return Inequivalence.None;
        }

        return new Inequivalence(InequivalenceKind.Shape);
    }

    /// <summary>A leaf with the spec's access flag clear (pte_mkold).</summary>
    public static bool IsAged(int level, ulong entry) =>
        TArch.AccessFlag != 0 && TArch.IsLeaf(level, entry) && (entry & TArch.AccessFlag) == 0;
}
