using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text.Json;
using Hvo.Cli;
using Hvo.HugeTlb;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>Machines as <c>hvo host</c> reads them: trees of their files, written once per test run.</summary>
internal static class HostFixtures
{
    private static readonly Dictionary<string, string> Made = [];

    /// <summary>A Debian 12 x86-64 host on Linux 6.1: 64 GiB in 1 GiB blocks, 2 nodes, 1024 2 MiB and 2 1 GiB pages split over them, HVO built in and switched on.</summary>
    public static string X86Host61() => Tree("x86-61", new Dictionary<string, string>(Enumerable.Range(0, 64).ToDictionary(i => $"sys/devices/system/memory/memory{i}/online", _ => "1\n"))
    {
        ["proc/sys/kernel/osrelease"] = "6.1.0-18-amd64\n",
        ["proc/sys/kernel/arch"] = "x86_64\n",
        ["proc/meminfo"] = "MemTotal:       65536000 kB\nMemFree:        60000000 kB\nHugePages_Total:    1024\nHugePages_Free:     1024\nHugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:         4194304 kB\n",
        ["proc/cmdline"] = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=x ro quiet hugepagesz=1G hugepages=2\n",
        ["proc/sys/vm/hugetlb_optimize_vmemmap"] = "1\n",
        ["proc/sys/vm/nr_hugepages"] = "1024\n",
        ["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "1024\n",
        ["sys/kernel/mm/hugepages/hugepages-2048kB/surplus_hugepages"] = "0\n",
        ["sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"] = "2\n",
        ["sys/kernel/mm/hugepages/hugepages-1048576kB/surplus_hugepages"] = "0\n",
        ["sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"] = "512\n",
        ["sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"] = "512\n",
        ["sys/devices/system/node/node0/hugepages/hugepages-1048576kB/nr_hugepages"] = "1\n",
        ["sys/devices/system/node/node1/hugepages/hugepages-1048576kB/nr_hugepages"] = "1\n",
        ["sys/devices/system/memory/block_size_bytes"] = "40000000\n",
        ["boot/config-6.1.0-18-amd64"] = "CONFIG_HUGETLB_PAGE=y\nCONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP=y\n# CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON is not set\n",
    });

    /// <summary>An arm64 (4 KiB granule) host on Linux 6.6 with 256 2 MiB pages and HVO not built in, its config in /proc/config.gz.</summary>
    public static string Arm64Host() => Tree("arm64-66", new()
    {
        ["proc/sys/kernel/osrelease"] = "6.6.12\n",
        ["proc/sys/kernel/arch"] = "aarch64\n",
        ["proc/meminfo"] = "MemTotal:        8000000 kB\nMemFree:         7000000 kB\nHugePages_Total:     256\nHugepagesize:       2048 kB\n",
        ["proc/cmdline"] = "console=ttyAMA0 root=/dev/vda2\n",
        ["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "256\n",
        ["sys/kernel/mm/hugepages/hugepages-64kB/nr_hugepages"] = "0\n",
        ["sys/devices/system/node/node0/meminfo"] = "Node 0 MemTotal: 8000000 kB\n",
    }, config: "CONFIG_HUGETLB_PAGE=y\n# CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP is not set\n");

    /// <summary>Only the release: everything else is missing.</summary>
    public static string Missing() => Tree("missing", new() { ["proc/sys/kernel/osrelease"] = "6.8.0\n" });

    /// <summary>Files that hold what no kernel writes.</summary>
    public static string Garbage() => Tree("garbage", new()
    {
        ["proc/sys/kernel/osrelease"] = "banana\n",
        ["proc/sys/kernel/arch"] = "x86_64\n",
        ["proc/meminfo"] = "MemTotal:       lots kB\nHugepagesize:       2048 kB\n",
        ["proc/sys/vm/hugetlb_optimize_vmemmap"] = "maybe\n",
        ["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "-3\n",
        ["sys/kernel/mm/hugepages/hugepages-wrong/nr_hugepages"] = "1\n",
        ["sys/devices/system/memory/block_size_bytes"] = "zz\n",
    }, gzipGarbage: true);

    public static string Sparc() => Tree("sparc", new()
    {
        ["proc/sys/kernel/osrelease"] = "6.1.0\n",
        ["proc/sys/kernel/arch"] = "sparc64\n",
        ["proc/meminfo"] = "MemTotal:       16000000 kB\nHugepagesize:       8192 kB\n",
    });

    public static string OldKernel() => Tree("old", new()
    {
        ["proc/sys/kernel/osrelease"] = "5.10.0-28-amd64\n",
        ["proc/sys/kernel/arch"] = "x86_64\n",
        ["proc/meminfo"] = "MemTotal:       16000000 kB\nHugepagesize:       2048 kB\n",
        ["sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"] = "100\n",
    });

    private static string Tree(string name, Dictionary<string, string> files, string? config = null, bool gzipGarbage = false)
    {
        lock (Made)
        {
            if (Made.TryGetValue(name, out string? made))
            {
                return made;
            }

            string root = Path.Combine(Path.GetTempPath(), $"hvo-host-{name}-{Environment.ProcessId}");
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }

            foreach ((string path, string text) in files)
            {
                string full = Path.Combine(root, path);
                Directory.CreateDirectory(Path.GetDirectoryName(full)!);
                File.WriteAllText(full, text);
            }

            if (config is not null || gzipGarbage)
            {
                Directory.CreateDirectory(Path.Combine(root, "proc"));
                using FileStream file = File.Create(Path.Combine(root, "proc", "config.gz"));
                if (gzipGarbage)
                {
                    file.Write("not gzip at all"u8);
                }
                else
                {
                    using var zip = new GZipStream(file, CompressionLevel.Fastest);
                    zip.Write(System.Text.Encoding.UTF8.GetBytes(config!));
                }
            }

            Made[name] = root;
            return root;
        }
    }
}

/// <summary><c>hvo host</c> on fixture trees of real machines' files, on broken ones, and on this machine.</summary>
[TestClass]
public sealed class HostTests
{
    private static JsonElement Host(string root)
    {
        var (exit, output, err) = CliRun.InProcess("host", "--root", root, "--json");
        Assert.AreEqual(0, exit, err);
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    private static long Freed(string arch, ulong size, HvoPolicy policy) => (long)HugePageVmemmap.For(Archs.Get(arch).Info, size).FreedPages(policy.ReservePages);

    [TestMethod]
    public void AnX86HostOn61WithHvoOnIsSimulatedWithItsPoolsPerNode()
    {
        JsonElement r = Host(HostFixtures.X86Host61());
        Assert.AreEqual("x86_64", r.GetProperty("spec").GetString());
        Assert.AreEqual(64UL << 30, r.GetProperty("memoryBytes").GetUInt64(), "64 online blocks of 1 GiB");
        Assert.AreEqual(2, r.GetProperty("nodes").GetInt32());

        // The policy is 6.1's own: every release from v5.14 is modelled.
        HvoPolicy policy = HvoPolicy.Find(r.GetProperty("policy").GetString()!)!;
        Assert.AreEqual(new KernelVersion(6, 1), policy.Version);
        Assert.AreEqual("Linux 6.1 is v6.1", r.GetProperty("policyReason").GetString());

        JsonElement now = r.GetProperty("now");
        Assert.AreEqual(JsonValueKind.Object, now.ValueKind, "HVO is on here: it saves now");
        JsonElement[] hstates = [.. now.GetProperty("hstates").EnumerateArray()];
        Assert.AreEqual(1024UL, hstates.Single(h => h.GetProperty("pageSize").GetUInt64() == 2UL << 20).GetProperty("nrHugepages").GetUInt64());
        Assert.AreEqual(2UL, hstates.Single(h => h.GetProperty("pageSize").GetUInt64() == 1UL << 30).GetProperty("nrHugepages").GetUInt64());
        long freed = (1024 * Freed("x86_64", 2UL << 20, policy)) + (2 * Freed("x86_64", 1UL << 30, policy));
        Assert.AreEqual(freed, now.GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64());
        StringAssert.StartsWith(r.GetProperty("verdict").GetString(), "HVO is on: it saves ");
        Assert.IsTrue(r.GetProperty("hvo").GetProperty("builtIn").GetBoolean());
        Assert.AreEqual(0, r.GetProperty("notes").GetArrayLength(), r.GetProperty("notes").ToString());
    }

    [TestMethod]
    public void AnArm64HostWithoutHvoSaysWhyAndWhatItWouldSaveAndWhichPoliciesAreSafe()
    {
        JsonElement r = Host(HostFixtures.Arm64Host());
        Assert.AreEqual("arm64-4k", r.GetProperty("spec").GetString(), "the spec whose default huge page is meminfo's 2048 kB");
        Assert.IsFalse(r.GetProperty("hvo").GetProperty("builtIn").GetBoolean());
        Assert.AreEqual(JsonValueKind.Null, r.GetProperty("now").ValueKind);
        string verdict = r.GetProperty("verdict").GetString()!;
        StringAssert.Contains(verdict, "not built into this kernel");
        StringAssert.Contains(verdict, "060a2c92d1b6");
        JsonElement ifEnabled = r.GetProperty("ifEnabled");
        HvoPolicy policy = HvoPolicy.Find(r.GetProperty("policy").GetString()!)!;
        Assert.AreEqual(256 * Freed("arm64-4k", 2UL << 20, policy), ifEnabled.GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64());
        Assert.IsGreaterThan(0L, ifEnabled.GetProperty("breakBeforeMakeViolations").GetInt64());
        Assert.IsGreaterThan(0, ifEnabled.GetProperty("breakBeforeMakeSafePolicies").GetArrayLength());
    }

    [TestMethod]
    public void MissingFilesAreNotesAndTheVerdictSaysWhatCouldNotBeRead()
    {
        JsonElement r = Host(HostFixtures.Missing());
        string[] notes = [.. r.GetProperty("notes").EnumerateArray().Select(n => n.GetString()!)];
        CollectionAssert.Contains(notes, "/proc/meminfo: missing");
        CollectionAssert.Contains(notes, "/proc/sys/kernel/arch: missing (uname's machine)");
        StringAssert.Contains(r.GetProperty("verdict").GetString(), "could not be read");
    }

    [TestMethod]
    public void GarbageValuesAreNotesNeverACrash()
    {
        JsonElement r = Host(HostFixtures.Garbage());
        string notes = string.Join("\n", r.GetProperty("notes").EnumerateArray().Select(n => n.GetString()));
        StringAssert.Contains(notes, "/proc/sys/kernel/osrelease: 'banana' is not a kernel release");
        StringAssert.Contains(notes, "/proc/meminfo: MemTotal 'lots' is not a number");
        StringAssert.Contains(notes, "/proc/sys/vm/hugetlb_optimize_vmemmap: 'maybe' is not a number");
        StringAssert.Contains(notes, "nr_hugepages: '-3' is not a number");
        StringAssert.Contains(notes, "/proc/config.gz: cannot be read");
        StringAssert.Contains(notes, "block_size_bytes: 'zz' is not a number");
    }

    [TestMethod]
    public void AnArchitectureWithoutASpecIsAClearVerdict()
    {
        JsonElement r = Host(HostFixtures.Sparc());
        Assert.AreEqual(JsonValueKind.Null, r.GetProperty("spec").ValueKind);
        StringAssert.Contains(r.GetProperty("verdict").GetString(), "this machine is sparc64, and hvo has no spec for it");
    }

    [TestMethod]
    public void AKernelBeforeHvoSavesNothingNow()
    {
        var (exit, output, err) = CliRun.InProcess("host", "--root", HostFixtures.OldKernel());
        Assert.AreEqual(0, exit, err);
        StringAssert.Contains(output, "Linux 5.10 predates HVO");
        StringAssert.Contains(output, "HVO saves nothing here now");
    }

    [TestMethod]
    public void AMissingRootIsAUsageError() =>
        CliRun.AssertUsageError(CliRun.InProcess("host", "--root", "/no/such/root"), "--root: '/no/such/root' is not a directory");

    [TestMethod]
    public void ThisMachineIsReportedOn()
    {
        var (exit, output, err) = CliRun.InProcess("host", "--json");
        Assert.AreEqual(0, exit, err);
        JsonElement r = JsonDocument.Parse(output).RootElement;
        if (File.Exists("/proc/sys/kernel/osrelease"))
        {
            Assert.AreEqual(File.ReadAllText("/proc/sys/kernel/osrelease").Trim(), r.GetProperty("kernel").GetProperty("release").GetString());
        }

        Assert.IsFalse(string.IsNullOrEmpty(r.GetProperty("verdict").GetString()));
    }

    [TestMethod]
    [DataRow(5, 14, "v5.14", "Linux 5.14 is v5.14")]
    [DataRow(6, 6, "v6.6", "Linux 6.6 is v6.6")]
    [DataRow(7, 1, "v7.1", "Linux 7.1 is v7.1")]
    [DataRow(7, 4, "v7.1", "Linux 7.4 behaves as v7.1, the newest kernel version modelled")]
    [DataRow(8, 0, "v7.1", "Linux 8.0 behaves as v7.1, the newest kernel version modelled")]
    public void AKernelReleaseMapsToItsOwnVersionOrTheNewestBeforeIt(int major, int minor, string policy, string why)
    {
        Assert.AreEqual(policy, HostCommand.Policy((major, minor), out string reason)?.Name);
        Assert.AreEqual(why, reason);
    }

    [TestMethod]
    public void AKernelBeforeTheFirstHvoReleaseHasNoPolicy()
    {
        Assert.IsNull(HostCommand.Policy((5, 13), out string why));
        Assert.AreEqual("Linux 5.13 predates HVO", why);
    }
}
