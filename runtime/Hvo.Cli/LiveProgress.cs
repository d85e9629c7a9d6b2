using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using Hvo.HugeTlb;
using Hvo.Scenario;
using Spectre.Console;

namespace Hvo.Cli;

/// <summary>
/// Progress for long runs and Ctrl-C. Progress is shown only when the command writes to the
/// process's own standard output and both it and standard error are terminals; it appears once
/// the work has run for <see cref="Delay"/> (about a second), on standard error, and is cleared
/// before the report. Redirected output never gets any.
/// </summary>
internal static class LiveProgress
{
    /// <summary>How long a run goes before progress appears; HVO_PROGRESS_DELAY_MS overrides it (for tests of the real process).</summary>
    public static TimeSpan Delay =>
        int.TryParse(Environment.GetEnvironmentVariable("HVO_PROGRESS_DELAY_MS"), out int ms) && ms >= 0
            ? TimeSpan.FromMilliseconds(ms)
            : TimeSpan.FromSeconds(1);

    /// <summary>The command writes to this process's console (not to a writer a caller passed in).</summary>
    public static bool IsProcessConsole(TextWriter output) => ReferenceEquals(output, Console.Out);

    /// <summary>Progress may be drawn: the process's standard output and error are both terminals.</summary>
    public static bool IsInteractive(TextWriter output) =>
        IsProcessConsole(output) && !Console.IsOutputRedirected && !Console.IsErrorRedirected;

    /// <summary>
    /// Ctrl-C while <paramref name="output"/> is the process console: the first press cancels
    /// <paramref name="cts"/> (the run stops cleanly and reports what it did), a second one
    /// ends the process as usual. Dispose the result to unhook.
    /// </summary>
    public static IDisposable HookCtrlC(TextWriter output, TextWriter error, CancellationTokenSource cts)
    {
        if (!IsProcessConsole(output))
        {
            return new Unhook(null);
        }

        ConsoleCancelEventHandler handler = (_, e) =>
        {
            if (!cts.IsCancellationRequested)
            {
                e.Cancel = true;
                error.WriteLine("hvo: Ctrl-C: no more huge pages are allocated; the ones allocated are optimized and added to the pool, as the kernel finishes them, then the report is printed (Ctrl-C again to quit now)");
                cts.Cancel();
            }
        };
        Console.CancelKeyPress += handler;
        return new Unhook(handler);
    }

    /// <summary>
    /// Run <paramref name="work"/>, which reports through its <see cref="ProgressProbe"/> the pages
    /// allocated and the HVO counters of its machine. When <paramref name="console"/> is given and the
    /// work lasts longer than <paramref name="delay"/>, two bars are drawn on it until the work ends:
    /// huge pages allocated of <paramref name="total"/>, and pages whose vmemmap is optimized of
    /// <paramref name="optimizable"/> (which v6.7 does after a write's pages are all allocated, and
    /// older kernels as each is).
    /// </summary>
    public static T Run<T>(Func<ProgressProbe, T> work, ulong total, ulong optimizable, IAnsiConsole? console, TimeSpan delay)
    {
        var probe = new ProgressProbe();
        if (console is null)
        {
            return work(probe);
        }

        Task<T> task = Task.Factory.StartNew(() => work(probe), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!task.Wait(delay))
        {
            console.Progress()
                .AutoClear(true)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    ProgressTask allocated = ctx.AddTask(Markup.Escape($"allocating {total} huge pages"), maxValue: Math.Max(1, total));
                    ProgressTask optimized = ctx.AddTask(Markup.Escape($"optimizing the vmemmap of {optimizable} pages"), maxValue: Math.Max(1, optimizable));
                    while (!task.Wait(100))
                    {
                        allocated.Value = probe.PagesAllocated;
                        optimized.Value = probe.PagesOptimized;
                    }

                    allocated.Value = allocated.MaxValue;
                    optimized.Value = optimized.MaxValue;
                });
        }

        return task.GetAwaiter().GetResult();
    }

    /// <summary>A Spectre console on standard error, for progress that must not mix with the report.</summary>
    public static IAnsiConsole ErrorConsole() =>
        AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });

    private sealed class Unhook(ConsoleCancelEventHandler? handler) : IDisposable
    {
        public void Dispose()
        {
            if (handler is not null)
            {
                Console.CancelKeyPress -= handler;
            }
        }
    }
}

/// <summary>
/// What a running simulation tells the progress bars, from its own thread: the pages allocated
/// (<see cref="ScenarioOptions.Progress"/>) and its HVO counters once booted
/// (<see cref="ScenarioOptions.Booted"/>), read atomically from the drawing thread.
/// </summary>
internal sealed class ProgressProbe
{
    private long _allocated;
    private HvoCounters? _counters;
    private long _optimizedAtBoot;

    public Action<ulong> Allocated => n => Interlocked.Exchange(ref _allocated, (long)Math.Min(n, long.MaxValue));

    public Action<HvoCounters> Watch => counters =>
    {
        Interlocked.Exchange(ref _optimizedAtBoot, counters.OptimizedPages);
        Volatile.Write(ref _counters, counters);
    };

    public ulong PagesAllocated => (ulong)Interlocked.Read(ref _allocated);

    /// <summary>Pages optimized since boot (boot-time gigantic pages excepted): what this run's writes added.</summary>
    public ulong PagesOptimized => Volatile.Read(ref _counters) is { } c ? (ulong)Math.Max(0, c.OptimizedPages - Interlocked.Read(ref _optimizedAtBoot)) : 0;
}
