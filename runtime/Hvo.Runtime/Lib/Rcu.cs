using System;
using System.Threading;

namespace Hvo.Lib;

/// <summary>
/// RCU as the machine's CPUs use it: a CPU between rcu_read_lock and rcu_read_unlock is a reader;
/// synchronize_rcu waits until every CPU that was reading when it was called has left that
/// read-side section (a grace period). Readers never wait. Thread-safe: the CPUs are threads.
/// </summary>
public sealed class Rcu
{
    private readonly long[] _nesting;
    private readonly long[] _exits;
    private int _waiting;
    private long _gracePeriods;

    public Rcu(int cpus)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(cpus, 1);
        _nesting = new long[cpus];
        _exits = new long[cpus];
    }

    /// <summary>CPUs inside synchronize_rcu now, waiting for readers.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>Grace periods completed.</summary>
    public long GracePeriods => Interlocked.Read(ref _gracePeriods);

    /// <summary>rcu_read_lock on <paramref name="cpu"/>.</summary>
    public void ReadLock(int cpu) => Interlocked.Increment(ref _nesting[cpu]);

    /// <summary>rcu_read_unlock on <paramref name="cpu"/>.</summary>
    public void ReadUnlock(int cpu)
    {
        long nesting = Interlocked.Decrement(ref _nesting[cpu]);
        if (nesting < 0)
        {
            throw new InvalidOperationException($"rcu_read_unlock on CPU {cpu} without rcu_read_lock");
        }

        if (nesting == 0)
        {
            // Only the outermost unlock ends the read-side section a grace period waits for: an
            // inner one leaves the CPU reading.
            Interlocked.Increment(ref _exits[cpu]);
        }
    }

    /// <summary>Is <paramref name="cpu"/> in a read-side critical section?</summary>
    public bool IsReading(int cpu) => Interlocked.Read(ref _nesting[cpu]) > 0;

    /// <summary>synchronize_rcu: wait for every reader that had begun to finish; <paramref name="self"/> is the caller's CPU, which is not reading.</summary>
    public void Synchronize(int self)
    {
        int n = _nesting.Length;
        Span<long> seen = n <= 64 ? stackalloc long[n] : new long[n];

        // smp_mb: what the caller stored before the call is visible before the readers' state is
        // read (one fence, then plain atomic reads: a 64-bit read is whole, and needs no lock here).
        Interlocked.MemoryBarrier();
        bool readers = false;
        for (int cpu = 0; cpu < n; cpu++)
        {
            seen[cpu] = cpu != self && Volatile.Read(ref _nesting[cpu]) > 0 ? Volatile.Read(ref _exits[cpu]) : -1;
            readers |= seen[cpu] >= 0;
        }

        if (!readers)
        {
            // No CPU was reading: the grace period is over already, with nothing to wait for.
            Interlocked.Increment(ref _gracePeriods);
            return;
        }

        Interlocked.Increment(ref _waiting);
        try
        {
            var spin = default(SpinWait);
            for (int cpu = 0; cpu < n; cpu++)
            {
                while (seen[cpu] >= 0 && Volatile.Read(ref _exits[cpu]) == seen[cpu])
                {
                    spin.SpinOnce();
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        Interlocked.Increment(ref _gracePeriods);
    }
}
