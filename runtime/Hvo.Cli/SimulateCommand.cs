using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.Paging;
using Hvo;
using Hvo.Vmemmap;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo simulate</c>. Boots the simulated machine and reports its memory as /proc/meminfo
/// would; until the HugeTLB pool and the HVO policy land, the huge page part is what the spec's
/// arithmetic predicts (vmemmap pages freed per policy reserve, vmemmap leaves to split), and
/// the output says so.
/// </summary>
public static class SimulateCommand
{
    public static Command Build(TextWriter output)
    {
        var arch = new Option<string>("--arch") { Description = "Architecture (see 'hvo specs').", DefaultValueFactory = _ => "x86_64" };
        var memory = new Option<string>("--memory") { Description = "Memory size, e.g. 64G.", DefaultValueFactory = _ => "64G" };
        var nodes = new Option<int>("--nodes") { Description = "NUMA nodes (equal contiguous ranges).", DefaultValueFactory = _ => 1 };
        var hugepages = new Option<string?>("--hugepages") { Description = "SIZE:COUNT[,SIZE:COUNT...]; default: half of memory as 2M pages (the smallest optimizable size)." };
        var command = new Command("simulate", "Simulate HVO on a machine.\n\nExample: hvo simulate --arch x86_64 --memory 64G --hugepages 2M:16384")
        {
            arch, memory, nodes, hugepages,
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

            ArchInfo a = entry.Info;
            int nodeCount = p.GetValue(nodes);
            if (nodeCount < 1 || nodeCount > 64)
            {
                throw new UsageException($"--nodes: {nodeCount} is not a node count; use 1 to 64");
            }

            (ulong Size, ulong Count)[] request = ParseHugepages(p.GetValue(hugepages), a, memoryBytes);
            var config = new MachineConfig { MemoryBytes = memoryBytes, Nodes = nodeCount };
            output.WriteLine(entry.Accept(new BootReport(config)));
            Report(output, a, memoryBytes, request);
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

    private static void Report(TextWriter o, ArchInfo a, ulong memory, (ulong Size, ulong Count)[] request)
    {
        o.WriteLine();
        o.WriteLine("Huge pages: spec arithmetic only (the HugeTLB pool and the HVO policy are not built yet, so none of this was simulated):");
        ulong bootLeaf = a.Levels[a.VmemmapBootLevel].Size;
        foreach ((ulong size, ulong count) in request)
        {
            HugePageVmemmap g = HugePageVmemmap.For(a, size);
            ulong requested = checked(size * count);
            o.WriteLine();
            o.WriteLine($"  {count} x {Sizes.Format(size)} huge pages ({Sizes.Format(requested)}{(requested > memory ? ", more than the machine has" : string.Empty)})");
            o.WriteLine($"    vmemmap per huge page: {g.VmemmapBytes} bytes = {(double)g.VmemmapBytes / a.PageSize:0.#####} pages");
            foreach ((string policy, int reserve) in new[] { ("v5.14 (reserve 2)", VmemmapReserve.V5_14), ("v5.18+ (reserve 1)", VmemmapReserve.V5_18) })
            {
                ulong freed = g.FreedPages(reserve) * count;
                o.WriteLine(g.IsOptimizable(reserve)
                    ? $"    {policy}: {freed} vmemmap pages freed = {Sizes.Format(freed * a.PageSize)}"
                    : $"    {policy}: not optimizable");
            }

            if (a.VmemmapBootLevel < a.LastLevel)
            {
                ulong vmemmapSpan = g.VmemmapBytes * count;
                o.WriteLine($"    vmemmap {a.Levels[a.VmemmapBootLevel].Name} leaves to split, at least: {(vmemmapSpan + bootLeaf - 1) / bootLeaf}");
            }
        }
    }
}

/// <summary>Boots the machine and prints what /proc/meminfo and the boot log would say.</summary>
internal sealed class BootReport(MachineConfig config) : IArchVisitor<string>
{
    public string Visit<TArch>() where TArch : struct, IPagingArch
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using Machine<TArch> m = Machine<TArch>.Boot(config);
        clock.Stop();
        var o = new StringWriter();
        o.WriteLine($"hvo simulate: {TArch.Name} ({TArch.Info.Title}), {Sizes.Format(config.MemoryBytes)} of memory, {config.Nodes} node(s); booted in {clock.Elapsed.TotalMilliseconds:0} ms");
        o.WriteLine($"MemTotal:       {m.MemTotalBytes >> 10,8} kB");
        o.WriteLine($"MemFree:        {m.MemFreeBytes >> 10,8} kB");
        long vmemmap = m.Owners.Count(Hvo.Memory.FrameOwner.BootVmemmap);
        long tables = m.Owners.Count(Hvo.Memory.FrameOwner.PageTable);
        o.WriteLine($"Vmemmap:        {(vmemmap << TArch.PageShift) >> 10,8} kB in {m.BootVmemmap.Blocks} {TArch.Info.Levels[TArch.VmemmapBootLevel].Name} mapping(s) from memblock");
        o.WriteLine($"VmemmapTables:  {(tables << TArch.PageShift) >> 10,8} kB");
        o.Write($"Host bytes kept for simulated frames: {m.Frames.MaterializedBytes}");
        return o.ToString();
    }
}
