using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Vmemmap;

namespace Hvo;

/// <summary>
/// A simulated machine of one architecture: physical memory with an owner for every frame, the
/// boot allocator and the buddy allocator, the kernel page table over the vmemmap, the MMU with
/// a TLB per CPU, and the checkers. <see cref="Boot"/> does what the kernel does at boot, in order.
/// </summary>
public sealed partial class Machine<TArch> : IDisposable where TArch : struct, IPagingArch
{
    private (ulong Start, ulong End)[] _reservedAtBoot = [];
    private readonly List<string> _log = [];
    private readonly System.Threading.Lock _logLock = new();
    private readonly TableFrames _tableFrames;
    private int _defaultCpu;

    private Machine(MachineConfig config)
    {
        ulong frames = config.MemoryBytes >> TArch.PageShift;
        if (config.MemoryBytes % TArch.PageSize != 0 || frames == 0 || config.HotplugBytes % TArch.PageSize != 0)
        {
            throw new ArgumentException($"memory must be a positive multiple of the {TArch.PageSize}-byte page", nameof(config));
        }

        ulong ramBase = config.RamBaseFor(TArch.Info);
        if (config.RamBaseProblem(TArch.Info) is { } where)
        {
            throw new ArgumentException(where, nameof(config));
        }

        // The machine's physical memory: the boot memory (with the firmware's holes in it), then what
        // memory hotplug may add above it.
        MachineLayout layout = MachineLayout.For(TArch.Info, config.MemoryBytes, Math.Max(1, config.Nodes), ramBase);
        frames = layout.Frames;
        ulong physical = frames + (config.HotplugBytes >> TArch.PageShift);
        ulong describable = TArch.Info.DescribableBytes(ramBase) >> TArch.PageShift;
        if (physical > describable || physical < frames)
        {
            throw new ArgumentException($"{TArch.Name}'s vmemmap describes at most {describable} frames from 0x{ramBase:x}; {config.MemoryBytes + config.HotplugBytes} bytes need {physical}", nameof(config));
        }

        if (config.Nodes < 1 || config.Cpus < 1)
        {
            throw new ArgumentException("a machine has at least one node and one CPU", nameof(config));
        }

        if (config.EntryWriterProblem(TArch.Info) is { } problem)
        {
            throw new ArgumentException(problem, nameof(config));
        }

        Config = config;
        Layout = layout;
        Frames = new FrameStore(physical, TArch.PageShift, Layout.FirstPfn, TArch.MaxTableEntries);
        Owners = new FrameOwnerTable(physical, FrameOwner.Free, Layout.FirstPfn);
        if (physical > frames)
        {
            Owners.Set(Layout.EndPfn, physical - frames, FrameOwner.Absent); // not present until hot-added
        }

        Memblock = new BootAllocator(Layout, Owners);
        Faults = new FaultInjection();
        _tableFrames = new TableFrames(this);

        // The kernel's vmemmap (pfn_to_page): VMEMMAP_START less the first RAM pfn's struct pages where
        // the spec offsets the vmemmap by it (RISC-V phys_ram_base, arm64 memstart_addr); it wraps
        // below VMEMMAP_START then, as the kernel's pointer does, and only RAM's struct pages are used.
        Vmemmap = TArch.VmemmapStart - (TArch.Info.VmemmapFirstPfn(ramBase) * (ulong)TArch.StructPageBytes);
        BootVmemmap = new BootVmemmap<TArch>(Owners, StructPageOriginOf, Vmemmap);
        Compounds = new CompoundPages<TArch>(this);
        Rcu = new Lib.Rcu(config.Cpus);
    }

    private long _memmapNotInitialized;

    /// <summary>
    /// Struct pages memmap_init initialized at boot: one per frame, less those a later boot stage
    /// said were never to be initialized (<see cref="MemmapNeverInitialized"/>).
    /// </summary>
    public ulong StructPagesInitializedAtBoot => Layout.RamFrames - (ulong)System.Threading.Interlocked.Read(ref _memmapNotInitialized);

    /// <summary>
    /// HUGE_BOOTMEM_HVO (v6.15): the struct pages of <paramref name="count"/> frames live in vmemmap that
    /// was optimized as it was populated, so memmap_init never initializes them (they read as the
    /// shared tail page does).
    /// </summary>
    public void MemmapNeverInitialized(ulong count) => System.Threading.Interlocked.Add(ref _memmapNotInitialized, (long)count);

    /// <summary>RCU over the machine's CPUs.</summary>
    public Lib.Rcu Rcu { get; }

    /// <summary>printk: a line for the kernel log (what dmesg shows), from any CPU.</summary>
    public void Log(string line)
    {
        lock (_logLock)
        {
            _log.Add(line);
        }
    }

    /// <summary>The kernel log's lines the machine printed, in order.</summary>
    public IReadOnlyList<string> KernelLog
    {
        get
        {
            lock (_logLock)
            {
                return [.. _log];
            }
        }
    }

    public MachineConfig Config { get; }

    /// <summary>The boot memory: its frames, nodes and zones.</summary>
    public MachineLayout Layout { get; }

    /// <summary>Every frame of physical memory, from <see cref="MachineLayout.FirstPfn"/>: the boot memory's, then what memory hotplug may add (<see cref="MachineConfig.HotplugBytes"/>).</summary>
    public ulong PhysicalFrames => Owners.Frames;

