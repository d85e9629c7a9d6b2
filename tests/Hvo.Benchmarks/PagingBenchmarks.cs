using System;
using System.Collections.Generic;
using System.Linq;
using BenchmarkDotNet.Attributes;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Paging.Reference;

namespace Hvo.Benchmarks;

/// <summary>
/// The generated, specialized walker against the reference walker that interprets the same spec
/// at run time, on the same page table and the same addresses. One row pair per architecture,
/// straight from the registry.
/// </summary>
[MemoryDiagnoser]
public class WalkBenchmarks
{
    public const int Addresses = 1024;

    private PagingRunner _runner = null!;

    public static IEnumerable<string> Archs => ArchRegistry.Names;

    [ParamsSource(nameof(Archs))]
    public string Arch { get; set; } = "x86_64";

    [GlobalSetup]
    public void Setup() => _runner = ArchRegistry.Find(Arch)!.Accept(new PagingRunner.Factory());

    [GlobalCleanup]
    public void Cleanup() => _runner.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = Addresses)]
    public ulong ReferenceWalk() => _runner.ReferenceWalks();

    /// <summary>The generated walk over one address, with a look-up visitor: what the interpreted one is compared with.</summary>
    [Benchmark(OperationsPerInvoke = Addresses)]
    public ulong GeneratedWalk() => _runner.GeneratedWalks();

    /// <summary><c>KernelPageTable.Walk</c>: the same, as the MMU calls it on a TLB miss.</summary>
    [Benchmark(OperationsPerInvoke = Addresses)]
    public ulong PageTableWalk() => _runner.PageTableWalks();
}

/// <summary>Splitting one leaf of the lowest splittable level (then putting the leaf back).</summary>
[MemoryDiagnoser]
public class SplitBenchmarks
{
    private PagingRunner _runner = null!;

    public static IEnumerable<string> Archs => ArchRegistry.Names;

    [ParamsSource(nameof(Archs))]
    public string Arch { get; set; } = "x86_64";

    [GlobalSetup]
    public void Setup() => _runner = ArchRegistry.Find(Arch)!.Accept(new PagingRunner.Factory());

    [GlobalCleanup]
    public void Cleanup() => _runner.Dispose();

    [Benchmark(Baseline = true)]
    public SplitStatus ReferenceSplitLeaf() => _runner.ReferenceSplit();

    [Benchmark]
    public SplitStatus GeneratedSplitLeaf() => _runner.GeneratedSplit();
}

public abstract class PagingRunner : IDisposable
{
    public abstract ulong GeneratedWalks();

    public abstract ulong ReferenceWalks();

    public abstract ulong PageTableWalks();

    public abstract SplitStatus GeneratedSplit();

    public abstract SplitStatus ReferenceSplit();

    public abstract void Dispose();

    public sealed class Factory : IArchVisitor<PagingRunner>
    {
        public PagingRunner Visit<TArch>() where TArch : struct, IPagingArch => new PagingRunner<TArch>();
    }
}

public sealed class PagingRunner<TArch> : PagingRunner where TArch : struct, IPagingArch
{
    private readonly FrameStore _store;
    private readonly KernelPageTable<TArch> _table;
    private readonly ReferenceWalker _reference;
    private readonly ulong[] _addresses;
    private readonly int _splitLevel;
    private readonly ulong _splitVa;

    public PagingRunner()
    {
        _store = new FrameStore(1UL << 24, TArch.PageShift, 0, TArch.MaxTableEntries);
        _table = new KernelPageTable<TArch>(_store, new FrameRangeSource(1, 1 << 16, TArch.TableOrder));
        _reference = new ReferenceWalker(TArch.Info);

        // A vmemmap as boot maps it (64 boot leaves), half of them split as HVO leaves them.
        int boot = TArch.VmemmapBootLevel;
        ulong leaf = TArch.LevelSize(boot);
        ulong span = leaf * 64;
        if (!_table.TryMap(TArch.VmemmapStart, 1UL << 20, span, boot))
        {
            throw new InvalidOperationException("benchmark page table did not fit");
        }

        for (ulong va = TArch.VmemmapStart; boot < TArch.LastLevel && va < TArch.VmemmapStart + span; va += 2 * leaf)
        {
            _table.SplitLeaf(boot, va);
        }

        var rng = new Random(42);
        _addresses = Enumerable.Range(0, WalkBenchmarks.Addresses)
            .Select(_ => TArch.VmemmapStart + ((ulong)rng.NextInt64((long)span) & ~7UL))
            .ToArray();

        // The leaf the split benchmarks split and restore: the lowest level that holds blocks.
        _splitLevel = Enumerable.Range(0, TArch.LastLevel).Last(TArch.LevelCanMapLeaf);
        _splitVa = TArch.VmemmapStart + (1UL << 40 < TArch.VmemmapSize ? 1UL << 40 : TArch.VmemmapSize / 2);
        _splitVa &= ~(TArch.LevelSize(_splitLevel) - 1);
        if (!_table.TryMap(_splitVa, 1UL << 22, TArch.LevelSize(_splitLevel), _splitLevel))
        {
            throw new InvalidOperationException("benchmark split leaf did not fit");
        }
    }

    // The walk over one address with the look-up visitor, generated or interpreted.
    public override ulong GeneratedWalks()
    {
        var ctx = _table.ReadOnlyContext;
        ulong root = _table.RootPfn;
        ulong sum = 0;
        foreach (ulong va in _addresses)
        {
            var lookup = default(KernelPageTable<TArch>.LookupVisitor);
            TArch.WalkRange(ref ctx, root, va, va + 1, ref lookup, PageWalkFlags.None);
            sum += lookup.Result.Entry;
        }

        return sum;
    }

    public override ulong ReferenceWalks()
    {
        var ctx = _table.ReadOnlyContext;
        ulong root = _table.RootPfn;
        ulong sum = 0;
        foreach (ulong va in _addresses)
        {
            var lookup = default(KernelPageTable<TArch>.LookupVisitor);
            _reference.WalkRange(ref ctx, root, va, va + 1, ref lookup, PageWalkFlags.None);
            sum += lookup.Result.Entry;
        }

        return sum;
    }

    public override ulong PageTableWalks()
    {
        _table.Reference = null;
        return Walks();
    }

    public override SplitStatus GeneratedSplit()
    {
        _table.Reference = null;
        SplitStatus status = _table.SplitLeaf(_splitLevel, _splitVa);
        Unsplit();
        return status;
    }

    public override SplitStatus ReferenceSplit()
    {
        _table.Reference = _reference;
        SplitStatus status = _table.SplitLeaf(_splitLevel, _splitVa);
        Unsplit();
        return status;
    }

    private ulong Walks()
    {
        ulong sum = 0;
        foreach (ulong va in _addresses)
        {
            sum += _table.Walk(va).Entry;
        }

        return sum;
    }

    public override void Dispose() => _store.Dispose();

    // Put the leaf back and free the table the split installed, so every call splits afresh.
    private void Unsplit()
    {
        _table.Reference = null;
        WalkResult at = _table.EntryAt(_splitLevel, _splitVa);
        var ctx = _table.Ctx();
        ctx.SetEntry(_splitLevel, at.TablePfn, at.Index, at.Entry, TArch.MakeLeaf(_splitLevel, 1UL << 22), _splitVa);
        ctx.FreeTable(_splitLevel + 1, TArch.PfnOf(_splitLevel, at.Entry));
    }
}
