using System;
using Hvo.Lib;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Scenario;

/// <summary>
/// The machines a boot line may describe, in one place for the boot line and for
/// <c>hvo simulate</c> (which writes one): the node counts <c>numa=fake=</c> takes, and the memory
/// an architecture's machine can have (without <c>mem=</c>: <see cref="MachineConfig.DefaultMemoryBytes"/>).
/// </summary>
public static class MachineSize
{
    /// <summary>The most nodes <c>numa=fake=</c> (and <c>--nodes</c>) may ask for: this model's bound.</summary>
    public const int MaxNodes = 64;

    /// <summary>The least memory for <paramref name="nodes"/> nodes: a max-order block on each (MachineLayout), or the buddy allocator has no node to put it in.</summary>
    public static ulong MinMemoryBytes(ArchInfo arch, int nodes) => MaxOrderBytes(arch) * (ulong)nodes;

    /// <summary>
    /// Why a machine of <paramref name="memoryBytes"/> (whole pages) on <paramref name="nodes"/>
    /// nodes, its RAM from <paramref name="ramBase"/> (null: where the spec puts it), cannot be booted
    /// on <paramref name="arch"/>, or null when it can: the reason reads after the value it is about
    /// (<c>mem=1P is more than ...</c>, <c>--memory: 1P is more than ...</c>).
    /// <paramref name="runLimit"/> is a caller's own bound (a harness running scripts it did not write).
    /// </summary>
    public static string? Check(ArchInfo arch, ulong memoryBytes, int nodes, ulong runLimit = ulong.MaxValue, ulong? ramBase = null)
    {
        ArgumentNullException.ThrowIfNull(arch);
        ulong start = ramBase ?? arch.RamBase;
        if (new MachineConfig { RamBase = start }.RamBaseProblem(arch) is { } where)
        {
            return $"cannot be booted: {where}";
        }

        ulong describable = arch.DescribableBytes(start);
        if (memoryBytes > describable)
        {
            // Both sizes: the memory asked for reads before this, the vmemmap's reach here.
            string from = start == 0 ? string.Empty : $" for RAM from 0x{start:x}";
            return $"is more than {arch.Name}'s vmemmap can describe{from} ({CmdLine.FormatSize(describable)})";
        }

        int pfnBits = arch.PfnHi - arch.PfnLo + 1;
        if (pfnBits < 64 - arch.PageShift && (start >> arch.PageShift) + (memoryBytes >> arch.PageShift) > 1UL << pfnBits)
        {
            return $"ends above the {pfnBits + arch.PageShift}-bit physical addresses {arch.Name}'s entries hold (RAM from 0x{start:x})";
        }

        if (memoryBytes > FrameStore.MaxBytes)
        {
            return $"is more than the simulator can hold ({CmdLine.FormatSize(FrameStore.MaxBytes)})";
        }

        if (memoryBytes > runLimit)
        {
            return $"is more than this run allows ({CmdLine.FormatSize(runLimit)})";
        }

        if (memoryBytes < MinMemoryBytes(arch, nodes))
        {
            return $"is too small for {nodes} node(s) of {arch.Name}: the kernel cannot boot without a {CmdLine.FormatSize(MaxOrderBytes(arch))} max-order block on each node; use at least {CmdLine.FormatSize(MinMemoryBytes(arch, nodes))}";
        }

        return null;
    }

    private static ulong MaxOrderBytes(ArchInfo arch) => arch.PageSize << MachineLayout.DefaultMaxOrder(arch.PageShift);
}
