using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Threading;

namespace Hvo.Memory;

/// <summary>Why a tmpfs operation stopped: the kernel's errno, in the Memory layer's words.</summary>
public enum ShmemStatus
{
    Ok,

    /// <summary>-ENOSPC: the mount's size limit (sbinfo->max_blocks) is reached.</summary>
    NoSpace,

    /// <summary>-ENOMEM: the page allocator could not give a page.</summary>
    NoMemory,

    /// <summary>-EINVAL: a size smaller than what the files use (shmem_reconfigure).</summary>
    Invalid,
}

/// <summary>One tmpfs file: its size in bytes, its pages, and its text while it is small.</summary>
public sealed class ShmemFile
{
    internal ShmemFile(string name) => Name = name;

    public string Name { get; }

    /// <summary>i_size in bytes.</summary>
    public ulong Size { get; internal set; }

    /// <summary>The frames of the file's pages (one per PAGE_SIZE of data or of fallocate'd range).</summary>
    internal List<ulong> Pages { get; } = [];

    /// <summary>The file's bytes while it holds at most <see cref="Shmem.TextLimit"/> of them; null past that.</summary>
    internal StringBuilder? Text { get; set; } = new();

    public long PageCount => Pages.Count;
}

/// <summary>
/// A tmpfs mount (shmem, mm/shmem.c), such as the one on /dev/shm: files whose data lives in
/// order-0 pages the page allocator gives as GFP_HIGHUSER_MOVABLE (shmem_alloc_folio, so movable
/// and from the movable pageblocks), one per PAGE_SIZE written, owned as
/// <see cref="FrameOwner.Shmem"/> (NR_SHMEM: /proc/meminfo's Shmem). A write that meets the mount's
/// size limit stops with -ENOSPC (shmem_inode_acct_blocks); one the page allocator refuses stops
/// with -ENOMEM (neither reclaim nor the OOM killer is modelled, so the write fails where the kernel
/// would first kill something). Both leave what was written so far (a short write), as
/// generic_perform_write does; fallocate instead gives back every page it added (shmem_fallocate's
/// undo). Unlinking or truncating a file frees its pages. docs/ARCHITECTURE.md §5.
/// </summary>
public sealed class Shmem : IMovablePages
{
    /// <summary>Files up to this many bytes keep their text (what cat shows); larger ones only their size.</summary>
    public const int TextLimit = 64 * 1024;

    private readonly PageAllocator _pages;
    private readonly Dictionary<string, ShmemFile> _files = new(StringComparer.Ordinal);
    private readonly long[] _nodePages;
    private readonly Dictionary<ulong, (ShmemFile File, int Index)> _fileOf = []; // where each page is, for migration
    private readonly Lock _lock = new();