    /// <summary>One past the last frame of physical memory (boot memory and what memory hotplug may add).</summary>
    public ulong PhysicalEndPfn => Layout.FirstPfn + PhysicalFrames;

    /// <summary>Memory blocks, and adding, onlining and offlining them.</summary>
    public Memory.Hotplug.MemoryHotplug<TArch> Hotplug { get; private set; } = null!;

    /// <summary>pfn_to_nid: the boot layout's node, or the node its memory block was added on.</summary>
    public int NodeOf(ulong pfn) =>
        pfn < Layout.EndPfn ? Layout.NodeOf(pfn) : Hotplug?.BlockOf(pfn) is { Node: >= 0 } b ? b.Node : 0;

    /// <summary>page_zonenum: the zone its memory block was last onlined into, else the boot layout's.</summary>
    public int ZoneOf(ulong pfn) => Pages?.ZoneIndexOf(pfn) ?? Layout.ZoneOf(pfn);

    public FrameStore Frames { get; }

    public FrameOwnerTable Owners { get; }

    /// <summary>memblock: the boot allocator.</summary>
    public BootAllocator Memblock { get; }

    /// <summary>The buddy allocator, once boot handed memory to it (memblock_free_all).</summary>
    public PageAllocator Pages { get; private set; } = null!;

    /// <summary>fail_page_alloc.</summary>
    public FaultInjection Faults { get; }

    /// <summary>init_mm's page table (the vmemmap part of it).</summary>
    public KernelPageTable<TArch> PageTable { get; private set; } = null!;

    public Mmu<TArch> Mmu { get; private set; } = null!;

    public BootVmemmap<TArch> BootVmemmap { get; }

    /// <summary>Huge pages prepared as compound pages: what their deferred struct pages hold.</summary>
    public CompoundPages<TArch> Compounds { get; }

    /// <summary>free_pages_prepare's struct-page checks, which the page allocator runs on every compound page it is given back (bad_page's reports and leaks).</summary>
    public FreePageChecks<TArch> FreeChecks { get; private set; } = null!;

    public ViolationLog Violations { get; } = new();

    public BreakBeforeMakeChecker<TArch>? BreakBeforeMake { get; private set; }

    public ReverseMap<TArch>? ReverseMap { get; private set; }

    /// <summary>
    /// The CPU doing kernel work now (smp_processor_id): split tables come from its node
    /// (docs/ARCHITECTURE.md §7.3). A thread that entered a CPU with <see cref="RunOnCpu"/> sees that CPU (and
    /// setting this moves it); every other thread shares one machine-wide value.
    /// </summary>
    public int CurrentCpu
    {
        get => Mmu is { } mmu && mmu.TryGetThreadCpu(out int cpu) ? cpu : _defaultCpu;
        set
        {
            if (Mmu is { } mmu && mmu.TryGetThreadCpu(out _))
            {
                mmu.MoveThreadCpu(value);
            }
            else
            {
                _defaultCpu = value;
            }
        }
    }

    /// <summary>PAGE_POISON: what a freed vmemmap frame holds under <see cref="MachineConfig.PagePoisoning"/>.</summary>
    public const byte PagePoison = 0xaa;

    public ulong PageSize => TArch.PageSize;

    /// <summary>MemTotal: pages the page allocator manages.</summary>
    public ulong MemTotalBytes => (ulong)Pages.ManagedPages << TArch.PageShift;

    /// <summary>MemFree: pages in the buddy allocator's free lists.</summary>
    public ulong MemFreeBytes => (ulong)Pages.NrFreePages << TArch.PageShift;

    public int NodeOfCpu(int cpu) => cpu % Layout.Nodes;

    /// <summary>
    /// Run the calling thread as CPU <paramref name="cpu"/> until the scope is disposed: its
    /// <see cref="CurrentCpu"/>, its TLB for the kernel work it does. Several threads, each on its
    /// own CPU, may then read through the MMU and optimize or restore different huge pages at once.
    /// </summary>
    public Mmu<TArch>.CpuScope RunOnCpu(int cpu) => Mmu.RunOn(cpu);

    /// <summary>
    /// The kernel's <c>vmemmap</c>: where the struct page of pfn 0 would be. VMEMMAP_START, less the
    /// first RAM pfn's struct pages on a spec with vmemmap.offsetByRamBase.
    /// </summary>
    public ulong Vmemmap { get; }

    /// <summary>Where the struct page of <paramref name="pfn"/> lives (pfn_to_page): vmemmap + pfn * sizeof(struct page).</summary>
    public ulong StructPageAddress(ulong pfn) => Vmemmap + (pfn * (ulong)TArch.StructPageBytes);

    /// <summary>Boot a machine: memblock reservations, the kernel page table, vmemmap_populate, memblock_free_all.</summary>
    /// <param name="config">The machine.</param>
    /// <param name="beforeMemblockFreeAll">
    /// Allocations later boot stages make from memblock once the vmemmap is populated and before
    /// memblock_free_all hands the rest to the page allocator (hugepages_setup's gigantic pages).
    /// </param>
    public static Machine<TArch> Boot(MachineConfig config, Action<BootAllocator>? beforeMemblockFreeAll = null)
    {
        var m = new Machine<TArch>(config);
        try
        {
            m.BootSequence(beforeMemblockFreeAll);
            return m;
        }
        catch
        {
            m.Dispose();
            throw;
        }
    }

    public void Dispose() => Frames.Dispose();

