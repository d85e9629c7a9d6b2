using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Tests;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// The soak of issue 6: random pool operations (grow, shrink, demote, the sysctl, pages taken
/// into use and released, nr_overcommit_hugepages, the working CPU) on a 64 GiB machine in strict
/// mode with the newest HVO policy and fail_page_alloc failing 1% of every allocation (any site,
/// any order), with every invariant of docs/ARCHITECTURE.md §8 (<see cref="Invariants{TArch}"/>)
/// checked every <see cref="CheckEvery"/> operations and at the end. Fixed seeds: the same run
/// every time. CI runs <see cref="CiOperations"/> operations; the long category a million.
/// </summary>
[TestClass]
public sealed class SoakTests
{
    private const long CiOperations = 20_000;
    private const long LongOperations = 1_000_000;
    private const int CheckEvery = 1000;
    private const ulong Seed = 0x48564f5f534f414bUL; // "HVO_SOAK"

    public TestContext TestContext { get; set; } = null!;

    /// <summary>The issue's machines: x86-64, and arm64 with 4 KiB pages (its 64K and 32M contiguous sizes, 2M and 1G blocks).</summary>
    public static IEnumerable<object[]> Cases =>
        from e in ArchRegistry.All
        where e.Name is "x86_64" or "arm64-4k"
        select new object[] { e.Name };

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void RandomOperationsOn64GiBKeepEveryInvariant(string arch) => Soak(arch, CiOperations);

    [TestMethod]
    [TestCategory("Long")]
    [DynamicData(nameof(Cases))]
    public void AMillionRandomOperationsOn64GiBKeepEveryInvariant(string arch)
    {
        LongRun.Require("the soak (a million operations on a 64 GiB machine)");
        Soak(arch, LongRun.Iterations(LongOperations));
    }

    private void Soak(string arch, long operations)
    {
        SoakResult r = Archs.Run(arch, new Runner(operations, Seed ^ (ulong)arch.Length));
        TestContext.WriteLine(
            $"{arch} {r.Policy}, 64 GiB, 2 nodes, strict, 1% allocation failures: {r.Operations} operations in {r.Seconds:0.0} s "
            + $"({r.Operations / r.Seconds:0} ops/s including checks, {r.Operations / r.OperationSeconds:0} ops/s of operations alone); "
            + $"{r.Checks} invariant checks ({r.CheckSeconds * 1000 / Math.Max(1, r.Checks):0.0} ms each, {r.StructPages} struct pages compared through the MMU, "
            + $"{r.VmemmapPages} vmemmap pages checked), violations: {r.Problems}; allocation failures injected: {r.FaultsInjected}; {r.Summary}");
        Assert.AreEqual(0, r.Problems, "no invariant broken");
        Assert.IsGreaterThan(0L, r.FaultsInjected, "the run saw allocation failures");
        Assert.IsGreaterThan(0L, r.Optimized, "the run optimized pages");
        Assert.IsGreaterThan(0L, r.Restored, "the run restored pages");
    }

    private sealed record SoakResult(
        string Policy, long Operations, double Seconds, double OperationSeconds, double CheckSeconds, long Checks,
        long StructPages, long VmemmapPages, int Problems, long FaultsInjected, long Optimized, long Restored, string Summary);

    private enum Kind
    {
        Grow,
        Shrink,
        Demote,
        Sysctl,
        Use,
        Release,
        Overcommit,
        Cpu,
    }

    private static readonly (Kind Kind, int Weight)[] Weights =
    [
        (Kind.Grow, 30), (Kind.Shrink, 18), (Kind.Demote, 5), (Kind.Sysctl, 3),
        (Kind.Use, 18), (Kind.Release, 18), (Kind.Overcommit, 2), (Kind.Cpu, 6),
    ];

    private sealed class Runner(long operations, ulong seed) : IArchVisitor<SoakResult>
    {
        private ulong _state = seed | 1;

