using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using Hvo.Paging;
using Hvo.Scenario;

namespace Hvo.Cli;

/// <summary>The <c>hvo</c> command line. Usage errors print one message and exit 2; nothing prints a stack trace.</summary>
public static class HvoCommand
{
    public const int UsageError = 2;

    public static int Run(string[] args, TextWriter output, TextWriter error) => Run(args, Console.In, output, error);

    /// <summary>Run the command line with <paramref name="input"/> as standard input (<c>hvo run -</c>).</summary>
    public static int Run(string[] args, TextReader input, TextWriter output, TextWriter error)
    {
        RootCommand root = Build(input, output, error);
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
            {
                error.WriteLine($"hvo: {e.Message}{DidYouMean(parsed, e.Message)}");
            }

            error.WriteLine("Run 'hvo --help' for usage.");
            return UsageError;
        }

        try
        {
            return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            error.WriteLine($"hvo: {e.Message}");
            return UsageError;
        }
        catch (ScriptError e)
        {
            error.WriteLine(e.Message); // file:line:column: message
            return UsageError;
        }
        catch (OutOfMemoryException)
        {
            // The simulated memory is one reserved host mapping: a machine larger than the host's
            // address space (or than its memory, where the reservation falls back) cannot be built.
            error.WriteLine("hvo: the host cannot reserve memory for a simulated machine this large; ask for less memory (--memory, or mem= on the boot line)");
            return UsageError;
        }
    }

    /// <summary>
    /// For an unknown option or command in <paramref name="message"/>: the nearest name the command
    /// takes (an option for a word starting with '-', else a subcommand), if one is close.
    /// </summary>
    private static string DidYouMean(ParseResult parsed, string message)
    {
        // An unknown option may also have been taken as an optional argument (compare's SCRIPT): look at every word like an option.
        foreach (string token in parsed.UnmatchedTokens.Where(t => message.Contains($"'{t}'", StringComparison.Ordinal))
            .Concat(parsed.Tokens.Where(t => t.Type == System.CommandLine.Parsing.TokenType.Argument && t.Value.StartsWith("--", StringComparison.Ordinal)).Select(t => t.Value)))
        {
            Command command = parsed.CommandResult.Command;
            string word = token.Split('=')[0];
            System.Collections.Generic.IEnumerable<string> names = word.StartsWith('-')
                ? command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name))
                : command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name);
            string? near = names
                .Select(n => (Name: n, Distance: ShellPaths.Distance(n, word)))
                .Where(x => x.Distance <= Math.Max(2, word.Length / 3))
                .OrderBy(x => x.Distance)
                .Select(x => x.Name)
                .FirstOrDefault();
            if (near is not null)
            {
                return $" (did you mean {near}?)";
            }
        }

        return string.Empty;
    }

    /// <summary>Output goes to a terminal (not redirected), so tables may use colour and box drawing.</summary>
    public static bool IsTerminal(TextWriter output) => ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

    private static RootCommand Build(TextReader input, TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "Hvo: a simulator of the Linux kernel's HugeTLB Vmemmap Optimization (HVO).\n\n" +
            "Examples:\n" +
            "  hvo specs                      every architecture and what HVO frees per huge page size\n" +
            "  hvo specs --json\n" +
            "  hvo simulate --arch arm64-4k --memory 2T --hugepages 1G:1024\n" +
            "  hvo run --list                 the example scenarios shipped with hvo\n" +
            "  hvo run memory-pressure        a scenario in the kernel's shell vocabulary: boot line, echo > and cat of kernel files\n" +
            "  hvo compare policy-compare     one scenario under every policy, side by side\n" +
            "  hvo sweep --archs x86_64,arm64-4k --memory 64G..1T --csv out.csv   a grid of machines, one CSV line each\n" +
            "  hvo host                       what HVO saves on this machine now, and would if it were on");

        var json = new Option<bool>("--json") { Description = "Print one JSON document instead of text." };
        var specs = new Command("specs", "List every architecture generated from specs/*.json: its geometry, per huge page size the vmemmap pages HVO frees with reserve 2 (v5.14) and 1 (v5.18+), whether v7.1's shared tail page is allowed; then the kernel version milestones and the policies.\n\nExample: hvo specs --json")
        {
            json,
        };
        specs.SetAction(p =>
        {
            var archs = ArchRegistry.All.Select(e => e.Info).ToList();
            if (p.GetValue(json))
            {
                SpecsCommand.WriteJson(output, archs);
            }
            else
            {
                SpecsCommand.WriteText(output, archs);
            }

            return 0;
        });
        root.Subcommands.Add(specs);
        root.Subcommands.Add(SimulateCommand.Build(output, error));
        root.Subcommands.Add(RunCommand.Build(input, output, error));
        root.Subcommands.Add(CompareCommand.Build(input, output, error, IsTerminal));
        root.Subcommands.Add(SweepCommand.Build(output, error, IsTerminal));
        root.Subcommands.Add(HostCommand.Build(output, error));
        return root;
    }
}

/// <summary>A bad value on the command line: the message names it and what is accepted.</summary>
public sealed class UsageException(string message) : Exception(message);