    /// <summary>
    /// Free a frame that held vmemmap or page-table contents. In strict mode, first check that no
    /// page-table entry and no TLB can still reach it (docs/ARCHITECTURE.md §8: no frame is freed while a
    /// valid translation still points at it).
    /// </summary>
    public void CheckFrameUnreachable(ulong pfn, string what)
    {
        if (!Config.Strict)
        {
            return;
        }

        if (Mmu.TlbReaches(pfn, out int cpu, out ulong va))
        {
            Violations.Add(new Violation(ViolationKind.FreedWhileInTlb, va, $"{what}: frame 0x{pfn:x} freed while CPU {cpu}'s TLB still maps it (freed before the flush)"));
        }

        int mappings = ReverseMap!.MappingsOf(pfn);
        if (mappings > 0)
        {
            Violations.Add(new Violation(ViolationKind.FreedWhileMapped, pfn << TArch.PageShift, $"{what}: frame 0x{pfn:x} freed while {mappings} page-table entries map it"));
        }
    }

    /// <summary>flush_tlb_all: every CPU's TLB, broadcast.</summary>
    public void FlushTlbAll()
    {
        Mmu.FlushAll();
        BreakBeforeMake?.Flushed(0, ulong.MaxValue);
    }

    /// <summary>
    /// Give a vmemmap frame back: free_bootmem_page for one memblock gave at boot (it joins the
    /// page allocator, MemTotal rises), __free_page for one the page allocator gave. Its bytes go,
    /// or are poisoned (<see cref="MachineConfig.PagePoisoning"/>).
    /// </summary>
    public void FreeVmemmapFrame(ulong pfn) => FreeVmemmapFrames(pfn, 1);

    /// <summary>
    /// <see cref="FreeVmemmapFrame"/> for each of the frames [<paramref name="pfn"/>, +<paramref name="count"/>),
    /// in order. Consecutive frames of one owner (the page allocator's, or memblock's boot vmemmap)
    /// lose their deferred copies and go back one run at a time (one hold of each lock;
    /// free_vmemmap_page_list's frees in the same order); a frame refused throws with the frames
    /// before it freed (the rest of its run already checked, poisoned or discarded and without
    /// deferred copies, unfreed: a refusal is a bug in the caller, not a path the kernel takes).
    /// </summary>
    public void FreeVmemmapFrames(ulong pfn, ulong count)
    {
        // Frames checked and discarded, not yet given back: a run of one owner (boot or runtime vmemmap).
        ulong run = pfn, runFrames = 0;
        FrameOwner runOwner = FrameOwner.RuntimeVmemmap;
        try
        {
            for (ulong end = pfn + count; pfn < end; pfn++)
            {
                FrameOwner owner = PrepareVmemmapFrameFree(pfn);
                if (runFrames > 0 && owner != runOwner)
                {
                    (ulong from, ulong frames) = (run, runFrames);
                    runFrames = 0;
                    GiveBackVmemmap(from, frames, runOwner);
                }

                (run, runOwner) = runFrames == 0 ? (pfn, owner) : (run, runOwner);
                runFrames++;
            }
        }
        finally
        {
            if (runFrames > 0)
            {
                GiveBackVmemmap(run, runFrames, runOwner);
            }
        }
    }

    /// <summary>
    /// <see cref="FreeVmemmapFrame"/> for each of <paramref name="frames"/>, in order, in any order
    /// of pfns (a restore's frames come off the per-CPU list newest first, so the next optimize
    /// frees them descending, one run of one frame each): the page allocator's frames in a row go
    /// back under one hold of each lock, as <see cref="FreeVmemmapFrames(ulong, ulong)"/> gives back
    /// a run; a frame refused throws with the frames before it freed (the frames after it in its
    /// run were already checked, poisoned or discarded and lost their deferred copies, unfreed: a
    /// refusal is a bug in the caller, which the tests catch, not a path the kernel takes).
    /// </summary>
    public void FreeVmemmapFrames(ReadOnlySpan<ulong> frames)
    {
        int first = 0, runtime = 0; // frames[first..+runtime): runtime frames checked and discarded, not yet given back
        try
        {
            for (int i = 0; i < frames.Length; i++)
            {
                ulong pfn = frames[i];
                if (PrepareVmemmapFrameFree(pfn) == FrameOwner.RuntimeVmemmap)
                {
                    first = runtime == 0 ? i : first;
                    runtime++;
                    continue;
                }

                if (runtime > 0)
                {
                    int n = runtime;
                    runtime = 0;
                    GiveBackRuntimeVmemmap(frames.Slice(first, n));
                }

                BootVmemmap.ForgetCopy(pfn);
                Pages.FreeReservedPage(pfn, FrameOwner.BootVmemmap);
            }
        }
        finally
        {
            if (runtime > 0)
            {
                GiveBackRuntimeVmemmap(frames.Slice(first, runtime));
            }
        }
    }

    private void GiveBackRuntimeVmemmap(ReadOnlySpan<ulong> frames)
    {
        BootVmemmap.ForgetCopies(frames);
        Pages.FreeOrder0Pages(frames, FrameOwner.RuntimeVmemmap);
    }

