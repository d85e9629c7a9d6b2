using System;
using System.Collections.Generic;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Cli.Plots;

/// <summary>How one boot leaf of the vmemmap (a PMD on x86-64 and arm64-4k) is mapped now.</summary>
public enum VmemmapLeafState
{
    /// <summary>Still the block vmemmap_populate_hugepages mapped at boot.</summary>
    Huge,

    /// <summary>Split into a PTE table (split_vmemmap_huge_pmd); none of its struct pages belong to an optimized page now.</summary>
    Split,

    /// <summary>Split, and holding the struct pages of at least one page with HPageVmemmapOptimized.</summary>
    SplitOptimized,

    /// <summary>Mapped by base pages since boot (the spec's bootMapping is the last level): nothing to split.</summary>
    BasePages,

    /// <summary>Base pages since boot, holding struct pages of an optimized page.</summary>
    BasePagesOptimized,

    /// <summary>Struct pages of no RAM (a firmware hole such as a PC's below 4 GiB): never populated.</summary>
    NoMemory,
}

/// <summary>
/// The vmemmap of a machine cut into the leaves boot mapped it with (or PMD-sized pieces when boot
/// used base pages), in address order, each with its <see cref="VmemmapLeafState"/>: the picture
/// of which PMDs HVO split. Read from the page table and the pool's pages, not from counters.
/// </summary>
/// <param name="Start">Vmemmap address of the first leaf.</param>
/// <param name="LeafBytes">Vmemmap bytes per leaf.</param>
/// <param name="MemoryPerLeaf">Physical memory whose struct pages one leaf holds.</param>
/// <param name="LevelName">The page-table level of a leaf (pmd, ...).</param>
/// <param name="Leaves">One state per leaf, lowest address first.</param>
public sealed record VmemmapLeafMap(ulong Start, ulong LeafBytes, ulong MemoryPerLeaf, string LevelName, IReadOnlyList<VmemmapLeafState> Leaves)
{
    public int Count(VmemmapLeafState state)
    {
        int n = 0;
        foreach (VmemmapLeafState s in Leaves)
        {
            n += s == state ? 1 : 0;
        }

        return n;
    }

    /// <summary>The map of <paramref name="machine"/>'s vmemmap, with the optimized pages of every hstate of <paramref name="pool"/>.</summary>
    public static VmemmapLeafMap Of<TArch>(Machine<TArch> machine, HugeTlbPool<TArch> pool) where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentNullException.ThrowIfNull(pool);
        bool bootBasePages = TArch.VmemmapBootLevel >= TArch.LastLevel || !machine.Config.VmemmapBlocks;
        int level = TArch.VmemmapBootLevel < TArch.LastLevel ? TArch.VmemmapBootLevel : TArch.LastLevel - 1;
        ulong leaf = TArch.LevelSize(level);
        ulong start = machine.StructPageAddress(machine.Layout.FirstPfn) & ~(leaf - 1);
        ulong end = (machine.StructPageAddress(machine.Layout.EndPfn) + leaf - 1) & ~(leaf - 1);
        int count = (int)((end - start) / leaf);

        var holdsOptimized = new bool[count];
        foreach (Hstate<TArch> h in pool.Hstates)
        {
            foreach (HugePage page in pool.Pages(h))
            {
                if (!page.VmemmapOptimized)
                {
                    continue;
                }

                ulong first = machine.StructPageAddress(page.HeadPfn);
                ulong last = first + (page.Frames * (ulong)TArch.StructPageBytes) - 1;
                for (ulong i = (first - start) / leaf; i <= (last - start) / leaf; i++)
                {
                    holdsOptimized[i] = true;
                }
            }
        }

        // One walk of the vmemmap, down to the boot leaves' level: which of them are still blocks.
        var blocks = new BlockVisitor { Level = level, Start = start, LeafBytes = leaf, Huge = new bool[count] };
        machine.PageTable.WalkRange(start, end, ref blocks);
        var leaves = new VmemmapLeafState[count];
        for (int i = 0; i < count; i++)
        {
            if (machine.VmemmapDescribesOnlyHoles(start + ((ulong)i * leaf), start + ((ulong)(i + 1) * leaf)))
            {
                leaves[i] = VmemmapLeafState.NoMemory;
                continue;
            }

            leaves[i] = (blocks.Huge[i], bootBasePages, holdsOptimized[i]) switch
            {
                (true, _, _) => VmemmapLeafState.Huge,
                (false, true, false) => VmemmapLeafState.BasePages,
                (false, true, true) => VmemmapLeafState.BasePagesOptimized,
                (false, false, false) => VmemmapLeafState.Split,
                (false, false, true) => VmemmapLeafState.SplitOptimized,
            };
        }

        ulong memoryPerLeaf = leaf / (ulong)TArch.StructPageBytes * TArch.PageSize;
        return new VmemmapLeafMap(start, leaf, memoryPerLeaf, TArch.Info.Levels[level].Name, leaves);
    }

    /// <summary>Marks the boot leaves a block (a leaf at the boot level or above) still maps; a table or a hole leaves them unmarked.</summary>
    private struct BlockVisitor : IPageWalkVisitor
    {
        public int Level;
        public ulong Start;
        public ulong LeafBytes;
        public bool[] Huge;

        public readonly WalkAction Table<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext =>
            e.Level < Level ? WalkAction.Descend : WalkAction.Continue;

        public readonly WalkAction Leaf<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext
        {
            if (e.Level <= Level)
            {
                for (ulong i = (e.Addr - Start) / LeafBytes; i <= (e.Next - 1 - Start) / LeafBytes; i++)
                {
                    Huge[i] = true;
                }
            }

            return WalkAction.Continue;
        }

        public readonly WalkAction Hole<TCtx>(ref TCtx ctx, PageWalkEntry e) where TCtx : struct, IPageTableContext => WalkAction.Continue;
    }
}
