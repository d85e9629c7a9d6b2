using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.Cli;
using Hvo.Runtime.Tests.HugeTlb;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Bbm;

/// <summary>
/// Each architecture's rule for changing a live entry (spec key replacement, docs/ARCHITECTURE.md §3):
/// s390 forbids any valid-to-valid store, so every kernel policy is reported at each step, as it was
/// in reality (64e2f60f355e turned s390 HVO off in v6.18); the invalidating writer keeps the rule,
/// costs an IPTE/IDTE per change and frees the same. Yu Zhao's pause-the-CPUs writer keeps arm64's,
/// costing one IPI per other CPU per pause.
/// </summary>
[TestClass]
public sealed class ReplacementRuleTests
{
    /// <summary>s390 sizes with a vmemmap up to 4 MiB (1 MiB pages; the 2 GiB page's 32 MiB vmemmap is the long suites').</summary>
    public static IEnumerable<object[]> S390Kernel =>
        from c in HvoCases.Moderate(HvoCases.Ruled(HvoPolicy.Kernel))
        where Archs.Get((string)c[0]).Info.Replacement == ReplacementRule.Invalidate
        select c;

    public static IEnumerable<object[]> PauseCases => HvoCases.Moderate(HvoCases.Arm64([HvoPolicy.Arm64PauseCpus]));

    [TestMethod]
    public void TheRuleOfEachSpecIsWhatItsArchitectureAllows()
    {
        Assert.AreEqual(ReplacementRule.Store, Archs.Get("x86_64").Info.Replacement);
        Assert.AreEqual(ReplacementRule.BreakBeforeMake, Archs.Get("arm64-4k").Info.Replacement);
        Assert.AreEqual(ReplacementRule.Invalidate, Archs.Get("s390x").Info.Replacement);
        foreach (ArchEntry e in ArchRegistry.All)
        {
            Assert.AreEqual(e.Info.BreakBeforeMake, e.Info.Replacement == ReplacementRule.BreakBeforeMake, e.Name);
        }
    }

    [TestMethod]
    public void S390OneMegabytePageFreesThreeOfItsFourVmemmapPages()
    {
        // The s390 6.2 pull request: "saving of 12K per 1M hugetlb page"; here from the spec.
        ArchInfo s390 = Archs.Get("s390x").Info;
        const ulong size = 1UL << 20;
        HugePageVmemmap g = HugePageVmemmap.For(s390, size);
        ulong expected = size / s390.PageSize * (ulong)s390.StructPageBytes / s390.PageSize;
        Assert.AreEqual(expected, g.VmemmapPages);
        Assert.AreEqual(expected - 1, g.FreedPages(HvoPolicy.V6_2.ReservePages));
        Assert.AreEqual(3UL * 4096, g.FreedPages(HvoPolicy.V6_2.ReservePages) * s390.PageSize, "12 KiB, as the pull request says");
    }

    [TestMethod]
    public void S390TablesTakeTheirOwnSizeAndEmptyEntriesAreInvalid()
    {
        ArchInfo s390 = Archs.Get("s390x").Info;
        CollectionAssert.AreEqual(new[] { 16384, 16384, 2048 }, s390.Levels.Select(l => l.Entries * 8).ToArray(), "2048-entry region/segment tables, 256-entry page tables");
        CollectionAssert.AreEqual(new[] { 2, 2, 0 }, Enumerable.Range(0, s390.Levels.Count).Select(s390.TableOrder).ToArray(), "a CRST table is an order-2 block; a page table a page");
        Assert.IsTrue(Archs.Run("s390x", new BootedTablesAreWhole()));
    }