    // A run's deferred copies forgotten, then its frames freed in order: __free_page for runtime
    // frames, free_bootmem_page (free_reserved_page) for boot ones.
    private void GiveBackVmemmap(ulong pfn, ulong count, FrameOwner owner)
    {
        BootVmemmap.ForgetCopies(pfn, count);
        if (owner == FrameOwner.RuntimeVmemmap)
        {
            Pages.FreeOrder0Pages(pfn, count, owner);
        }
        else
        {
            Pages.FreeReservedPages(pfn, count, owner);
        }
    }

    // What free_vmemmap_page_list does to a frame before the page allocator takes it, but forgetting its deferred copy: its owner.
    private FrameOwner PrepareVmemmapFrameFree(ulong pfn)
    {
        if (Hotplug.IsSelfHostedVmemmap(pfn))
        {
            throw new InvalidOperationException($"frame 0x{pfn:x} holds its own memory block's struct pages (memmap_on_memory): it is the block's, not the page allocator's");
        }

        CheckFrameUnreachable(pfn, "free_vmemmap_page");
        FrameOwner owner = Owners[pfn];
        if (Config.PagePoisoning ?? Config.Strict)
        {
            // kernel_poison_pages: a CPU still reading it through a stale translation sees 0xaa, not struct pages.
            Frames.Write(pfn).Fill(PagePoison);
        }
        else
        {
            Frames.Discard(pfn);
        }

        if (owner is not (FrameOwner.BootVmemmap or FrameOwner.RuntimeVmemmap))
        {
            BootVmemmap.ForgetCopy(pfn);
            throw new InvalidOperationException($"frame 0x{pfn:x} is {owner}, not a vmemmap frame");
        }

        return owner; // its deferred copy is forgotten by the caller, with the others of its run
    }

    /// <summary>
    /// copy_page: the contents of frame <paramref name="from"/> into <paramref name="to"/>, which is
    /// about to be mapped at vmemmap address <paramref name="targetVa"/>; with
    /// <paramref name="resetStructPages"/> &gt; 0, reset_struct_pages after it (the first that many
    /// struct pages of the copy become copies of the next one). A runtime vmemmap frame whose
    /// resulting bytes are those the struct pages at <paramref name="targetVa"/> hold anyway (plain
    /// tails copied over plain tails, a head page copied to where it is, a copied head page once
    /// reset) stays deferred and costs no host memory: it holds what the vmemmap at
    /// <paramref name="targetVa"/> holds, and follows it as a boot frame does when the pages there
    /// are later prepared or destroyed. Anything else is written byte for byte (6.12.114's restore
    /// of an unreset head page into a tail, a struct page somebody changed).
    /// </summary>
    /// <remarks>
    /// Deferring to the source's address instead was wrong: once the huge page was destroyed and
    /// another prepared over part of it, the copy showed the struct pages at the old reuse
    /// address rather than its own (a head read as a plain page, HPageVmemmapOptimized lost).
    /// The comparison costs two page-sized fills in per-thread buffers and allocates nothing; it
    /// is what keeps host memory flat over grow/shrink cycles (README, Bench).
    /// </remarks>
    /// <param name="from">The frame copied.</param>
    /// <param name="to">The frame written.</param>
    /// <param name="targetVa">Where <paramref name="to"/> is about to be mapped.</param>
    /// <param name="resetStructPages">reset_struct_pages' count after the copy; 0: none.</param>
    /// <param name="sameAsLast">
    /// This thread's previous call copied the same <paramref name="from"/> with the same reset, and
    /// nothing was written since (one restore walk, whose every PTE copies the reuse page): its
    /// copy is used again rather than produced and reset once per PTE.
    /// </param>
    public void CopyFrame(ulong from, ulong to, ulong targetVa, int resetStructPages = 0, bool sameAsLast = false)
    {
        CopyState st = CopyState.ForThread((int)TArch.PageSize);
        bool runtimeVmemmap = Owners[to] == FrameOwner.RuntimeVmemmap;

        // The same source as this thread's last call, nothing written since: what it found about the
        // source (deferred, and where) holds still, and so does its copy.
        bool again = sameAsLast && st.Holds && st.From == from && st.Reset == resetStructPages;
        ulong fromVa = st.FromVa;
        bool fromDeferred = again ? st.FromDeferred : !Frames.IsMaterialized(from) && BootVmemmap.TryGetVirtualAddress(from, out fromVa);
        if (runtimeVmemmap && resetStructPages == 0 && fromDeferred && ((fromVa ^ targetVa) & ~(TArch.PageSize - 1)) == 0)
        {
            // A deferred page copied to where it is (v6.2's head copy): nothing to compare.
            st.Holds = false;
            BootVmemmap.AddDeferredCopy(to, targetVa);
            Frames.Discard(to);
            return;
        }

        int size = (int)TArch.PageSize;
        Span<byte> copy = st.Copy.AsSpan(0, size);
        if (!again)
        {
            // The copy is produced when first needed: a deferred page of plain tails copied over
            // plain tails of the same compound page needs no bytes at all.
            (st.Holds, st.From, st.Reset, st.Filled, st.FromDeferred, st.FromVa) = (true, from, resetStructPages, false, fromDeferred, fromVa);
            st.ComparedTails = null;
            st.CopiedTails = runtimeVmemmap && fromDeferred && BootVmemmap.TryGetPlainTails(fromVa, resetStructPages, out PlainTails copied) ? copied : null;
        }

        if (runtimeVmemmap)
        {
            ulong targetPage = targetVa & ~(TArch.PageSize - 1);
            bool same;
            bool plain = BootVmemmap.TryGetPlainTails(targetPage, 0, out PlainTails tails);
            if (plain && st.CopiedTails == tails)
            {
                same = true; // the same plain tails of the same compound page: the same bytes
            }
            else if (plain && st.ComparedTails == tails)
            {
                // The same copy against the same plain tails as the last call (a restore walk's every
                // tail PTE): the same answer, without producing and comparing the page again.
                same = st.ComparedSame;
            }
            else
            {
                // What the target holds: plain tails depend only on what names them, so the page
                // produced for the same names last time (this walk or an earlier one) serves again.
                Span<byte> produced = st.Produced.AsSpan(0, size);
                if (!plain || st.ProducedTails != tails)
                {
                    BootVmemmap.FillStructPages(targetPage, produced);
                    st.ProducedTails = plain ? tails : null;
                }

                same = st.Filled || !plain ? SameCopy(st, copy, produced, from, resetStructPages) : SameAsPlainTails(from, resetStructPages, produced);
                (st.ComparedTails, st.ComparedSame) = (plain ? tails : null, same);
            }

            if (same)
            {
                // Not mapped yet: nobody reads it between forgetting its bytes and deferring it.
                BootVmemmap.AddDeferredCopy(to, targetVa);
                Frames.Discard(to);
                return;
            }
        }

        FillCopy(st, copy, from, resetStructPages);
        BootVmemmap.ForgetCopy(to);
        copy.CopyTo(Frames.Write(to));
    }

