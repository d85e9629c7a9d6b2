using System;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>The shell a pasted history needs: lists, pipelines, loops, variables, globs, sysctl, tee, grep, sleep, sync, set -e, and the status of each.</summary>
[TestClass]
public sealed class ShellTests
{
    private const string Nr = "/proc/sys/vm/nr_hugepages";
    private const string Sysfs2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";

    private static ScenarioOutcome Run(string text, params string[] readAtEnd) => ScenarioHarness.Run("x86_64", text, readAtEnd: readAtEnd);

    private static ulong HugePagesOf(ScenarioOutcome o) => o.MemInfo.HugePagesTotal;

    [TestMethod]
    public void SemicolonsRunEveryCommandAndTheStatusIsTheLastOnes()
    {
        ScenarioOutcome o = Run("echo a; false; echo b\n");
        Assert.AreEqual("a\nb\n", o.Transcript);
        Assert.AreEqual(0, o.ExitStatus);
        Assert.HasCount(1, o.Failed, "false failed with nothing testing it");
        Assert.AreEqual("false", o.Failed[0].Command);
        Assert.AreEqual(1, o.Failed[0].Status);
    }

    [TestMethod]
    [DataRow("true && echo yes", "yes\n", 0, 0)]
    [DataRow("false && echo yes", "", 1, 0)]
    [DataRow("false || echo fallback", "fallback\n", 0, 0)]
    [DataRow("true || echo never", "", 0, 0)]
    [DataRow("false && echo a || echo b", "b\n", 0, 0)]
    [DataRow("true && false || echo c", "c\n", 0, 0)]
    [DataRow("true && false", "", 1, 1)]
    [DataRow("echo $?; false; echo $?", "0\n1\n", 0, 1)]
    public void AndOrListsRunEachPipelineOnTheStatusBeforeIt(string line, string transcript, int status, int untestedFailures)
    {
        ScenarioOutcome o = Run(line + "\n");
        Assert.AreEqual(transcript, o.Transcript);
        Assert.AreEqual(status, o.ExitStatus);
        Assert.HasCount(untestedFailures, o.Failed, "a failure on the left of && or || is tested");
    }

    [TestMethod]
    public void VariablesExpandBracedQuotedAndSplitIntoFields()
    {
        ScenarioOutcome o = Run("N=64\nS=\"a  b\"\necho ${N}k $N \"$S\" $S\nfor w in $S; do echo \"<$w>\"; done\necho \"[$UNSET]\" $UNSET end\n");
        Assert.AreEqual("64k 64 a  b a b\n<a>\n<b>\n[] end\n", o.Transcript);
    }

    [TestMethod]
    public void ALoopWritesEachValueAndEachWriteIsAPointOfTheTrace()
    {
        ScenarioOutcome o = Run($"boot mem=2G\nfor n in 64 128 256; do echo $n > {Nr}; cat {Nr}; done\n");
        Assert.AreEqual("64\n128\n256\n", o.Transcript);
        Assert.AreEqual(256UL, HugePagesOf(o));
        CollectionAssert.AreEqual(new[] { null, Nr, Nr, Nr }, o.Trace.Select(t => t.Written).ToArray());
        CollectionAssert.AreEqual(new ulong[] { 0, 64, 128, 256 }, o.Trace.Select(t => t.Sample.HugePages).ToArray());
        Assert.IsEmpty(o.Invariants);
    }

    [TestMethod]
    public void SysctlReadsAndWritesProcSysByDottedKey()
    {
        ScenarioOutcome o = Run("boot mem=2G\nsysctl -w vm.nr_hugepages=128\nsysctl vm.nr_hugepages\nsysctl -n vm/nr_hugepages\nsysctl vm.nr_hugepages=64\nsysctl -q -w vm.nr_hugepages=32\nsysctl vm | grep overcommit\n");
        Assert.AreEqual("vm.nr_hugepages = 128\nvm.nr_hugepages = 128\n128\nvm.nr_hugepages = 64\nvm.nr_overcommit_hugepages = 0\n", o.Transcript);
        Assert.AreEqual(32UL, HugePagesOf(o));
        Assert.AreEqual(0, o.ExitStatus);
    }

