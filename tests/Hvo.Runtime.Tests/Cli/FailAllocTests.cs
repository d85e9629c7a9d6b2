using System.Collections.Generic;
using System.Linq;
using Hvo.Cli;
using Hvo.Paging;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>simulate's --fail-alloc and the fault-injection files take and refuse the same values, and leave the same knobs.</summary>
[TestClass]
public sealed class FailAllocTests
{
    /// <summary>Numbers in every base and sign, at and past each width's edge; booleans; junk; blanks.</summary>
    private static readonly string[] Values =
    [
        "0", "1", "2", "100", "101", "150", "200", "-1", "-2", "-5", "0x10", "0X1f", "010", "08", "0x", "+3", "-0", " 3", "3 ", "3\t", "",
        "abc", "1x", "1e3", "18446744073709551615", "18446744073709551616", "4294967295", "4294967296", "2147483647", "2147483648",
        "-2147483648", "-2147483649", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
        "Y", "N", "y", "n", "yes", "no", "on", "off", "oN", "oF", "o", "true", "false", "t", "f", "maybe", "Y\nZ",
    ];

    [TestMethod]
    public void TheCliTakesExactlyWhatWritingTheSameValueToTheFileTakes() => Archs.Run("x86_64", new Agreement());

    [TestMethod]
    public void SimulatesWritesLeaveTheKnobsAScriptsEchoesLeave()
    {
        const string spec = "probability=101,times=-2,interval=0,verbose=0,space=0x10,fail-nth=7,ignore-gfp-highmem=Y";
        string[] files = [.. FaultInjectionFiles.Names.Select(n => FaultInjectionFiles.PathOf(n)!)];
        var simulation = new SimulateScript(1UL << 30, 1, true, [], FaultSpec.Parse(spec));
        ScenarioOutcome simulated = ScenarioHarness.Run("x86_64", simulation.Build(), new ScenarioOptions(), files);

        string byHand = "boot mem=1G\n" +
            string.Concat(new[] { "ignore-gfp-wait=N", "ignore-gfp-highmem=N" }.Concat(spec.Split(',')).Select(kv => $"echo {kv.Split('=')[1]} > {FaultInjectionFiles.PathOf(kv.Split('=')[0])}\n"));
        ScenarioOutcome echoed = ScenarioHarness.Run("x86_64", ScriptParser.Parse(byHand, "t.hvo"), new ScenarioOptions(), files);

        CollectionAssert.AreEqual(echoed.Files.ToArray(), simulated.Files.ToArray());
        Assert.AreEqual(0, simulated.ShellErrors);
        Assert.AreEqual("101\n", simulated.Files[FaultInjectionFiles.PathOf("probability")!]);
        Assert.AreEqual("-2\n", simulated.Files[FaultInjectionFiles.PathOf("times")!]);
        Assert.AreEqual("7\n", simulated.Files[FaultInjectionFiles.FailNthPath]);
        Assert.AreEqual("N\n", simulated.Files[FaultInjectionFiles.PathOf("ignore-gfp-wait")!], "simulate starts from N");
        Assert.AreEqual("Y\n", simulated.Files[FaultInjectionFiles.PathOf("ignore-gfp-highmem")!], "and the SPEC's value comes after");
    }

    private sealed class Agreement : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var s = ScenarioSession<TArch>.Boot(ScriptParser.Parse("boot mem=1G\n", "t"), new ScenarioOptions());
            var disagreements = new List<string>();
            int taken = 0, refused = 0;
            foreach (string knob in FaultInjectionFiles.Names)
            {
                foreach (string value in Values)
                {
                    Errno file = s.Files.Write(FaultInjectionFiles.PathOf(knob)!, value + "\n", out _);
                    bool cli;
                    try
                    {
                        _ = FaultSpec.Parse($"{knob}={value}");
                        cli = true;
                    }
                    catch (UsageException)
                    {
                        cli = false;
                    }

                    if (cli != (file == Errno.None))
                    {
                        disagreements.Add($"{knob}={value}: --fail-alloc {(cli ? "takes" : "refuses")} it, echo gets {file}");
                    }

                    taken += cli ? 1 : 0;
                    refused += cli ? 0 : 1;
                }
            }

            Assert.IsEmpty(disagreements, string.Join("\n", disagreements));
            Assert.IsGreaterThan(FaultInjectionFiles.Names.Count * 5, taken, "every knob takes several values");
            Assert.IsGreaterThan(FaultInjectionFiles.Names.Count * 5, refused, "and refuses several");
            return true;
        }
    }
}
