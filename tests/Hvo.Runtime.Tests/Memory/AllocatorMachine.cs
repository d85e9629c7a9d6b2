using System;
using System.Collections.Generic;
using System.Text;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>A machine's memory as boot leaves it: a layout, an owner table, memblock, then the buddy allocator.</summary>
public static class AllocatorMachine
{
    public const ulong MiB = 1UL << 20;
    public const ulong GiB = 1UL << 30;

    /// <summary>The page allocator of <paramref name="bytes"/> of <paramref name="arch"/> memory, after <paramref name="boot"/> ran on memblock.</summary>
    public static PageAllocator Create(string arch, ulong bytes, int nodes = 1, Action<BootAllocator>? boot = null, FaultInjection? faults = null) =>
        Create(MachineLayout.For(Archs.Get(arch).Info, bytes, nodes), boot, faults);

    public static PageAllocator Create(MachineLayout layout, Action<BootAllocator>? boot = null, FaultInjection? faults = null)
    {
        var memblock = new BootAllocator(layout, FrameOwnerTable.For(layout));
        boot?.Invoke(memblock);
        return new PageAllocator(memblock, faults);
    }

    /// <summary>Free blocks per zone and order: the state buddyinfo shows, for before/after comparisons.</summary>
    public static string Blocks(PageAllocator allocator) => allocator.BuddyInfo();

    /// <summary>
    /// Every zone's free lists, order by order and type by type, each head first, the zone's free
    /// pages, then each CPU's lists, head first: the state that decides which frames come next.
    /// </summary>
    public static string FreeLists(PageAllocator allocator)
    {
        var text = new StringBuilder();
        foreach (Zone zone in allocator.Zones)
        {
            for (int order = 0; order < zone.FreeAreaCount; order++)
            {
                for (MigrateType type = MigrateType.Unmovable; type <= MigrateType.Reclaimable; type++)
                {
                    List<ulong> list = zone.Area(order).Blocks(type);
                    if (list.Count > 0)
                    {
                        text.Append(zone).Append(" order ").Append(order).Append(' ').Append(type).Append(": ").AppendJoin(' ', list).Append('\n');
                    }
                }
            }

            text.Append(zone).Append(" free ").Append(zone.FreePages).Append('\n');
            foreach (PerCpuPages pcp in zone.Pagesets)
            {
                for (int type = 0; type < pcp.Lists.Length; type++)
                {
                    text.Append(zone).Append(" cpu ").Append(pcp.Cpu).Append(" list ").Append(type).Append(": ").AppendJoin(' ', pcp.Lists[type].Pages()).Append('\n');
                }
            }
        }

        return text.ToString();
    }

    /// <summary>Allocate order-<paramref name="order"/> blocks until the allocator refuses; the blocks, in allocation order.</summary>
    public static List<ulong> AllocateUntilRefused(PageAllocator allocator, int nid, int order, Gfp gfp = Gfp.Kernel, FrameOwner owner = FrameOwner.Buddy)
    {
        var blocks = new List<ulong>();
        while (allocator.TryAllocPages(nid, order, gfp, AllocSite.Other, owner, out ulong pfn))
        {
            blocks.Add(pfn);
        }

        return blocks;
    }

    /// <summary>Frames the allocator handed out and has not had back.</summary>
    public static long Allocated(PageAllocator allocator) => allocator.ManagedPages - allocator.NrFreePages;
}
