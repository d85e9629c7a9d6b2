using System.IO;
using System.Linq;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.Paging;

[TestClass]
public sealed class RegistryTests
{
    [TestMethod]
    public void EverySpecFileIsAnArchitecture()
    {
        string specs = Path.Combine(RepoRoot(), "specs");
        var files = Directory.GetFiles(specs, "*.json").Select(Path.GetFileName).Order().ToArray();
        var registered = ArchRegistry.All.Select(e => e.Info.SpecFile).Order().ToArray();
        CollectionAssert.AreEqual(files, registered);
    }

    [TestMethod]
    public void NamesAreUniqueAndFindable()
    {
        var names = ArchRegistry.Names.ToArray();
        Assert.AreEqual(names.Length, names.Distinct().Count());
        foreach (string name in names)
        {
            Assert.AreEqual(name, ArchRegistry.Find(name)!.Info.Name);
        }

        Assert.IsNull(ArchRegistry.Find("no-such-arch"));
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void EntryDispatchesToTheTypeOfItsName(string arch) =>
        Assert.AreEqual(arch, Archs.Run(arch, new NameOf()));

    [TestMethod]
    public void TheHeavySuitesRepresentativesCarryEverySpecFeatureIntoCi()
    {
        ArchInfo[] all = [.. ArchRegistry.All.Select(e => e.Info)];
        ArchInfo[] ci = [.. all.Where(a => Archs.IsRepresentative(a.Name))];

        // Only specs that differ in their levels share a family: the walks that depend on them run for all.
        Assert.IsTrue(ci.Length < all.Length, "some specs differ only in their levels (x86_64-la57, riscv64-sv48/57)");
        System.Func<ArchInfo, object>[] features =
        [
            a => a.PageShift, a => a.PfnLo == a.PageShift, a => a.Page.Any != 0, a => a.EmptyIsInvalidTable, a => a.PageKernelRo,
            a => a.BreakBeforeMake, a => a.AccessFlag != 0, a => a.VmemmapBootLevel == a.LastLevel, a => a.RamBase != 0,
        ];
        foreach (System.Func<ArchInfo, object> f in features)
        {
            CollectionAssert.AreEquivalent(all.Select(f).Distinct().ToArray(), ci.Select(f).Distinct().ToArray());
        }

        foreach (ArchInfo a in all.Where(a => !Archs.IsRepresentative(a.Name)))
        {
            Assert.IsTrue(ci.Any(r => r.PageShift == a.PageShift && r.PfnLo == a.PfnLo && r.Levels.Count < a.Levels.Count), $"{a.Name} has a representative with fewer levels");
        }
    }

    internal static string RepoRoot()
    {
        string? dir = System.AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Generated.sln")))
        {
            dir = Path.GetDirectoryName(dir);
        }

        return dir ?? throw new DirectoryNotFoundException("Generated.sln not found above the test binaries");
    }

    private sealed class NameOf : IArchVisitor<string>
    {
        public string Visit<TArch>() where TArch : struct, IPagingArch => TArch.Name;
    }
}
