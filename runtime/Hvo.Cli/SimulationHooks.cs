using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using Hvo.Cli.Plots;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Cli;

/// <summary>
/// What a simulation does besides building its report: fail_page_alloc's knobs and seed, how
/// many writes of nr_hugepages grow each pool, Ctrl-C (a pending signal for set_max_huge_pages),
/// progress, and the samples a plot needs. Filled in by the command, read back after the run.
/// </summary>
internal sealed class SimulationHooks
{
    /// <summary>fail_page_alloc's knobs; null leaves fault injection off.</summary>
    public FaultSpec? Faults { get; init; }

    /// <summary>Seed of fail_page_alloc's draws: the same seed replays the same failures.</summary>
    public ulong Seed { get; init; }

    /// <summary>
    /// Writes of nr_hugepages per requested pool: 1 writes the whole count at once
    /// (<c>echo N &gt; nr_hugepages</c>); more grow it in equal steps, as a loop of writes would.
    /// </summary>
    public int Writes { get; init; } = 1;

    /// <summary>A pending signal: growth stops after the page being allocated.</summary>
    public CancellationToken Cancel { get; init; }

    /// <summary>Told the fresh pages allocated so far, all pools together, after each one.</summary>
    public Action<ulong>? Progress { get; init; }

    /// <summary>Sample the pool after each write and map the vmemmap at the end (for --plot).</summary>
    public bool Record { get; init; }

    /// <summary>Growth stopped for Ctrl-C.</summary>
    public bool Interrupted { get; private set; }

    /// <summary>Fresh pages allocated by all writes.</summary>
    public ulong Allocated { get; private set; }

    /// <summary>One point before growing and one after each write.</summary>
    public List<GrowthPoint> Samples { get; } = [];

    /// <summary>The vmemmap after growing, when <see cref="Record"/>.</summary>
    public VmemmapLeafMap? Vmemmap { get; private set; }

    /// <summary>Pages all requests ask for: the progress bar's end.</summary>
    public static ulong Total((ulong Size, ulong Count)[] request) =>
        request.Aggregate(0UL, (sum, r) => sum > ulong.MaxValue - r.Count ? ulong.MaxValue : sum + r.Count);

    /// <summary>Arm fail_page_alloc on the booted machine, before the pool allocates anything.</summary>
    public void Arm<TArch>(Machine<TArch> machine) where TArch : struct, IPagingArch
    {
        machine.Faults.Seed = Seed;
        Faults?.ApplyTo(machine.Faults);
    }

    /// <summary>Grow each requested pool in <see cref="Writes"/> writes, stopping for Ctrl-C.</summary>
    public void Grow<TArch>(HugeTlbPool<TArch> pool, HvoOptimizer<TArch> optimizer, (ulong Size, ulong Count)[] request)
        where TArch : struct, IPagingArch
    {
        Sample(pool, optimizer);
        foreach ((ulong size, ulong count) in request)
        {
            Hstate<TArch> h = pool.Hstate(size);
            ulong previous = ulong.MaxValue;
            for (int i = 1; i <= Writes; i++)
            {
                if (Cancel.IsCancellationRequested)
                {
                    // The loop of writes is interrupted too: no more writes.
                    Interrupted = true;
                    break;
                }

                ulong target = (ulong)((UInt128)count * (ulong)i / (ulong)Writes);
                if (target == previous)
                {
                    continue;
                }

                previous = target;
                ulong start = Allocated;
                PoolResize r = pool.SetNrHugepages(h, target, null, Cancel, Progress is null ? null : n => Progress(start + n));
                Allocated += r.Allocated;
                Sample(pool, optimizer);
                if (r.Interrupted)
                {
                    Interrupted = true;
                    break;
                }
            }

            Progress?.Invoke(Allocated);
            if (Interrupted)
            {
                break;
            }

        }

        if (Record)
        {
            Vmemmap = VmemmapLeafMap.Of(pool.Machine, pool);
        }
    }

    private void Sample<TArch>(HugeTlbPool<TArch> pool, HvoOptimizer<TArch> optimizer) where TArch : struct, IPagingArch
    {
        if (!Record)
        {
            return;
        }

        Samples.Add(GrowthPoint.Of(PoolSample.Of(pool, optimizer)));
    }
}
