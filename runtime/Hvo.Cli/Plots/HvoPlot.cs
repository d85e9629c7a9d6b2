using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Xml.Linq;
using Hvo.HugeTlb;
using Hvo.Lib;
using ScottPlot;
using SkiaSharp;

namespace Hvo.Cli.Plots;

/// <summary>One sample of a growing pool: its size and what HVO has saved and spent so far.</summary>
/// <param name="HugePages">Huge pages in the pool (every size).</param>
/// <param name="SavedBytes">Vmemmap given back: (pages freed - pages restored) x PAGE_SIZE.</param>
/// <param name="PageTableBytes">PTE tables allocated by vmemmap splits x PAGE_SIZE.</param>
/// <param name="Step">Which write of the script it follows (0: before the first).</param>
public sealed record GrowthPoint(double HugePages, double SavedBytes, double PageTableBytes, int Step = 0)
{
    public static GrowthPoint Of(PoolSample s, int step) => new(s.HugePages, s.SavedBytes, s.PageTableBytes, step);
}

/// <summary>One curve of a sweep: a label (architecture, policy, pools) and per memory size what HVO saved and what its PTE tables cost, in bytes.</summary>
public sealed record SweepSeries(string Label, IReadOnlyList<(ulong MemoryBytes, double SavedBytes, double PageTableBytes)> Points);

/// <summary>What the curves' x axis counts.</summary>
public enum PlotAxis
{
    /// <summary>Huge pages in the pool: for a pool that only grows (simulate).</summary>
    PoolSize,

    /// <summary>The script's writes, in order: for a script that grows and shrinks (compare), so a curve never folds back.</summary>
    Step,
}

/// <summary>One curve: a policy (or architecture) grown step by step.</summary>
public sealed record GrowthSeries(string Label, IReadOnlyList<GrowthPoint> Points);

/// <summary>One vmemmap map to draw, with a caption (the policy or architecture it belongs to).</summary>
public sealed record VmemmapPicture(string Caption, VmemmapLeafMap Map);

/// <summary>The image formats --plot writes, chosen by the file's extension.</summary>
public enum PlotFormat
{
    Svg,
    Png,
}

/// <summary>
/// The --plot picture, from plain data so that any command can draw several policies or
/// architectures: one image (<see cref="Width"/> wide, <see cref="RowHeight"/> per row), rows top to bottom: (1) vmemmap memory saved against the number of
/// huge pages, one curve per series; (2) the page-table cost (PTE tables allocated by splits)
/// against the same axis; (3) one map per <see cref="VmemmapPicture"/>: a grid with a cell per
/// vmemmap boot leaf (PMD), in address order, coloured still huge / split / split and holding
/// optimized pages.
/// </summary>
public static class HvoPlot
{
    public const int Width = 1000;
    public const int RowHeight = 340;

    private static readonly (VmemmapLeafState State, string Label, Color Color)[] States =
    [
        (VmemmapLeafState.Huge, "still huge", Color.FromHex("#d9d9d9")),
        (VmemmapLeafState.Split, "split, no optimized page now", Color.FromHex("#f4a259")),
        (VmemmapLeafState.SplitOptimized, "split, holds optimized pages", Color.FromHex("#2a9d8f")),
        (VmemmapLeafState.BasePages, "base pages since boot", Color.FromHex("#a8c5e6")),
        (VmemmapLeafState.BasePagesOptimized, "base pages since boot, holds optimized pages", Color.FromHex("#264653")),
        (VmemmapLeafState.NoMemory, "no RAM (firmware hole)", Color.FromHex("#ffffff")),
    ];

    /// <summary>The format for <paramref name="path"/>'s extension; a usage error for any other.</summary>
    public static PlotFormat FormatOf(string path)
    {
        string ext = Path.GetExtension(path ?? string.Empty).ToLowerInvariant();
        return ext switch
        {
            ".svg" => PlotFormat.Svg,
            ".png" => PlotFormat.Png,
            _ => throw new UsageException($"--plot: '{path}' does not end in .svg or .png; the picture is written as SVG or PNG by its extension"),
        };
    }

    /// <summary>Draw the series and maps into <paramref name="path"/> (SVG or PNG by its extension).</summary>
    public static void Save(string path, string title, IReadOnlyList<GrowthSeries> series, IReadOnlyList<VmemmapPicture> maps, PlotAxis axis = PlotAxis.PoolSize)
    {
        ArgumentNullException.ThrowIfNull(series);
        ArgumentNullException.ThrowIfNull(maps);
        Write(path, Build(title, series, maps, axis, FormatOf(path) == PlotFormat.Png));
    }