    [TestMethod]
    [DynamicData(nameof(S390Kernel))]
    public void S390KernelPoliciesAreReportedAtEveryStep(string arch, ulong size, string policy) =>
        Archs.Run(arch, new KernelReported(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    public void S390SafeFreesTheSameWithNoViolationAndCountsItsInvalidations() =>
        Archs.Run("s390x", new SafeAgainstKernel(1UL << 20));

    [TestMethod]
    public void SimulateOnS390ReportsTheKernelsViolationsAndNoneForS390Safe()
    {
        // The number at a smaller scale: 1 MiB pages with v6.2, then with s390-safe on its writer.
        const int Pages = 256;
        string[] run = ["simulate", "--arch", "s390x", "--memory", "4G", "--hugepages", "1M:" + Pages, "--json"];
        (int exit, string kernel, string err) = CliRun.InProcess([.. run, "--policy", "v6.2"]);
        Assert.AreEqual(0, exit, err);
        (exit, string safe, err) = CliRun.InProcess([.. run, "--policy", "s390-safe", "--entry-writer", "invalidate"]);
        Assert.AreEqual(0, exit, err);
        JsonElement k = JsonDocument.Parse(kernel).RootElement, s = JsonDocument.Parse(safe).RootElement;

        long perPage = (long)HugePageVmemmap.For(Archs.Get("s390x").Info, 1UL << 20).FreedPages(HvoPolicy.V6_2.ReservePages);
        Assert.AreEqual(Pages * perPage, k.GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64());
        Assert.AreEqual(Pages * perPage, s.GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64(), "the same savings");
        Assert.IsTrue(k.GetProperty("breakBeforeMakeViolations").GetInt64() > 0);
        Assert.AreEqual(0, s.GetProperty("breakBeforeMakeViolations").GetInt64());
        Assert.AreEqual(k.GetProperty("breakBeforeMakeViolations").GetInt64(), s.GetProperty("hvo").GetProperty("entryInvalidations").GetInt64(), "an IPTE/IDTE where v6.2 stored directly");
        Assert.AreEqual(k.GetProperty("meminfo").GetProperty("MemFree").GetInt64(), s.GetProperty("meminfo").GetProperty("MemFree").GetInt64());
        CollectionAssert.AreEqual(new[] { "s390-safe" }, s.GetProperty("breakBeforeMakeSafePolicies").EnumerateArray().Select(p => p.GetProperty("policy").GetString()).ToArray());
    }

    [TestMethod]
    [DynamicData(nameof(PauseCases))]
    public void PauseCpusKeepsBreakBeforeMakeAndCostsAnIpiPerOtherCpuPerPause(string arch, ulong size, string policy) =>
        Archs.Run(arch, new PauseCosted(size, HvoPolicy.Find(policy)!));

    private sealed class BootedTablesAreWhole : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = 1UL << 30, Strict = true });
            Assert.AreEqual(0UL, m.PageTable.RootPfn % (1UL << TArch.TableOrder(0)), "the root is aligned to its size");
            for (int level = 0; level < TArch.LevelCount; level++)
            {
                Assert.IsFalse(TArch.IsValid(level, TArch.EmptyEntryOf(level)), $"level {level}'s empty entry is invalid");
            }

