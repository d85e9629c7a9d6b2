using System;
using System.Collections.Generic;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// fail_page_alloc: makes page allocations fail on purpose, with the knobs of
/// /sys/kernel/debug/fail_page_alloc and the checks in the order of lib/fault-inject.c
/// should_fail: a pending <see cref="FailNth"/> first (the task's fail-nth), then
/// <see cref="Probability"/> 0 means never, then <see cref="Times"/>, <see cref="Space"/>,
/// <see cref="Interval"/> and the probability draw. Before any of that,
/// should_fail_alloc_page lets through calls below <see cref="MinOrder"/>, and this model's
/// filters let through calls from sites outside <see cref="Sites"/> and calls without every flag
/// of <see cref="RequiredGfp"/>; only calls past the filters count as <see cref="Calls"/>.
/// Draws come from a generator seeded with <see cref="Seed"/>, so a seed replays the same
/// failures for the same sequence of calls.
/// </summary>
/// <remarks>
/// Defaults are the kernel's: probability 0, interval 1, times 1, space 0, min-order 1. This class
/// knows no ignore-gfp-wait or ignore-gfp-highmem: those flags are modelled by the
/// /sys/kernel/debug/fail_page_alloc files (Scenario's FaultInjectionFiles), which set
/// <see cref="Sites"/> to the call sites they let through: none while ignore-gfp-wait is Y (its
/// default; every allocation here may sleep), and no HugeTLB page while ignore-gfp-highmem is Y.
/// Used on its own, with <see cref="Sites"/> null, it behaves as after <c>echo N &gt;</c> both, as
/// fail_page_alloc recipes start. Thread-safe.
/// </remarks>
public sealed class FaultInjection
{
    private readonly Lock _lock = new();
    private ulong _seed;
    private ulong _state;
    private int _probability;
    private ulong _interval = 1;
    private ulong _intervalCount;
    private long _times = 1;
    private long _space;
    private int _minOrder = 1;
    private IReadOnlySet<AllocSite>? _sites;
    private Gfp _requiredGfp;
    private long _failNth;
    private long _calls;
    private long _failures;

    public FaultInjection(ulong seed = 0) => Seed = seed;

    /// <summary>Seeds the probability draws; setting it restarts them.</summary>
    public ulong Seed
    {
        get
        {
            lock (_lock)
            {
                return _seed;
            }
        }

        set
        {
            lock (_lock)
            {
                _seed = value;
                _state = value;
            }
        }
    }

    /// <summary>probability: percent of eligible calls that fail, 0 to 100.</summary>
    public int Probability
    {
        get => Read(ref _probability);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 100);
            Write(ref _probability, value);
        }
    }

    /// <summary>interval: only every interval-th call that gets this far may fail (1: every call).</summary>
    public ulong Interval
    {
        get => Read(ref _interval);
        set
        {
            ArgumentOutOfRangeException.ThrowIfZero(value);
            Write(ref _interval, value);
        }
    }

    /// <summary>times: how many failures are left; -1 for no limit. Each failure uses one.</summary>
    public long Times
    {
        get => Read(ref _times);
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, -1);
            Write(ref _times, value);
        }
    }

    /// <summary>space: pages of allocations let through before failures start; each call of size 2^order uses that much while it lasts.</summary>
    public long Space
    {
        get => Read(ref _space);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Write(ref _space, value);
        }
    }

    /// <summary>min-order: smaller allocations are never failed (the kernel's default is 1, sparing order 0).</summary>
    public int MinOrder
    {
        get => Read(ref _minOrder);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Write(ref _minOrder, value);
        }
    }

    /// <summary>The call sites that may be failed; null for every site.</summary>
    public IReadOnlySet<AllocSite>? Sites
    {
        get => Read(ref _sites);
        set => Write(ref _sites, value is null ? null : new HashSet<AllocSite>(value));
    }

    /// <summary>Flags a call must carry to be failed, e.g. <see cref="Gfp.NoRetry"/> for restore-style calls; <see cref="Gfp.Kernel"/> for any call.</summary>
    public Gfp RequiredGfp
    {
        get => Read(ref _requiredGfp);
        set => Write(ref _requiredGfp, value);
    }

    /// <summary>Calls that passed the filters and reached should_fail.</summary>
    public long Calls => Read(ref _calls);

    /// <summary>Calls failed.</summary>
    public long Failures => Read(ref _failures);

    /// <summary>
    /// /proc/self/fail-nth: the <paramref name="k"/>-th call from now that reaches should_fail
    /// fails, whatever the other knobs say, and the calls before it do not; 0 disarms it.
    /// </summary>
    public void FailNth(long k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        Write(ref _failNth, k);
    }

    /// <summary>Calls still to come before the armed <see cref="FailNth"/> failure, counting it; 0 when disarmed.</summary>
    public long PendingFailNth => Read(ref _failNth);

    /// <summary>should_fail_alloc_page, then should_fail for an allocation of 2^<paramref name="order"/> pages.</summary>
    public bool ShouldFail(AllocSite site, int order, Gfp gfp)
    {
        // should_fail_alloc_page's order filter first, without the lock: an order-0 page (every
        // vmemmap page HVO allocates) never counts with the default min-order of 1. A setter racing
        // the call is ordered either way, as it would be by the lock.
        if (order < Volatile.Read(ref _minOrder))
        {
            return false;
        }

        lock (_lock)
        {
            if (order < _minOrder || (_sites is not null && !_sites.Contains(site)) || (gfp & _requiredGfp) != _requiredGfp)
            {
                return false;
            }

            _calls++;
            if (_failNth > 0)
            {
                return --_failNth == 0 && Failed();
            }

            if (_probability == 0 || _times == 0)
            {
                return false;
            }

            long size = 1L << order;
            if (_space > size)
            {
                _space -= size;
                return false;
            }

            if (_interval > 1 && ++_intervalCount % _interval != 0)
            {
                return false;
            }

            return (int)((NextRandom() >> 32) * 100 >> 32) < _probability && Failed();
        }
    }

    private bool Failed()
    {
        if (_times > 0)
        {
            _times--;
        }

        _failures++;
        return true;
    }

    // SplitMix64: a fixed, portable sequence for a seed.
    private ulong NextRandom()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private T Read<T>(ref T field)
    {
        lock (_lock)
        {
            return field;
        }
    }

    private void Write<T>(ref T field, T value)
    {
        lock (_lock)
        {
            field = value;
        }
    }
}
