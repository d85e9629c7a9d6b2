using System;
using System.Collections.Generic;
using System.Linq;
using BenchmarkDotNet.Attributes;
using Hvo.Paging;

namespace Hvo.Benchmarks;

/// <summary>
/// MMU translation of struct page addresses on a booted 64 GiB machine: TLB hits (addresses
/// that fit the TLB) and misses (addresses that collide in it, so every translation walks).
/// </summary>
[MemoryDiagnoser]
public class MmuBenchmarks
{
    public const int Addresses = 256;

    private MmuRunner _runner = null!;

    public static IEnumerable<string> Archs => ArchRegistry.Names;

    [ParamsSource(nameof(Archs))]
    public string Arch { get; set; } = "x86_64";

    [GlobalSetup]
    public void Setup() => _runner = ArchRegistry.Find(Arch)!.Accept(new MmuRunner.Factory());

    [GlobalCleanup]
    public void Cleanup() => _runner.Dispose();

    [Benchmark(OperationsPerInvoke = Addresses)]
    public ulong TranslateTlbHit() => _runner.Translate(hits: true);

    [Benchmark(OperationsPerInvoke = Addresses)]
    public ulong TranslateTlbMiss() => _runner.Translate(hits: false);
}

public abstract class MmuRunner : IDisposable
{
    public abstract ulong Translate(bool hits);

    public abstract void Dispose();

    public sealed class Factory : IArchVisitor<MmuRunner>
    {
        public MmuRunner Visit<TArch>() where TArch : struct, IPagingArch => new MmuRunner<TArch>();
    }
}

public sealed class MmuRunner<TArch> : MmuRunner where TArch : struct, IPagingArch
{
    private readonly Machine<TArch> _machine = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = 64UL << 30 });
    private readonly ulong[] _hits;
    private readonly ulong[] _misses;

    public MmuRunner()
    {
        // Consecutive vmemmap pages fill distinct TLB slots; a stride of Tlb.Entries pages lands
        // every address in the same slot, so each one evicts the last.
        ulong page = TArch.PageSize;
        _hits = Enumerable.Range(0, MmuBenchmarks.Addresses).Select(i => TArch.VmemmapStart + ((ulong)i * page)).ToArray();
        ulong vmemmapBytes = (ulong)_machine.Owners.Count(Memory.FrameOwner.BootVmemmap) << TArch.PageShift;
        ulong stride = (ulong)Tlb.Entries * page;
        _misses = Enumerable.Range(0, MmuBenchmarks.Addresses)
            .Select(i => TArch.VmemmapStart + (((ulong)i * stride) % (vmemmapBytes - stride)))
            .ToArray();
    }

    public override ulong Translate(bool hits)
    {
        ulong sum = 0;
        foreach (ulong va in hits ? _hits : _misses)
        {
            _machine.Mmu.Translate(0, va, write: false, out ulong pa);
            sum += pa;
        }

        return sum;
    }

    public override void Dispose() => _machine.Dispose();
}