    /// <summary>A mount on <paramref name="pages"/>, limited to <paramref name="maxBlocks"/> pages (0: unlimited).</summary>
    public Shmem(PageAllocator pages, long maxBlocks)
    {
        ArgumentNullException.ThrowIfNull(pages);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBlocks);
        _pages = pages;
        MaxBlocks = maxBlocks;
        _nodePages = new long[pages.Layout.Nodes];
        pages.RegisterMovable(FrameOwner.Shmem, this); // shmem's mapping migrates (shmem_aops.migrate_folio)
    }

    /// <summary>shmem_default_max_blocks: half of totalram_pages, what a tmpfs mount without size= gets.</summary>
    public static long DefaultMaxBlocks(PageAllocator pages)
    {
        ArgumentNullException.ThrowIfNull(pages);
        return pages.ManagedPages / 2;
    }

    /// <summary>The mount's size= in pages (sbinfo->max_blocks); 0 is unlimited (size=0).</summary>
    public long MaxBlocks { get; private set; }

    /// <summary>Pages the files hold (sbinfo->used_blocks, and NR_SHMEM).</summary>
    public long UsedBlocks
    {
        get
        {
            lock (_lock)
            {
                return _nodePages.Sum();
            }
        }
    }

    /// <summary>Pages of node <paramref name="nid"/> the files hold (the node's NR_SHMEM).</summary>
    public long NodePages(int nid)
    {
        lock (_lock)
        {
            return _nodePages[nid];
        }
    }

    /// <summary>The files' names, sorted.</summary>
    public IReadOnlyList<string> Names
    {
        get
        {
            lock (_lock)
            {
                return [.. _files.Keys.Order(StringComparer.Ordinal)];
            }
        }
    }

    public ShmemFile? Find(string name)
    {
        lock (_lock)
        {
            return _files.GetValueOrDefault(name);
        }
    }

    /// <summary>open(O_CREAT), with O_TRUNC unless <paramref name="append"/>: the file, new or emptied.</summary>
    public ShmemFile Open(string name, bool append)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (_lock)
        {
            if (!_files.TryGetValue(name, out ShmemFile? file))
            {
                _files[name] = file = new ShmemFile(name);
            }
            else if (!append)
            {
                Truncate(file);
            }

            return file;
        }
    }

    /// <summary>unlink: the name goes and its pages are freed (no one holds the file open here). False when there is no such file.</summary>
    public bool Unlink(string name)
    {
        lock (_lock)
        {
            if (!_files.Remove(name, out ShmemFile? file))
            {
                return false;
            }

            Truncate(file);
            return true;
        }
    }

    /// <summary>
    /// write(2)s appending <paramref name="text"/> (when given) or <paramref name="bytes"/> zero bytes:
    /// a page for each PAGE_SIZE the file grows into; <paramref name="written"/> is what made it in
    /// (the file keeps it), the status why the rest did not.
    /// </summary>
    public ShmemStatus Append(ShmemFile file, ulong bytes, string? text, out ulong written)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (text is not null)
        {
            bytes = (ulong)Encoding.UTF8.GetByteCount(text);
        }

        lock (_lock)
        {
            ShmemStatus status = Grow(file, file.Size + bytes, out ulong end);
            written = end - file.Size;
            if (file.Text is { } t && end <= TextLimit)
            {
                t.Append(text is not null && written == bytes ? text : new string('\0', (int)written));
            }
            else
            {
                file.Text = null;
            }

            file.Size = end;
            return status;
        }
    }

    /// <summary>
    /// fallocate(2) with mode 0 over [0, <paramref name="length"/>): every page of the range is
    /// allocated and the size grows to cover it, or, on failure, the pages this call added are
    /// freed again and nothing changes (shmem_fallocate undoes its range).
    /// </summary>
    public ShmemStatus Fallocate(ShmemFile file, ulong length)
    {
        ArgumentNullException.ThrowIfNull(file);
        lock (_lock)
        {
            int before = file.Pages.Count;
            if (MaxBlocks > 0 && PagesFor(length) - before > MaxBlocks - UsedLocked())
            {
                return ShmemStatus.NoSpace; // shmem_fallocate: the whole range is checked against the free blocks first
            }

            ShmemStatus status = Grow(file, Math.Max(length, file.Size), out _);
            if (status != ShmemStatus.Ok)
            {
                FreeFrom(file, before);
                return status;
            }

            if (length > file.Size)
            {
                if (file.Text is { } t && length <= TextLimit)
                {
                    t.Append('\0', (int)(length - file.Size));
                }
                else
                {
                    file.Text = null;
                }

                file.Size = length;
            }

            return ShmemStatus.Ok;
        }
    }

    /// <summary>mount -o remount,size=: refused (-EINVAL) below the pages in use (shmem_reconfigure).</summary>
    public ShmemStatus SetMaxBlocks(long maxBlocks)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBlocks);
        lock (_lock)
        {
            if (maxBlocks > 0 && maxBlocks < UsedLocked())
            {
                return ShmemStatus.Invalid;
            }

            MaxBlocks = maxBlocks;
            return ShmemStatus.Ok;
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Called by the page allocator under its lock, while a gigantic allocation moves the page out of
    /// its range; a write takes this mount's lock and then the allocator's, so a write and a gigantic
    /// allocation on two threads at once could wait on each other. The shell runs one command at a time.
    /// </remarks>
    public void Migrate(ulong from, ulong to)
    {
        lock (_lock)
        {
            if (!_fileOf.Remove(from, out (ShmemFile File, int Index) at))
            {
                throw new InvalidOperationException($"frame 0x{from:x} is no shmem page");
            }

            at.File.Pages[at.Index] = to;
            _fileOf[to] = at;
            _nodePages[_pages.PfnToNid(from)]--;
            _nodePages[_pages.PfnToNid(to)]++;
        }
    }

    private long UsedLocked() => _nodePages.Sum();

    private ulong PageSize => 1UL << _pages.Layout.PageShift;

    private long PagesFor(ulong bytes) => (long)((bytes + PageSize - 1) / PageSize);

    // Pages until the file's pages cover `size` bytes; `end` is how far they got.
    private ShmemStatus Grow(ShmemFile file, ulong size, out ulong end)
    {
        long want = PagesFor(size);
        while (file.Pages.Count < want)
        {
            ulong pfn = 0;
            ShmemStatus status = MaxBlocks > 0 && UsedLocked() >= MaxBlocks ? ShmemStatus.NoSpace
                : _pages.TryAllocPages(0, 0, Gfp.Movable, AllocSite.Other, FrameOwner.Shmem, out pfn) ? ShmemStatus.Ok
                : ShmemStatus.NoMemory;
            if (status != ShmemStatus.Ok)
            {
                end = Math.Max(file.Size, Math.Min(size, (ulong)file.Pages.Count * PageSize));
                return status;
            }

            _fileOf[pfn] = (file, file.Pages.Count);
            file.Pages.Add(pfn);
            _nodePages[_pages.PfnToNid(pfn)]++;
        }

        end = size;
        return ShmemStatus.Ok;
    }

    private void Truncate(ShmemFile file)
    {
        FreeFrom(file, 0);
        file.Size = 0;
        file.Text = new StringBuilder();
    }

    // Free the file's pages from index `first` on, in index order (truncate_inode_pages_range).
    private void FreeFrom(ShmemFile file, int first)
    {
        for (int i = first; i < file.Pages.Count; i++)
        {
            ulong pfn = file.Pages[i];
            _pages.FreePages(pfn, 0, FrameOwner.Shmem);
            _fileOf.Remove(pfn);
            _nodePages[_pages.PfnToNid(pfn)]--;
        }

        file.Pages.RemoveRange(first, file.Pages.Count - first);
    }
}
