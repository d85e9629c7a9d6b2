using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using Hvo.Checks;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Paging.Reference;
using Hvo.Tests;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// Random sequences of pool operations (grow, shrink, demote, the sysctl, pages taken into use
/// and released, nr_overcommit_hugepages, the working CPU, injected allocation failures) run on
/// two machines booted alike: one whose page table runs the generated range walks and splits,
/// one whose page table runs the interpreted <see cref="ReferenceWalker"/>. After every
/// operation both must agree on the pool, the HVO counters, the owner of every kind of frame and
/// the translation of every vmemmap page, and neither may break strict mode or leak a frame
/// (docs/ARCHITECTURE.md §2 and §8).
/// </summary>
/// <remarks>
/// The default run is deterministic: each (architecture, policy) case runs
/// <see cref="CiSamples"/> sequences from seeds derived from a fixed seed and its own name, and a
/// failing seed is then shrunk by CsCheck. The long run (<c>HVO_LONG=1</c>, optionally
/// <c>HVO_LONG_ITER=N</c>) samples random seeds; <c>CsCheck_Seed</c> replays a reported one.
/// </remarks>
[TestClass]
public sealed class RandomSequenceTests
{
    private const int CiSamples = 20;
    private const ulong CiSeed = 0x48564f5f52414e44UL; // "HVO_RAND"
    private const int ShrinkSeconds = 20;

    /// <summary>The oldest layout and the newest; v7.1 only where the spec allows its shared tail (else it is refused).</summary>
    public static IEnumerable<object[]> Cases =>
        from e in ArchRegistry.All
        from p in new[] { HvoPolicy.V5_14, HvoPolicy.Newest }
        where !p.SharedTail || HvoPolicy.SharedTailProblem(e.Info) is null
        select new object[] { e.Name, p.Name };

    /// <summary>CI's share: each family's representative (<see cref="Archs.IsRepresentative"/>); the long run takes every spec.</summary>
    public static IEnumerable<object[]> CasesCi => Archs.Representatives(Cases);

    [TestMethod]
    [DynamicData(nameof(CasesCi))]
    public void RandomSequencesAgreeWithTheInterpretedWalkerAndLeakNothing(string arch, string policy) =>
        Archs.Run(arch, new Runner(HvoPolicy.Find(policy)!, long.MinValue));

    [TestMethod]
    [TestCategory("Long")]
    [DynamicData(nameof(Cases))]
    public void ManyRandomSequencesAgreeWithTheInterpretedWalkerAndLeakNothing(string arch, string policy)
    {
        LongRun.Require("the long random-sequence run (500 sequences per case by default)");
        Archs.Run(arch, new Runner(HvoPolicy.Find(policy)!, LongRun.Iterations(500)));
    }

    // ---------------------------------------------------------------------------------------
    // The generated input: a boot line and 20 to 60 operations. Operations carry raw numbers;
    // what they pick (an hstate, a count, a page) is resolved against the state when they run.
    // ---------------------------------------------------------------------------------------

    internal enum Kind
    {
        Grow,
        Shrink,
        Demote,
        Sysctl,
        Use,
        Release,
        FailNth,
        FailRandom,
        Overcommit,
        Cpu,
    }

    /// <summary>
    /// One operation. <see cref="Node"/> 0 is the global file, n &gt; 0 node n - 1 (modulo the
    /// nodes); for the failure injections it is the call site failed (<see cref="Sites"/>).
    /// </summary>
    internal readonly record struct Op(Kind Kind, int Pick, int Node, int A, int B)
    {
        public override string ToString() => Kind switch
        {
            Kind.Grow => $"grow(h#{Pick}, +{A}, {NodeText})",
            Kind.Shrink => $"shrink(h#{Pick}, to {A} mod (nr+1), {NodeText})",
            Kind.Demote => $"demote(h#{Pick}, {A}, {NodeText})",
            Kind.Sysctl => "sysctl toggle",
            Kind.Use => $"use(h#{Pick}, {NodeText})",
            Kind.Release => $"release(#{Pick})",
            Kind.FailNth => $"fail-nth {A} at {SiteText(Node)}",
            Kind.FailRandom => $"fail {A}% times {B} seed {Pick} at {SiteText(Node)}",
            Kind.Overcommit => $"overcommit(h#{Pick}, {A})",
            Kind.Cpu => $"cpu {A}",
            _ => Kind.ToString(),
        };

        private string NodeText => Node == 0 ? "all nodes" : $"node#{Node - 1}";
    }