    private bool SameCopy(CopyState st, Span<byte> copy, ReadOnlySpan<byte> produced, ulong from, int resetStructPages)
    {
        FillCopy(st, copy, from, resetStructPages);
        return copy.SequenceEqual(produced);
    }

    // Whether the copy of `from`, reset, would be `plainTails` (a page of identical records), read
    // from the frame itself: from the reset's record on, the copy's records are the frame's, and
    // the ones before it are copies of that record.
    private bool SameAsPlainTails(ulong from, int resetStructPages, ReadOnlySpan<byte> plainTails)
    {
        int size = TArch.StructPageBytes;
        int reset = resetStructPages * size;
        ReadOnlySpan<byte> source = Mmu.FrameContents(from);
        return source[reset..].SequenceEqual(plainTails[reset..]) && (reset == 0 || source.Slice(reset, size).SequenceEqual(plainTails[..size]));
    }

    // The copy of `from`, reset, into this thread's buffer, unless it holds it already.
    private void FillCopy(CopyState st, Span<byte> copy, ulong from, int resetStructPages)
    {
        if (st.Filled)
        {
            return;
        }

        Mmu.FrameContents(from).CopyTo(copy);
        if (resetStructPages > 0)
        {
            ResetCopiedHead(copy, resetStructPages);
        }

        st.Filled = true;
    }

    /// <summary>
    /// reset_struct_pages: a copy of the head vmemmap page starts with the head and the first
    /// tails; in a tail vmemmap page those slots are plain tails, so copy a later tail over them.
    /// </summary>
    private static void ResetCopiedHead(Span<byte> page, int nrResetStructPage)
    {
        int size = TArch.StructPageBytes;
        ReadOnlySpan<byte> from = page.Slice(nrResetStructPage * size, size);
        for (int i = 0; i < nrResetStructPage; i++)
        {
            from.CopyTo(page.Slice(i * size, size));
        }
    }

    /// <summary>
    /// This thread's state for <see cref="CopyFrame"/>, one object read once a call: its two page
    /// buffers (the copy, and what the target would hold) and what they hold.
    /// </summary>
    private sealed class CopyState
    {
        [ThreadStatic]
        private static CopyState? t_state;

        public byte[] Copy = [];
        public byte[] Produced = [];

        // What Copy holds: the copy of which frame, reset how (for CopyFrame's sameAsLast); whether
        // that frame was deferred, and the vmemmap address it held then.
        public bool Holds;
        public ulong From;
        public int Reset;
        public bool FromDeferred;
        public ulong FromVa;

        // Whether Copy holds the copy yet; the plain tails the copy is made of (null: not only
        // plain tails of one compound page, or unknown); what it was last compared with (plain tails,
        // else null), and whether it was the same.
        public bool Filled;
        public PlainTails? CopiedTails;
        public PlainTails? ComparedTails;
        public bool ComparedSame;

        // The plain tails Produced holds (null: something else, or nothing yet).
        public PlainTails? ProducedTails;

        public static CopyState ForThread(int size)
        {
            CopyState st = t_state ??= new CopyState();
            if (st.Copy.Length < size)
            {
                st.Copy = new byte[size];
            }

            if (st.Produced.Length < size)
            {
                st.Produced = new byte[size];
                st.ProducedTails = null;
            }

            return st;
        }
    }

    /// <summary>
    /// Set or clear <paramref name="flag"/> in the struct page of <paramref name="pfn"/>, through the MMU
    /// on the current CPU (HPageVmemmapOptimized in a head page, say): written if its vmemmap frame
    /// holds bytes; a frame still deferred shows the state its origin gives it when read.
    /// </summary>
    public void SetStructPageFlag(ulong pfn, ulong flag, bool set)
    {
        ulong va = StructPageAddress(pfn);
        if (!TryTranslateKernel(va, out ulong pa))
        {
            throw new InvalidOperationException($"the struct page of pfn 0x{pfn:x} is not mapped");
        }

        if (!Frames.IsMaterialized(pa >> TArch.PageShift))
        {
            return;
        }

        Span<byte> page = stackalloc byte[TArch.StructPageBytes];
        if (Mmu.Read(CurrentCpu, va, page) != AccessFault.None && (WaitOutBreakBeforeMake() || Mmu.Read(CurrentCpu, va, page) != AccessFault.None))
        {
            throw new InvalidOperationException($"the struct page of pfn 0x{pfn:x} is not readable");
        }

        ulong flags = StructPage.Flags(page);
        StructPage.SetFlags(page, set ? flags | flag : flags & ~flag);
        Mmu.Write(CurrentCpu, va, page);
    }