    [TestMethod]
    [DataRow("sysctl vm.nr_hugepage", "sysctl: cannot stat /proc/sys/vm/nr_hugepage: No such file or directory\n")]
    [DataRow("sysctl -w vm.nr_hugepage=1", "sysctl: cannot stat /proc/sys/vm/nr_hugepage: No such file or directory\n")]
    [DataRow("sysctl -w vm.nr_hugepages=abc", "sysctl: setting key \"vm.nr_hugepages\": Invalid argument\n")]
    [DataRow("sysctl -w /=1", "sysctl: setting key \"/proc/sys\": Is a directory\n")]
    public void SysctlFailuresPrintSysctlsMessageAndExit255(string line, string message)
    {
        ScenarioOutcome o = Run(line + "\n");
        Assert.AreEqual(message, o.Transcript);
        Assert.AreEqual(255, o.ExitStatus);
        Assert.AreEqual(1, o.ShellErrors);
    }

    [TestMethod]
    public void TeeWritesItsInputToEachFileAndPassesItOn()
    {
        ScenarioOutcome o = Run($"boot mem=2G\necho 96 | tee {Nr}\necho 100 | sudo tee -a {Sysfs2M} > /dev/null\ncat {Nr}\necho 5 | tee /proc/sys/vm/nope\n");
        Assert.AreEqual("96\n100\ntee: /proc/sys/vm/nope: Permission denied\n5\n", o.Transcript);
        Assert.AreEqual(100UL, HugePagesOf(o));
        Assert.AreEqual(1, o.ExitStatus);
    }

    [TestMethod]
    public void GrepMatchesBasicAndExtendedExpressionsInFilesAndPipes()
    {
        ScenarioOutcome o = Run(
            $"boot mem=2G\necho 3 > {Nr}\n" +
            "grep HugePages_Total /proc/meminfo\n" +
            "grep -E '^(HugePages_Total|HugePages_Free):' /proc/meminfo\n" +
            "grep 'HugePages_\\(Total\\|Rsvd\\)' /proc/meminfo\n" +
            "cat /proc/meminfo | grep -ic 'hugepages_[[:alpha:]]*:'\n" +
            "grep -v -e Huge /proc/meminfo | grep -c .\n" +
            $"grep -H . {Nr}\n");
        string[] lines = o.Lines();
        string total = "HugePages_Total:       3";
        string free = "HugePages_Free:        3";
        string rsvd = "HugePages_Rsvd:        0";
        int nonHuge = o.MemInfo.Format().Split('\n', StringSplitOptions.RemoveEmptyEntries).Count(l => !l.Contains("Huge", StringComparison.Ordinal));
        CollectionAssert.AreEqual(new[] { total, total, free, total, rsvd, "4", nonHuge.ToString(System.Globalization.CultureInfo.InvariantCulture), Nr + ":3" }, lines);
        Assert.AreEqual(0, o.ExitStatus);
    }

    [TestMethod]
    [DataRow("grep NoSuchKey /proc/meminfo", "", 1)]
    [DataRow("grep -q Huge /proc/meminfo", "", 0)]
    [DataRow("grep Huge /proc/nope", "grep: /proc/nope: No such file or directory\n", 2)]
    [DataRow("P='['; grep $P /proc/meminfo", "grep: '[' is not a valid regular expression\n", 2)]
    public void GrepStatusIsZeroOnAMatchOneOnNoneTwoOnAnError(string line, string transcript, int status)
    {
        ScenarioOutcome o = Run(line + "\n");
        Assert.AreEqual(transcript, o.Transcript);
        Assert.AreEqual(status, o.ExitStatus);
    }

    [TestMethod]
    public void GrepRecursiveNamesEachFile()
    {
        ScenarioOutcome o = Run("boot mem=2G\ngrep -r . /sys/kernel/mm/hugepages/hugepages-2048kB\n");
        string[] lines = o.Lines();
        CollectionAssert.Contains(lines, "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages:0");
        CollectionAssert.Contains(lines, "/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages:0");
        Assert.IsTrue(lines.All(l => l.StartsWith("/sys/kernel/mm/hugepages/hugepages-2048kB/", StringComparison.Ordinal)), o.Transcript);
    }

