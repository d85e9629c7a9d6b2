using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.Memory;

namespace Hvo.Scenario;

/// <summary>
/// The fault-injection files and their one parser: the knobs of /sys/kernel/debug/fail_page_alloc
/// (fault_create_debugfs_attr's probability, interval, times, space and verbose;
/// fail_page_alloc_debugfs's ignore-gfp-wait, ignore-gfp-highmem and min-order) and the task's
/// /proc/self/fail-nth, each parsed as its store function parses it. A script writes them through
/// <see cref="KernelFiles{TArch}"/>; <c>hvo simulate --fail-alloc</c> checks its values with
/// <see cref="Check"/> and then writes them, so both accept and refuse the same values.
/// </summary>
public static class FaultInjectionFiles
{
    public const string FailPageAllocDir = "/sys/kernel/debug/fail_page_alloc/";

    /// <summary>proc_fail_nth_write's file: the task's fail_nth.</summary>
    public const string FailNthPath = "/proc/self/fail-nth";

    internal static IReadOnlyList<FaultKnob> Knobs { get; } =
    [
        Unsigned("probability", s => s.Probability, (s, v) => s.Probability = v),
        Unsigned("interval", s => s.Interval, (s, v) => s.Interval = v),
        Signed("times", s => s.Times, (s, v) => s.Times = v),
        Signed("space", s => s.Space, (s, v) => s.Space = v),
        Unsigned("verbose", s => s.Verbose, (s, v) => s.Verbose = v),
        Unsigned("min-order", s => s.MinOrder, (s, v) => s.MinOrder = unchecked((uint)v)), // a u32: the value is truncated
        Bool("ignore-gfp-wait", s => s.IgnoreGfpWait, (s, v) => s.IgnoreGfpWait = v),
        Bool("ignore-gfp-highmem", s => s.IgnoreGfpHighmem, (s, v) => s.IgnoreGfpHighmem = v),
        new("fail-nth", FailNthPath, s => Line(s.FailNth), FailNth),
    ];

    /// <summary>The knobs' names (the file names; fail-nth for /proc/self/fail-nth), in the order the kernel creates them.</summary>
    public static IReadOnlyList<string> Names { get; } = [.. Knobs.Select(k => k.Name)];

    /// <summary>The file of the knob <paramref name="name"/>; null when there is no such knob.</summary>
    public static string? PathOf(string name) => Find(name)?.Path;

    /// <summary>The errno a write of <paramref name="data"/> to the knob <paramref name="name"/>'s file returns; nothing is stored.</summary>
    public static Errno Check(string name, string data) =>
        (Find(name) ?? throw new ArgumentException($"no fault-injection knob '{name}'", nameof(name))).Parse(data).Errno;

    private static FaultKnob? Find(string name) => Knobs.FirstOrDefault(k => k.Name == name);

    private static string Line(ulong value) => value.ToString(CultureInfo.InvariantCulture) + "\n";

    private static string Line(long value) => value.ToString(CultureInfo.InvariantCulture) + "\n";

    // simple_attr_write for the unsigned long and u32 attributes: kstrtoull(buf, 0).
    private static FaultKnob Unsigned(string name, Func<FailPageAllocState, ulong> get, Action<FailPageAllocState, ulong> set) =>
        new(name, FailPageAllocDir + name, s => Line(get(s)), data =>
            KernelValues.KstrToULong(data, 0, out ulong v) is var e && e != Errno.None ? (e, null) : (Errno.None, s => set(s, v)));

    // simple_attr_write_signed for the atomic_t attributes: kstrtoll(buf, 0), stored as an int.
    private static FaultKnob Signed(string name, Func<FailPageAllocState, long> get, Action<FailPageAllocState, int> set) =>
        new(name, FailPageAllocDir + name, s => Line(get(s)), data =>
            KernelValues.KstrToLong(data, 0, out long v) is var e && e != Errno.None ? (e, null) : (Errno.None, s => set(s, unchecked((int)v))));

    // debugfs_write_file_bool: kstrtobool; read back as Y or N.
    private static FaultKnob Bool(string name, Func<FailPageAllocState, bool> get, Action<FailPageAllocState, bool> set) =>
        new(name, FailPageAllocDir + name, s => get(s) ? "Y\n" : "N\n", data =>
            KernelValues.TryParseBool(data, out bool v) ? (Errno.None, s => set(s, v)) : (Errno.EINVAL, null));

