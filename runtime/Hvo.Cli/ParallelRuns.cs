using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Hvo.Cli;

/// <summary>
/// Simulations that do not share a machine, run on the host's cores (one each at most), results in
/// the order asked. Each machine is its own: its CPUs' state is per thread, and a thread runs one
/// machine at a time.
/// </summary>
internal static class ParallelRuns
{
    /// <summary>Run every job; <paramref name="finished"/> is told each one's index as it ends (from the worker's thread, one at a time).</summary>
    public static T[] Run<T>(IReadOnlyList<Func<T>> jobs, Action<int, T>? finished = null, int? cores = null)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        var results = new T[jobs.Count];
        var gate = new Lock();
        Parallel.For(0, jobs.Count, new ParallelOptions { MaxDegreeOfParallelism = cores ?? Environment.ProcessorCount }, i =>
        {
            results[i] = jobs[i]();
            lock (gate)
            {
                finished?.Invoke(i, results[i]);
            }
        });
        return results;
    }

    /// <summary>
    /// Unwrap what a job threw: the first usage or script error as it is (exit 2 with its message), anything else unchanged.
    /// </summary>
    public static T[] RunUnwrapped<T>(IReadOnlyList<Func<T>> jobs, Action<int, T>? finished = null)
    {
        try
        {
            return Run(jobs, finished);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }
    }
}

/// <summary>Where <c>--csv [FILE]</c> and <c>--json [FILE]</c> write: standard output for none or <c>-</c>, else the file (UTF-8, no byte-order mark).</summary>
internal static class OutputFile
{
    public static bool IsStandardOutput(string? path) => path is null or "-";

    public static void Write(string? path, TextWriter output, string option, Action<TextWriter> write)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(write);
        if (IsStandardOutput(path))
        {
            write(output);
            return;
        }

        try
        {
            using var file = new StreamWriter(path!, append: false, new UTF8Encoding(false)) { NewLine = "\n" };
            write(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{option}: cannot write '{path}': {e.Message}");
        }
    }

    /// <summary>A usage error now, before any work, if the file's directory does not exist.</summary>
    public static void Validate(string? path, string option)
    {
        if (IsStandardOutput(path))
        {
            return;
        }

        string dir = Path.GetDirectoryName(Path.GetFullPath(path!))!;
        if (!Directory.Exists(dir))
        {
            throw new UsageException($"{option}: cannot write '{path}': the directory {dir} does not exist");
        }
    }
}
