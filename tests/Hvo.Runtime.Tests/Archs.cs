using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Runtime.Tests;

/// <summary>Test data over the generated registry: a new spec file is covered with no new test code.</summary>
public static class Archs
{
    public static IEnumerable<object[]> All => ArchRegistry.All.Select(e => new object[] { e.Name });

    /// <summary>Every (architecture, level that may hold a block above the last level).</summary>
    public static IEnumerable<object[]> SplittableLevels =>
        ArchRegistry.All.SelectMany(e => e.Info.Levels
            .Select((l, i) => (l, i))
            .Where(x => x.l.CanMapLeaf && x.i < e.Info.LastLevel)
            .Select(x => new object[] { e.Name, x.i }));

    /// <summary>Every (architecture, huge page size).</summary>
    public static IEnumerable<object[]> HugePageSizes =>
        ArchRegistry.All.SelectMany(e => e.Info.HugePageSizes.Select(h => new object[] { e.Name, h.Size }));

    /// <summary>
    /// The architecture of each family that the heavy whole-machine suites run on in CI, the others'
    /// rows being in the long category (<see cref="Others"/>). A family is the specs that differ only in
    /// how many levels the page table has (its virtual address bits, where the vmemmap sits and how
    /// large it is): the same page size, entry format, struct page, vmemmap mapping and huge page
    /// sizes, so the same HVO arithmetic and the same kinds of entries (x86_64 and x86_64-la57;
    /// riscv64-sv39, -sv48 and -sv57). Its representative is the one with the fewest levels. Every
    /// spec still runs the walk, descriptor, split, ptdump and machine tests in CI.
    /// </summary>
    public static bool IsRepresentative(string name)
    {
        ArchInfo a = Get(name).Info;
        return ArchRegistry.All.Where(e => Family(e.Info) == Family(a))
            .OrderBy(e => e.Info.Levels.Count).ThenBy(e => e.Name, StringComparer.Ordinal)
            .First().Name == name;
    }

    /// <summary>The rows of <paramref name="cases"/> (architecture name first) for each family's representative.</summary>
    public static IEnumerable<object[]> Representatives(IEnumerable<object[]> cases) => cases.Where(c => IsRepresentative((string)c[0]));

    /// <summary>The rows of <paramref name="cases"/> for the other members of each family: the long category's share.</summary>
    public static IEnumerable<object[]> Others(IEnumerable<object[]> cases) => cases.Where(c => !IsRepresentative((string)c[0]));

    private static string Family(ArchInfo a) => string.Join(
        "|",
        a.PageShift, a.PfnLo, a.PfnHi, a.Table, a.Block, a.Page, a.ReadOnlyClear, a.ReadOnlySet, a.PageKernelRo, a.AccessFlag,
        a.EmptyIsInvalidTable, a.BreakBeforeMake, a.Replacement, a.StructPageBytes, a.Levels[a.VmemmapBootLevel].Size, a.RamBase, a.VmemmapOffsetByRamBase,
        string.Join(",", a.HugePageSizes.Select(h => h.Size)), a.SectionShift, string.Join(",", a.Zones));

    /// <summary>
    /// Every architecture whose largest huge page is gigantic: larger than a max-order block, so
    /// alloc_contig_pages allocates it (LoongArch's only size, a PMD, is one max-order block).
    /// </summary>
    public static IEnumerable<object[]> WithGiganticPages =>
        ArchRegistry.All.Where(e => e.Info.HugePageSizes.Max(h => h.Size) > e.Info.PageSize << MachineLayout.DefaultMaxOrder(e.Info.PageShift))
            .Select(e => new object[] { e.Name });

    /// <summary>The memory whose struct pages one boot leaf of the vmemmap holds (128 MiB for a 2 MiB PMD of 4 KiB pages, 8 GiB for LoongArch's 32 MiB one).</summary>
    public static ulong MemoryPerBootLeaf(ArchInfo a) =>
        a.Levels[a.VmemmapBootLevel].Size / (ulong)a.StructPageBytes * a.PageSize;

    public static ArchEntry Get(string name) =>
        ArchRegistry.Find(name) ?? throw new ArgumentException($"no architecture {name}");

    public static T Run<T>(string name, IArchVisitor<T> visitor) => Get(name).Accept(visitor);
}

/// <summary>A page table standing alone: table frames from the bottom of a frame store, data frames above.</summary>
public sealed class TestPageTable<TArch> : IDisposable where TArch : struct, IPagingArch
{
    public const ulong TableFrames = 1 << 14;

    public TestPageTable(ulong frames = 1UL << 24)
    {
        Store = new FrameStore(frames, TArch.PageShift, 0, TArch.MaxTableEntries);
        Source = new FrameRangeSource(1, TableFrames, TArch.TableOrder);
        Table = new KernelPageTable<TArch>(Store, Source);
    }

    public FrameStore Store { get; }

    public FrameRangeSource Source { get; }

    public KernelPageTable<TArch> Table { get; }

    /// <summary>A frame number aligned for any leaf these tests map, far above the table frames.</summary>
    public static ulong DataPfn => 1UL << 20;

    public void Dispose() => Store.Dispose();
}