    /// <summary>
    /// The kernel's own translation of <paramref name="va"/>, with its fault handler: an entry found
    /// invalid may be one another CPU broke and has not made yet (a writer that breaks before it
    /// makes, under init_mm.page_table_lock), so the handler waits for the lock and translates again.
    /// False when the address is not mapped even then.
    /// </summary>
    public bool TryTranslateKernel(ulong va, out ulong physicalAddress) =>
        PageTable.TryTranslate(va, out physicalAddress) || (!WaitOutBreakBeforeMake() && PageTable.TryTranslate(va, out physicalAddress));

    /// <summary>Wait until no CPU holds init_mm.page_table_lock (so none is between break and make); always false.</summary>
    private bool WaitOutBreakBeforeMake()
    {
        PageTable.Lock.Enter();
        PageTable.Lock.Exit();
        return false;
    }

    /// <summary>The struct page of <paramref name="pfn"/>, read through the MMU as a CPU would.</summary>
    public AccessFault ReadStructPage(int cpu, ulong pfn, Span<byte> destination) =>
        Mmu.Read(cpu, StructPageAddress(pfn), destination[..TArch.StructPageBytes]);

    /// <summary>The owners of all frames add up to the machine.</summary>
    public bool OwnersAddUp() =>
        Enum.GetValues<FrameOwner>().Sum(o => Owners.Count(o)) == (long)PhysicalFrames;

    private void BootSequence(Action<BootAllocator>? beforeMemblockFreeAll)
    {
        LogMemoryMap();
        // memblock_reserve: firmware at the start of RAM (the BIOS area on x86, OpenSBI on RISC-V) and the kernel image.
        ReserveAtBoot(Layout.FirstPfn, Config.FirmwareReservedBytes >> TArch.PageShift);
        ulong imageStart = Layout.FirstPfn + (Config.KernelImageStart >> TArch.PageShift);
        ReserveAtBoot(imageStart, Math.Min(Config.KernelImageBytes >> TArch.PageShift, Layout.EndPfn - Math.Min(imageStart, Layout.EndPfn)));
        foreach ((ulong start, ulong bytes) in Config.Reserved)
        {
            ulong first = Math.Max(start >> TArch.PageShift, Layout.FirstPfn);
            ulong last = (start + bytes + TArch.PageSize - 1) >> TArch.PageShift;
            for (ulong pfn = first; pfn < last && pfn < Layout.EndPfn; pfn++)
            {
                if (Owners[pfn] == FrameOwner.Free)
                {
                    ReserveAtBoot(pfn, 1);
                }
            }
        }

        ReserveCrashKernel();

        // sparse_init's buffers (sparse_buffer_init), one a node, before any table of the vmemmap:
        // the kernel's top-level table is in its image, its lower tables come as each node is populated.
        (ulong Start, ulong End)[] buffers = [.. Enumerable.Range(0, Layout.Nodes).Select(SparseBuffer)];

        // The kernel page table, its tables from memblock while booting.
        PageTable = new KernelPageTable<TArch>(Frames, _tableFrames) { Fragments = Config.PageTableFragments };
        Mmu = new Mmu<TArch>(PageTable, Config.Cpus, Violations, BootVmemmap) { Strict = Config.Strict, HardwareAccessFlag = Config.HardwareAccessFlag };
        PageTable.Writer = EntryWriter<TArch>.Create(Config.DefaultEntryWriter(TArch.Info), Mmu.SameBytes, Config.AccessFlagRetries, Config.Cpus);
        var observers = new List<IPageTableObserver> { Mmu };
        if (Config.CheckBreakBeforeMake ?? TArch.Replacement != ReplacementRule.Store)
        {
            BreakBeforeMake = new BreakBeforeMakeChecker<TArch>(Violations) { Level = Config.BreakBeforeMakeLevel };
            BreakBeforeMake.Attach(PageTable, Mmu);
            observers.Add(BreakBeforeMake);
        }

        if (Config.Strict)
        {
            ReverseMap = new ReverseMap<TArch>();
            observers.Add(ReverseMap);
        }

        PageTable.Observer = observers.Count == 1 ? Mmu : new ObserverChain([.. observers]);

        for (int node = 0; node < Layout.Nodes; node++)
        {
            PopulateVmemmap(node, buffers[node]);
        }

        // memblock_free_all: what boot did not keep goes to the page allocator.
        _reservedAtBoot = [.. Memblock.ReservedRegions.OrderBy(r => r.Start)];

        // After _reservedAtBoot: what later stages take here is not PG_reserved once they hand it
        // on (gigantic hugepages=: prep_compound_gigantic_folio clears it).
        beforeMemblockFreeAll?.Invoke(Memblock);

        // start_kernel's vfs_caches_init_early, after the command line (and its gigantic pages) and before mm_init.
        AllocateSystemHashes();

        // mm_init's swiotlb_init, after the command line's gigantic pages (hugepages_setup); its
        // buffer stays PG_reserved.
        AllocateSwiotlb();
        if (Swiotlb is { } tlb)
        {
            _reservedAtBoot = [.. _reservedAtBoot.Append(tlb).OrderBy(r => r.Start)];
        }

        Pages = new PageAllocator(Memblock, Faults);
        FreeChecks = new FreePageChecks<TArch>(this);
        Pages.FreeChecks = FreeChecks;
        if (Config.PerCpuPageLists)
        {
            Pages.SetupPerCpuPageset(Config.Cpus); // setup_per_cpu_pageset
        }
        Pages.SetTransparentHugepages(Config.TransparentHugepages); // hugepage_init: start_stop_khugepaged
        _tableFrames.Booted = true;
        AllocateBootKernelMemory();
        Hotplug = new Memory.Hotplug.MemoryHotplug<TArch>(this);
        LogMemoryInfo();
    }

