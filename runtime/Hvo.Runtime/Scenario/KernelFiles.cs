using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Threading;
using Hvo.HugeTlb;
using Hvo.Lib;
using Hvo.Paging;
using Hvo.Paging.Ptdump;

namespace Hvo.Scenario;

/// <summary>One file of procfs, sysfs or debugfs: what a read shows, and what a write does and returns (null: no such permission).</summary>
public sealed record KernelFile(Func<string>? Read, Func<string, Errno>? Write);

/// <summary>
/// The kernel files a script reads and writes, over one booted machine, its HugeTLB pool and its
/// HVO policy: /proc/meminfo, /proc/sys/vm/*hugepages* and hugetlb_optimize_vmemmap,
/// /sys/kernel/mm/hugepages/hugepages-&lt;N&gt;kB/*, the per-node
/// /sys/devices/system/node/nodeK/{meminfo, hugepages/...}, /proc/buddyinfo, /proc/zoneinfo,
/// /sys/kernel/debug/kernel_page_tables and /sys/kernel/debug/fail_page_alloc/*. Paths resolve as
/// the VFS would (<c>//</c>, <c>.</c>, <c>..</c>); a write returns the errno of the kernel's store
/// function, after doing what the kernel would have done of it. <c>/dev/null</c> is there too, for
/// the <c>&gt; /dev/null</c> of pasted command lines.
/// </summary>
public sealed partial class KernelFiles<TArch> : IShellFiles where TArch : struct, IPagingArch
{
    private const string ProcVm = "/proc/sys/vm/";
    private readonly Dictionary<string, KernelFile> _files = new(StringComparer.Ordinal);
    private readonly HashSet<string> _directories = new(StringComparer.Ordinal) { "/" };
    private readonly Machine<TArch> _machine;
    private readonly HugeTlbPool<TArch> _pool;
    private readonly HvoOptimizer<TArch> _optimizer;

    private readonly CancellationToken _signal;
    private readonly Action<ulong>? _progress;

    /// <summary>
    /// The files of <paramref name="machine"/>, booted with <paramref name="commandLine"/>.
    /// <paramref name="options"/> gives the writer's pending signal and the progress of nr_hugepages
    /// writes, and fail_page_alloc's seed and site filter; <paramref name="memmapOnMemoryRequested"/>
    /// is memory_hotplug.memmap_on_memory as the command line asked for it.
    /// </summary>
    public KernelFiles(Machine<TArch> machine, HugeTlbPool<TArch> pool, HvoOptimizer<TArch> optimizer, string commandLine, ScenarioOptions? options = null, bool memmapOnMemoryRequested = false)
    {
        ArgumentNullException.ThrowIfNull(machine);
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(optimizer);
        options ??= new ScenarioOptions();
        _machine = machine;
        _pool = pool;
        _optimizer = optimizer;
        _signal = options.Signal;
        _progress = options.Progress;

        Add("/dev/null", () => string.Empty, _ => Errno.None);
        Add("/proc/meminfo", () => pool.MemInfo().Format());
        Add("/proc/cmdline", () => commandLine + "\n");
        Add("/proc/buddyinfo", machine.Pages.BuddyInfo);
        Add("/proc/vmstat", VmStat);
        Add("/proc/zoneinfo", machine.Pages.ZoneInfo);
        Add("/proc/iomem", machine.IoMem);
        Add("/proc/pagetypeinfo", machine.Pages.PageTypeInfo);
        Add("/sys/kernel/debug/kernel_page_tables", () => PageTableDump.DumpVmemmap(machine.PageTable));
        if (TArch.Info.Ptdump == PtdumpFormat.X86)
        {
            Add("/sys/kernel/debug/page_tables/kernel", () => PageTableDump.DumpVmemmap(machine.PageTable));
        }

        AddProcSysctls();
        AddVmKnobs();
        AddShm();
        foreach (Hstate<TArch> h in pool.Hstates)
        {
            AddHstate(h);
        }

        for (int nid = 0; nid < machine.Layout.Nodes; nid++)
        {
            AddNode(nid);
        }

        AddFaultInjection(options.FaultSites, options.FaultSeed);
        AddMemoryHotplug(memmapOnMemoryRequested);
    }

    /// <summary>Fresh huge pages the writes of nr_hugepages allocated, all of them together.</summary>
    public ulong PagesAllocated { get; private set; }

    /// <summary>A write of nr_hugepages stopped growing for the pending signal.</summary>
    public bool Interrupted { get; private set; }

