using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.Lib;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// <c>hugepages=</c> for one size: <paramref name="Count"/> pages interleaved over the nodes, or,
/// with <paramref name="PerNode"/> (the <c>hugepages=0:2,1:3</c> form), that many on each node
/// and <paramref name="Count"/> their sum.
/// </summary>
public sealed record HugePagesRequest(ulong Size, ulong Count, IReadOnlyList<(int Node, ulong Count)>? PerNode = null);

/// <summary>
/// The HugeTLB part of the kernel command line: <c>hugepagesz=</c>, <c>hugepages=</c> and
/// <c>default_hugepagesz=</c>, resolved to sizes. Gigantic sizes are allocated from memblock while
/// the machine boots (hugepages_setup → hugetlb_hstate_alloc_pages → alloc_bootmem_huge_page, see
/// <see cref="HugeBootPages"/>); the others from the buddy allocator when the pool is created
/// (hugetlb_init → hugetlb_init_hstates). Build one with <see cref="Parse"/> from a boot line or
/// with <see cref="BootReserve"/>.
/// </summary>
public sealed record HugeTlbCommandLine
{
    public static HugeTlbCommandLine Empty { get; } = new();

    /// <summary>default_hugepagesz=: the default hstate's size; null for the architecture's HPAGE_SIZE.</summary>
    public ulong? DefaultSize { get; init; }

    /// <summary>Pages to allocate at boot, in command-line order.</summary>
    public IReadOnlyList<HugePagesRequest> Requests { get; init; } = [];

    /// <summary>What the kernel would have logged while parsing (pr_warn), in order.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary><c>hugepagesz=<paramref name="size"/> hugepages=<paramref name="count"/></c> (on node <paramref name="node"/> only: <c>hugepages=node:count</c>).</summary>
    public HugeTlbCommandLine BootReserve(ulong size, ulong count, int? node = null) => this with
    {
        Requests = [.. Requests, new HugePagesRequest(size, count, node is { } n ? [(n, count)] : null)],
    };

    /// <summary><c>default_hugepagesz=<paramref name="size"/></c>.</summary>
    public HugeTlbCommandLine WithDefaultSize(ulong size) => this with { DefaultSize = size };

    /// <summary>
    /// The default hstate's size on <paramref name="arch"/> (HPAGE_SIZE): the plain leaf one level
    /// above the PTEs (PMD_SIZE on x86-64 and arm64), or the smallest huge page size if there is none.
    /// </summary>
    public static ulong ArchDefaultSize(ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(arch);
        foreach (HugePageSizeInfo h in arch.HugePageSizes)
        {
            if (h.ContiguousCount == 1 && h.Level == arch.LastLevel - 1)
            {
                return h.Size;
            }
        }

        return arch.HugePageSizes.Min(h => h.Size);
    }

    /// <summary>The default hstate's size: <see cref="DefaultSize"/> or <see cref="ArchDefaultSize"/>.</summary>
    public ulong ResolveDefaultSize(ArchInfo arch) => DefaultSize ?? ArchDefaultSize(arch);

    /// <summary>
    /// The kernel's parsing of a boot line for <paramref name="arch"/> (hugepagesz_setup,
    /// hugepages_setup, default_hugepagesz_setup in mm/hugetlb.c): a <c>hugepages=</c> applies to
    /// the <c>hugepagesz=</c> before it, or to the default size when none came before; an
    /// unsupported size, a size given twice, or <c>hugepages=</c> twice without a
    /// <c>hugepagesz=</c> between is ignored with the kernel's warning. Other parameters are
    /// ignored. Sizes take the kernel's K/M/G suffixes (memparse).
    /// </summary>
    public static HugeTlbCommandLine Parse(string commandLine, ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        ArgumentNullException.ThrowIfNull(arch);
        var state = new ParseState(arch);
        foreach (string word in commandLine.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = word.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0)
            {
                continue;
            }

            string value = word[(eq + 1)..];
            switch (word[..eq])
            {
                case "hugepagesz":
                    state.HugePageSize(value);
                    break;
                case "hugepages":
                    state.HugePages(value);
                    break;
                case "default_hugepagesz":
                    state.DefaultHugePageSize(value);
                    break;
            }
        }