    // proc_fail_nth_write: kstrtouint(buf, 0), more than 32 bits is -ERANGE.
    private static (Errno, Action<FailPageAllocState>?) FailNth(string data)
    {
        Errno e = KernelValues.KstrToULong(data, 0, out ulong v);
        if (e == Errno.None && v > uint.MaxValue)
        {
            e = Errno.ERANGE;
        }

        return e != Errno.None ? (e, null) : (Errno.None, s => s.FailNth = v);
    }
}

/// <summary>One fault-injection file: its name and path, what a read shows, and what a write parses and stores.</summary>
internal sealed record FaultKnob(string Name, string Path, Func<FailPageAllocState, string> Show, Func<string, (Errno Errno, Action<FailPageAllocState>? Store)> Parse)
{
    /// <summary>The store function: parse, and store when the value is accepted.</summary>
    public Errno Write(FailPageAllocState state, string data)
    {
        (Errno e, Action<FailPageAllocState>? store) = Parse(data);
        store?.Invoke(state);
        return e;
    }
}

/// <summary>
/// The knobs of fail_page_alloc as the kernel stores them (struct fault_attr and its ignore_gfp_*
/// flags, defaults included: probability 0, interval 1, times 1, space 0, verbose 2, min-order 1,
/// both ignore flags Y), carried over to <see cref="FaultInjection"/> with the kernel's meaning: a
/// probability over 100 always fails, interval 0 is 1, a negative times is no limit, a negative
/// space is none. Every page allocation the simulator makes may sleep (it carries
/// __GFP_DIRECT_RECLAIM), so ignore-gfp-wait=Y spares them all; HugeTLB pages are
/// GFP_HIGHUSER(_MOVABLE), so ignore-gfp-highmem=Y spares them. The sites the flags leave are
/// narrowed to <c>siteFilter</c>, this model's filter (the kernel has none), and the draws are
/// seeded with <c>seed</c>.
/// </summary>
internal sealed class FailPageAllocState
{
    private static readonly AllocSite[] AllSites = Enum.GetValues<AllocSite>();
    private readonly FaultInjection _model;
    private readonly IReadOnlySet<AllocSite>? _siteFilter;
    private ulong _probability;
    private ulong _interval = 1;
    private int _times = 1;
    private int _space;
    private uint _minOrder = 1;
    private bool _ignoreGfpWait = true;
    private bool _ignoreGfpHighmem = true;

    public FailPageAllocState(FaultInjection model, IReadOnlySet<AllocSite>? siteFilter, ulong seed)
    {
        _model = model;
        _siteFilter = siteFilter;
        _model.Seed = seed;
        _model.Probability = 0;
        _model.Interval = 1;
        _model.Times = 1;
        _model.Space = 0;
        _model.MinOrder = 1;
        ApplySites();
    }

    public ulong Probability
    {
        get => _probability;
        set
        {
            _probability = value;
            _model.Probability = (int)Math.Min(value, 100);
        }
    }

    public ulong Interval
    {
        get => _interval;
        set
        {
            _interval = value;
            _model.Interval = Math.Max(value, 1);
        }
    }

    public ulong Verbose { get; set; } = 2;

    /// <summary>times: an atomic_t. The model counts down from what is left, so read it from there.</summary>
    public long Times
    {
        get => _model.Times < 0 ? _times : _model.Times;
        set
        {
            _times = (int)value;
            _model.Times = _times < 0 ? -1 : _times;
        }
    }

    public long Space
    {
        get => _space < 0 ? _space : _model.Space;
        set
        {
            _space = (int)value;
            _model.Space = Math.Max(_space, 0);
        }
    }

    public uint MinOrder
    {
        get => _minOrder;
        set
        {
            _minOrder = value;
            _model.MinOrder = (int)Math.Min(value, int.MaxValue);
        }
    }

    public bool IgnoreGfpWait
    {
        get => _ignoreGfpWait;
        set
        {
            _ignoreGfpWait = value;
            ApplySites();
        }
    }

    public bool IgnoreGfpHighmem
    {
        get => _ignoreGfpHighmem;
        set
        {
            _ignoreGfpHighmem = value;
            ApplySites();
        }
    }

    /// <summary>The task's fail_nth: the calls still to come before the one that fails, counting it; 0 for none.</summary>
    public ulong FailNth
    {
        get => (ulong)_model.PendingFailNth;
        set => _model.FailNth((long)value);
    }

    private void ApplySites()
    {
        var sites = new HashSet<AllocSite>();
        if (!_ignoreGfpWait)
        {
            foreach (AllocSite s in AllSites)
            {
                if ((s != AllocSite.HugePage || !_ignoreGfpHighmem) && (_siteFilter is null || _siteFilter.Contains(s)))
                {
                    sites.Add(s);
                }
            }
        }

        _model.Sites = sites;
    }
}
