using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.Paging;

namespace Hvo.HugeTlb;

/// <summary>
/// What hugetlb prints at boot about each huge page size, in the format of the policy's kernel
/// (<see cref="HvoPolicy.BootMessage"/>): from v6.0 report_hugepages prints, per hstate,
/// <c>HugeTLB: registered 2.00 MiB page size, pre-allocated 0 pages</c> and <c>HugeTLB: 28 KiB vmemmap
/// can be freed for a 2.00 MiB page</c>; before, hugetlb_vmemmap_init printed <c>can free</c> (v5.14,
/// only with HVO on) or <c>can optimize</c> (v5.19) <c>N vmemmap pages for hugepages-2048kB</c> as each
/// hstate was added, and hugetlb_init <c>HugeTLB registered ...</c> (no colon before v6.0). Sizes come in
/// the order their hstates were added: the command line's (hugepagesz=), then the architecture's
/// at arch_initcall, largest first (x86-64's gigantic_pages_init adds 1 GiB; arm64's
/// hugetlbpage_init every size), then the default one hugetlb_init adds if it is still missing, so
/// x86-64 reports 1 GiB before 2 MiB unless the command line names 2 MiB first.
/// </summary>
public static class BootReport
{
    public static IReadOnlyList<string> Lines<TArch>(HugeTlbPool<TArch> pool, HvoOptimizer<TArch> optimizer, HugeTlbCommandLine commandLine)
        where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(commandLine);
        var order = new List<Hstate<TArch>>();
        void AddSize(ulong size)
        {
            if (pool.TryGetHstate(size, out Hstate<TArch>? h) && !order.Contains(h))
            {
                order.Add(h);
            }
        }

        foreach (HugePagesRequest r in commandLine.Requests)
        {
            AddSize(r.Size);
        }

        foreach (Hstate<TArch> h in pool.Hstates.OrderByDescending(h => h.Size))
        {
            AddSize(h.Size);
        }

        CultureInfo c = CultureInfo.InvariantCulture;
        var lines = new List<string>();
        HvoPolicy p = optimizer.Policy;
        if (p.RequiresPowerOfTwoStructPage && !System.Numerics.BitOperations.IsPow2(TArch.StructPageBytes))
        {
            lines.Add("HugeTLB: cannot optimize vmemmap pages because \"struct page\" crosses page boundaries");
        }

        foreach (Hstate<TArch> h in order)
        {
            ulong freed = optimizer.IsOptimizable(h.Order) ? optimizer.Geometry(h.Order).Freed : 0;
            string size = HugeBootPages.SizeString(h.Size);
            switch (p.BootMessage)
            {
                case HvoBootMessage.KiBFreed:
                    lines.Add(string.Create(c, $"HugeTLB: registered {size} page size, pre-allocated {h.FreeHugePages} pages"));
                    lines.Add(string.Create(c, $"HugeTLB: {freed * TArch.PageSize / 1024} KiB vmemmap can be freed for a {size} page"));
                    break;
                case HvoBootMessage.CanOptimize:
                    lines.Add(string.Create(c, $"HugeTLB: can optimize {freed} vmemmap pages for {h.Name}"));
                    break;
                default:
                    if (optimizer.Switches.BootEnabled)
                    {
                        lines.Add(string.Create(c, $"HugeTLB: can free {freed} vmemmap pages for {h.Name}"));
                    }

                    break;
            }
        }

        if (p.BootMessage != HvoBootMessage.KiBFreed)
        {
            foreach (Hstate<TArch> h in order)
            {
                lines.Add(string.Create(c, $"HugeTLB registered {HugeBootPages.SizeString(h.Size)} page size, pre-allocated {h.FreeHugePages} pages"));
            }
        }

        return lines;
    }
}