        public SoakResult Visit<TArch>() where TArch : struct, IPagingArch
        {
            using Machine<TArch> machine = Machine<TArch>.Boot(new MachineConfig
            {
                MemoryBytes = 64UL << 30,
                Nodes = 2,
                Strict = true,
                CheckBreakBeforeMake = false, // every kernel policy breaks arm64's rule; its own test shows that
            });
            HvoPolicy policy = HvoPolicy.Newest;
            var optimizer = new HvoOptimizer<TArch>(machine, policy);
            var pool = new HugeTlbPool<TArch>(machine, optimizer);
            var invariants = new Invariants<TArch>(machine, pool, TArch.Name, seed);

            // fail_page_alloc: 1% of every allocation, any site, any order, no limit.
            FaultInjection faults = machine.Faults;
            faults.Seed = seed;
            faults.MinOrder = 0;
            faults.Sites = null;
            faults.Times = -1;
            faults.Probability = 1;

            // Each size may hold up to an eighth of memory: the sizes compete for it, and with at most
            // four of them half of memory stays for vmemmap restores, split tables and head copies.
            Hstate<TArch>[] sizes = [.. pool.Hstates];
            ulong[] caps = [.. sizes.Select(h => Math.Max(1UL, (machine.Layout.Frames << TArch.PageShift) / 8 / h.Size))];
            int total = Weights.Sum(w => w.Weight);
            var inUse = new List<HugePage>();
            var recent = new Queue<string>();
            long faultsBefore = faults.Failures;
            var clock = Stopwatch.StartNew();
            var checkClock = new Stopwatch();
            int problems = 0;

            void Check(long op)
            {
                checkClock.Start();
                List<string> found = invariants.CheckAll();
                checkClock.Stop();
                if (found.Count > 0)
                {
                    problems += found.Count;
                    throw new AssertFailedException(
                        $"{TArch.Name}: after operation {op} (seed 0x{seed:x}): {found.Count} invariant(s) broken:\n  - "
                        + string.Join("\n  - ", found) + "\nlast operations:\n  " + string.Join("\n  ", recent));
                }
            }

            var perKind = new double[Enum.GetValues<Kind>().Length];
            var perKindCount = new long[perKind.Length];
            Check(0);
            for (long op = 1; op <= operations; op++)
            {
                long started = Stopwatch.GetTimestamp();
                int pick = (int)(Next() % (ulong)total);
                Kind kind = Weights.First(w => (pick -= w.Weight) < 0).Kind;
                // Gigantic sizes (alloc_contig_pages, thousands of vmemmap pages each) a fifth as often.
                int index = (int)(Next() % (ulong)sizes.Length);
                if (sizes[index].IsGigantic && Next() % 5 != 0)
                {
                    index = (int)(Next() % (ulong)sizes.Length);
                }

                Hstate<TArch> h = sizes[index];
                int? nid = Next() % 3 == 0 ? null : (int)(Next() % (ulong)machine.Layout.Nodes);
                string what = kind switch
                {
                    Kind.Grow => Grow(pool, h, nid, caps[index]),
                    Kind.Shrink => Shrink(pool, h, nid),
                    Kind.Demote => h.DemoteTarget is not { } target ? "demote: no smaller size"
                        : pool.NrHugepages(target) >= caps[Array.IndexOf(sizes, target)] ? $"demote {h.Name}: {target.Name} at its cap"
                        : $"demote {h.Name}: {pool.Demote(h, 1 + (Next() % 2), nid)}",
                    Kind.Sysctl => $"vm.hugetlb_optimize_vmemmap := {((optimizer.Switches.Sysctl = !optimizer.Switches.Sysctl) ? 1 : 0)}",
                    Kind.Use => Use(pool, h, nid, inUse),
                    Kind.Release => Release(pool, inUse),
                    Kind.Overcommit => $"nr_overcommit_hugepages {h.Name} := {pool.SetNrOvercommitHugepages(h, Next() % 8)}",
                    _ => $"working CPU := {machine.CurrentCpu = (int)(Next() % (ulong)machine.Config.Cpus)}",
                };
                perKind[(int)kind] += Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                perKindCount[(int)kind]++;
                recent.Enqueue($"{op}: {what}");
                if (recent.Count > 20)
                {
                    recent.Dequeue();
                }

                if (op % CheckEvery == 0)
                {
                    Check(op);
                }
            }

            Check(operations);
            clock.Stop();
            HvoCounters c = optimizer.Total;
            string summary = string.Join(", ", sizes.Select(h => $"{h.Name} nr {h.NrHugePages} surplus {h.SurplusHugePages}"))
                + $"; {inUse.Count} in use; HVO: optimized now {c.OptimizedPages}, vmemmap pages freed {c.VmemmapPagesFreed}, restored {c.VmemmapPagesRestored}, "
                + $"PMDs split {c.PmdsSplit}, optimize failures {c.OptimizeFailures}, head-copy failures {c.HeadCopyFailures}, restore failures {c.RestoreFailures}; "
                + "ms per operation: " + string.Join(", ", Enum.GetValues<Kind>().Select(k => $"{k} {perKind[(int)k] / Math.Max(1, perKindCount[(int)k]):0.000}"));
            return new SoakResult(
                policy.Name, operations, clock.Elapsed.TotalSeconds, (clock.Elapsed - checkClock.Elapsed).TotalSeconds, checkClock.Elapsed.TotalSeconds,
                invariants.Checks, invariants.StructPagesCompared, invariants.VmemmapPagesChecked, problems,
                faults.Failures - faultsBefore, c.VmemmapPagesFreed, c.VmemmapPagesRestored, summary);
        }

