using System.Text.Json;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>The same simulate run on architectures whose HVO arithmetic is the same gives the same savings.</summary>
[TestClass]
public sealed class SimulateAcrossArchsTests
{
    [TestMethod]
    public void Riscv64Sv39FreesAndSavesExactlyWhatX86_64DoesOnTheSameRun()
    {
        JsonElement x86 = Simulate("x86_64"), riscv = Simulate("riscv64-sv39");

        // 1024 pages of 2 MiB, reserve 1 (v5.18): each frees its vmemmap pages but one.
        ulong perPage = HugePageVmemmap.For(Archs.Get("riscv64-sv39").Info, 2UL << 20).FreedPages(VmemmapReserve.V5_18);
        Assert.AreEqual(1024 * (long)perPage, riscv.GetProperty("vmemmapPagesFreed").GetInt64());
        Assert.AreEqual(x86.GetProperty("vmemmapPagesFreed").GetInt64(), riscv.GetProperty("vmemmapPagesFreed").GetInt64());
        Assert.AreEqual(x86.GetProperty("pteTablesAllocated").GetInt64(), riscv.GetProperty("pteTablesAllocated").GetInt64());
        Assert.AreEqual(x86.GetProperty("netBytesSaved").GetInt64(), riscv.GetProperty("netBytesSaved").GetInt64());
    }

    private static JsonElement Simulate(string arch)
    {
        var (exit, output, err) = CliRun.InProcess("simulate", "--arch", arch, "--memory", "16G", "--hugepages", "2M:1024", "--policy", "v5.18", "--json");
        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        return doc.RootElement.GetProperty("hvo").Clone();
    }
}