    [TestMethod]
    public void SleepAndSyncDoNothingAndABadIntervalIsSleepsError()
    {
        ScenarioOutcome o = Run("sleep 1; sync; sleep 0.5s 2m\nT=soon; sleep $T\n");
        Assert.AreEqual("sleep: invalid time interval 'soon'\n", o.Transcript);
        Assert.AreEqual(1, o.ExitStatus);
    }

    [TestMethod]
    public void GlobsExpandOverTheSimulatedFilesSortedAndOnlyUnquoted()
    {
        ArchInfo arch = Archs.Get("x86_64").Info;
        ScenarioOutcome o = Run("boot mem=2G\ncat /sys/kernel/mm/hugepages/*/nr_hugepages\nfor d in /sys/kernel/mm/hugepages/hugepages-*; do echo $d; done\necho '/sys/*' /nope/* /sys/kernel/mm/hugepages/hugepages-[12]*kB\n");
        string[] names = [.. arch.HugePageSizes.Select(h => $"/sys/kernel/mm/hugepages/hugepages-{h.Size >> 10}kB").Order(StringComparer.Ordinal)];
        string[] lines = o.Lines();
        CollectionAssert.AreEqual(Enumerable.Repeat("0", names.Length).Concat(names).ToArray(), lines[..^1]);
        Assert.AreEqual("/sys/* /nope/* " + string.Join(' ', names.Where(n => n.Split('-')[1][0] is '1' or '2')), lines[^1]);
    }

    [TestMethod]
    public void SetEStopsAtTheFirstUntestedFailure()
    {
        ScenarioOutcome o = Run($"boot mem=2G\nset -e\nfalse || echo tested\nfalse && echo never\necho 8 > {Nr}\necho 1 > /proc/sys/vm/nr_hugepage\necho 16 > {Nr}\n");
        Assert.AreEqual("tested\nsh: /proc/sys/vm/nr_hugepage: Permission denied\n", o.Transcript);
        Assert.AreEqual(1, o.ExitStatus);
        Assert.AreEqual(8UL, HugePagesOf(o), "nothing ran after the failure");
        Assert.AreEqual("echo 1 > /proc/sys/vm/nr_hugepage", o.Failed.Single().Command);
        Assert.AreEqual(6, o.Failed.Single().Location.Line);
    }

    [TestMethod]
    public void WithoutSetEEveryFailureIsKeptAndTheScriptGoesOn()
    {
        ScenarioOutcome o = Run($"boot mem=2G\necho 1 > /proc/sys/vm/nr_hugepage\ncat /nope\necho 16 > {Nr}\n");
        Assert.AreEqual(16UL, HugePagesOf(o));
        Assert.AreEqual(0, o.ExitStatus, "the last command's status");
        CollectionAssert.AreEqual(new[] { (2, "echo 1 > /proc/sys/vm/nr_hugepage", 1), (3, "cat /nope", 1) }, o.Failed.Select(f => (f.Location.Line, f.Command, f.Status)).ToArray());
    }

    [TestMethod]
    public void AFailureInsideALoopIsKeptWithItsExpandedWords()
    {
        ScenarioOutcome o = Run("for f in nr_hugepages nr_hugepage; do cat /proc/sys/vm/$f > /dev/null; done\n");
        Assert.AreEqual("cat /proc/sys/vm/nr_hugepage > /dev/null", o.Failed.Single().Command);
        Assert.AreEqual(1, o.ExitStatus);
    }

    [TestMethod]
    public void SetUMakesAnUnsetVariableStopTheScript()
    {
        ScenarioOutcome o = Run("set -u\necho $NOPE\necho after\n");
        Assert.AreEqual("sh: NOPE: unbound variable\n", o.Transcript);
        Assert.AreEqual(1, o.ExitStatus);
    }

    [TestMethod]
    public void SetXPrintsEachCommandExpanded()
    {
        ScenarioOutcome o = Run("N=3\nset -x\necho $N | cat\nset +x\necho quiet\n");
        Assert.AreEqual("+ echo 3\n+ cat\n3\n+ set +x\nquiet\n", o.Transcript);
    }

    [TestMethod]
    public void PipefailTakesTheLastFailureOfAPipeline()
    {
        Assert.AreEqual(0, Run("cat /nope | cat\n").ExitStatus);
        Assert.AreEqual(1, Run("set -o pipefail; cat /nope | cat\n").ExitStatus);
    }

