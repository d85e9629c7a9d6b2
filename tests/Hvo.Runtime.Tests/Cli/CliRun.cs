using System;
using System.Diagnostics;
using System.IO;
using Hvo.Cli;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>Runs <c>hvo</c> in-process with string writers, or as a real process of the built hvo.dll.</summary>
internal static class CliRun
{
    public static (int Exit, string Out, string Err) InProcess(params string[] args) => InProcessWithInput(string.Empty, args);

    /// <summary>In-process, with <paramref name="input"/> as standard input (<c>hvo run -</c>).</summary>
    public static (int Exit, string Out, string Err) InProcessWithInput(string input, params string[] args)
    {
        var o = new StringWriter { NewLine = "\n" };
        var e = new StringWriter { NewLine = "\n" };
        int exit = HvoCommand.Run(args, new StringReader(input), o, e);
        return (exit, o.ToString(), e.ToString());
    }

    /// <summary>The hvo.dll this test project was built against, run with <c>dotnet</c>, output redirected.</summary>
    public static (int Exit, string Out, string Err) Process(string[] args, params (string Name, string Value)[] environment)
    {
        string dll = typeof(HvoCommand).Assembly.Location;
        var start = new ProcessStartInfo(Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach ((string name, string value) in environment)
        {
            start.Environment[name] = value;
        }

        using Process p = System.Diagnostics.Process.Start(start)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"hvo {string.Join(' ', args)} did not finish");
        }

        return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }

    /// <summary>A usage error: exit 2, one "hvo: " message on standard error, no stack trace, nothing on standard output.</summary>
    public static void AssertUsageError((int Exit, string Out, string Err) r, params string[] mentions)
    {
        Assert.AreEqual(HvoCommand.UsageError, r.Exit, r.Err);
        Assert.AreEqual(string.Empty, r.Out);
        StringAssert.StartsWith(r.Err, "hvo: ");
        Assert.IsFalse(r.Err.Contains("   at ", StringComparison.Ordinal), "no stack trace: " + r.Err);
        Assert.IsFalse(r.Err.Contains("Exception", StringComparison.Ordinal), "no exception name: " + r.Err);
        foreach (string m in mentions)
        {
            StringAssert.Contains(r.Err, m);
        }
    }
}
