using System;
using System.Collections.Generic;
using Hvo.Memory;

namespace Hvo.Scenario;

/// <summary>/sys/kernel/debug/fail_page_alloc over the machine's <see cref="FaultInjection"/>.</summary>
public sealed partial class KernelFiles<TArch>
{
    private const string FailPageAllocDir = "/sys/kernel/debug/fail_page_alloc/";
    private readonly FailPageAlloc _faults;

    private void AddFailPageAlloc()
    {
        FailPageAlloc f = _faults;
        Add(FailPageAllocDir + "probability", () => Line(f.Probability), data => f.Set(data, v => f.Probability = v));
        Add(FailPageAllocDir + "interval", () => Line(f.Interval), data => f.Set(data, v => f.Interval = v));
        Add(FailPageAllocDir + "verbose", () => Line(f.Verbose), data => f.Set(data, v => f.Verbose = v));
        Add(FailPageAllocDir + "times", () => Line(f.Times), data => f.SetInt(data, v => f.Times = v));
        Add(FailPageAllocDir + "space", () => Line(f.Space), data => f.SetInt(data, v => f.Space = v));
        Add(FailPageAllocDir + "min-order", () => Line(f.MinOrder), data => f.Set(data, v => f.MinOrder = unchecked((uint)v)));
        Add(FailPageAllocDir + "ignore-gfp-wait", () => f.IgnoreGfpWait ? "Y\n" : "N\n", data => FailPageAlloc.SetBool(data, v => f.IgnoreGfpWait = v));
        Add(FailPageAllocDir + "ignore-gfp-highmem", () => f.IgnoreGfpHighmem ? "Y\n" : "N\n", data => FailPageAlloc.SetBool(data, v => f.IgnoreGfpHighmem = v));
    }

    /// <summary>
    /// The knobs of fail_page_alloc as the kernel stores them (struct fault_attr and its
    /// ignore_gfp_* flags, defaults included: probability 0, interval 1, times 1, space 0,
    /// verbose 2, min-order 1, both ignore flags Y), carried over to <see cref="FaultInjection"/>
    /// with the kernel's meaning: a probability over 100 always fails, interval 0 is 1, a negative
    /// times is no limit, a negative space is none. Every page allocation the simulator makes may
    /// sleep (it carries __GFP_DIRECT_RECLAIM), so ignore-gfp-wait=Y spares them all; HugeTLB pages
    /// are GFP_HIGHUSER(_MOVABLE), so ignore-gfp-highmem=Y spares them.
    /// </summary>
    private sealed class FailPageAlloc
    {
        private static readonly AllocSite[] AllSites = Enum.GetValues<AllocSite>();
        private readonly FaultInjection _model;
        private ulong _probability;
        private ulong _interval = 1;
        private int _times = 1;
        private int _space;
        private uint _minOrder = 1;
        private bool _ignoreGfpWait = true;
        private bool _ignoreGfpHighmem = true;

        public FailPageAlloc(FaultInjection model)
        {
            _model = model;
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

        // simple_attr_write for the u32 and unsigned long attributes: kstrtoull(buf, 0), stored truncated to the attribute's width.
        public Errno Set(string data, Action<ulong> store)
        {
            Errno e = KernelValues.KstrToULong(data, 0, out ulong v);
            if (e == Errno.None)
            {
                store(v);
            }

            return e;
        }

        // simple_attr_write_signed for the atomic_t attributes: kstrtoll(buf, 0), stored as an int.
        public Errno SetInt(string data, Action<long> store)
        {
            Errno e = KernelValues.KstrToLong(data, 0, out long v);
            if (e == Errno.None)
            {
                store(unchecked((int)v));
            }

            return e;
        }

        // debugfs_write_file_bool: kstrtobool.
        public static Errno SetBool(string data, Action<bool> store)
        {
            if (!KernelValues.TryParseBool(data, out bool v))
            {
                return Errno.EINVAL;
            }

            store(v);
            return Errno.None;
        }

        private void ApplySites()
        {
            var sites = new HashSet<AllocSite>();
            if (!_ignoreGfpWait)
            {
                foreach (AllocSite s in AllSites)
                {
                    if (s != AllocSite.HugePage || !_ignoreGfpHighmem)
                    {
                        sites.Add(s);
                    }
                }
            }

            _model.Sites = sites;
        }
    }
}