    [TestMethod]
    public void ARedirectionThatCannotOpenRunsNothing()
    {
        ScenarioOutcome o = Run("boot mem=2G\nsysctl -w vm.nr_hugepages=5 > /sys/nope\n");
        Assert.AreEqual(0UL, HugePagesOf(o), "sysctl did not run");
        Assert.AreEqual("sh: /sys/nope: Permission denied\n", o.Transcript);
        Assert.AreEqual(1, o.ExitStatus);
    }

    [TestMethod]
    [DataRow("echo 1 > /proc/sys/vm/nr_hugepage", "/proc/sys/vm/nr_hugepages")]
    [DataRow("cat /sys/kernel/mm/hugepages/hugepages-2048KB/nr_hugepages", "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")]
    [DataRow("sysctl vm.nr_overcommit_hugepage", "/proc/sys/vm/nr_overcommit_hugepages")]
    [DataRow("echo 1 | tee /proc/sys/vm/nr_hugepags", "/proc/sys/vm/nr_hugepages")]
    [DataRow("grep . /proc/meminf", "/proc/meminfo")]
    public void AMissingPathSuggestsTheNearestOneBesideTheTranscript(string line, string nearest)
    {
        ScenarioOutcome o = Run(line + "\n");
        StringAssert.StartsWith(o.Diagnostics, "hvo: test.hvo:1:");
        StringAssert.EndsWith(o.Diagnostics, $": no such file; did you mean {nearest}?\n");
        Assert.AreEqual(1, o.Diagnostics.Count(c => c == '\n'), o.Diagnostics);
        Assert.IsFalse(o.Transcript.Contains("did you mean", StringComparison.Ordinal), "the transcript is what the shell printed");
    }

    [TestMethod]
    public void NothingIsSuggestedWhenNothingIsClose() => Assert.AreEqual(string.Empty, Run("cat /proc/completely/different\n").Diagnostics);

    [TestMethod]
    public void APastedHistoryRuns()
    {
        const string history = """
            boot mem=8G hugepagesz=1G hugepages=2 hugetlb_free_vmemmap=on
            # what is there, then grow the 2 MiB pool step by step
            grep -i hugepages_ /proc/meminfo
            sudo sysctl -w vm.hugetlb_optimize_vmemmap=1
            H=/sys/kernel/mm/hugepages
            for n in 256 512 1024; do
                echo $n | sudo tee ${H}/hugepages-2048kB/nr_hugepages > /dev/null
                grep HugePages_Total /proc/meminfo
            done
            cat $H/hugepages-*/nr_hugepages
            echo 0 > /proc/sys/vm/nr_hugepages && echo "freed the 2M pool" || echo "could not free"
            sync; sleep 1
            sysctl vm.nr_hugepages
            """;
        const string giant = "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages";
        ScenarioOutcome o = Run(history + "\n", giant);
        Assert.AreEqual(0, o.ExitStatus, o.Transcript);
        Assert.IsEmpty(o.Failed, o.Transcript);
        Assert.AreEqual(0, o.ShellErrors, o.Transcript);
        Assert.IsEmpty(o.Invariants);
        string[] lines = o.Lines();
        CollectionAssert.IsSubsetOf(
            new[] { "vm.hugetlb_optimize_vmemmap = 1", "HugePages_Total:     256", "HugePages_Total:     512", "HugePages_Total:    1024", "freed the 2M pool", "vm.nr_hugepages = 0" },
            lines);
        int index = Array.IndexOf(lines, "HugePages_Total:    1024");
        CollectionAssert.AreEqual(new[] { "2", "1024" }, lines[(index + 1)..(index + 3)], "1 GiB then 2 MiB, as the glob sorts them");

        // The 1 GiB pages stay, each optimized: what HVO frees for them is the spec's arithmetic.
        long perGiB = (long)HugePageVmemmap.For(Archs.Get("x86_64").Info, 1UL << 30).FreedPages(HvoPolicy.Newest.ReservePages);
        Assert.AreEqual("2\n", o.Files[giant]);
        Assert.AreEqual(0UL, o.MemInfo.HugePagesTotal, "the default (2 MiB) pool was freed");
        Assert.AreEqual(2 * perGiB, o.Counters.Freed - o.Counters.Restored);
    }
}
