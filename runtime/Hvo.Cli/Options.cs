using System.CommandLine;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;

namespace Hvo.Cli;

/// <summary>The options <c>simulate</c>, <c>run</c> and <c>compare</c> share, and their checks (an unknown name lists the known ones).</summary>
internal static class Options
{
    public static Option<string> Arch() => new("--arch") { Description = "Architecture (see 'hvo specs').", DefaultValueFactory = _ => "x86_64" };

    public static Option<string> Policy() => new("--policy")
    {
        Description = $"Kernel behaviour to follow: {string.Join(", ", HvoPolicy.All.Select(p => p.Name))} (default {HvoPolicy.Newest.Name}; the arm64-* ones are break-before-make strategies, see 'hvo specs').",
        DefaultValueFactory = _ => HvoPolicy.Newest.Name,
    };

    public static ArchEntry FindArch(string name, string option = "--arch") =>
        ArchRegistry.Find(name) ?? throw new UsageException($"{option}: unknown architecture '{name}'; known: {string.Join(", ", ArchRegistry.Names)}");

    public static HvoPolicy FindPolicy(string name, string option = "--policy") =>
        HvoPolicy.Find(name) ?? throw new UsageException($"{option}: unknown policy '{name}'; known: {string.Join(", ", HvoPolicy.All.Select(x => x.Name))}");
}
