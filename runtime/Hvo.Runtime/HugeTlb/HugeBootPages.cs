using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>A gigantic page memblock gave at boot (struct huge_bootmem_page).</summary>
public readonly record struct HugeBootPage(ulong Size, ulong Pfn, int Node);

/// <summary>
/// The HugeTLB command line of a booted machine and huge_boot_pages: the gigantic pages it asks
/// for, taken from memblock while the machine boots, after the vmemmap is populated and before
/// memblock_free_all (hugepages_setup runs hugetlb_hstate_alloc_pages for gigantic sizes as the
/// command line is parsed). Their frames are <see cref="FrameOwner.HugePage"/> and outside the
/// page allocator until <see cref="HugeTlbPool{TArch}"/> gathers them (gather_bootmem_prealloc);
/// the command line's other sizes are allocated when the pool is created (hugetlb_init).
/// </summary>
public sealed class HugeBootPages
{
    private HugeBootPages(HugeTlbCommandLine commandLine, IReadOnlyList<HugeBootPage> pages, IReadOnlyDictionary<ulong, int> nextNid, IReadOnlyDictionary<ulong, ulong> allocated, IReadOnlyList<string> log)
    {
        CommandLine = commandLine;
        Pages = pages;
        NextNidToAlloc = nextNid;
        Allocated = allocated;
        Log = log;
    }

    /// <summary>A machine booted without HugeTLB parameters.</summary>
    public static HugeBootPages None { get; } = new(HugeTlbCommandLine.Empty, [], new Dictionary<ulong, int>(), new Dictionary<ulong, ulong>(), []);

    /// <summary>
    /// Boot <paramref name="config"/> with <paramref name="commandLine"/>'s HugeTLB parameters: the
    /// machine, and in <paramref name="bootPages"/> the gigantic pages memblock gave for them, for the
    /// pool to gather.
    /// </summary>
    public static Machine<TArch> Boot<TArch>(MachineConfig config, HugeTlbCommandLine commandLine, out HugeBootPages bootPages)
        where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        HugeBootPages? allocated = null;
        Machine<TArch> machine = Machine<TArch>.Boot(config, memblock => allocated = Alloc<TArch>(memblock, commandLine));
        bootPages = allocated ?? throw new InvalidOperationException("boot did not reach memblock_free_all");
        return machine;
    }

    /// <summary>The boot line's hugepagesz=, hugepages= and default_hugepagesz=.</summary>
    public HugeTlbCommandLine CommandLine { get; }

    /// <summary>The pages, in allocation order.</summary>
    public IReadOnlyList<HugeBootPage> Pages { get; }

    /// <summary>Each gigantic size's next_nid_to_alloc after boot's interleaving.</summary>
    public IReadOnlyDictionary<ulong, int> NextNidToAlloc { get; }

    /// <summary>Pages allocated per size: the hstate's max_huge_pages after boot.</summary>
    public IReadOnlyDictionary<ulong, ulong> Allocated { get; }

    /// <summary>What the kernel logged (the command line's warnings, then allocation failures).</summary>
    public IReadOnlyList<string> Log { get; }

    /// <summary>
    /// hugetlb_hstate_alloc_pages for each gigantic request, in command-line order:
    /// alloc_bootmem_huge_page interleaves nodes from the hstate's next_nid_to_alloc (each a
    /// size-aligned block from memblock, top down, on that node or, failing that, another
    /// (memblock_alloc_try_nid_raw)); a per-node request takes its node only. The first page that
    /// cannot be had ends the request, with the kernel's warning.
    /// </summary>
    public static HugeBootPages Alloc<TArch>(BootAllocator memblock, HugeTlbCommandLine commandLine)
        where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(memblock);
        ArgumentNullException.ThrowIfNull(commandLine);
        MachineLayout layout = memblock.Layout;
        var pages = new List<HugeBootPage>();
        var nextNid = new Dictionary<ulong, int>();
        var allocated = new Dictionary<ulong, ulong>();
        var log = new List<string>(commandLine.Warnings);
        foreach (HugePagesRequest request in commandLine.Requests)
        {
            ulong frames = request.Size >> TArch.PageShift;
            bool supported = TArch.Info.HugePageSizes.Any(h => h.Size == request.Size);
            if (!supported || frames <= layout.MaxOrderFrames)
            {
                continue; // the buddy allocator's, when the pool is created
            }

            int next = nextNid.GetValueOrDefault(request.Size);
            ulong done = 0;
            if (request.PerNode is null)
            {
                for (; done < request.Count; done++)
                {
                    int node = next;
                    next = (next + 1) % layout.Nodes;
                    if (!memblock.TryAlloc(node, frames, frames, FrameOwner.HugePage, out ulong pfn, fallbackToOtherNodes: true))
                    {
                        break;
                    }

                    pages.Add(new HugeBootPage(request.Size, pfn, layout.NodeOf(pfn)));
                }

                if (done < request.Count)
                {
                    log.Add(string.Create(CultureInfo.InvariantCulture,
                        $"HugeTLB: allocating {request.Count} of page size {SizeString(request.Size)} failed.  Only allocated {done} hugepages."));
                }
            }
            else
            {
                foreach ((int node, ulong count) in request.PerNode)
                {
                    if ((uint)node >= (uint)layout.Nodes)
                    {
                        log.Add(string.Create(CultureInfo.InvariantCulture, $"HugeTLB: Invalid hugepages parameter {node}:{count}"));
                        continue;
                    }

                    ulong i = 0;
                    for (; i < count && memblock.TryAlloc(node, frames, frames, FrameOwner.HugePage, out ulong pfn); i++)
                    {
                        pages.Add(new HugeBootPage(request.Size, pfn, node));
                    }

                    done += i;
                    if (i < count)
                    {
                        log.Add(string.Create(CultureInfo.InvariantCulture,
                            $"HugeTLB: allocating {count} of page size {SizeString(request.Size)} failed node{node}.  Only allocated {i} hugepages."));
                    }
                }
            }

            nextNid[request.Size] = next;
            allocated[request.Size] = done;
        }

        return new HugeBootPages(commandLine, pages, nextNid, allocated, log);
    }

    /// <summary>string_get_size(size, 1, STRING_UNITS_2): three significant digits, "1.00 GiB", "32.0 MiB", "512 MiB".</summary>
    public static string SizeString(ulong bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        int unit = 0;
        double value = bytes;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        string format = unit == 0 ? "0" : value >= 100 ? "0" : value >= 10 ? "0.0" : "0.00";
        return value.ToString(format, CultureInfo.InvariantCulture) + " " + units[unit];
    }
}
