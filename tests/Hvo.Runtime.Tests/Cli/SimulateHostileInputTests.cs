using System;
using System.Linq;
using System.Text.Json;
using CsCheck;
using Hvo.Cli;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Tests;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>
/// Hostile input to <c>hvo simulate</c> (issue 6 item 3): every bad value is one message naming
/// the option and the accepted forms, with exit code 2; a request larger than memory is partly
/// honoured, as the kernel does, and the report says so. Never a stack trace.
/// </summary>
[TestClass]
public sealed class SimulateHostileInputTests
{
    private static (int Exit, string Out, string Err) Hvo(params string[] args) => CliRun.InProcess(args);

    [TestMethod]
    [DataRow("--memory", "99999999999999999999G", "does not fit in 64 bits")]
    [DataRow("--memory", "16EiB", "does not fit in 64 bits")]
    [DataRow("--memory", "0x10000000000000000", "does not fit in 64 bits")]
    [DataRow("--memory", "18446744073709551616", "does not fit in 64 bits")]
    [DataRow("--memory", "", "is not a size")]
    [DataRow("--memory", "0", "is no memory")]
    [DataRow("--memory", "-1G", "is not a size")]
    [DataRow("--memory", "0x", "is not a hex number")]
    [DataRow("--memory", "12Q", "unknown unit")]
    [DataRow("--memory", "4K", "too small")]
    [DataRow("--memory", "15E", "more than x86_64's vmemmap can describe")]
    [DataRow("--hugepages", "2M:-1", "COUNT '-1'")]
    [DataRow("--hugepages", "2M:99999999999999999999", "COUNT '99999999999999999999'")]
    [DataRow("--hugepages", "2M:", "COUNT ''")]
    [DataRow("--hugepages", "99999999999EiB:1", "does not fit in 64 bits")]
    [DataRow("--hugepages", "3M:1", "not a huge page size")]
    [DataRow("--hugepages", ",", "is not SIZE:COUNT")]
    [DataRow("--hugepages", "2M:1:1", "is not SIZE:COUNT")]
    [DataRow("--nodes", "0", "is not a node count")]
    [DataRow("--nodes", "-1", "is not a node count")]
    [DataRow("--nodes", "99999999999", "is not a node count")]
    [DataRow("--nodes", "", "is not a node count")]
    [DataRow("--nodes", "two", "is not a node count")]
    [DataRow("--arch", "", "unknown architecture")]
    [DataRow("--policy", "", "unknown policy")]
    [DataRow("--hvo", "", "is not on or off")]
    public void BadValueIsOneMessageNamingTheOptionWithExitCode2(string option, string value, string expected)
    {
        var (exit, output, err) = option == "--memory" ? Hvo("simulate", option, value) : Hvo("simulate", "--memory", "256M", option, value);

        Assert.AreEqual(HvoCommand.UsageError, exit, err + output);
        Assert.AreEqual(string.Empty, output, "nothing on standard output");
        string message = err.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0];
        StringAssert.StartsWith(message, $"hvo: {option}:", err);
        StringAssert.Contains(message, expected, err);
        AssertNoStackTrace(err);
    }

    [TestMethod]
    public void MoreMemoryThanTheSimulatorCanHoldIsAUsageErrorNotACrash()
    {
        // x86_64-la57's vmemmap describes far more than the 47-bit host mapping that backs the frames.
        ulong describable = Archs.Get("x86_64-la57").Info.VmemmapSize / (ulong)Archs.Get("x86_64-la57").Info.StructPageBytes * Archs.Get("x86_64-la57").Info.PageSize;
        Assert.IsGreaterThan(global::Hvo.Memory.FrameStore.MaxBytes, describable);
        var (exit, output, err) = Hvo("simulate", "--arch", "x86_64-la57", "--memory", CmdLine.FormatSize(global::Hvo.Memory.FrameStore.MaxBytes * 2));
        Assert.AreEqual(HvoCommand.UsageError, exit, err + output);
        StringAssert.StartsWith(err, "hvo: --memory:", err);
        StringAssert.Contains(err, "more than the simulator can hold");
        AssertNoStackTrace(err);
    }

    [TestMethod]
    public void MemoryMessagesNameTheAcceptedForms()
    {
        var (_, _, err) = Hvo("simulate", "--memory", "16EiB");
        StringAssert.Contains(err, Sizes.Forms);
        (_, _, err) = Hvo("simulate", "--nodes", "0");
        StringAssert.Contains(err, "1 to 64");
    }

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void GiganticCountBeyondMemoryGrowsThePoolToWhatFitsAndSaysSo(string arch)
    {
        // The largest huge page size of the architecture, asked for far more than memory holds.
        ArchInfo info = ArchRegistry.Find(arch)!.Info;
        ulong size = info.HugePageSizes.Max(h => h.Size);
        ulong memory = Math.Max(256UL << 20, 2 * (info.PageSize << global::Hvo.Memory.MachineLayout.DefaultMaxOrder(info.PageShift)));
        const ulong asked = 100_000;
        var (exit, output, err) = Hvo("simulate", "--arch", arch, "--memory", CmdLine.FormatSize(memory), "--hugepages", $"{CmdLine.FormatSize(size)}:{asked}", "--json");

        Assert.AreEqual(0, exit, err);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement h = doc.RootElement.GetProperty("hstates").EnumerateArray().Single(x => x.GetProperty("pageSize").GetUInt64() == size);
        ulong nr = h.GetProperty("nrHugepages").GetUInt64();
        Assert.AreEqual(asked, h.GetProperty("requested").GetUInt64());
        Assert.IsLessThanOrEqualTo(memory / size, nr, "no more pages than memory holds");

        (exit, output, err) = Hvo("simulate", "--arch", arch, "--memory", CmdLine.FormatSize(memory), "--hugepages", $"{CmdLine.FormatSize(size)}:{asked}");
        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(output, $"asked for {asked}, the pool grew to {nr}");
    }

    [TestMethod]
    public void HugeCountOfSmallPagesFillsMemoryAndSaysSo()
    {
        var (exit, output, err) = Hvo("simulate", "--memory", "256M", "--hugepages", $"2M:{ulong.MaxValue}");

        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(output, $"asked for {ulong.MaxValue}, the pool grew to ");
    }

    // ---------------------------------------------------------------------------------------
    // The fuzz: random option vectors on a tiny machine.
    // ---------------------------------------------------------------------------------------

    private static readonly string[] Options = ["--arch", "--memory", "--nodes", "--hugepages", "--hvo", "--policy", "--json", "--bogus", "-x", ""];

    private static readonly Gen<string> Junk = Gen.OneOf(
        Gen.OneOf<string>("", " ", "-", "--", ":", ",", "0", "-1", "1e9", "NaN", "\u00e9", "\U0001D11E", "\0", "0x", "0xG", "99999999999999999999", "18446744073709551615", "18446744073709551616"),
        Gen.String[Gen.Char["0123456789KMGTPEiBx:,- "], 0, 12]);

    private static readonly Gen<string> Size = Gen.OneOf(
        Gen.Select(Gen.Int[0, 300], Gen.OneOf<string>("", "K", "M", "G", "MiB", "KiB", "E", "EiB", "B", "Q"), (n, u) => n + u),
        Gen.Select(Gen.ULong, n => "0x" + n.ToString("x", System.Globalization.CultureInfo.InvariantCulture)),
        Gen.OneOf<string>("64M", "128M", "256M", "2M", "1G", "16EiB", "64K", "32M", "512M", "16G"),
        Junk);

    private static readonly Gen<string> Count = Gen.OneOf(Gen.Int[-2, 200].Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)), Gen.ULong.Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)), Junk);

    private static readonly Gen<string> Value = Gen.OneOf(
        Gen.OneOf(ArchRegistry.Names.Select(Gen.Const).ToArray()),
        Gen.OneOf(HvoPolicy.All.Select(p => Gen.Const(p.Name)).ToArray()),
        Gen.OneOf<string>("on", "off"),
        Gen.Int[-2, 80].Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Size,
        Gen.Select(Size, Count, (s, c) => s + ":" + c).Array[1, 3].Select(a => string.Join(",", a)),
        Junk);

    // Memory within 64M..256M most of the time, so that a run that boots stays tiny.
    private static readonly Gen<string[]> Vectors = Gen.Select(
        Gen.Frequency((4, Gen.Int[64, 256].Select(m => m + "M")), (1, Size)),
        Gen.Select(Gen.OneOf(Options.Select(Gen.Const).ToArray()), Value).Array[0, 5],
        (memory, pairs) => new[] { "simulate", "--memory", memory }.Concat(pairs.SelectMany(p => p.Item1 == "--json" ? new[] { p.Item1 } : new[] { p.Item1, p.Item2 })).ToArray());

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void RandomArgumentVectorsExit0Or2WithoutAStackTrace() => FuzzSimulate(200, 0x48564f5f434c4955UL); // "HVO_CLIU"

    [TestMethod]
    [TestCategory("Long")]
    public void ManyRandomArgumentVectorsExit0Or2WithoutAStackTrace()
    {
        LongRun.Require("the long simulate argument fuzz (5000 vectors by default)");
        FuzzSimulate(LongRun.Iterations(5000), (ulong)Environment.TickCount64);
    }

    /// <summary>
    /// <paramref name="iterations"/> argument vectors from one PCG stream (the same ones every run
    /// for a seed): each exits 0 with a report or 2 with one message, never with a stack trace.
    /// </summary>
    private void FuzzSimulate(long iterations, ulong seed)
    {
        var pcg = new PCG(5, seed);
        int reports = 0, usage = 0, skipped = 0;
        for (long i = 0; i < iterations; i++)
        {
            string[] args = Vectors.Generate(pcg, null, out _);

            // A --memory that parses to more than 256M would boot a big machine: the fuzz stays on tiny ones.
            int at = Array.LastIndexOf(args, "--memory");
            if (at >= 0 && at + 1 < args.Length && Sizes.TryParse(args[at + 1], out ulong bytes) && bytes > 256UL << 20)
            {
                skipped++;
                continue;
            }

            var (exit, output, err) = Hvo(args);
            string what = $"vector {i} (seed 0x{seed:x}): {string.Join(" ", args.Select(x => "'" + x + "'"))}\n";
            Assert.IsTrue(exit is 0 or HvoCommand.UsageError, $"{what}exit {exit}: {err}");
            AssertNoStackTrace(output + err);
            if (exit == HvoCommand.UsageError)
            {
                usage++;
                Assert.StartsWith("hvo: ", err, what + err);
                Assert.AreEqual(string.Empty, output, what);
            }
            else
            {
                reports++;
                Assert.IsTrue(output.StartsWith("hvo simulate: ", StringComparison.Ordinal) || output.Contains("\"arch\"", StringComparison.Ordinal), what + "a report:\n" + output);
            }
        }

        TestContext.WriteLine($"{iterations} vectors: {reports} reports (exit 0), {usage} usage errors (exit 2), {skipped} skipped (memory above 256M)");
        Assert.IsGreaterThan(0, reports, "some vectors run a simulation");
        Assert.IsGreaterThan(0, usage, "some vectors are refused");
    }

    private static void AssertNoStackTrace(string text)
    {
        Assert.DoesNotContain("Exception", text, text);
        Assert.DoesNotContain("   at ", text, text);
        Assert.DoesNotContain("Unhandled", text, text);
    }
}