    /// <summary>The rows one below the other, <see cref="Width"/> wide and <see cref="RowHeight"/> each, as SVG or PNG by the extension.</summary>
    private static void Write(string path, Plot[] rows)
    {
        PlotFormat format = FormatOf(path);
        int height = RowHeight * rows.Length;
        if (format == PlotFormat.Png)
        {
            using SKSurface surface = SKSurface.Create(new SKImageInfo(Width, height));
            surface.Canvas.Clear(SKColors.White);
            for (int i = 0; i < rows.Length; i++)
            {
                // A plot fills the whole canvas it renders on: draw each on its own, then place it.
                using SKImage row = SKImage.FromEncodedData(rows[i].GetImageBytes(Width, RowHeight, ImageFormat.Png));
                surface.Canvas.DrawImage(row, 0, i * RowHeight);
            }

            using SKImage image = surface.Snapshot();
            using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
            using FileStream file = File.Create(path);
            png.SaveTo(file);
            return;
        }

        // Each row as ScottPlot writes it, nested in one document one row below the other.
        XNamespace svg = "http://www.w3.org/2000/svg";
        var root = new XElement(
            svg + "svg",
            new XAttribute("width", Width),
            new XAttribute("height", height),
            new XAttribute("viewBox", string.Create(CultureInfo.InvariantCulture, $"0 0 {Width} {height}")));
        for (int i = 0; i < rows.Length; i++)
        {
            XElement row = XDocument.Parse(rows[i].GetSvgXml(Width, RowHeight)).Root!;
            row.SetAttributeValue("y", i * RowHeight);
            root.Add(row);
        }

        Svg.Save(path, root);
    }

    /// <summary>
    /// A sweep's picture (SVG or PNG by the extension): two rows, memory saved and PTE-table cost
    /// against memory size, on a doubling (log 2) axis labelled with the sizes swept, a curve per series.
    /// </summary>
    public static void SaveSweep(string path, string title, IReadOnlyList<SweepSeries> series)
    {
        ArgumentNullException.ThrowIfNull(series);
        bool dashes = FormatOf(path) == PlotFormat.Png;
        ulong[] sizes = [.. series.SelectMany(s => s.Points.Select(p => p.MemoryBytes)).Distinct().Order()];
        Plot Row(Func<(ulong MemoryBytes, double SavedBytes, double PageTableBytes), double> y, string rowTitle, string yLabel)
        {
            var plot = new Plot();
            for (int i = 0; i < series.Count; i++)
            {
                var scatter = plot.Add.Scatter(series[i].Points.Select(p => Math.Log2(p.MemoryBytes)).ToArray(), series[i].Points.Select(y).ToArray());
                Distinguish(scatter, i, dashes);
                scatter.LegendText = series[i].Label;
            }

            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                [.. sizes.Select(s => new Tick(Math.Log2(s), CmdLine.FormatSize(s)))]);
            plot.Title(rowTitle);
            plot.XLabel("memory (doubling)");
            plot.YLabel(yLabel);
            plot.Axes.Margins(0.04, 0.08);
            plot.ShowLegend(Alignment.UpperLeft);
            return plot;
        }