    /// <summary>Every file, sorted.</summary>
    public IReadOnlyList<string> Paths => [.. _files.Keys.Order(StringComparer.Ordinal)];

    /// <summary>
    /// Read a file as cat would: its text, or the errno of the open (-ENOENT, -ENOTDIR, -EISDIR,
    /// -EACCES for a write-only file).
    /// </summary>
    public Errno Read(string path, out string text)
    {
        text = string.Empty;
        Errno e = Open(path, out KernelFile? file);
        if (e != Errno.None)
        {
            return e;
        }

        if (file!.Read is null)
        {
            return Errno.EACCES;
        }

        if (ShmUnreadable(path))
        {
            return Errno.EFBIG;
        }

        text = file.Read();
        return Errno.None;
    }

    /// <summary>
    /// Write <paramref name="data"/> as a shell redirection would: open (a new name in an existing
    /// directory: -EACCES, as sysfs and procfs create no files; a read-only file: -EACCES), then
    /// one write(2), whose errno is the store function's.
    /// </summary>
    public Errno Write(string path, string data, out bool failedAtOpen)
    {
        ArgumentNullException.ThrowIfNull(data);
        failedAtOpen = true;
        Errno e = OpenForWrite(path);
        if (e != Errno.None)
        {
            return e;
        }

        failedAtOpen = false;
        Open(path, out KernelFile? file);
        return file!.Write!(data);
    }

    /// <summary>The open of a write: a new name in an existing directory is -EACCES, as sysfs and procfs create no files; so is a read-only file.</summary>
    public Errno OpenForWrite(string path)
    {
        if (Normalize(path, out _) is { } p && ShmName(p) is not null)
        {
            return OpenForWrite(path, append: false);
        }

        Errno e = Open(path, out KernelFile? file);
        if (e == Errno.ENOENT && Parent(path) is { } parent && _directories.Contains(parent))
        {
            return Errno.EACCES;
        }

        return e != Errno.None ? e : file!.Write is null ? Errno.EACCES : Errno.None;
    }

    public ShellFileKind Kind(string path)
    {
        if (KernelFilesPath.Normalize(path) is not { } p)
        {
            return ShellFileKind.None;
        }

        AddMemoryBlockFiles(p);
        return _directories.Contains(p) ? ShellFileKind.Directory
            : _files.ContainsKey(p) || ShmKernelFile(p) is not null ? ShellFileKind.File
            : ShellFileKind.None;
    }

    public IReadOnlyList<string> Children(string directory)
    {
        if (KernelFilesPath.Normalize(directory) is not { } d || !_directories.Contains(d))
        {
            return [];
        }

        if (d == ShmDirectory)
        {
            return Shm.Names;
        }

        _children ??= BuildChildren();
        IReadOnlyList<string> names = _children.TryGetValue(d, out List<string>? known) ? known : [];
        return WithMemoryBlocks(d, names);
    }

    private Dictionary<string, List<string>>? _children;

    private Dictionary<string, List<string>> BuildChildren()
    {
        var children = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (string path in _files.Keys.Concat(_directories))
        {
            if (Parent(path) is { } parent)
            {
                if (!children.TryGetValue(parent, out List<string>? names))
                {
                    children[parent] = names = [];
                }

                names.Add(path[(path.LastIndexOf('/') + 1)..]);
            }
        }

        foreach (List<string> names in children.Values)
        {
            names.Sort(StringComparer.Ordinal);
        }

        return children;
    }

    /// <summary>The path the VFS would resolve: absolute, <c>.</c> and <c>..</c> and repeated slashes gone; null for a relative path.</summary>
    public static string? Normalize(string path, out bool trailingSlash) => KernelFilesPath.Normalize(path, out trailingSlash);

    private Errno Open(string path, out KernelFile? file)
    {
        file = null;
        string? p = Normalize(path, out bool trailingSlash);
        if (p is null)
        {
            return Errno.ENOENT; // the script's working directory holds nothing
        }

        AddMemoryBlockFiles(p);
        if (_directories.Contains(p))
        {
            return Errno.EISDIR;
        }

        if (_files.TryGetValue(p, out file))
        {
            return trailingSlash ? Errno.ENOTDIR : Errno.None;
        }

        if (ShmKernelFile(p) is { } shm)
        {
            file = shm;
            return trailingSlash ? Errno.ENOTDIR : Errno.None;
        }

        // A file used as a directory: /proc/meminfo/x.
        for (string? up = Parent(p); up is not null; up = Parent(up))
        {
            if (_files.ContainsKey(up))
            {
                return Errno.ENOTDIR;
            }
        }

        return Errno.ENOENT;
    }

