using System.Collections.Generic;
using System.Linq;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Vmemmap;

[TestClass]
public sealed class GeometryTests
{
    /// <summary>
    /// docs/ARCHITECTURE.md §7.1 as the kernel documents it, by (base page, huge page) -> vmemmap bytes:
    /// the numbers below are checked against each spec's arithmetic wherever a spec has that pair.
    /// </summary>
    private static readonly (ulong Base, ulong Huge, ulong VmemmapBytes)[] s_documented =
    [
        (4 << 10, 64 << 10, 1024),
        (4 << 10, 2 << 20, 8 * 4096),
        (4 << 10, 32 << 20, 128 * 4096),
        (4 << 10, 1 << 30, 4096 * 4096),
        (16 << 10, 2 << 20, 8192),
        (16 << 10, 32 << 20, 8 * 16384),
        (16 << 10, 1 << 30, 256 * 16384),
        (64 << 10, 2 << 20, 2048),
        (64 << 10, 512 << 20, 8 * 65536),
        (64 << 10, 16UL << 30, 256 * 65536),
    ];

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void VmemmapPagesAndFreedPagesFollowFromTheSpec(string arch, ulong size)
    {
        ArchInfo a = Archs.Get(arch).Info;
        HugePageVmemmap g = HugePageVmemmap.For(a, size);

        // struct pages of the huge page, times sizeof(struct page), in base pages
        ulong bytes = (size >> a.PageShift) * (ulong)a.StructPageBytes;
        Assert.AreEqual(bytes, g.VmemmapBytes);
        Assert.AreEqual(bytes >> a.PageShift, g.VmemmapPages);
        foreach (int reserve in new[] { VmemmapReserve.V5_14, VmemmapReserve.V5_18 })
        {
            bool optimizable = (bytes >> a.PageShift) > (ulong)reserve;
            Assert.AreEqual(optimizable, g.IsOptimizable(reserve), $"reserve {reserve}");
            Assert.AreEqual(optimizable ? (bytes >> a.PageShift) - (ulong)reserve : 0, g.FreedPages(reserve), $"reserve {reserve}");
        }
    }

    [TestMethod]
    [DynamicData(nameof(Archs.HugePageSizes), typeof(Archs))]
    public void DocumentedTableRowsMatchTheSpec(string arch, ulong size)
    {
        ArchInfo a = Archs.Get(arch).Info;
        var row = s_documented.Where(r => r.Base == a.PageSize && r.Huge == size).ToArray();
        if (row.Length == 0)
        {
            Assert.Inconclusive($"{arch} {size}: no documented row for this pair");
        }

        HugePageVmemmap g = HugePageVmemmap.For(a, size);
        Assert.AreEqual(row[0].VmemmapBytes, g.VmemmapBytes);
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void EveryHugePageSizeIsALeafOrAContiguousRunOfTheSpec(string arch)
    {
        ArchInfo a = Archs.Get(arch).Info;
        foreach (HugePageSizeInfo h in a.HugePageSizes)
        {
            Assert.AreEqual(h.Size, a.Levels[h.Level].Size * (ulong)h.ContiguousCount);
            if (h.ContiguousCount > 1)
            {
                Assert.IsTrue(a.Contiguous.Any(c => c.Level == h.Level && c.Count == h.ContiguousCount));
            }
        }
    }

    /// <summary>
    /// The specs whose vmemmap is sized by a fixed linear map. s390x is left out: its kernel sizes the
    /// vmemmap by the memory found at boot (setup_kernel_memory_layout), so its spec has no linearMapBits.
    /// </summary>
    public static IEnumerable<object[]> FixedLinearMap => Archs.All.Where(c => (string)c[0] != "s390x");

    [TestMethod]
    [DynamicData(nameof(FixedLinearMap))]
    public void VmemmapRegionHoldsTheStructPagesOfTheLinearMap(string arch)
    {
        ArchInfo a = Archs.Get(arch).Info;
        Assert.IsNotNull(a.LinearMapBits, "shipped specs say how much memory the vmemmap describes");
        ulong needed = (1UL << (a.LinearMapBits!.Value - a.PageShift)) * (ulong)a.StructPageBytes;
        Assert.IsTrue(a.VmemmapSize >= needed);
        Assert.AreEqual(0UL, a.VmemmapStart & (a.Levels[a.VmemmapBootLevel].Size - 1));
    }
}
