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
        Store = new FrameStore(frames, TArch.PageShift);
        Source = new FrameRangeSource(1, TableFrames);
        Table = new KernelPageTable<TArch>(Store, Source);
    }

    public FrameStore Store { get; }

    public FrameRangeSource Source { get; }

    public KernelPageTable<TArch> Table { get; }

    /// <summary>A frame number aligned for any leaf these tests map, far above the table frames.</summary>
    public static ulong DataPfn => 1UL << 20;

    public void Dispose() => Store.Dispose();
}
