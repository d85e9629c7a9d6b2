using System.Linq;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>alloc_contig_range's migration (docs/ARCHITECTURE.md §5): shmem pages move out of a gigantic page's way; unmovable ones do not.</summary>
[TestClass]
public sealed class MigrationTests
{
    private const ulong GiB = 1UL << 30;

    [TestMethod]
    public void AGiganticAllocationMovesShmemPagesOutOfItsRange()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 4 * GiB, Strict = true });
        var shm = new Shmem(m.Pages, 0);
        ShmemFile file = shm.Open("f", append: false);
        ulong frames = GiB / Arch.X86_64.PageSize;

        // 2.5 GiB: the Normal zone (4-5 GiB, with memblock's reservations at its top), then DMA32 from
        // its start: no 1 GiB range is free any more, the one at 1 GiB is half shmem.
        Assert.AreEqual(ShmemStatus.Ok, shm.Append(file, 5 * GiB / 2, null, out _));
        long shmem = m.Owners.Count(FrameOwner.Shmem);
        Assert.IsFalse(Enumerable.Range(1, 3).Any(g => Enumerable.Range(0, (int)frames).All(i => m.Owners[((ulong)g * frames) + (ulong)i] == FrameOwner.Free)));

        Assert.IsTrue(m.Pages.TryAllocContigPages(0, frames, Gfp.Kernel, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));

        Assert.AreEqual(frames, pfn, "the first 1 GiB range with no unmovable page: DMA32's at 1 GiB, its shmem pages moved away");
        Assert.IsTrue(m.Pages.PagesMigrated > 0);
        Assert.AreEqual(shmem, m.Owners.Count(FrameOwner.Shmem), "every shmem page still there, elsewhere");
        Assert.IsTrue(Enumerable.Range(0, (int)frames).All(i => m.Owners[pfn + (ulong)i] == FrameOwner.HugePage));
        Assert.AreEqual(m.Owners.Count(FrameOwner.Free), m.Pages.NrFreePages + m.Pages.PcpPages);
        Assert.IsTrue(shm.Unlink("f"));
        Assert.AreEqual(0, m.Owners.Count(FrameOwner.Shmem));
        m.Pages.FreeContigRange(pfn, frames, FrameOwner.HugePage);
        Assert.IsTrue(m.OwnersAddUp());
    }

    [TestMethod]
    public void ARangeWithAnUnmovablePageIsPassedOver()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 4 * GiB, Strict = true });
        ulong frames = GiB / Arch.X86_64.PageSize;
        var shm = new Shmem(m.Pages, 0);
        Assert.AreEqual(ShmemStatus.Ok, shm.Append(shm.Open("f", append: false), 5 * GiB / 2, null, out _));
        Assert.IsTrue(m.Pages.TryAllocPages(0, 0, Gfp.Kernel, AllocSite.Other, FrameOwner.Buddy, out ulong kernelPage));
        Assert.IsTrue(kernelPage >= frames && kernelPage < 2 * frames, "a kernel page beside the shmem pages of the range at 1 GiB");

        long free = m.Pages.NrFreePages + m.Pages.PcpPages; // the attempt drains the per-CPU lists (alloc_contig_range)

        // The same machine without the kernel page gets the range at 1 GiB (the test above); with it,
        // every 1 GiB range holds a page that cannot move (memblock's, or this one).
        Assert.IsFalse(m.Pages.TryAllocContigPages(0, frames, Gfp.Kernel, AllocSite.HugePage, FrameOwner.HugePage, out _));
        Assert.AreEqual(0, m.Pages.PagesMigrated, "no range was isolated, nothing moved");
        Assert.AreEqual(FrameOwner.Buddy, m.Owners[kernelPage]);
        Assert.AreEqual(0, m.Pages.PcpPages, "drained");
        Assert.AreEqual(free, m.Pages.NrFreePages);
        Assert.IsTrue(m.OwnersAddUp());
    }
}
