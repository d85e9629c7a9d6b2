using System;
using System.Globalization;
using Hvo.Lib;
using Hvo.Memory;

namespace Hvo.Scenario;

/// <summary>
/// /dev/shm: the tmpfs every distribution mounts there (<see cref="Shmem"/>), size= half of RAM
/// as mount leaves it, holding whatever files a script writes; /proc/meminfo and each node's
/// meminfo count its pages as Shmem.
/// </summary>
public sealed partial class KernelFiles<TArch>
{
    /// <summary>Where the tmpfs is mounted.</summary>
    public const string ShmDirectory = "/dev/shm";

    private Shmem? _shm;

    /// <summary>The tmpfs on /dev/shm.</summary>
    public Shmem Shm => _shm ??= new Shmem(_machine.Pages, Shmem.DefaultMaxBlocks(_machine.Pages));

    private void AddShm()
    {
        _directories.Add(ShmDirectory);
        _children = null;
    }

    // The name of a file directly in /dev/shm that `p` (normalized) names, or null.
    private static string? ShmName(string p) =>
        p.StartsWith(ShmDirectory + "/", StringComparison.Ordinal) && p.IndexOf('/', ShmDirectory.Length + 1) < 0 ? p[(ShmDirectory.Length + 1)..] : null;

    private KernelFile? ShmKernelFile(string p) =>
        ShmName(p) is { } name && Shm.Find(name) is { } file
            ? new KernelFile(() => file.Text?.ToString() ?? string.Empty, data => ShmErrno(Shm.Append(file, 0, data, out _)))
            : null;

    // A tmpfs file too large to keep its text: read(2) works in the kernel, but a transcript of it would not.
    private bool ShmUnreadable(string path) =>
        Normalize(path, out _) is { } p && ShmName(p) is { } name && Shm.Find(name) is { Text: null };

    /// <inheritdoc/>
    public Errno OpenForWrite(string path, bool append)
    {
        if (Normalize(path, out bool slash) is { } p && ShmName(p) is { } name && !slash && Kind(p) != ShellFileKind.Directory)
        {
            Shm.Open(name, append);
            return Errno.None;
        }

        return OpenForWrite(path);
    }

    /// <inheritdoc/>
    public Errno WriteOpened(string path, string data)
    {
        ArgumentNullException.ThrowIfNull(data);
        Errno e = Open(path, out KernelFile? file);
        return e != Errno.None ? e : file!.Write is null ? Errno.EACCES : file.Write(data);
    }

    /// <inheritdoc/>
    public Errno WriteZeros(string path, ulong bytes, out ulong written)
    {
        written = 0;
        Errno e = Open(path, out KernelFile? file);
        if (e != Errno.None)
        {
            return e;
        }

        string p = Normalize(path, out _)!;
        if (ShmName(p) is { } name && Shm.Find(name) is { } shm)
        {
            return ShmErrno(Shm.Append(shm, bytes, null, out written));
        }

        if (p == "/dev/null")
        {
            written = bytes;
            return Errno.None;
        }

        // A kernel file takes one page-sized write at most and parses it: zeros are no number.
        if (file!.Write is null)
        {
            return Errno.EACCES;
        }

        e = file.Write(new string('\0', (int)Math.Min(bytes, TArch.PageSize)));
        written = e == Errno.None ? bytes : 0;
        return e;
    }

    /// <inheritdoc/>
    public Errno Fallocate(string path, ulong length)
    {
        Errno e = OpenForWrite(path, append: true);
        if (e != Errno.None)
        {
            return e;
        }

        // fallocate(2) on procfs and sysfs files, and on /dev/null: no fallocate operation.
        string p = Normalize(path, out _)!;
        return ShmName(p) is { } name && Shm.Find(name) is { } file ? ShmErrno(Shm.Fallocate(file, length)) : Errno.EOPNOTSUPP;
    }

    /// <inheritdoc/>
    public Errno Unlink(string path)
    {
        Errno e = Open(path, out _);
        if (e is not (Errno.None or Errno.EISDIR))
        {
            return e;
        }

        string p = Normalize(path, out _)!;
        if (ShmName(p) is { } name && Shm.Unlink(name))
        {
            return Errno.None;
        }

        // procfs, sysfs and devtmpfs files here have no unlink for a script (vfs_unlink: no ->unlink, -EPERM).
        return e == Errno.EISDIR ? Errno.EISDIR : Errno.EPERM;
    }

    /// <inheritdoc/>
    public ulong DiskUsage(string path) =>
        Normalize(path, out _) is { } p && ShmName(p) is { } name && Shm.Find(name) is { } file ? (ulong)file.PageCount * TArch.PageSize : 0;

    /// <inheritdoc/>
    public Errno RemountSize(string mountPoint, string size)
    {
        ArgumentNullException.ThrowIfNull(size);
        if (Normalize(mountPoint, out _) != ShmDirectory)
        {
            return Errno.EINVAL;
        }

        // shmem_parse_one's size=: memparse, or a percentage of totalram_pages; rounded up to pages.
        Memparsed m = CmdLine.Memparse(size);
        if (!m.HasNumber || m.Overflow)
        {
            return Errno.EINVAL;
        }

        UInt128 bytes = m.Bytes;
        if (m.Rest == "%")
        {
            bytes = bytes * (ulong)_machine.Pages.ManagedPages * TArch.PageSize / 100;
        }
        else if (m.Rest.Length > 0)
        {
            return Errno.EINVAL;
        }

        UInt128 pages = (bytes + TArch.PageSize - 1) / TArch.PageSize;
        return pages > long.MaxValue ? Errno.EINVAL : ShmErrno(Shm.SetMaxBlocks((long)pages));
    }

    private static Errno ShmErrno(ShmemStatus s) => s switch
    {
        ShmemStatus.Ok => Errno.None,
        ShmemStatus.NoSpace => Errno.ENOSPC,
        ShmemStatus.NoMemory => Errno.ENOMEM,
        _ => Errno.EINVAL,
    };
}