    private static string? Parent(string path)
    {
        string? p = Normalize(path, out _);
        if (p is null || p == "/")
        {
            return null;
        }

        int slash = p.LastIndexOf('/');
        return slash == 0 ? "/" : p[..slash];
    }

    private void Add(string path, Func<string>? read, Func<string, Errno>? write = null)
    {
        _files.Add(path, new KernelFile(read, write));
        _children = null;
        for (string? up = Parent(path); up is not null; up = Parent(up))
        {
            _directories.Add(up);
        }
    }

    private static string Line(ulong value) => value.ToString(CultureInfo.InvariantCulture) + "\n";

    private static string Line(long value) => value.ToString(CultureInfo.InvariantCulture) + "\n";

    private static Errno Status(HugeTlbStatus s) => s switch
    {
        HugeTlbStatus.Ok => Errno.None,
        HugeTlbStatus.NoMemory => Errno.ENOMEM,
        HugeTlbStatus.Busy => Errno.EBUSY,
        _ => Errno.EINVAL,
    };

    // /proc/sys/vm: the default hstate's counts (hugetlb_sysctl_handler, hugetlb_overcommit_handler) and the HVO switch.
    private void AddProcSysctls()
    {
        Hstate<TArch> d = _pool.Default;
        Func<string, Errno> grow = data =>
        {
            Errno e = KernelValues.ProcULong(data, out ulong count);
            if (e == Errno.None)
            {
                SetNrHugepages(d, count, null); // the default hstate, every node
            }

            return e;
        };
        Add(ProcVm + "nr_hugepages", () => Line(_pool.ProcNrHugepages), grow);
        Add(ProcVm + "nr_hugepages_mempolicy", () => Line(_pool.ProcNrHugepages), grow); // no mempolicy here: every node
        Add(ProcVm + "nr_overcommit_hugepages", () => Line(_pool.NrOvercommitHugepages(d)), data =>
        {
            Errno e = KernelValues.ProcULong(data, out ulong count);
            return e != Errno.None ? e : Status(_pool.SetNrOvercommitHugepages(d, count));
        });

        // The sysctl came with v5.19 (proc_dobool: any int, non-zero is on); v5.14 and v5.18 had only
        // the boot parameter. It is registered only when some hstate is optimizable (hugetlb_vmemmap_init),
        // and before v6.0 only without memory_hotplug.memmap_on_memory (hugetlb_vmemmap_sysctls_init).
        HvoPolicy policy = _optimizer.Policy;
        if (!policy.HasSysctl || !_pool.Hstates.Any(h => _optimizer.IsOptimizable(h.Order))
            || (!policy.MemmapOnMemoryWithHvo && _machine.Config.MemmapOnMemory))
        {
            return;
        }

        Add(ProcVm + "hugetlb_optimize_vmemmap", () => _optimizer.Switches.Sysctl ? "1\n" : "0\n", data =>
        {
            Errno e = KernelValues.ProcInt(data, out int value);
            if (e != Errno.None)
            {
                return Errno.EINVAL;
            }

            _optimizer.Switches.Sysctl = value != 0;
            return Errno.None;
        });
    }

    // /sys/kernel/mm/hugepages/hugepages-<N>kB (hstate_attrs, hstate_demote_attrs).
    private void AddHstate(Hstate<TArch> h)
    {
        string dir = "/sys/kernel/mm/hugepages/" + h.Name + "/";
        Add(dir + "nr_hugepages", () => Line(_pool.NrHugepages(h)), SysfsNrHugepages(h, null));
        Add(dir + "nr_hugepages_mempolicy", () => Line(_pool.NrHugepages(h)), SysfsNrHugepages(h, null));
        Add(dir + "free_hugepages", () => Line(_pool.FreeHugepages(h)));
        Add(dir + "surplus_hugepages", () => Line(_pool.SurplusHugepages(h)));
        Add(dir + "resv_hugepages", () => Line(_pool.ResvHugepages(h)));
        Add(dir + "nr_overcommit_hugepages", () => Line(_pool.NrOvercommitHugepages(h)), data =>
        {
            if (h.IsGigantic)
            {
                return Errno.EINVAL; // nr_overcommit_hugepages_store refuses gigantic sizes before parsing
            }

            Errno e = KernelValues.KstrToULong(data, 10, out ulong count);
            return e != Errno.None ? e : Status(_pool.SetNrOvercommitHugepages(h, count));
        });
        AddDemote(dir, h, null);
    }

