using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
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
        var nodes = new Option<int>("--nodes") { Description = "NUMA nodes (equal contiguous ranges).", DefaultValueFactory = _ => 1, CustomParser = ParseNodes };
        var hugepages = new Option<string?>("--hugepages") { Description = "SIZE:COUNT[,SIZE:COUNT...]; default: half of memory as pages of the smallest optimizable size." };
        var hvo = new Option<string>("--hvo") { Description = "on|off: hugetlb_free_vmemmap.", DefaultValueFactory = _ => "on" };
        var policy = new Option<string>("--policy") { Description = $"Kernel behaviour to follow: {string.Join(", ", HvoPolicy.All.Select(p => p.Name))} (default {HvoPolicy.Newest.Name}).", DefaultValueFactory = _ => HvoPolicy.Newest.Name };
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
            if (!Sizes.TryParse(memoryText, out ulong memoryBytes, out string sizeError) || memoryBytes == 0)
            {
                throw new UsageException($"--memory: {(memoryBytes == 0 && sizeError.Length == 0 ? $"'{memoryText}' is no memory" : sizeError)}; use {Sizes.Forms}");
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
            if (nodeCount < 1 || nodeCount > MaxNodes)
            {
                throw new UsageException($"--nodes: {nodeCount} is not a node count; use 1 to {MaxNodes}");
            }

            // Every node is at least one max-order block (MachineLayout), and boot must leave the buddy
            // allocator something: firmware, the kernel image and the page tables take the first MiBs.
            ulong maxOrderBytes = entry.Info.PageSize << MachineLayout.DefaultMaxOrder(entry.Info.PageShift);
            ulong minimum = Math.Max(MinMemory, maxOrderBytes * (ulong)nodeCount);
            if (memoryBytes < minimum)
            {
                throw new UsageException($"--memory: {memoryText} is too small for {nodeCount} node(s) of {entry.Name}; use at least {Sizes.Format(minimum)} (each node holds at least one {Sizes.Format(maxOrderBytes)} max-order block, and boot's reservations, firmware and the kernel image up to 48M, need at least {Sizes.Format(MinMemory)} in all)");
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
            var run = new SimulationRun(new MachineConfig { MemoryBytes = memoryBytes, Nodes = nodeCount }, chosen, hvoOn, request);
            SimulationReport report = entry.Accept(run);
            output.Write(p.GetValue(json) ? report.ToJson() : report.ToText());
            return 0;
        });
        return command;
    }

    private const int MaxNodes = 64;

    /// <summary>Below this, boot's own reservations (firmware, the 32 MiB kernel image at 16 MiB) leave too little.</summary>
    private const ulong MinMemory = 64UL << 20;

    private static int ParseNodes(System.CommandLine.Parsing.ArgumentResult result)
    {
        string text = result.Tokens.Count == 0 ? string.Empty : result.Tokens[0].Value;
        if (int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int n) && n >= 1 && n <= MaxNodes)
        {
            return n;
        }

        result.AddError($"--nodes: '{text}' is not a node count; use a whole number from 1 to {MaxNodes}");
        return 1;
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
            if (kv.Length != 2)
            {
                throw new UsageException($"--hugepages: '{part}' is not SIZE:COUNT (e.g. 2M:1024); SIZE is {Sizes.Forms}");
            }

            if (!Sizes.TryParse(kv[0], out ulong size, out string sizeError))
            {
                throw new UsageException($"--hugepages: in '{part}' the SIZE {sizeError}; SIZE is {Sizes.Forms}");
            }

            if (!ulong.TryParse(kv[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong count))
            {
                throw new UsageException($"--hugepages: in '{part}' the COUNT '{kv[1]}' is not a number of pages; use a whole number from 0 to {ulong.MaxValue} (more than fit is allowed: the pool grows to what fits)");
            }

            if (!a.HugePageSizes.Any(h => h.Size == size))
            {
                throw new UsageException($"--hugepages: {Sizes.Format(size)} is not a huge page size of {a.Name}; use one of {string.Join(", ", a.HugePageSizes.Select(h => Sizes.Format(h.Size)))}");
            }

            return (size, count);
        }).ToArray();
    }
}
