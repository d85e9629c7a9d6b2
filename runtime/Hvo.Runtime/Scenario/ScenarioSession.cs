using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Scenario;

/// <summary>
/// How a script runs: the HVO policy (a boot line cannot name it), the memory without <c>mem=</c>,
/// the transcript, fail_page_alloc's seed and this model's site filter, and for a driver that
/// watches the run (<c>hvo simulate</c>), a pending signal and the progress of the pool's growth.
/// </summary>
public sealed record ScenarioOptions
{
    public HvoPolicy Policy { get; init; } = HvoPolicy.Newest;

    /// <summary>
    /// CONFIG_HUGETLB_PAGE_OPTIMIZE_VMEMMAP_DEFAULT_ON: whether HVO is on when the boot line has no
    /// hugetlb_free_vmemmap= (the mainline default is on; Debian builds it off). A script's
    /// <c>config</c> line overrides it.
    /// </summary>
    public bool HvoDefaultOn { get; init; } = true;

    /// <summary>The machine's memory when the boot line has no <c>mem=</c>.</summary>
    public ulong DefaultMemoryBytes { get; init; } = MachineConfig.DefaultMemoryBytes;

    /// <summary>Print each command as <c>$ command</c>, and the comments and blank lines, before its output.</summary>
    public bool EchoCommands { get; init; } = true;

    /// <summary>The largest <c>mem=</c> accepted: a bound for harnesses that run scripts they did not write.</summary>
    public ulong MaxMemoryBytes { get; init; } = ulong.MaxValue;

    /// <summary>Boot the machine in strict mode (<see cref="MachineConfig.Strict"/>): slower, for tests.</summary>
    public bool Strict { get; init; }

    /// <summary>Seed of fail_page_alloc's draws: the same seed replays the same failures.</summary>
    public ulong FaultSeed { get; init; }

    /// <summary>
    /// This model's filter on fail_page_alloc (the kernel has none): only allocations from these
    /// sites may fail, among those ignore-gfp-wait and ignore-gfp-highmem let through; null for all.
    /// </summary>
    public IReadOnlySet<AllocSite>? FaultSites { get; init; }

    /// <summary>
    /// A pending signal (Ctrl-C): a write of nr_hugepages stops growing as set_max_huge_pages bails
    /// for signal_pending (the pages allocated are still optimized and added), and no command runs
    /// after it, as the interrupted shell runs none.
    /// </summary>
    public CancellationToken Signal { get; init; }

    /// <summary>Told the fresh huge pages the writes of nr_hugepages have allocated since the script started, after each one.</summary>
    public Action<ulong>? Progress { get; init; }

    /// <summary>
    /// Told HVO's counters once the machine has booted, for a driver that shows the optimization's
    /// progress from another thread (the counters are read atomically).
    /// </summary>
    public Action<HvoCounters>? Booted { get; init; }

    /// <summary>Where the shell's hints go ("did you mean ...?" for a missing path): the command's standard error, not the transcript.</summary>
    public TextWriter Diagnostics { get; init; } = TextWriter.Null;

    /// <summary>
    /// The kernel's arch code for changing a live page-table entry (<see cref="MachineConfig.EntryWriter"/>);
    /// null for the machine's own choice. Like the CPUs below, not something a boot line names.
    /// </summary>
    public EntryWriterKind? EntryWriter { get; init; }

    /// <summary>The CPUs' FEAT_BBM level (<see cref="MachineConfig.BreakBeforeMakeLevel"/>).</summary>
    public int BbmLevel { get; init; }

    /// <summary>FEAT_HAFDBS: the CPUs set the access flag in hardware (<see cref="MachineConfig.HardwareAccessFlag"/>).</summary>
    public bool HardwareAccessFlag { get; init; }

    /// <summary>When the script is over, scan every struct page of boot memory through the MMU and report the TLB misses (<see cref="Vmemmap.StructPageScan"/>).</summary>
    public bool TlbReach { get; init; }