        Write(path, [
            Row(p => p.SavedBytes / (1 << 20), $"{title}: vmemmap memory saved (net)", "saved (MiB)"),
            Row(p => p.PageTableBytes / (1 << 10), "page-table cost: PTE tables allocated by vmemmap PMD splits", "PTE tables (KiB)"),
        ]);
    }

    private static Plot[] Build(string title, IReadOnlyList<GrowthSeries> series, IReadOnlyList<VmemmapPicture> maps, PlotAxis axis, bool dashes)
    {
        var saved = new Plot();
        var cost = new Plot();
        Curves(saved, series, axis, dashes, p => p.SavedBytes / (1 << 20), $"{title}: vmemmap memory saved", "saved (MiB)");
        Curves(cost, series, axis, dashes, p => p.PageTableBytes / (1 << 10), "page-table cost: PTE tables allocated by vmemmap PMD splits", "PTE tables (KiB)");
        var rows = new List<Plot> { saved, cost };
        foreach (VmemmapPicture map in maps)
        {
            var plot = new Plot();
            Map(plot, map);
            rows.Add(plot);
        }

        return [.. rows];
    }

    private static void Curves(Plot plot, IReadOnlyList<GrowthSeries> series, PlotAxis axis, bool dashes, Func<GrowthPoint, double> y, string title, string yLabel)
    {
        for (int i = 0; i < series.Count; i++)
        {
            GrowthSeries s = series[i];
            double[] xs = [.. s.Points.Select(p => axis == PlotAxis.Step ? p.Step : p.HugePages)];
            double[] ys = [.. s.Points.Select(y)];
            var scatter = plot.Add.Scatter(xs, ys);
            Distinguish(scatter, i, dashes);
            scatter.LegendText = s.Label;
        }

        plot.Title(title);
        plot.XLabel(axis == PlotAxis.Step
            ? "the script's writes, in order (0: before the first)"
            : "huge pages in the pool (sampled after each write of nr_hugepages)");
        plot.YLabel(yLabel);
        plot.Axes.Margins(0.02, 0.08);
        plot.ShowLegend(Alignment.UpperLeft);
    }

    private static readonly MarkerShape[] Markers = [MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond, MarkerShape.OpenCircle, MarkerShape.OpenSquare, MarkerShape.Cross, MarkerShape.Eks];

    private static readonly LinePattern[] Patterns = [LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted, LinePattern.DenselyDashed];

    /// <summary>
    /// Series that coincide stay apart: each its own colour and marker, the later ones drawn thinner
    /// and smaller on top, and in PNG its own dash pattern (ScottPlot's SVG backend draws no dashes).
    /// </summary>
    public static void Distinguish(ScottPlot.Plottables.Scatter scatter, int index, bool dashes)
    {
        ArgumentNullException.ThrowIfNull(scatter);
        scatter.MarkerShape = Markers[index % Markers.Length];
        scatter.LinePattern = dashes ? Patterns[index % Patterns.Length] : LinePattern.Solid;
        scatter.LineWidth = Math.Max(1, 3 - (index % 3));
        scatter.MarkerSize = Math.Max(4, 9 - (2 * (index % 3)));
    }

    private static void Map(Plot plot, VmemmapPicture picture)
    {
        VmemmapLeafMap map = picture.Map;
        int n = map.Leaves.Count;
        int columns = 8;
        while (columns * columns < 2 * n && columns < 256)
        {
            columns *= 2;
        }

        int rows = (n + columns - 1) / columns;

        // One rectangle per run of equal cells in a row: crisp in SVG and PNG alike, and few
        // (splits come in contiguous runs). Row 0, the lowest addresses, is at the top.
        for (int row = 0; row < rows; row++)
        {
            int first = row * columns;
            int end = Math.Min(first + columns, n);
            for (int i = first; i < end;)
            {
                int j = i;
                while (j < end && map.Leaves[j] == map.Leaves[i])
                {
                    j++;
                }

                var cells = plot.Add.Rectangle(i - first, j - first, rows - row - 1, rows - row);
                cells.FillColor = States.First(x => x.State == map.Leaves[i]).Color;
                cells.LineWidth = 0;
                i = j;
            }
        }

        plot.Axes.SetLimits(0, columns, 0, rows);
        plot.Axes.Margins(0, 0);

        foreach (var s in States)
        {
            int count = map.Count(s.State);
            if (count > 0 || s.State is VmemmapLeafState.Huge or VmemmapLeafState.Split or VmemmapLeafState.SplitOptimized)
            {
                plot.Legend.ManualItems.Add(new LegendItem
                {
                    LabelText = string.Create(CultureInfo.InvariantCulture, $"{s.Label}: {count}"),
                    FillColor = s.Color,
                    OutlineColor = Colors.Gray,
                });
            }
        }

        plot.ShowLegend(Edge.Right);
        plot.Title(string.Create(CultureInfo.InvariantCulture, $"{picture.Caption}: the vmemmap's {n} {map.LevelName} leaves from 0x{map.Start:x}"));
        plot.XLabel(string.Create(CultureInfo.InvariantCulture, $"a cell per leaf ({CmdLine.FormatSize(map.LeafBytes)} of vmemmap, {CmdLine.FormatSize(map.MemoryPerLeaf)} of memory), {columns} a row"));
        plot.Axes.Left.TickLabelStyle.IsVisible = false;
        plot.Axes.Bottom.TickLabelStyle.IsVisible = false;
        plot.Axes.Left.MajorTickStyle.Length = 0;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Axes.Left.MinorTickStyle.Length = 0;
        plot.Axes.Bottom.MinorTickStyle.Length = 0;
        plot.HideGrid();
    }
}
