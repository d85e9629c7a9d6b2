using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.Machine;

/// <summary>
/// <c>Machine.FreeVmemmapFrames</c> over frames in any order (one optimized page's, which a restore
/// took off the per-CPU list newest first) gives back exactly what one <c>FreeVmemmapFrame</c> per
/// frame does: the same lists in the same order, the same owners and counts.
/// </summary>
[TestClass]
public sealed class FreeVmemmapFramesTests
{
    [TestMethod]
    [DataRow(-1)]
    [DataRow(0)]
    [DataRow(1)]
    [DataRow(2)]
    public void FramesInAnyOrderGoBackAsOneCallPerFrameGivesThem(int seed)
    {
        using var single = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 1UL << 30 });
        using var batch = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 1UL << 30 });
        ulong[] frames = [.. Take(single, 9)];
        CollectionAssert.AreEqual(frames, Take(batch, 9));
        if (seed < 0)
        {
            Array.Reverse(frames);
        }
        else
        {
            new Random(seed).Shuffle(frames);
        }

        foreach (ulong pfn in frames)
        {
            single.FreeVmemmapFrame(pfn);
        }

        batch.FreeVmemmapFrames(frames);

        Assert.AreEqual(single.Pages.BuddyInfo(), batch.Pages.BuddyInfo());
        Assert.IsGreaterThan(0L, single.Pages.PcpPages, "the frames wait on the per-CPU list");
        Assert.AreEqual(single.Pages.PcpPages, batch.Pages.PcpPages);
        Assert.AreEqual(0L, batch.Owners.Count(FrameOwner.RuntimeVmemmap));
        CollectionAssert.AreEqual(Take(single, 40), Take(batch, 40), "the lists hand out the same frames in the same order");
    }

    private static List<ulong> Take(Machine<Arch.X86_64> m, int count)
    {
        var pages = new List<ulong>();
        Assert.AreEqual(count, m.Pages.TryAllocOrder0Pages(0, Gfp.Kernel, AllocSite.VmemmapRestore, FrameOwner.RuntimeVmemmap, count, pages));
        return pages;
    }
}