    /// <summary>Host threads for the boot's parallel work (<see cref="MachineConfig.HostThreads"/>; 0: one per host processor). The results do not depend on it.</summary>
    public int HostThreads { get; init; } = 1;

    /// <summary><paramref name="config"/> with this run's CPUs, entry writer and host threads.</summary>
    public MachineConfig Apply(MachineConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config with { EntryWriter = EntryWriter, BreakBeforeMakeLevel = BbmLevel, HardwareAccessFlag = HardwareAccessFlag, HostThreads = HostThreads };
    }

    /// <summary><paramref name="config"/> with page-table fragments where <see cref="Policy"/>'s kernel version has them on <paramref name="arch"/> (<see cref="HvoPolicy.PageTableFragments"/>).</summary>
    public MachineConfig Apply(MachineConfig config, ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(arch);
        return Apply(config) with { PageTableFragments = Policy.PageTableFragments(arch) };
    }

    /// <summary>
    /// Why this run cannot boot on <paramref name="arch"/>: its entry writer needs what the CPUs or the
    /// spec lack, or its policy was written for another entry writer. Null when it can.
    /// </summary>
    public MachineRefusal? Refusal(ArchInfo arch)
    {
        ArgumentNullException.ThrowIfNull(arch);
        MachineConfig config = Apply(new MachineConfig());
        if (config.EntryWriterProblem(arch) is { } problem)
        {
            return new MachineRefusal(problem, null, NeedsBbmLevel2: config.DefaultEntryWriter(arch) == EntryWriterKind.Bbml2);
        }

        if (Policy.SharedTail && HvoPolicy.SharedTailProblem(arch) is not null)
        {
            return new MachineRefusal(Policy.Refusal(config, arch)!, null, NeedsBbmLevel2: false, ArchRefusesPolicy: true);
        }

        return Policy.Refusal(config, arch) is { } refusal
            ? new MachineRefusal(refusal, Policy.RequiredWriter, NeedsBbmLevel2: Policy.RequiredWriter == EntryWriterKind.Bbml2 && BbmLevel < 2)
            : null;
    }
}

/// <summary>Why a run's machine cannot be booted as asked, and what would let it.</summary>
/// <param name="Reason">What is missing, in words.</param>
/// <param name="NeedsWriter">The entry writer the policy needs, if that is what is missing.</param>
/// <param name="NeedsBbmLevel2">CPUs with FEAT_BBM level 2 are needed too.</param>
/// <param name="ArchRefusesPolicy">The architecture cannot have the policy at all (v7.1's shared tail on a spec that does not allow it): no option helps.</param>
public sealed record MachineRefusal(string Reason, EntryWriterKind? NeedsWriter, bool NeedsBbmLevel2, bool ArchRefusesPolicy = false);

/// <summary>One point of <see cref="ScenarioSession{TArch}.Trace"/>: the pool and HVO's balance after a write to <paramref name="Written"/>, or before the first command (null).</summary>
public readonly record struct TracePoint(string? Written, PoolSample Sample);

/// <summary>A statement of the script as it ran: where, as written, what it printed (commands' messages included) and its exit status.</summary>
public sealed record StatementRun(SourceLocation Location, string Command, string Output, int Status);

/// <summary>
/// A script on one booted machine: the machine from the boot line, its HVO policy and HugeTLB
/// pool (hugetlb_init, boot-time pages included), and the kernel files the commands use.
/// <see cref="Run"/> executes the commands in order and writes the transcript: each command, what
/// <c>cat</c> and <c>echo</c> print, the kernel's boot messages as <c>kernel: ...</c> lines, and the
/// shell's error for a refused open or write, after which the script goes on.
/// </summary>
public sealed class ScenarioSession<TArch> : IDisposable where TArch : struct, IPagingArch
{
    private readonly long _vmemmapFramesAtBoot;
    private readonly long _tableFramesAtBoot;
    private readonly long _buddyFramesAtBoot;
    private readonly ScenarioOptions _options;

    /// <summary>The options the session was booted with.</summary>
    public ScenarioOptions Options => _options;

