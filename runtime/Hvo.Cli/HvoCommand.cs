using System;
using System.CommandLine;
using System.IO;
using System.Linq;
using Hvo.Paging;

namespace Hvo.Cli;

/// <summary>The <c>hvo</c> command line. Usage errors print one message and exit 2; nothing prints a stack trace.</summary>
public static class HvoCommand
{
    public const int UsageError = 2;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        RootCommand root = Build(output, error);
        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var e in parsed.Errors)
            {
                error.WriteLine($"hvo: {e.Message}");
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
    }

    private static RootCommand Build(TextWriter output, TextWriter error)
    {
        var root = new RootCommand(
            "Hvo: a simulator of the Linux kernel's HugeTLB Vmemmap Optimization (HVO).\n\n" +
            "Examples:\n" +
            "  hvo specs                      every architecture and what HVO frees per huge page size\n" +
            "  hvo specs --json\n" +
            "  hvo simulate --arch arm64-4k --memory 2T --hugepages 1G:1024");

        var json = new Option<bool>("--json") { Description = "Print one JSON document instead of text." };
        var specs = new Command("specs", "List every architecture generated from specs/*.json: its geometry and, per huge page size, the vmemmap pages HVO frees with reserve 2 (v5.14) and 1 (v5.18+).\n\nExample: hvo specs --json")
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
        return root;
    }
}

/// <summary>A bad value on the command line: the message names it and what is accepted.</summary>
public sealed class UsageException(string message) : Exception(message);
