using System.IO;
using System.Linq;
using System.Text.Json;
using Hvo.Cli;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

[TestClass]
public sealed class SpecsCommandTests
{
    private static (int Exit, string Out, string Err) Hvo(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int exit = HvoCommand.Run(args, o, e);
        return (exit, o.ToString(), e.ToString());
    }

    [TestMethod]
    public void SpecsJsonListsEveryArchitectureWithItsFreedPages()
    {
        var (exit, output, _) = Hvo("specs", "--json");
        Assert.AreEqual(0, exit);
        using JsonDocument doc = JsonDocument.Parse(output);
        var archs = doc.RootElement.EnumerateArray().ToArray();
        CollectionAssert.AreEquivalent(ArchRegistry.Names.ToArray(), archs.Select(a => a.GetProperty("name").GetString()).ToArray());
        foreach (JsonElement a in archs)
        {
            ArchInfo info = ArchRegistry.Find(a.GetProperty("name").GetString()!)!.Info;
            var sizes = a.GetProperty("hugePageSizes").EnumerateArray().ToArray();
            Assert.AreEqual(info.HugePageSizes.Count, sizes.Length);
            foreach (JsonElement s in sizes)
            {
                HugePageVmemmap g = HugePageVmemmap.For(info, s.GetProperty("size").GetUInt64());
                Assert.AreEqual(g.FreedPages(VmemmapReserve.V5_18), s.GetProperty("freedReserve1").GetUInt64());
                Assert.AreEqual(g.FreedPages(VmemmapReserve.V5_14), s.GetProperty("freedReserve2").GetUInt64());
            }
        }
    }

    [TestMethod]
    public void SpecsTextHasARowPerHugePageSize()
    {
        var (exit, output, _) = Hvo("specs");
        Assert.AreEqual(0, exit);
        foreach (ArchEntry e in ArchRegistry.All)
        {
            StringAssert.Contains(output, e.Name + ": " + e.Info.Title);
        }

        StringAssert.Contains(output, "not optimizable");
    }

    [TestMethod]
    public void UnknownArchitectureListsTheKnownOnesAndExits2()
    {
        var (exit, _, err) = Hvo("simulate", "--arch", "sparc64");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "sparc64");
        foreach (string name in ArchRegistry.Names)
        {
            StringAssert.Contains(err, name);
        }
    }

    [TestMethod]
    public void BadSizeSaysWhichFormsAreAcceptedAndExits2()
    {
        var (exit, _, err) = Hvo("simulate", "--memory", "3X");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "'3X'");
        StringAssert.Contains(err, "64G");
    }

    [TestMethod]
    public void UnknownOptionExits2()
    {
        var (exit, _, err) = Hvo("specs", "--frobnicate");
        Assert.AreEqual(2, exit);
        StringAssert.Contains(err, "--frobnicate");
    }
}