    private ScenarioSession(Script script, ScenarioOptions options, BootLine boot, Machine<TArch> machine, HugeBootPages bootPages)
    {
        Script = script;
        _options = options;
        BootLine = boot;
        Machine = machine;
        _vmemmapFramesAtBoot = VmemmapFrames(machine);
        _tableFramesAtBoot = machine.Owners.Count(FrameOwner.PageTable);
        _buddyFramesAtBoot = machine.Owners.Count(FrameOwner.Buddy);
        Optimizer = new HvoOptimizer<TArch>(machine, options.Policy, new HvoSwitches(script.HvoDefaultOn ?? options.HvoDefaultOn, boot.FreeVmemmap));
        Pool = new HugeTlbPool<TArch>(machine, Optimizer, bootPages);
        Files = new KernelFiles<TArch>(machine, Pool, Optimizer, boot.CommandLine, options, boot.MemmapOnMemory);
        _bootReport = BootReport.Lines(Pool, Optimizer, boot.HugeTlb);
        Shell = new Shell(new ShellContext(Files, Files, options.Diagnostics, () => KernelLog, path => Sample(path)));
        options.Booted?.Invoke(Optimizer.Total);
    }

    private readonly IReadOnlyList<string> _bootReport;

    /// <summary>
    /// The kernel log so far (what <c>dmesg</c> prints, without timestamps): the boot line's notices,
    /// the HugeTLB command line's warnings and boot-time allocation failures, hugetlb's boot report
    /// in the kernel version's format, then what the machine printed since (an oops, say). The
    /// machine's own boot messages (the e820 map, swiotlb, the memory summary) come first.
    /// </summary>
    public IReadOnlyList<string> KernelLog
    {
        get
        {
            IReadOnlyList<string> machine = Machine.KernelLog;
            int boot = Math.Min(Machine.BootLogLines, machine.Count);
            return [.. machine.Take(boot), .. BootLine.Notices, .. Pool.Log, .. _bootReport, .. machine.Skip(boot)];
        }
    }

    public Script Script { get; }

    public BootLine BootLine { get; }

    public Machine<TArch> Machine { get; }

    public HvoOptimizer<TArch> Optimizer { get; }

    public HugeTlbPool<TArch> Pool { get; }

    public KernelFiles<TArch> Files { get; }

    /// <summary>The shell running the script's commands: its variables, <c>$?</c>, and the commands that failed.</summary>
    public Shell Shell { get; }

    /// <summary>Opens and writes the kernel refused, and files that could not be read: each printed a shell error.</summary>
    public int ShellErrors => Shell.Context.FileErrors;

    /// <summary>The script's exit status, as a shell's: the last command's (0 when none ran).</summary>
    public int ExitStatus => Shell.Status;

    /// <summary>The statements that ran, in order, with what each printed and its status.</summary>
    public IReadOnlyList<StatementRun> Ran => _ran;

    private readonly List<StatementRun> _ran = [];

    /// <summary>A pending signal (<see cref="ScenarioOptions.Signal"/>) cut a write of nr_hugepages short or stopped the script.</summary>
    public bool Interrupted => _stopped || Files.Interrupted;

    /// <summary>Fresh huge pages the writes of nr_hugepages allocated.</summary>
    public ulong PagesAllocated => Files.PagesAllocated;

    private bool _stopped;

    /// <summary>Milliseconds to boot the machine and create the pool.</summary>
    public double BootMs { get; private set; }

    /// <summary>Milliseconds the commands took.</summary>
    public double RunMs { get; private set; }

