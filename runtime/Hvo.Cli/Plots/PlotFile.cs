using System;
using System.Collections.Generic;
using System.IO;

namespace Hvo.Cli.Plots;

/// <summary>The <c>--plot FILE</c> option of <c>simulate</c> and <c>compare</c>: checked before the run, written after it.</summary>
internal static class PlotFile
{
    /// <summary>A usage error now, before any work, if the file cannot be written: an unknown extension or a missing directory.</summary>
    public static void Validate(string path)
    {
        HvoPlot.FormatOf(path);
        OutputFile.Validate(path, "--plot");
    }

    /// <summary>A sweep's picture; an I/O failure is a usage error naming the file.</summary>
    public static void SaveSweep(string path, string title, IReadOnlyList<SweepSeries> series)
    {
        try
        {
            HvoPlot.SaveSweep(path, title, series);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--plot: cannot write '{path}': {e.Message}");
        }
    }

    /// <summary>Draw and write the picture; an I/O failure is a usage error naming the file.</summary>
    public static void Save(string path, string title, IReadOnlyList<GrowthSeries> series, IReadOnlyList<VmemmapPicture> maps, PlotAxis axis)
    {
        try
        {
            HvoPlot.Save(path, title, series, maps, axis);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--plot: cannot write '{path}': {e.Message}");
        }
    }
}

/// <summary>An SVG document written as UTF-8 without a byte-order mark, as browsers and tools expect.</summary>
internal static class Svg
{
    public static void Save(string path, System.Xml.Linq.XElement root)
    {
        var settings = new System.Xml.XmlWriterSettings { Encoding = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false), Indent = false };
        using var writer = System.Xml.XmlWriter.Create(path, settings);
        new System.Xml.Linq.XDocument(new System.Xml.Linq.XDeclaration("1.0", "utf-8", null), root).Save(writer);
    }
}
