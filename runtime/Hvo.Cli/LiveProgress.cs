using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
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
    /// Run <paramref name="work"/>, which reports the pages done through its argument. When
    /// <paramref name="console"/> is given and the work lasts longer than <paramref name="delay"/>,
    /// a progress bar over <paramref name="total"/> pages is drawn on it until the work ends.
    /// </summary>
    public static T Run<T>(Func<Action<ulong>, T> work, ulong total, string description, IAnsiConsole? console, TimeSpan delay)
    {
        if (console is null)
        {
            return work(static _ => { });
        }

        long done = 0;
        Task<T> task = Task.Factory.StartNew(() => work(n => Interlocked.Exchange(ref done, (long)Math.Min(n, long.MaxValue))), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        if (!task.Wait(delay))
        {
            console.Progress()
                .AutoClear(true)
                .HideCompleted(false)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                .Start(ctx =>
                {
                    ProgressTask bar = ctx.AddTask(Markup.Escape(description), maxValue: Math.Max(1, total));
                    while (!task.Wait(100))
                    {
                        ulong now = (ulong)Interlocked.Read(ref done);
                        bar.Value = now;
                        if (now >= total && !bar.IsIndeterminate)
                        {
                            // Every page is allocated: the batch's vmemmap is being optimized now.
                            bar.IsIndeterminate = true;
                            bar.Description = Markup.Escape("optimizing the vmemmap of the pages allocated");
                        }
                    }

                    bar.Value = bar.MaxValue;
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