    /// <summary>
    /// Where an injected failure may land: any allocation, or one site only, so that the rare
    /// ones (a PTE table for a split, the head copy) are hit as often as the frequent ones.
    /// </summary>
    private static readonly AllocSite?[] Sites = [null, AllocSite.PteTable, AllocSite.VmemmapRestore, AllocSite.HeadPageCopy, AllocSite.HugePage];

    private static string SiteText(int site) => Sites[site % Sites.Length]?.ToString() ?? "any site";

    /// <summary>What is on the boot line: default-size pages (from the buddy allocator) and gigantic ones (from memblock).</summary>
    internal readonly record struct BootLine(int DefaultPages, int GiganticPages);

    internal sealed record Sequence(BootLine Boot, Op[] Ops)
    {
        public override string ToString() =>
            $"boot: {Boot.DefaultPages} default-size, {Boot.GiganticPages} gigantic; {Ops.Length} ops:\n  "
            + string.Join("\n  ", Ops.Select((o, i) => $"{i,2}: {o}"));
    }

    private static readonly Gen<int> Pick = Gen.Int[0, 1 << 16];
    private static readonly Gen<int> NodeChoice = Gen.Int[0, 2];

    // k for fail-nth: mostly the very next call or the one after, sometimes further on.
    private static readonly Gen<int> SmallK = Gen.Frequency((3, Gen.Int[1, 2]), (1, Gen.Int[3, 8]));

    private static readonly Gen<Op> OpGen = Gen.Frequency(
        (6, Gen.Select(Pick, NodeChoice, Gen.Int[1, 4], (p, n, a) => new Op(Kind.Grow, p, n, a, 0))),
        (4, Gen.Select(Pick, NodeChoice, Pick, (p, n, a) => new Op(Kind.Shrink, p, n, a, 0))),
        (2, Gen.Select(Pick, NodeChoice, Gen.Int[1, 2], (p, n, a) => new Op(Kind.Demote, p, n, a, 0))),
        (2, Gen.Const(new Op(Kind.Sysctl, 0, 0, 0, 0))),
        (4, Gen.Select(Pick, NodeChoice, (p, n) => new Op(Kind.Use, p, n, 0, 0))),
        (3, Gen.Select(Pick, p => new Op(Kind.Release, p, 0, 0, 0))),
        (3, Gen.Select(Gen.Int[0, Sites.Length - 1], SmallK, (site, k) => new Op(Kind.FailNth, 0, site, k, 0))),
        (1, Gen.Select(Pick, Gen.Int[0, Sites.Length - 1], Gen.Int[5, 60], Gen.Int[1, 5], (s, site, p, t) => new Op(Kind.FailRandom, s, site, p, t))),
        (1, Gen.Select(Pick, Gen.Int[0, 3], (p, a) => new Op(Kind.Overcommit, p, 0, a, 0))),
        (1, Gen.Select(Gen.Int[0, 1], c => new Op(Kind.Cpu, 0, 0, c, 0))));

    private static readonly Gen<Sequence> Sequences = Gen.Select(
        Gen.Int[0, 3], Gen.Int[0, 1], OpGen.Array[20, 60],
        (d, g, ops) => new Sequence(new BootLine(d, g), ops));

    private static string Print(Sequence s) => s.ToString();

    /// <summary>FNV-1a: a seed per case that does not change between runs (string.GetHashCode does).</summary>
    /// <summary>Runs the property for one architecture: <c>iterations</c> random seeds, or the CI's fixed ones when <see cref="long.MinValue"/>.</summary>
    private sealed class Runner(HvoPolicy policy, long iterations) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            var plan = new Plan<TArch>(policy);
            string label = $"{TArch.Name} {policy.Name}";
            Action<Sequence> property = s => new Property<TArch>(plan).Run(s);
            if (iterations != long.MinValue)
            {
                Sample(property, label, null, iterations, -1);
                return true;
            }