    /// <summary>
    /// The kernel's own allocations while it boots (<see cref="MachineConfig.BootKernelBytes"/>):
    /// GFP_KERNEL order-0 pages on the boot CPU's node, through the per-CPU list like any other (one
    /// order-0 batch, each page as its own call would get it), so the buddy places them by its own
    /// rules. Hardly any pageblock is unmovable yet (the few memblock left partly reserved fill
    /// first), so the next request steals the max-order block at the head of the highest zone's
    /// movable list, the zone's lowest (memblock_free_all frees to the tail in ascending order), and
    /// the rest fill it and the blocks after it: the zone's lowest gigantic-page-sized range holds
    /// kernel memory from boot on, as on a real machine (README, "The kernel's own memory at boot").
    /// The pages are never freed; what does not fit stops there: a machine too small for them boots
    /// with what it has, the request that found nothing counted as one failed allocation (where the
    /// kernel would go on to the OOM killer, or panic this early).
    /// </summary>
    private void AllocateBootKernelMemory()
    {
        int pages = (int)Math.Min(Config.BootKernelBytes >> TArch.PageShift, int.MaxValue);
        BootKernelPages = (ulong)Pages.TryAllocOrder0Pages(NodeOfCpu(0), Gfp.NoWarn, AllocSite.Other, FrameOwner.Buddy, pages, new List<ulong>(pages));
    }

    /// <summary>The pages <see cref="AllocateBootKernelMemory"/> took at boot (the kernel's own, never freed).</summary>
    public ulong BootKernelPages { get; private set; }

    /// <summary>
    /// vmemmap_populate for one node's memory: leaves of the spec's boot level, each a block from
    /// memblock on the node (vmemmap_populate_hugepages), falling back to base pages where no
    /// block can be had (vmemmap_populate_basepages).
    /// </summary>
    private void PopulateVmemmap(int node, (ulong Start, ulong End) sparseBuffer)
    {
        (ulong first, ulong end) = Layout.NodeRange(node);
        if (first == end)
        {
            return;
        }

        int level = Config.VmemmapBlocks ? TArch.VmemmapBootLevel : TArch.LastLevel;
        ulong leaf = TArch.LevelSize(level);
        ulong start = StructPageAddress(first) & ~(leaf - 1);
        ulong stop = (StructPageAddress(end) + leaf - 1) & ~(leaf - 1);
        _tableFrames.BootNode = node;
        ulong frames = leaf >> TArch.PageShift;

        // The node's sparse buffer is handed out in address order (sparse_buffer_alloc); a leaf it
        // cannot hold gets its own block.
        (ulong buffer, ulong bufferEnd) = sparseBuffer;

        for (ulong va = start; va < stop; va += leaf)
        {
            if (!NeedsLeaf(va, leaf, first, end))
            {
                continue; // filled by the node before (vmemmap_verify), or only the firmware's hole (no present section)
            }

            if (buffer < bufferEnd)
            {
                MapBootVmemmap(va, buffer, frames, level);
                buffer += frames;
                continue;
            }

            if (level < TArch.LastLevel && AllocAtBoot(node, frames, frames, FrameOwner.BootVmemmap, out ulong block))
            {
                MapBootVmemmap(va, block, frames, level);
                continue;
            }

            for (ulong page = va; page < va + leaf; page += TArch.PageSize)
            {
                if (PageTable.Walk(page).IsLeaf || OnlyHoles(page, page + TArch.PageSize, first, end))
                {
                    continue;
                }

                if (!AllocAtBoot(node, 1, 1, FrameOwner.BootVmemmap, out ulong pfn))
                {
                    throw new InvalidOperationException($"boot: no memory for the vmemmap at 0x{page:x} on node {node}");
                }

                MapBootVmemmap(page, pfn, 1, TArch.LastLevel);
            }
        }
    }

