using System;
using System.CommandLine;
using System.Globalization;
using System.IO;
using System.Linq;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo.Cli;

/// <summary>
/// <c>hvo simulate</c>. Until the simulated machine and the HVO policy land, it reports what the
/// spec's arithmetic predicts for the configuration: vmemmap pages freed per policy reserve and
/// the vmemmap PMD mappings the optimized pages span at least. It says so in its output.
/// </summary>
public static class SimulateCommand
{
    public static Command Build(TextWriter output)
    {
        var arch = new Option<string>("--arch") { Description = "Architecture (see 'hvo specs').", DefaultValueFactory = _ => "x86_64" };
        var memory = new Option<string>("--memory") { Description = "Memory size, e.g. 64G.", DefaultValueFactory = _ => "64G" };
        var hugepages = new Option<string?>("--hugepages") { Description = "SIZE:COUNT[,SIZE:COUNT...]; default: half of memory as 2M pages (the smallest optimizable size)." };
        var command = new Command("simulate", "Simulate HVO on a machine.\n\nExample: hvo simulate --arch x86_64 --memory 64G --hugepages 2M:16384")
        {
            arch, memory, hugepages,
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
            (ulong Size, ulong Count)[] request = ParseHugepages(p.GetValue(hugepages), a, memoryBytes);
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
        o.WriteLine($"hvo simulate: {a.Name} ({a.Title}), {Sizes.Format(memory)} of memory");
        o.WriteLine("Spec arithmetic only: the simulated machine and the HVO policy are not built yet, so nothing below was simulated.");
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