    // /sys/devices/system/node/nodeK: meminfo (node_read_meminfo's totals, hugetlb_report_node_meminfo) and per_node_hstate_attrs.
    private void AddNode(int nid)
    {
        string node = string.Create(CultureInfo.InvariantCulture, $"/sys/devices/system/node/node{nid}/");
        Add(node + "meminfo", () => NodeMemInfo(nid));
        foreach (Hstate<TArch> h in _pool.Hstates)
        {
            string dir = node + "hugepages/" + h.Name + "/";
            Add(dir + "nr_hugepages", () => Line(_pool.NrHugepages(h, nid)), SysfsNrHugepages(h, nid));
            Add(dir + "free_hugepages", () => Line(_pool.FreeHugepages(h, nid)));
            Add(dir + "surplus_hugepages", () => Line(_pool.SurplusHugepages(h, nid)));
            AddDemote(dir, h, nid);
        }
    }

    // nr_hugepages_store_common: kstrtoul(buf, 10), then set_max_huge_pages, which succeeds with what it could do.
    private Func<string, Errno> SysfsNrHugepages(Hstate<TArch> h, int? nid) => data =>
    {
        Errno e = KernelValues.KstrToULong(data, 10, out ulong count);
        if (e == Errno.None)
        {
            SetNrHugepages(h, count, nid);
        }

        return e;
    };

    // set_max_huge_pages for the writing task: it bails for a pending signal (the pages allocated are still added).
    private void SetNrHugepages(Hstate<TArch> h, ulong count, int? nid)
    {
        ulong before = PagesAllocated;
        Action<ulong>? progress = _progress is { } p ? n => p(before + n) : null;
        PoolResize r = _pool.SetNrHugepages(h, count, nid, _signal, progress);
        PagesAllocated += r.Allocated;
        Interrupted |= r.Interrupted;
    }

    // demote (write-only) and demote_size, where the hstate has a smaller size to demote to.
    private void AddDemote(string dir, Hstate<TArch> h, int? nid)
    {
        if (h.DemoteTarget is null)
        {
            return;
        }

        Add(dir + "demote", null, data =>
        {
            Errno e = KernelValues.KstrToULong(data, 10, out ulong count);
            return e != Errno.None ? e : Status(_pool.Demote(h, count, nid).Status);
        });
        // demote_size_store: memparse(buf, NULL), whatever follows the size ignored.
        Add(dir + "demote_size", () => string.Create(CultureInfo.InvariantCulture, $"{h.DemoteTarget!.SizeKb}kB\n"), data =>
            Status(_pool.SetDemoteSize(h, CmdLine.Memparse(data).Bytes)));
    }

    /// <summary>
    /// /proc/vmstat, the lines modelled: nr_free_pages, and from v6.11 (15995a352474) nr_memmap_pages
    /// and nr_memmap_boot_pages, the struct page memory allocated at run time and at boot. Every path
    /// that allocates or frees vmemmap (HVO's free, restore, head copy and shared tail, hot-added
    /// memory) changes a frame's owner, so the counts are the vmemmap frames owned as each.
    /// </summary>
    private string VmStat()
    {
        string text = string.Create(CultureInfo.InvariantCulture, $"nr_free_pages {_machine.Pages.NrFreePages}\n");
        if (_optimizer.Policy.MemmapVmstat)
        {
            text += string.Create(CultureInfo.InvariantCulture, $"nr_memmap_pages {_machine.Owners.Count(Memory.FrameOwner.RuntimeVmemmap)}\n")
                + string.Create(CultureInfo.InvariantCulture, $"nr_memmap_boot_pages {_machine.Owners.Count(Memory.FrameOwner.BootVmemmap)}\n");
        }

        return text;
    }

    private string NodeMemInfo(int nid)
    {
        ulong total = (ulong)_machine.Pages.NodeManagedPages(nid) * TArch.PageSize >> 10;
        ulong free = (ulong)_machine.Pages.NodeFreePages(nid) * TArch.PageSize >> 10;
        CultureInfo c = CultureInfo.InvariantCulture;
        return string.Create(c, $"Node {nid} MemTotal:       {total,8} kB\n")
            + string.Create(c, $"Node {nid} MemFree:        {free,8} kB\n")
            + string.Create(c, $"Node {nid} MemUsed:        {total - free,8} kB\n")
            + string.Create(c, $"Node {nid} Shmem:          {(ulong)Shm.NodePages(nid) * TArch.PageSize >> 10,8} kB\n")
            + _pool.NodeMemInfo(nid);
    }
}
