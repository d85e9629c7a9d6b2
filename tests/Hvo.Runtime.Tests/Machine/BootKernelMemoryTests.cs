using System;
using System.Linq;
using Hvo.Memory;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Machine;

/// <summary>
/// The kernel's own allocations while it boots (README, "The kernel's own memory at boot"):
/// MachineConfig.BootKernelBytes of unmovable order-0 pages, placed by the buddy's rules.
/// </summary>
[TestClass]
public sealed class BootKernelMemoryTests
{
    private const ulong GiB = 1UL << 30;

    /// <summary>
    /// On an 8 GiB PC they steal the lowest max-order blocks of Normal (4 GiB on): the blocks boot
    /// freed first are at the head of the movable list. All of them are the kernel's, whole, and
    /// unmovable pageblocks; a page of them is in the GiB at 4 GiB, so no 1 GiB page can be had there.
    /// </summary>
    [TestMethod]
    public void TheyFillTheLowestMaxOrderBlocksOfNormal()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8 * GiB });
        ulong pages = MachineConfig.DefaultBootKernelBytes >> Arch.X86_64.PageShift;
        ulong[] kernel = [.. Enumerable.Range(0, (int)m.PhysicalFrames).Select(i => m.Layout.FirstPfn + (ulong)i).Where(p => m.Owners[p] == FrameOwner.Buddy)];

        Assert.AreEqual(pages, m.BootKernelPages);
        Assert.AreEqual(pages, (ulong)kernel.Length, "the pages taken, and nothing else allocated");
        ulong normal = (4 * GiB) >> Arch.X86_64.PageShift;
        ulong block = m.Layout.MaxOrderFrames;
        ulong stolen = (pages + block - 1) / block;
        Assert.IsTrue(kernel.All(p => m.Pages.PageblockMigrateType(p) == MigrateType.Unmovable), "GFP_KERNEL");
        long low = kernel.LongCount(p => p >= normal && p < normal + ((stolen + 1) * block));
        Assert.IsTrue(low >= (long)(pages - m.Pages.PageblockFrames), $"all but what fit a pageblock memblock left part-reserved lie in the lowest {stolen + 1} max-order blocks of Normal: {low} of {pages}");
        Assert.IsFalse(m.Pages.IsReserved(kernel[0]), "from the buddy: not PG_reserved");
    }

    [TestMethod]
    public void TheBootLineSizesThemAndZeroBootsWithNone()
    {
        ScenarioOutcome byDefault = ScenarioHarness.Run("x86_64", "boot mem=2G\n");
        ScenarioOutcome none = ScenarioHarness.Run("x86_64", "boot mem=2G hvo.bootmem=0\n");
        ScenarioOutcome more = ScenarioHarness.Run("x86_64", "boot mem=2G hvo.bootmem=64M\n");

        Assert.AreEqual(none.MemInfo.MemTotalKb, byDefault.MemInfo.MemTotalKb, "they are managed memory: MemTotal does not move");
        Assert.AreEqual(none.MemInfo.MemTotalKb, none.FreeKb, "none: every managed page free");
        Assert.AreEqual(MachineConfig.DefaultBootKernelBytes >> 10, none.FreeKb - byDefault.FreeKb);
        Assert.AreEqual(64UL << 10, none.FreeKb - more.FreeKb);
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => ScenarioHarness.Run("x86_64", "boot mem=2G hvo.bootmem=lots\n"));
        StringAssert.Contains(e.Message, "hvo.bootmem=lots: Hvo's boot-time kernel allocations take a size");
        StringAssert.StartsWith(e.Message, "test.hvo:1:13: ", "the word's line and column");
    }

    /// <summary>A machine too small for them boots with what it could take (alloc with __GFP_NOWARN; boot goes on).</summary>
    [TestMethod]
    public void ATooSmallMachineBootsWithWhatItCouldTake()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 64UL << 20, BootKernelBytes = 1 * GiB });

        Assert.IsTrue(m.BootKernelPages > 0);
        Assert.IsTrue(m.BootKernelPages < (1 * GiB) >> Arch.X86_64.PageShift);
        Assert.IsTrue(m.OwnersAddUp());
        Assert.IsFalse(m.Pages.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out _), "nothing left above the min watermark");
    }
}
