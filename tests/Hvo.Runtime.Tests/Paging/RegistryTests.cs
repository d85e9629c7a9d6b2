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