    /// <summary>
    /// Boot the machine the script's boot line describes on <typeparamref name="TArch"/>. A size
    /// <see cref="MachineSize"/> refuses is a <see cref="ScriptError"/> at its parameter
    /// (<see cref="BootLine.Resolve"/>); anything else the machine cannot boot with (the host
    /// cannot reserve its memory) one at the boot line.
    /// </summary>
    public static ScenarioSession<TArch> Boot(Script script, ScenarioOptions options)
    {
        ArgumentNullException.ThrowIfNull(script);
        ArgumentNullException.ThrowIfNull(options);
        var clock = Stopwatch.StartNew();
        BootLine boot = BootLine.Resolve(script, TArch.Info, options.DefaultMemoryBytes, options.MaxMemoryBytes);
        Machine<TArch> machine;
        HugeBootPages bootPages;
        if (options.Refusal(TArch.Info) is { } refusal)
        {
            throw new ScriptError(script.Boot?.Location ?? new SourceLocation(script.File, 1, 1), refusal.Reason);
        }

        // Where RAM starts (mem=SIZE@START) moves the vmemmap pointer on a spec that offsets it: v7.1's mask needs it aligned.
        if (options.Policy.SharedTail && HvoPolicy.SharedTailProblem(TArch.Info, boot.RamBase) is { } tail)
        {
            throw new ScriptError(script.Boot?.Location ?? new SourceLocation(script.File, 1, 1), $"{options.Policy.Name}'s shared tail page {tail}");
        }

        // memory_hotplug.memmap_on_memory exists where CONFIG_MHP_MEMMAP_ON_MEMORY does (x86-64 here);
        // before v6.0 it gives way to HVO on at boot.
        bool hvoAtBoot = boot.FreeVmemmap ?? script.HvoDefaultOn ?? options.HvoDefaultOn;
        bool memmapOnMemory = TArch.Info.Ptdump == PtdumpFormat.X86 && options.Policy.MemmapOnMemoryInEffect(boot.MemmapOnMemory, hvoAtBoot);
        try
        {
            machine = HugeBootPages.Boot<TArch>(options.Apply(boot.Config(options.Strict, memmapOnMemory), TArch.Info), boot.HugeTlb, out bootPages);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or OutOfMemoryException)
        {
            SourceLocation at = script.Boot?.Location ?? new SourceLocation(script.File, 1, 1);
            string why = e is OutOfMemoryException ? "the host cannot reserve memory for a machine this large" : e.Message;
            throw new ScriptError(at, $"the simulated {TArch.Name} kernel cannot boot with {CmdLine.FormatSize(boot.MemoryBytes)} on {boot.Nodes} node(s): {why}");
        }

        try
        {
            var session = new ScenarioSession<TArch>(script, options, boot, machine, bootPages);
            session.BootMs = clock.Elapsed.TotalMilliseconds;
            return session;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The pool and HVO's balance before the commands and after each <c>echo</c>, in script order:
    /// what a plot of memory saved and page-table cost against the pool size draws, each driver
    /// choosing its points (every write that changed them, or each write of nr_hugepages).
    /// </summary>
    public IReadOnlyList<TracePoint> Trace => _trace;

    private readonly List<TracePoint> _trace = new();

    private void Sample(string? written) => _trace.Add(new TracePoint(written, PoolSample.Of(Pool, Optimizer)));

    /// <summary>Execute every command in order, writing the transcript to <paramref name="output"/>.</summary>
    public void Run(TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var clock = Stopwatch.StartNew();
        bool echo = _options.EchoCommands;
        if (Script.Boot is null)
        {
            WriteKernelLog(output); // booted without a command line: the pool's messages, if any, come first
        }

        Sample(null);
        foreach (ScriptLine line in Script.Lines)
        {
            if (line is Statement && _options.Signal.IsCancellationRequested)
            {
                _stopped = true;
                break;
            }

            if (line is Statement && Shell.Stopped)
            {
                break; // set -e: nothing runs after the failure
            }

            switch (line)
            {
                case BlankLine when echo:
                    output.WriteLine();
                    break;
                case CommentLine c when echo:
                    output.WriteLine(c.Text);
                    break;
                case Statement s:
                    if (echo)
                    {
                        // As an interactive shell shows it: the prompt, and '> ' before each line a loop goes on to.
                        output.WriteLine("$ " + s.Text.Replace("\n", "\n> ", StringComparison.Ordinal));
                    }

                    var printed = new StringWriter(System.Globalization.CultureInfo.InvariantCulture) { NewLine = "\n" };
                    int status = s switch
                    {
                        BootStatement => WriteKernelLog(printed),
                        ConfigStatement => 0, // how the kernel was built: read before boot
                        _ => Shell.Run(s, printed),
                    };
                    output.Write(printed.ToString());
                    _ran.Add(new StatementRun(s.Location, s.Text, printed.ToString(), status));
                    break;
            }
        }

        RunMs = clock.Elapsed.TotalMilliseconds;
    }

    /// <summary>
    /// The machine's invariants after a script, empty when all hold: the owners add up; free frames
    /// are the buddy allocator's; huge page frames are the pool's pages'; vmemmap frames are the
    /// boot ones less what HVO freed plus what it restored; page-table frames are the boot ones plus
    /// the split tables; nothing else was allocated and kept; the pool's per-node counters add up,
    /// and as many pages are optimized as the counters say; no huge page was lost to bad_page (each
    /// one lost is named, with its first wrong struct page).
    /// </summary>
    public IReadOnlyList<string> Invariants()
    {
        var broken = new List<string>();
        void Check(bool ok, string what)
        {
            if (!ok)
            {
                broken.Add(what);
            }
        }

        HvoCounters c = Optimizer.Total;
        FrameOwnerTable owners = Machine.Owners;
        Check(Machine.OwnersAddUp(), "owners add up to the machine");
        Check(owners.Count(FrameOwner.Free) == Machine.Pages.NrFreePages + Machine.Pages.PcpPages, "free frames are the buddy allocator's free pages and its per-CPU lists'");
        ulong hugeFrames = 0;
        long optimized = 0;
        foreach (Hstate<TArch> h in Pool.Hstates)
        {
            hugeFrames += h.NrHugePages * h.Frames;
            optimized += Pool.OptimizedPages(h);
            ulong nr = 0, free = 0, surplus = 0;
            for (int nid = 0; nid < Machine.Layout.Nodes; nid++)
            {
                nr += h.NrHugePagesNode(nid);
                free += h.FreeHugePagesNode(nid);
                surplus += h.SurplusHugePagesNode(nid);
            }

            Check(nr == h.NrHugePages && free == h.FreeHugePages && surplus == h.SurplusHugePages, $"{h.Name}: per-node counters add up");
            Check(h.FreeHugePages <= h.NrHugePages && h.SurplusHugePages <= h.NrHugePages, $"{h.Name}: free and surplus within nr_hugepages");
        }

        Check(owners.Count(FrameOwner.HugePage) == (long)hugeFrames, "huge page frames are the pool's pages'");
        Check(optimized == c.OptimizedPages, "optimized pages are what the counters say");
        long hotplugVmemmap = Machine.Hotplug.VmemmapFrames, hotplugTables = Machine.Hotplug.TableFrames;
        Check(VmemmapFrames(Machine) == _vmemmapFramesAtBoot - c.VmemmapPagesFreed + c.VmemmapPagesRestored + c.SharedTailPages + hotplugVmemmap,
            "vmemmap frames: boot's - freed + restored + shared tails + hot-added memory's (none leaked)");
        Check(owners.Count(FrameOwner.PageTable) == _tableFramesAtBoot + c.PteTableFrames + hotplugTables, "page-table frames: boot's + split tables' (less collapsed ones) + hot-added memory's (none leaked)");
        Check(owners.Count(FrameOwner.Buddy) == _buddyFramesAtBoot, "no other allocation kept");
        broken.AddRange(Machine.FreeChecks.BadPages.Select(bad => bad.ToString())); // pages lost to bad_page, each with its first wrong struct page
        return broken;
    }

    public void Dispose() => Machine.Dispose();

    private static long VmemmapFrames(Machine<TArch> m) => m.Owners.Count(FrameOwner.BootVmemmap) + m.Owners.Count(FrameOwner.RuntimeVmemmap);

    private int WriteKernelLog(TextWriter output)
    {
        foreach (string notice in BootLine.Notices.Concat(Pool.Log))
        {
            output.WriteLine("kernel: " + notice);
        }

        return 0;
    }
}
