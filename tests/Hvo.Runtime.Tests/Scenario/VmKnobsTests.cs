using System;
using System.Linq;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>THP's min_free_kbytes, the writable watermark sysctls, drop_caches and the node list.</summary>
[TestClass]
public sealed class VmKnobsTests
{
    private const string Vm = "/proc/sys/vm/";
    private const string Thp = "/sys/kernel/mm/transparent_hugepage/enabled";

    private static string Run(string text)
    {
        ScenarioOutcome o = ScenarioHarness.Run("x86_64", text);
        Assert.IsEmpty(o.Invariants, string.Join("; ", o.Invariants));
        return o.Transcript;
    }

    /// <summary>
    /// set_recommended_min_free_kbytes on a 4 GiB PC: DMA, DMA32 and Normal populated, 2 + 3×3
    /// pageblocks of 512 pages each: 67584 kB, what a 6.1 kernel with THP showed.
    /// </summary>
    [TestMethod]
    public void ThpRaisesMinFreeKbytesToTwoPlusNinePageblocksPerZone()
    {
        const int Zones = 3, Pageblock = 512, PcpTypes = 3;
        int recommended = Pageblock * Zones * (2 + (PcpTypes * PcpTypes)) * 4;

        Assert.AreEqual($"{recommended}\n[always] madvise never\n", Run($"boot mem=4G\ncat {Vm}min_free_kbytes {Thp}\n"));
        Assert.AreEqual(67584, recommended);
        string never = Run($"boot mem=4G transparent_hugepage=never\ncat {Vm}min_free_kbytes {Thp}\n");
        Assert.IsTrue(int.Parse(never.Split('\n')[0], System.Globalization.CultureInfo.InvariantCulture) < recommended, "init_per_zone_wmark_min's square root alone");
        StringAssert.EndsWith(never, "always madvise [never]\n");
        StringAssert.Contains(Run("boot mem=4G transparent_hugepage=sometimes\ndmesg\n"), "transparent_hugepage= cannot parse, ignored");
    }

    [TestMethod]
    public void WritingMinFreeKbytesMovesTheWatermarksAndThpRaisesItAgain()
    {
        string text = Run($"boot mem=4G\necho 1000 > {Vm}min_free_kbytes\ncat {Vm}min_free_kbytes\necho madvise > {Thp}\ncat {Vm}min_free_kbytes {Thp}\ndmesg | grep khugepaged\n");

        Assert.AreEqual("1000\n67584\nalways [madvise] never\nkhugepaged: raising min_free_kbytes from 1000 to 67584 to help transparent hugepage allocations\n", text);
    }

    [TestMethod]
    public void WatermarkScaleFactorWidensTheGapAboveMin()
    {
        PageAllocator allocator = Hvo.Runtime.Tests.Memory.AllocatorMachine.Create("x86_64", 4UL << 30);
        allocator.SetTransparentHugepages(ThpMode.Never);
        allocator.MinFreeKbytes = 1024; // small, so the scale factor decides the gap
        Zone normal = allocator.GetZone(0, 2);

        allocator.WatermarkScaleFactor = 100;

        Assert.AreEqual(normal.ManagedPages * 100 / 10000, normal.LowWatermark - normal.MinWatermark, "managed × factor / 10000");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => allocator.WatermarkScaleFactor = 3001);
    }

    [TestMethod]
    [DataRow("echo -1 > " + Vm + "min_free_kbytes")]
    [DataRow("echo lots > " + Vm + "min_free_kbytes")]
    [DataRow("echo 0 > " + Vm + "watermark_scale_factor")]
    [DataRow("echo 3001 > " + Vm + "watermark_scale_factor")]
    [DataRow("echo 0 > " + Vm + "drop_caches")]
    [DataRow("echo 5 > " + Vm + "drop_caches")]
    [DataRow("echo sometimes > " + Thp)]
    public void OutOfRangeWritesAreEinval(string line) =>
        Assert.AreEqual("sh: echo: write error: Invalid argument\n", Run("boot mem=1G\n" + line + "\n"));

    [TestMethod]
    public void DropCachesIsWriteOnlyAndNodeOnlineListsTheNodes()
    {
        Assert.AreEqual("", Run($"boot mem=1G\necho 3 > {Vm}drop_caches\n"));
        Assert.AreEqual($"cat: {Vm}drop_caches: Permission denied\n", Run($"boot mem=1G\ncat {Vm}drop_caches\n"));
        Assert.AreEqual("0\n", Run("boot mem=1G\ncat /sys/devices/system/node/online\n"));
        Assert.AreEqual("0-2\n", Run("boot mem=3G numa=fake=3\ncat /sys/devices/system/node/online\n"));
        Assert.AreEqual("30\n", Run($"boot mem=1G\necho 30 > {Vm}watermark_scale_factor\ncat {Vm}watermark_scale_factor\n"));
    }
}