    /// <summary>
    /// sparse_buffer_init for node <paramref name="node"/>: one block from memblock, aligned to a boot
    /// leaf, for the struct pages of every present section of the node (a leaf the node before
    /// began is that node's), so the vmemmap lies in one run at the top of the node, in address
    /// order. Empty where the spec maps the vmemmap with base pages or memblock has no such run.
    /// </summary>
    private (ulong Start, ulong End) SparseBuffer(int node)
    {
        (ulong first, ulong end) = Layout.NodeRange(node);
        int level = Config.VmemmapBlocks ? TArch.VmemmapBootLevel : TArch.LastLevel;
        if (first == end || level >= TArch.LastLevel)
        {
            return (0, 0);
        }

        ulong leaf = TArch.LevelSize(level);
        ulong frames = leaf >> TArch.PageShift;
        ulong start = StructPageAddress(first) & ~(leaf - 1);
        if (node > 0 && (StructPageAddress(first) & (leaf - 1)) != 0)
        {
            start += leaf; // the node before filled the leaf this node begins in (vmemmap_verify)
        }

        ulong stop = (StructPageAddress(end) + leaf - 1) & ~(leaf - 1);
        ulong leaves = 0;
        for (ulong va = start; va < stop; va += leaf)
        {
            leaves += OnlyHoles(va, va + leaf, first, end) ? 0UL : 1UL;
        }

        _tableFrames.BootNode = node;
        return leaves > 0 && AllocAtBoot(node, leaves * frames, frames, FrameOwner.BootVmemmap, out ulong buffer) ? (buffer, buffer + (leaves * frames)) : (0, 0);
    }

    /// <summary>Whether the struct pages in [<paramref name="va"/>, <paramref name="vaEnd"/>) describe only frames of the firmware's holes: never populated.</summary>
    public bool VmemmapDescribesOnlyHoles(ulong va, ulong vaEnd) => OnlyHoles(va, vaEnd, Layout.FirstPfn, Layout.EndPfn);

    private bool NeedsLeaf(ulong va, ulong leaf, ulong first, ulong end) => !PageTable.Walk(va).IsLeaf && !OnlyHoles(va, va + leaf, first, end);

    /// <summary>Whether the struct pages in [<paramref name="va"/>, <paramref name="vaEnd"/>) describe only frames of the firmware's holes within [<paramref name="first"/>, <paramref name="end"/>).</summary>
    private bool OnlyHoles(ulong va, ulong vaEnd, ulong first, ulong end)
    {
        if (Layout.Holes.Count == 0)
        {
            return false;
        }

        ulong spb = (ulong)TArch.StructPageBytes;
        ulong lo = Math.Max(first, (va - Vmemmap) / spb), hi = Math.Min(end, (vaEnd - Vmemmap + spb - 1) / spb);
        return hi > lo && Layout.HoleFrames(lo, hi) == hi - lo;
    }

    private void MapBootVmemmap(ulong va, ulong pfn, ulong frames, int level)
    {
        if (!PageTable.TryMap(va, pfn, frames << TArch.PageShift, level))
        {
            throw new InvalidOperationException($"boot: no memory for the page tables mapping the vmemmap at 0x{va:x}");
        }

        BootVmemmap.Add(pfn, frames, va);
    }

    private void ReserveAtBoot(ulong pfn, ulong count)
    {
        if (count == 0 || pfn >= Layout.EndPfn)
        {
            return;
        }

        Memblock.Reserve(pfn, Math.Min(count, Layout.EndPfn - pfn), FrameOwner.Reserved);
    }

    private bool AllocAtBoot(int node, ulong frames, ulong align, FrameOwner owner, out ulong pfn) =>
        Memblock.TryAlloc(node, frames, align, owner, out pfn);

    /// <summary>What the struct page of <paramref name="pfn"/> holds while nobody wrote it.</summary>
    private StructPageOrigin StructPageOriginOf(ulong pfn)
    {
        // A frame of a compound page is not PageReserved: the boot reservations are searched only for one that is not.
        var boot = new StructPageOrigin(NodeOf(pfn), ZoneOf(pfn), Reserved: false);
        return Compounds.TryOrigin(boot, pfn, out StructPageOrigin compound) ? compound : boot with { Reserved = IsReservedAtBoot(pfn) };
    }

    private bool IsReservedAtBoot(ulong pfn)
    {
        (ulong Start, ulong End)[] ranges = _reservedAtBoot;
        int lo = 0, hi = ranges.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (pfn < ranges[mid].Start)
            {
                hi = mid - 1;
            }
            else if (pfn >= ranges[mid].End)
            {
                lo = mid + 1;
            }
            else
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Page-table frames: from memblock on the node being populated while booting, then from the
    /// page allocator on the working CPU's node (pte_alloc_one_kernel), where fault injection can
    /// fail them.
    /// </summary>
    private sealed class TableFrames(Machine<TArch> machine) : ITableFrameSource
    {
        public bool Booted { get; set; }

        public int BootNode { get; set; }

        public bool TryAllocate(int level, out ulong pfn)
        {
            // A table of more than a page is an aligned block of them (s390 crst_table_alloc: CRST_ALLOC_ORDER).
            int order = TArch.TableOrder(level);
            if (!Booted)
            {
                return machine.AllocAtBoot(BootNode, 1UL << order, 1UL << order, FrameOwner.PageTable, out pfn);
            }

            return machine.Pages.TryAllocPages(machine.NodeOfCpu(machine.CurrentCpu), order, Gfp.Kernel, AllocSite.PteTable, FrameOwner.PageTable, out pfn);
        }

        public void Free(int level, ulong pfn)
        {
            int order = TArch.TableOrder(level);
            for (ulong i = 0; i < 1UL << order; i++)
            {
                machine.CheckFrameUnreachable(pfn + i, "pte_free_kernel");
            }

            machine.Pages.FreePages(pfn, order, FrameOwner.PageTable);
        }
    }
}
