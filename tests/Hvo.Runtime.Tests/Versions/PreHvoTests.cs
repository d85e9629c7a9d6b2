using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;

namespace Hvo.Runtime.Tests.Versions;

/// <summary>
/// v6.15's pre-HVO (HUGE_BOOTMEM_HVO, ARCH_WANT_HUGETLB_VMEMMAP_PREINIT, x86-64 only): the vmemmap of
/// hugepagesz=1G boot pages is optimized as it is populated, so the struct pages behind the freed
/// vmemmap are never initialized. v6.14 initializes every struct page and optimizes later.
/// </summary>
[TestClass]
public sealed class PreHvoTests
{
    private const string Boot = "boot mem=8G hugepagesz=1G hugepages=4\n";

    [TestMethod]
    public void V615InitializesOnlyTheHeadVmemmapPagesStructPagesOfBootGiganticPages()
    {
        ArchInfo info = Archs.Get("x86_64").Info;
        ulong frames = (8UL << 30) / info.PageSize;
        ulong perGigantic = (1UL << 30) / info.PageSize;
        ulong inHeadPage = info.PageSize / (ulong)info.StructPageBytes;
        Assert.AreEqual(frames, Initialized("x86_64", "v6.14", Boot));
        Assert.AreEqual(frames - (4 * (perGigantic - inHeadPage)), Initialized("x86_64", "v6.15", Boot));
        Assert.AreEqual(frames, Initialized("x86_64", "v6.15", "boot mem=8G hugepagesz=1G hugepages=4 hugetlb_free_vmemmap=off\n"), "only with HVO on at boot");
    }

    [TestMethod]
    public void Arm64HasNoPreHvo()
    {
        ulong frames = (8UL << 30) / Archs.Get("arm64-4k").Info.PageSize;
        Assert.AreEqual(frames, Initialized("arm64-4k", "v6.15", Boot));
    }

    private static ulong Initialized(string arch, string version, string script)
    {
        ScenarioOutcome o = ScenarioHarness.Run(arch, script, HvoPolicy.Find(version));
        Assert.AreEqual(0, o.Invariants.Count, string.Join("\n", o.Invariants));
        return o.StructPagesInitialized;
    }
}