        private string Grow<TArch>(HugeTlbPool<TArch> pool, Hstate<TArch> h, int? nid, ulong cap) where TArch : struct, IPagingArch
        {
            if (pool.NrHugepages(h) >= cap)
            {
                return $"grow {h.Name}: at its cap of {cap} pages";
            }

            ulong now = pool.NrHugepages(h, nid);
            ulong target = now + 1 + (Next() % Math.Min(8, cap));
            return $"nr_hugepages {h.Name} ({Where(nid)}) := {target}: {pool.SetNrHugepages(h, target, nid)}";
        }

        private string Shrink<TArch>(HugeTlbPool<TArch> pool, Hstate<TArch> h, int? nid) where TArch : struct, IPagingArch
        {
            ulong now = pool.NrHugepages(h, nid);
            ulong target = now - Math.Min(now, 1 + (Next() % 8));
            return $"nr_hugepages {h.Name} ({Where(nid)}) := {target}: {pool.SetNrHugepages(h, target, nid)}";
        }

        private static string Use<TArch>(HugeTlbPool<TArch> pool, Hstate<TArch> h, int? nid, List<HugePage> inUse) where TArch : struct, IPagingArch
        {
            HugePage? page = pool.AllocForUse(h, nid);
            if (page is not null)
            {
                inUse.Add(page);
            }

            return $"alloc_hugetlb_folio {h.Name} ({Where(nid)}): {page?.ToString() ?? "none"}";
        }

        private string Release<TArch>(HugeTlbPool<TArch> pool, List<HugePage> inUse) where TArch : struct, IPagingArch
        {
            if (inUse.Count == 0)
            {
                return "release: none in use";
            }

            int i = (int)(Next() % (ulong)inUse.Count);
            HugePage page = inUse[i];
            inUse[i] = inUse[^1];
            inUse.RemoveAt(inUse.Count - 1);
            string was = page.ToString();
            pool.Release(page);
            return $"free_huge_folio {was}";
        }

        private static string Where(int? nid) => nid is { } n ? string.Create(CultureInfo.InvariantCulture, $"node {n}") : "all nodes";

        // xorshift64*.
        private ulong Next()
        {
            _state ^= _state >> 12;
            _state ^= _state << 25;
            _state ^= _state >> 27;
            return _state * 0x2545F4914F6CDD1DUL;
        }
    }
}
