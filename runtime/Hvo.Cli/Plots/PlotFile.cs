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
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(dir))
        {
            throw new UsageException($"--plot: cannot write '{path}': the directory {dir} does not exist");
        }
    }

    /// <summary>Draw and write the picture; an I/O failure is a usage error naming the file.</summary>
    public static void Save(string path, string title, IReadOnlyList<GrowthSeries> series, IReadOnlyList<VmemmapPicture> maps)
    {
        try
        {
            HvoPlot.Save(path, title, series, maps);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--plot: cannot write '{path}': {e.Message}");
        }
    }
}
