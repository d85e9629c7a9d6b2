using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo simulate</c>: boot a machine, grow the HugeTLB pool as <c>echo N &gt; nr_hugepages</c>
/// would, with HVO under the chosen policy, and report /proc/meminfo, the pool and HVO's counters.
/// </summary>
public static class SimulateCommand
{
    public static Command Build(TextWriter output)
    {
        var arch = new Option<string>("--arch") { Description = "Architecture (see 'hvo specs').", DefaultValueFactory = _ => "x86_64" };
        var memory = new Option<string>("--memory") { Description = "Memory size, e.g. 64G.", DefaultValueFactory = _ => "64G" };
        var nodes = new Option<int>("--nodes") { Description = "NUMA nodes (equal contiguous ranges).", DefaultValueFactory = _ => 1 };
        var hugepages = new Option<string?>("--hugepages") { Description = "SIZE:COUNT[,SIZE:COUNT...]; default: half of memory as pages of the smallest optimizable size." };
        var hvo = new Option<string>("--hvo") { Description = "on|off: hugetlb_free_vmemmap.", DefaultValueFactory = _ => "on" };
        var policy = new Option<string>("--policy") { Description = $"Kernel behaviour to follow: {string.Join(", ", HvoPolicy.All.Select(p => p.Name))} (default {HvoPolicy.Newest.Name}; the arm64-* ones are break-before-make strategies, see 'hvo specs').", DefaultValueFactory = _ => HvoPolicy.Newest.Name };
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object." };
        var command = new Command("simulate", "Boot a simulated machine, grow the HugeTLB pool with HVO and report memory and HVO counters.\n\nExample: hvo simulate --arch x86_64 --memory 64G --hugepages 2M:16384 --policy v5.14")
        {
            arch, memory, nodes, hugepages, hvo, policy, json,
        };
        command.SetAction(p =>
        {
            string archName = p.GetValue(arch)!;
            ArchEntry entry = ArchRegistry.Find(archName)
                ?? throw new UsageException($"--arch: unknown architecture '{archName}'; known: {string.Join(", ", ArchRegistry.Names)}");
            string memoryText = p.GetValue(memory)!;
            if (!Sizes.TryParse(memoryText, out ulong memoryBytes) || memoryBytes == 0)
            {
                throw new UsageException($"--memory: '{memoryText}' is not a size; use {Sizes.Forms}");
            }

            if (memoryBytes % entry.Info.PageSize != 0)
            {
                throw new UsageException($"--memory: {memoryText} is not a whole number of {Sizes.Format(entry.Info.PageSize)} pages");
            }

            if (memoryBytes / entry.Info.PageSize > entry.Info.VmemmapSize / (ulong)entry.Info.StructPageBytes)
            {
                throw new UsageException($"--memory: {memoryText} is more than {entry.Name}'s vmemmap can describe ({Sizes.Format(entry.Info.VmemmapSize / (ulong)entry.Info.StructPageBytes * entry.Info.PageSize)})");
            }

            int nodeCount = p.GetValue(nodes);
            if (nodeCount < 1 || nodeCount > 64)
            {
                throw new UsageException($"--nodes: {nodeCount} is not a node count; use 1 to 64");
            }

            string hvoText = p.GetValue(hvo)!;
            bool hvoOn = hvoText switch
            {
                "on" => true,
                "off" => false,
                _ => throw new UsageException($"--hvo: '{hvoText}' is not on or off"),
            };
            string policyName = p.GetValue(policy)!;
            HvoPolicy chosen = HvoPolicy.Find(policyName)
                ?? throw new UsageException($"--policy: unknown policy '{policyName}'; known: {string.Join(", ", HvoPolicy.All.Select(x => x.Name))}");

            (ulong Size, ulong Count)[] request = ParseHugepages(p.GetValue(hugepages), entry.Info, memoryBytes);
            // A policy that relies on FEAT_BBM level 2 models a CPU that has it.
            var run = new SimulationRun(new MachineConfig { MemoryBytes = memoryBytes, Nodes = nodeCount, BreakBeforeMakeLevel = chosen.RequiredBbmLevel }, chosen, hvoOn, request);
            SimulationReport report = entry.Accept(run);
            output.Write(p.GetValue(json) ? report.ToJson() : report.ToText());
            return 0;
        });
        return command;
    }

    private static (ulong Size, ulong Count)[] ParseHugepages(string? text, ArchInfo a, ulong memory)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            HugePageSizeInfo smallest = a.HugePageSizes
                .Where(h => HugePageVmemmap.For(a, h.Size).IsOptimizable(VmemmapReserve.V5_18))
                .DefaultIfEmpty(a.HugePageSizes[0])
                .OrderBy(h => h.Size).First();
            return [(smallest.Size, memory / 2 / smallest.Size)];
        }

        return text.Split(',').Select(part =>
        {
            string[] kv = part.Split(':');
            if (kv.Length != 2 || !Sizes.TryParse(kv[0], out ulong size) ||
                !ulong.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong count))
            {
                throw new UsageException($"--hugepages: '{part}' is not SIZE:COUNT (e.g. 2M:1024); SIZE is {Sizes.Forms}");
            }

            if (!a.HugePageSizes.Any(h => h.Size == size))
            {
                throw new UsageException($"--hugepages: {Sizes.Format(size)} is not a huge page size of {a.Name}; use one of {string.Join(", ", a.HugePageSizes.Select(h => Sizes.Format(h.Size)))}");
            }

            return (size, count);
        }).ToArray();
    }
}
