using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;

namespace Hvo.Runtime.Tests.Versions;

/// <summary>
/// fde1c4ecf916 (v6.7, "mm: hugetlb: skip initialization of gigantic tail struct pages if freed by
/// HVO"): memblock leaves a boot-time gigantic page's struct pages past the head uninitialized
/// (MEMBLOCK_RSRV_NOINIT); hugetlb initializes those of the head vmemmap page, and the rest only
/// when HVO does not optimize the page. Generic code, so on every architecture HVO runs on. v6.6
/// initializes every struct page at boot and optimizes later. (v6.15's pre-HVO, which also spares
/// the boot-time allocation of that vmemmap on x86-64, saves no further struct page.)
/// </summary>
[TestClass]
public sealed class BootTailInitTests
{
    private const string Boot = "boot mem=8G hugepagesz=1G hugepages=4\n";

    [TestMethod]
    [DataRow("x86_64")]
    [DataRow("arm64-4k")]
    public void FromV67OnlyTheHeadVmemmapPagesStructPagesOfAnOptimizedBootGiganticPageAreInitialized(string arch)
    {
        ArchInfo info = Archs.Get(arch).Info;
        ulong frames = (8UL << 30) / info.PageSize;
        ulong perGigantic = (1UL << 30) / info.PageSize;
        ulong inHeadPage = info.PageSize / (ulong)info.StructPageBytes;
        Assert.AreEqual(frames, Initialized(arch, "v6.6", Boot));
        Assert.AreEqual(frames - (4 * (perGigantic - inHeadPage)), Initialized(arch, "v6.7", Boot));
        Assert.AreEqual(frames - (4 * (perGigantic - inHeadPage)), Initialized(arch, "v7.1", Boot));
        Assert.AreEqual(frames, Initialized(arch, "v6.7", "boot mem=8G hugepagesz=1G hugepages=4 hugetlb_free_vmemmap=off\n"), "a page HVO leaves alone gets all its tails initialized");
    }

    private static ulong Initialized(string arch, string version, string script)
    {
        ScenarioOutcome o = ScenarioHarness.Run(arch, script, HvoPolicy.Find(version));
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
        return o.StructPagesInitialized;
    }
}