        return state.Finish();
    }

    // The parser's globals: parsed_hstate, parsed_valid_hugepagesz, parsed_default_hugepagesz,
    // default_hstate_max_huge_pages, last_mhp.
    private sealed class ParseState(ArchInfo arch)
    {
        private readonly List<string> _warnings = [];
        private readonly List<ulong> _sizes = [];                   // hstates added so far (hugetlb_add_hstate)
        private readonly Dictionary<ulong, HugePagesRequest> _counts = [];
        private readonly List<ulong> _order = [];
        private ulong? _parsed;                                     // parsed_hstate
        private bool _parsedValid = true;                           // parsed_valid_hugepagesz
        private ulong? _default;                                    // parsed_default_hugepagesz
        private HugePagesRequest? _defaultPending;                  // default_hstate_max_huge_pages (+ per node)
        private object? _lastTarget;                                // last_mhp

        public void HugePageSize(string value)
        {
            _parsedValid = false;
            if (CmdLine.Memparse(value) is not { IsWhole: true, Bytes: var size } || !IsValid(size))
            {
                _warnings.Add($"HugeTLB: unsupported hugepagesz={value}");
                return;
            }

            if (_sizes.Contains(size))
            {
                // Allowed once for the default size, if hugepages= was not given for it yet.
                if (_default != size || _counts.ContainsKey(size))
                {
                    _warnings.Add($"HugeTLB: hugepagesz={value} specified twice, ignoring");
                    return;
                }
            }
            else
            {
                _sizes.Add(size);
            }

            _parsed = size;
            _parsedValid = true;
        }

        public void HugePages(string value)
        {
            if (!_parsedValid)
            {
                _warnings.Add($"HugeTLB: hugepages={value} does not follow a valid hugepagesz, ignoring");
                _parsedValid = true;
                return;
            }

            object target = _sizes.Count == 0 ? "default" : _parsed!.Value;
            if (Equals(target, _lastTarget))
            {
                _warnings.Add($"HugeTLB: hugepages= specified twice without interleaving hugepagesz=, ignoring hugepages={value}");
                return;
            }

            if (!TryParseCounts(value, out ulong count, out List<(int Node, ulong Count)>? perNode))
            {
                _warnings.Add($"HugeTLB: Invalid hugepages parameter {value}");
                return;
            }

            _lastTarget = target;
            if (_sizes.Count == 0)
            {
                _defaultPending = new HugePagesRequest(0, count, perNode);
                return;
            }

            Set(_parsed!.Value, count, perNode);
        }

        public void DefaultHugePageSize(string value)
        {
            if (_default is not null)
            {
                _warnings.Add($"HugeTLB: default_hugepagesz previously specified, ignoring {value}");
                return;
            }

            if (CmdLine.Memparse(value) is not { IsWhole: true, Bytes: var size } || !IsValid(size))
            {
                _warnings.Add($"HugeTLB: unsupported default_hugepagesz={value}. Ignoring");
                return;
            }

            if (!_sizes.Contains(size))
            {
                _sizes.Add(size);
                _parsed = size;
            }

            _parsedValid = true;
            _default = size;
            if (_defaultPending is { } pending)
            {
                Set(size, pending.Count, pending.PerNode);
                _defaultPending = null;
            }
        }

        public HugeTlbCommandLine Finish()
        {
            ulong defaultSize = _default ?? ArchDefaultSize(arch);
            if (_defaultPending is { } pending)
            {
                // hugetlb_init: hugepages= with no size applies to the default hstate.
                Set(defaultSize, pending.Count, pending.PerNode);
            }

            return new HugeTlbCommandLine
            {
                DefaultSize = _default,
                Requests = [.. _order.Select(s => _counts[s])],
                Warnings = [.. _warnings],
            };
        }

        private void Set(ulong size, ulong count, IReadOnlyList<(int Node, ulong Count)>? perNode)
        {
            if (!_counts.ContainsKey(size))
            {
                _order.Add(size);
            }

            _counts[size] = new HugePagesRequest(size, count, perNode);
        }

        private bool IsValid(ulong size) => arch.HugePageSizes.Any(h => h.Size == size);

        // "N" or "node:N,node:N,...".
        private static bool TryParseCounts(string value, out ulong count, out List<(int Node, ulong Count)>? perNode)
        {
            count = 0;
            perNode = null;
            if (!value.Contains(':', StringComparison.Ordinal))
            {
                return ulong.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out count);
            }

            perNode = [];
            foreach (string part in value.Split(','))
            {
                string[] kv = part.Split(':');
                if (kv.Length != 2
                    || !int.TryParse(kv[0], NumberStyles.None, CultureInfo.InvariantCulture, out int node)
                    || !ulong.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong n))
                {
                    return false;
                }

                perNode.Add((node, n));
                count += n;
            }

            return true;
        }
    }
}