            // The invariants count every frame of every table as page-table frames.
            Assert.IsTrue(m.OwnersAddUp());
            List<string> problems = new Hvo.Checks.Invariants<TArch>(m).CheckAll();
            Assert.AreEqual(0, problems.Count, string.Join("\n", problems));
            return true;
        }
    }

    private sealed class KernelReported(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size, checkBreakBeforeMake: true);
            HugePage page = r.Allocate();
            r.Optimizer.OptimizeBatch([page]);
            Assert.IsTrue(page.VmemmapOptimized);
            Violation[] found = r.Machine.Violations.Snapshot().Where(v => v.Kind == ViolationKind.BreakBeforeMake).ToArray();

            // Every tail PTE remapped directly (RW to RO onto another frame), and the segment split.
            int remapped = (int)HugePageVmemmap.For<TArch>(size).FreedPages(policy.ReservePages) + (policy.CopyHead ? 1 : 0);
            Assert.AreEqual(remapped, found.Count(v => v.Change?.Step == "vmemmap_remap_pte"), string.Join("\n", found.Take(5)));
            Assert.AreEqual(HvoOptimizerTests.BootLeavesSpanned(r.Machine, page), found.Count(v => v.Change?.Step == "split_vmemmap_huge_pmd"), "one per segment split");
            Assert.IsTrue(found.All(v => v.Change!.What.Contains("without invalidating it first", StringComparison.Ordinal)), found[0].Change!.What);
            Assert.IsTrue(found.Where(v => v.Change!.Step == "split_vmemmap_huge_pmd").All(v => v.Change!.Level == "pmd"));
            Assert.IsTrue(found.All(v => TArch.IsValid(TArch.LastLevel, v.Change!.OldEntry) || v.Change!.Level == "pmd"), "the old entries were live");
            return true;
        }
    }

    private sealed class SafeAgainstKernel(ulong size) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            const int pages = 3;
            (long freed, long violations, long invalidations) Run(HvoPolicy policy)
            {
                using var r = new HvoRig<TArch>(policy, size, checkBreakBeforeMake: true);
                HugePage[] hp = [.. Enumerable.Range(0, pages).Select(_ => r.Allocate())];
                byte[][] before = [.. hp.Select(p => r.ReadStructPages(p))];
                r.Optimizer.OptimizeBatch(hp);
                Assert.IsTrue(hp.All(p => p.VmemmapOptimized));
                long freed = r.Optimizer.Total.VmemmapPagesFreed;
                foreach (HugePage p in hp)
                {
                    Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(p));
                }

                CollectionAssert.AreEqual(before.SelectMany(b => b).ToArray(), hp.SelectMany(p => r.ReadStructPages(p)).ToArray(), "restore gives back every byte");
                Assert.IsTrue(r.Machine.OwnersAddUp());
                return (freed, r.Machine.Violations.CountOf(ViolationKind.BreakBeforeMake), r.Machine.PageTable.Counters.Invalidations);
            }

            (long kernelFreed, long kernelViolations, long kernelInvalidations) = Run(HvoPolicy.V6_2);
            (long safeFreed, long safeViolations, long safeInvalidations) = Run(HvoPolicy.S390Safe);
            Assert.AreEqual((long)HugePageVmemmap.For<TArch>(size).FreedPages(HvoPolicy.V6_2.ReservePages) * pages, kernelFreed);
            Assert.AreEqual(kernelFreed, safeFreed, "the same savings");
            Assert.IsTrue(kernelViolations > 0, "v6.2 breaks s390's rule");
            Assert.AreEqual(0, safeViolations);
            Assert.AreEqual(0, kernelInvalidations, "the kernel's policy never invalidates");
            Assert.AreEqual(kernelViolations, safeInvalidations, "one IPTE/IDTE for every change the kernel made directly");
            return true;
        }
    }

    private sealed class PauseCosted(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size);
            Assert.IsNotNull(r.Machine.BreakBeforeMake, "the checker runs");
            HugePage[] hp = [r.Allocate(), r.Allocate()];
            r.Optimizer.OptimizeBatch(hp);
            Assert.IsTrue(hp.All(p => p.VmemmapOptimized));
            Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot().Take(5)));
            Assert.AreEqual(2 * (long)HugePageVmemmap.For<TArch>(size).FreedPages(policy.ReservePages), r.Optimizer.Total.VmemmapPagesFreed);

            PageTableCounters c = r.Machine.PageTable.Counters;
            int others = r.Machine.Config.Cpus - 1;
            Assert.IsTrue(c.CpuPauses > 0);
            Assert.AreEqual(c.CpuPauses * others, c.PauseIpis, "one pseudo-NMI to each other CPU per pause");
            Assert.IsTrue(c.CpuPauses < c.Invalidations, "a pause covers a walk's changes, not one each");
            Assert.IsTrue(c.PausedCpuSteps >= 3 * c.Invalidations * others, "each change's clear, flush and write while the others spin");
            return true;
        }
    }
}