            // Fixed seeds: the same sequences on every run, each machine pair on its own, so they
            // run side by side. The first failing one (by index) is shrunk from its seed.
            var master = new PCG(7, CiSeed ^ FixedSeeds.Hash(label));
            string[] seeds = [.. Enumerable.Range(0, CiSamples).Select(_ => new PCG(master.Next(), master.Next64()).ToString())];
            int firstFailure = int.MaxValue;
            Parallel.For(0, seeds.Length, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                try
                {
                    Sequences.Sample(property, seed: seeds[i], iter: 1, threads: 1, print: Print);
                }
                catch (CsCheckException)
                {
                    FixedSeeds.InterlockedMin(ref firstFailure, i);
                }
            });

            if (firstFailure != int.MaxValue)
            {
                string seed = seeds[firstFailure];
                Sample(property, label + $" (fixed sample {firstFailure}, shrunk for {ShrinkSeconds} s)", seed, -1, ShrinkSeconds);
                throw new AssertFailedException($"{label}: fixed sample {firstFailure} (seed {seed}) failed but did not fail again when replayed");
            }

            return true;
        }

        private static void Sample(Action<Sequence> property, string label, string? seed, long iter, int time)
        {
            try
            {
                Sequences.Sample(property, seed: seed, iter: iter, time: time, print: Print);
            }
            catch (CsCheckException e)
            {
                throw new AssertFailedException($"{label}: {e.Message}\n\n--- the (shrunk) failure ---\n{e.InnerException?.Message}", e);
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // One case's fixed choices: the machine, the hstates the operations pick from.
    // ---------------------------------------------------------------------------------------

    private sealed class Plan<TArch> where TArch : struct, IPagingArch
    {
        public Plan(HvoPolicy policy)
        {
            Policy = policy;
            ulong[] sizes = [.. TArch.Info.HugePageSizes.Select(h => h.Size).Distinct().Order()];
            ulong defaultSize = HugeTlbCommandLine.ArchDefaultSize(TArch.Info);

            // Room for a few of the largest size any policy optimizes: the contiguous ranges of
            // gigantic pages are 1 GiB on x86-64 and arm64-4k/16k, 16 GiB on arm64-64k.
            ulong largest = sizes.Where(s => HugePageVmemmap.For(TArch.Info, s).IsOptimizable(1)).DefaultIfEmpty(defaultSize).Max();
            Memory = Math.Max(2UL << 30, largest * 6);
            Used = [.. sizes.Where(s => s == defaultSize || HugePageVmemmap.For(TArch.Info, s).IsOptimizable(policy.ReservePages))];
            ulong maxOrderBytes = TArch.PageSize << MachineLayout.DefaultMaxOrder(TArch.PageShift);
            Gigantic = Used.Where(s => s > maxOrderBytes).DefaultIfEmpty(0UL).Max();
            DefaultSize = defaultSize;
        }

        public HvoPolicy Policy { get; }

        public ulong Memory { get; }

        public int Nodes => 2;

        /// <summary>The default size and every size this policy optimizes, smallest first.</summary>
        public ulong[] Used { get; }

        public ulong DefaultSize { get; }

        /// <summary>The largest gigantic size in use (boot-time pages from memblock), or 0.</summary>
        public ulong Gigantic { get; }

        public (MachineConfig Config, HugeTlbCommandLine Line) Config(BootLine boot)
        {
            HugeTlbCommandLine line = HugeTlbCommandLine.Empty;
            if (boot.DefaultPages > 0)
            {
                line = line.BootReserve(DefaultSize, (ulong)boot.DefaultPages);
            }

            if (boot.GiganticPages > 0 && Gigantic != 0 && Gigantic != DefaultSize)
            {
                line = line.BootReserve(Gigantic, (ulong)boot.GiganticPages);
            }

            return (new MachineConfig
            {
                MemoryBytes = Memory,
                Nodes = Nodes,
                Strict = true,
                CheckBreakBeforeMake = false,
            }, line);
        }
    }

    // ---------------------------------------------------------------------------------------
    // One machine with its optimizer and pool, and the operations.
    // ---------------------------------------------------------------------------------------

    private sealed class Side<TArch> : IDisposable where TArch : struct, IPagingArch
    {
        private Invariants<TArch>? _invariants;

        public Side(string name, MachineConfig config, HugeTlbCommandLine line, HvoPolicy policy, bool interpreted)
        {
            Name = name;
            Machine = HugeBootPages.Boot<TArch>(config, line, out HugeBootPages bootPages);
            try
            {
                if (interpreted)
                {
                    Walker = new ReferenceWalker(TArch.Info);
                    Machine.PageTable.Reference = Walker; // before the pool: boot-time pages are optimized as it gathers them
                }

                Optimizer = new HvoOptimizer<TArch>(Machine, policy);
                Pool = new HugeTlbPool<TArch>(Machine, Optimizer, bootPages);
            }
            catch
            {
                Machine.Dispose();
                throw;
            }
        }

        public string Name { get; }

        public Machine<TArch> Machine { get; }

        public ReferenceWalker? Walker { get; }

        public HvoOptimizer<TArch> Optimizer { get; }

        public HugeTlbPool<TArch> Pool { get; }

        public List<HugePage> InUse { get; } = [];

        public void Dispose() => Machine.Dispose();

        private static HashSet<AllocSite>? SiteSet(int site) => Sites[site % Sites.Length] is { } s ? [s] : null;

        /// <summary>Run <paramref name="op"/>; what it did, as text both sides must agree on.</summary>
        public string Apply(Op op, Plan<TArch> plan)
        {
            int nodes = Machine.Layout.Nodes;
            int? nid = op.Node == 0 ? null : (op.Node - 1) % nodes;
            string where = nid is { } n ? $"node {n}" : "all nodes";
            Hstate<TArch> h = Pool.Hstate(plan.Used[op.Pick % plan.Used.Length]);
            FaultInjection faults = Machine.Faults;
            switch (op.Kind)
            {
                case Kind.Grow:
                {
                    ulong target = Pool.NrHugepages(h, nid) + (ulong)op.A;
                    return $"nr_hugepages {h.Name} ({where}) := {target}: {Pool.SetNrHugepages(h, target, nid)}";
                }

                case Kind.Shrink:
                {
                    ulong target = (ulong)op.A % (Pool.NrHugepages(h, nid) + 1);
                    return $"nr_hugepages {h.Name} ({where}) := {target}: {Pool.SetNrHugepages(h, target, nid)}";
                }

                case Kind.Demote:
                {
                    Hstate<TArch>[] demotable = [.. plan.Used.Select(Pool.Hstate).Where(x => x.DemoteTarget is not null)];
                    if (demotable.Length == 0)
                    {
                        return "demote: no size in use has a smaller one";
                    }

                    Hstate<TArch> d = demotable[op.Pick % demotable.Length];
                    return $"demote {d.Name} x{op.A} ({where}): {Pool.Demote(d, (ulong)op.A, nid)}";
                }

                case Kind.Sysctl:
                    Optimizer.Switches.Sysctl = !Optimizer.Switches.Sysctl;
                    return $"vm.hugetlb_optimize_vmemmap := {(Optimizer.Switches.Sysctl ? 1 : 0)}";

                case Kind.Use:
                {
                    HugePage? page = Pool.AllocForUse(h, nid);
                    if (page is not null)
                    {
                        InUse.Add(page);
                    }

                    return $"alloc_hugetlb_folio {h.Name} ({where}): {page?.ToString() ?? "none"}";
                }

                case Kind.Release:
                {
                    if (InUse.Count == 0)
                    {
                        return "release: no page in use";
                    }

                    HugePage page = InUse[op.Pick % InUse.Count];
                    InUse.Remove(page);
                    string was = page.ToString();
                    Pool.Release(page);
                    return $"free_huge_folio {was}: now {page.State}{(page.VmemmapOptimized ? ", optimized" : string.Empty)}";
                }

                case Kind.FailNth:
                    faults.MinOrder = 0;
                    faults.Sites = SiteSet(op.Node);
                    faults.Probability = 0;
                    faults.FailNth(op.A);
                    return $"fail-nth := {op.A} at {SiteText(op.Node)} (min-order 0)";

                case Kind.FailRandom:
                    faults.MinOrder = 0;
                    faults.Sites = SiteSet(op.Node);
                    faults.FailNth(0);
                    faults.Seed = (ulong)op.Pick;
                    faults.Probability = op.A;
                    faults.Times = op.B;
                    return $"fail_page_alloc probability {op.A} times {op.B} seed {op.Pick} at {SiteText(op.Node)} (min-order 0)";

                case Kind.Overcommit:
                    return $"nr_overcommit_hugepages {h.Name} := {op.A}: {Pool.SetNrOvercommitHugepages(h, (ulong)op.A)}";

                case Kind.Cpu:
                    Machine.CurrentCpu = op.A % Machine.Config.Cpus;
                    return $"working CPU := {Machine.CurrentCpu} (node {Machine.NodeOfCpu(Machine.CurrentCpu)})";

                default:
                    throw new ArgumentOutOfRangeException(nameof(op), op, null);
            }
        }

        /// <summary>Every count that must be the same on both machines, one fact a line.</summary>
        public List<string> State()
        {
            var lines = new List<string>
            {
                $"proc nr_hugepages {Pool.ProcNrHugepages}",
                $"MemTotal {Machine.MemTotalBytes} MemFree {Machine.MemFreeBytes}",
                $"sysctl {Optimizer.Switches.Sysctl} cpu {Machine.CurrentCpu}",
                $"faults: calls {Machine.Faults.Calls} failures {Machine.Faults.Failures} pending fail-nth {Machine.Faults.PendingFailNth} times {Machine.Faults.Times}",
            };

            foreach (FrameOwner o in Enum.GetValues<FrameOwner>())
            {
                lines.Add($"owner {o}: {Machine.Owners.Count(o)}");
            }

            PageTableCounters pt = Machine.PageTable.Counters;
            lines.Add($"page table: entry writes {pt.EntryWrites}, range flushes {pt.TlbRangeFlushes}, tables allocated {pt.TablesAllocated}, tables freed {pt.TablesFreed}");
            lines.Add("hvo total: " + Counters(Optimizer.Total));
            foreach (Hstate<TArch> h in Pool.Hstates)
            {
                lines.Add($"{h.Name}: nr {Pool.NrHugepages(h)} free {Pool.FreeHugepages(h)} surplus {Pool.SurplusHugepages(h)} max {h.MaxHugePages} overcommit {Pool.NrOvercommitHugepages(h)}");
                for (int nid = 0; nid < Machine.Layout.Nodes; nid++)
                {
                    lines.Add($"{h.Name} node {nid}: nr {Pool.NrHugepages(h, nid)} free {Pool.FreeHugepages(h, nid)} surplus {Pool.SurplusHugepages(h, nid)}; hvo: {Counters(Optimizer.For(h.Order, nid))}");
                }

                lines.Add($"{h.Name} pages: " + string.Join(' ', Pool.Pages(h).Select(p => $"{p.HeadPfn:x}{(p.VmemmapOptimized ? "o" : string.Empty)}{(p.State == HugePageState.InUse ? "u" : string.Empty)}{(p.Surplus ? "s" : string.Empty)}")));
            }

            return lines;
        }

        private static string Counters(HvoCounters c) =>
            $"optimized {c.OptimizedPages} freed {c.VmemmapPagesFreed} restored {c.VmemmapPagesRestored} tables {c.PteTablesAllocated} splits {c.PmdsSplit} "
            + $"optimize-failures {c.OptimizeFailures} head-copy-failures {c.HeadCopyFailures} restore-failures {c.RestoreFailures} "
            + $"range-flushes {c.TlbRangeFlushes} full-flushes {c.TlbFullFlushes}";

        /// <summary>
        /// docs/ARCHITECTURE.md §8 on this machine alone (<see cref="Invariants{TArch}"/>): the owners add up,
        /// no strict-mode violation, no leak (every page-table, runtime-vmemmap and boot-vmemmap
        /// frame reachable from the root, every frame a vmemmap leaf maps a vmemmap frame), the
        /// pool's counters and lists agree, HVO's counters agree with the pages, and every pool
        /// page's vmemmap is fully optimized or fully backed.
        /// </summary>
        public void CheckSelf(List<string> problems)
        {
            _invariants ??= new Invariants<TArch>(Machine, Pool, Name);
            _invariants.CheckOwners(problems);
            _invariants.CheckStrictMode(problems);
            _invariants.CheckPageTableReachability(problems);
            HugePage[] pages = [.. Pool.Hstates.SelectMany(Pool.Pages)];
            _invariants.CheckPool(problems);
            _invariants.CheckHvoCounters(problems, pages);
            _invariants.CheckHugePageVmemmap(problems, pages);
        }
    }

    // ---------------------------------------------------------------------------------------
    // The property.
    // ---------------------------------------------------------------------------------------

    private sealed class Property<TArch>(Plan<TArch> plan) where TArch : struct, IPagingArch
    {
        private readonly List<string> _transcript = [];

        // Entry writes of both page tables when their translations last agreed: every change to a
        // live table goes through SetEntry, so with no new write there is nothing new to compare.
        private (long A, long B) _comparedAt = (-1, -1);

        public void Run(Sequence sequence)
        {
            (MachineConfig config, HugeTlbCommandLine line) = plan.Config(sequence.Boot);
            config = config with { PageTableFragments = plan.Policy.PageTableFragments(TArch.Info) }; // s390 under v5.14: 2 KiB halves
            _transcript.Add($"boot {TArch.Name} {plan.Memory >> 20} MiB, {plan.Nodes} nodes, policy {plan.Policy.Name}, hugepages: "
                + (line.Requests.Count == 0 ? "none" : string.Join(", ", line.Requests.Select(r => $"{r.Count} x {r.Size >> 10} KiB")))
                + $"; sizes in use: {string.Join(", ", plan.Used.Select(s => $"{s >> 10} KiB"))}");

            using var a = Boot("generated", config, line, interpreted: false);
            using var b = Boot("interpreted", config, line, interpreted: true);
            CheckAgreement(a, b, "after boot", sequence);
            for (int i = 0; i < sequence.Ops.Length; i++)
            {
                Op op = sequence.Ops[i];
                string ra = Apply(a, op, i, sequence);
                string rb = Apply(b, op, i, sequence);
                _transcript.Add($"{i,2}: {op} -> {ra}");
                if (ra != rb)
                {
                    Fail(sequence, $"step {i} ({op})", [$"the operation did different things:\n    generated:   {ra}\n    interpreted: {rb}"]);
                }

                CheckAgreement(a, b, $"step {i} ({op})", sequence);
            }
        }

        private Side<TArch> Boot(string name, MachineConfig config, HugeTlbCommandLine line, bool interpreted)
        {
            try
            {
                return new Side<TArch>(name, config, line, plan.Policy, interpreted);
            }
            catch (Exception e) when (e is not AssertFailedException)
            {
                throw new AssertFailedException($"{TArch.Name} {plan.Policy.Name}: booting the {name} machine threw {e.GetType().Name}: {e.Message}\n{string.Join("\n", _transcript)}", e);
            }
        }

        private string Apply(Side<TArch> side, Op op, int i, Sequence sequence)
        {
            try
            {
                return side.Apply(op, plan);
            }
            catch (Exception e) when (e is not AssertFailedException)
            {
                Fail(sequence, $"step {i} ({op})", [$"{side.Name}: the operation threw {e.GetType().Name}: {e.Message}\n{e.StackTrace}"]);
                throw; // not reached
            }
        }

        private void CheckAgreement(Side<TArch> a, Side<TArch> b, string when, Sequence? sequence = null)
        {
            var problems = new List<string>();
            a.CheckSelf(problems);
            b.CheckSelf(problems);

            // Pool counts, HVO counters, owner counts, MemTotal/MemFree, fault-injection state.
            List<string> sa = a.State(), sb = b.State();
            for (int i = 0; i < Math.Max(sa.Count, sb.Count); i++)
            {
                string la = i < sa.Count ? sa[i] : "(none)", lb = i < sb.Count ? sb[i] : "(none)";
                if (la != lb)
                {
                    problems.Add($"state differs:\n    generated:   {Trim(la)}\n    interpreted: {Trim(lb)}");
                }
            }

            (long A, long B) writes = (a.Machine.PageTable.Counters.EntryWrites, b.Machine.PageTable.Counters.EntryWrites);
            if (writes != _comparedAt)
            {
                CompareTranslations(a, b, problems);
                _comparedAt = writes;
            }

            if (problems.Count > 0)
            {
                Fail(sequence, when, problems);
            }
        }

        /// <summary>
        /// Every vmemmap page backing a struct page of the machine: the generated walk on the
        /// generated machine against the interpreted walk on the interpreted one (where the walk
        /// ends, the entry, the output frame, writability). A leaf above the last level maps the
        /// rest of its block the same way, so one comparison covers the block.
        /// </summary>
        private static void CompareTranslations(Side<TArch> a, Side<TArch> b, List<string> problems)
        {
            ulong page = TArch.PageSize;
            ulong start = a.Machine.StructPageAddress(a.Machine.Layout.FirstPfn) & ~(page - 1);
            ulong end = (a.Machine.StructPageAddress(a.Machine.Layout.EndPfn) + page - 1) & ~(page - 1);
            int reported = 0;
            KernelPageTable<TArch> pa = a.Machine.PageTable, pb = b.Machine.PageTable;
            ReferenceWalker walker = b.Walker!;
            for (ulong va = start; va < end;)
            {
                WalkResult wa = pa.Walk(va);
                WalkResult wb = pb.Walk(va); // the interpreted walk: pb.Reference is set
                string? diff = null;
                if (!wa.IsLeaf && !wb.IsLeaf && a.Machine.VmemmapDescribesOnlyHoles(va, va + page))
                {
                    va += page; // struct pages of the firmware's hole: never populated, on either side
                    continue;
                }

                if (!wa.IsLeaf || !wb.IsLeaf)
                {
                    diff = $"not mapped (generated {Describe(wa)}, interpreted {Describe(wb)})";
                }
                else if (wa.Level != wb.Level || wa.Entry != wb.Entry || wa.TablePfn != wb.TablePfn || wa.Index != wb.Index)
                {
                    diff = $"walks end differently: generated {Describe(wa)}, interpreted {Describe(wb)}";
                }
                else
                {
                    ulong offset = (va & (TArch.LevelSize(wa.Level) - 1)) >> TArch.PageShift;
                    ulong fa = TArch.PfnOf(wa.Level, wa.Entry) + offset, fb = walker.LeafPfn(wb.Level, wb.Entry) + offset;
                    bool wra = TArch.IsWritable(wa.Entry), wrb = walker.IsWritable(wb.Entry);
                    if (fa != fb || wra != wrb)
                    {
                        diff = $"translations differ: generated frame 0x{fa:x} {(wra ? "rw" : "ro")}, interpreted frame 0x{fb:x} {(wrb ? "rw" : "ro")} ({Describe(wa)})";
                    }
                }

                if (diff is not null)
                {
                    problems.Add($"vmemmap 0x{va:x} (struct pages of pfn 0x{(va - TArch.VmemmapStart) / (ulong)TArch.StructPageBytes:x}..): {diff}");
                    if (++reported == 8)
                    {
                        problems.Add("(more translation differences not shown)");
                        return;
                    }
                }

                va = wa.IsLeaf && wb.IsLeaf && wa.Level == wb.Level ? (va | (TArch.LevelSize(wa.Level) - 1)) + 1 : va + page;
            }
        }

        private static string Describe(WalkResult w) =>
            $"level {w.Level} table 0x{w.TablePfn:x}[{w.Index}] entry 0x{w.Entry:x16}{(w.IsLeaf ? " leaf" : " fault")}";

        private static string Trim(string s) => s.Length <= 600 ? s : s[..600] + " ...";

        private void Fail(Sequence? sequence, string when, List<string> problems)
        {
            var sb = new StringBuilder();
            sb.Append(CultureInfo.InvariantCulture, $"{TArch.Name} {plan.Policy.Name}: {when}: {problems.Count} check(s) failed:\n");
            foreach (string p in problems.Take(20))
            {
                sb.Append("  - ").Append(p).Append('\n');
            }

            sb.Append("operations run (generated machine's view):\n  ").Append(string.Join("\n  ", _transcript)).Append('\n');
            if (sequence is not null)
            {
                sb.Append("the whole sequence: ").Append(sequence).Append('\n');
            }

            throw new AssertFailedException(sb.ToString());
        }
    }
}
