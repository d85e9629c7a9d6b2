using System;
using System.Globalization;
using System.Linq;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>/dev/shm: tmpfs written with head, dd and fallocate, released with rm; Shmem in meminfo; the errnos (docs/ARCHITECTURE.md §5).</summary>
[TestClass]
public sealed class ShmTests
{
    private static ScenarioOutcome Run(string text) => ScenarioHarness.Run("x86_64", text);

    private static long Kb(string[] lines, string key, int nth = 0) =>
        long.Parse(lines.Where(l => l.StartsWith(key, StringComparison.Ordinal)).ElementAt(nth).Split(' ', StringSplitOptions.RemoveEmptyEntries)[^2], CultureInfo.InvariantCulture);

    [TestMethod]
    [DataRow("head -c 64M /dev/zero > /dev/shm/f", 65536)]
    [DataRow("head -c 5000 /dev/zero > /dev/shm/f", 8)]
    [DataRow("dd if=/dev/zero of=/dev/shm/f bs=1M count=16 status=none", 16384)]
    [DataRow("fallocate -l 8MiB /dev/shm/f", 8192)]
    [DataRow("fallocate -l 1GB /dev/shm/f", 976564)]
    public void EachFormTakesAPagePerPageSizeFromMemFreeIntoShmemAndRmGivesThemBack(string write, long kb)
    {
        const string free = "grep -E 'MemFree|Shmem' /proc/meminfo\ngrep count: /proc/zoneinfo\n";
        string[] lines = Run($"boot mem=4G\n{free}{write}\n{free}" +
            $"grep Shmem /sys/devices/system/node/node0/meminfo\ndu /dev/shm/f\nls /dev/shm\nrm /dev/shm/f\n{free}ls /dev/shm\n").Lines();
        Assert.AreEqual(0, Kb(lines, "Shmem:", 0));
        Assert.AreEqual(kb, Kb(lines, "Shmem:", 1));
        Assert.AreEqual(FreeKb(lines, 0) - kb, FreeKb(lines, 1), "shmem pages come out of free memory: MemFree and the per-CPU lists");
        CollectionAssert.Contains(lines, $"Node 0 Shmem:          {kb,8} kB");
        CollectionAssert.Contains(lines, $"{kb}\t/dev/shm/f");
        Assert.AreEqual(1, lines.Count(l => l == "f"), "ls lists the file while it exists");
        Assert.AreEqual(0, Kb(lines, "Shmem:", 2));
        Assert.AreEqual(FreeKb(lines, 0), FreeKb(lines, 2), "rm frees every page");
    }

    /// <summary>
    /// The <paramref name="nth"/> MemFree plus the pages on the per-CPU lists that /proc/zoneinfo's
    /// pagesets list after it (each CPU's count), which MemFree does not count: free memory.
    /// </summary>
    private static long FreeKb(string[] lines, int nth)
    {
        int at = lines.Select((line, i) => (line, i)).Where(x => x.line.StartsWith("MemFree:", StringComparison.Ordinal)).ElementAt(nth).i;
        long pcp = lines.Skip(at + 1).TakeWhile(l => !l.StartsWith("MemFree:", StringComparison.Ordinal))
            .Where(l => l.TrimStart().StartsWith("count:", StringComparison.Ordinal))
            .Sum(l => long.Parse(l.Split(':')[1], CultureInfo.InvariantCulture));
        Assert.IsTrue(lines.Skip(at + 1).Any(l => l.TrimStart().StartsWith("count:", StringComparison.Ordinal)), "zoneinfo lists the pagesets");
        return Kb(lines, "MemFree:", nth) + (pcp * (long)(Arch.X86_64.PageSize / 1024));
    }

    [TestMethod]
    public void TheMountsSizeLimitIsHalfOfRamAndENOSPCLeavesWhatWasWritten()
    {
        ScenarioOutcome o = Run("boot mem=2G\nhead -c 2G /dev/zero > /dev/shm/a\ndu /dev/shm/a\nfallocate -l 2G /dev/shm/b\nls /dev/shm\n" +
            "dd if=/dev/zero of=/dev/shm/a bs=1M count=1 conv=notrunc\nmount -o remount,size=1M /dev/shm\nmount -o remount,size=100% /dev/shm\nhead -c 1M /dev/zero >> /dev/shm/a\n");
        string[] lines = o.Lines();
        long half = (long)o.MemInfo.MemTotalKb / 2 / 4 * 4;
        CollectionAssert.Contains(lines, "head: error writing 'standard output': No space left on device");
        CollectionAssert.Contains(lines, $"{half}\t/dev/shm/a", "the write stops at size=, half of MemTotal, and keeps what it wrote");
        CollectionAssert.Contains(lines, "fallocate: fallocate failed: No space left on device");
        Assert.IsTrue(lines.Contains("b"), "fallocate(1) created the file before the call failed: it stays, empty");
        CollectionAssert.Contains(lines, "dd: error writing '/dev/shm/a': No space left on device");
        CollectionAssert.Contains(lines, "0+1 records in");
        CollectionAssert.Contains(lines, "mount: /dev/shm: mount point not mounted or bad option.");
        Assert.AreEqual((ulong)half + 1024, o.MemInfo.ShmemKb, "after size=100% the append goes through");
    }

    [TestMethod]
    public void WithoutALimitTheAllocatorsRefusalIsENOMEMAndRmOfWhatIsNotThereFails()
    {
        string[] lines = Run("boot mem=1G\necho hello > /dev/shm/t\necho world >> /dev/shm/t\ncat /dev/shm/t\n" +
            "mount -o remount,size=0 /dev/shm\nhead -c 2G /dev/zero > /dev/shm/a\necho more >> /dev/shm/t\necho new > /dev/shm/u\nrm /dev/shm/nope\nrm -f /dev/shm/nope\nrm /proc/meminfo\nhead -c 2M /dev/zero\n").Lines();
        CollectionAssert.Contains(lines, "head: error writing 'standard output': Cannot allocate memory");
        CollectionAssert.Contains(lines, "sh: echo: write error: Cannot allocate memory", "a new file needs a page; the append to t fits in the page it has");
        Assert.AreEqual(1, lines.Count(l => l.StartsWith("sh: echo: write error", StringComparison.Ordinal)));
        CollectionAssert.Contains(lines, "rm: cannot remove '/dev/shm/nope': No such file or directory");
        Assert.AreEqual(1, lines.Count(l => l.StartsWith("rm: cannot remove '/dev/shm/nope'", StringComparison.Ordinal)), "rm -f is silent");
        CollectionAssert.Contains(lines, "rm: cannot remove '/proc/meminfo': Operation not permitted");
        CollectionAssert.IsSubsetOf(new[] { "hello", "world" }, lines);
        Assert.IsTrue(lines.Any(l => l.StartsWith("head: hvo keeps at most", StringComparison.Ordinal)));
    }

    [TestMethod]
    [DataRow("head -c 1X /dev/zero > /dev/shm/f")]
    [DataRow("dd if=/dev/urandom of=/dev/shm/f bs=1M count=1")]
    [DataRow("dd if=/dev/zero of=/dev/shm/f bs=0 count=1")]
    [DataRow("fallocate /dev/shm/f")]
    [DataRow("mount /dev/shm")]
    [DataRow("rm -r /dev/shm")]
    public void ABadCommandLineIsALocatedErrorAndNothingRuns(string line)
    {
        var e = Assert.ThrowsExactly<Hvo.Scenario.ScriptError>(() => Run("boot mem=1G\n" + line + "\n"));
        StringAssert.StartsWith(e.Message, "test.hvo:2:");
    }
}
