using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// The bytes of simulated physical memory, as one lazily backed host mapping: frame
/// <c>pfn</c> lives at <c>base + (pfn - FirstPfn) * PageSize</c> (RAM may start above pfn 0). The host commits memory only for host pages
/// something wrote, so a frame nobody wrote reads as zeroes and costs nothing, and a 1 TiB
/// machine costs what its page tables and struct pages cost. Frames the simulation wrote are
/// tracked (<see cref="IsMaterialized"/>), and <see cref="Discard"/> hands a frame's memory back.
/// </summary>
/// <remarks>
/// This is one of the few places with pointers. The mapping is reserved once for
/// <see cref="Frames"/> frames and lives until <see cref="Dispose"/>; every pfn is checked against
/// <see cref="Frames"/> before it becomes an address, so every span handed out lies inside it.
/// </remarks>
public sealed unsafe class FrameStore : IDisposable
{
    private const int ChunkShift = 16;
    private const ulong ChunkMask = (1UL << ChunkShift) - 1;

    private readonly byte* _base;
    private readonly nuint _bytes;
    private readonly bool _mapped;
    private readonly int _entriesPerTable;
    private readonly ulong[]?[] _written; // a bit per frame, in chunks of 2^16 frames
    private long _materialized;
    private bool _disposed;
    private Action? _onDispose;

    // Frames while the store lives, 0 once disposed: every pfn check is then an ObjectDisposedException.
    private ulong _liveFrames;

    /// <summary>The largest simulated memory: one reserved host mapping of a 47-bit address space.</summary>
    public const ulong MaxBytes = 1UL << 47;

    /// <param name="frames">Frames of memory.</param>
    /// <param name="pageShift">log2 of a frame's bytes.</param>
    /// <param name="firstPfn">The first frame's pfn.</param>
    /// <param name="tableEntries">
    /// The 8-byte entries a page-table view spans: one frame's by default; the architecture's largest
    /// table where one spans several frames (s390's 16 KiB region and segment tables, <see cref="Paging.IPagingArch.MaxTableEntries"/>).
    /// </param>
    public FrameStore(ulong frames, int pageShift, ulong firstPfn = 0, int tableEntries = 0)
    {
        if (pageShift is < 12 or > 24)
        {
            throw new ArgumentOutOfRangeException(nameof(pageShift), pageShift, "page shift must be 12..24 (a frame is whole host pages)");
        }

        if (frames == 0 || frames > (MaxBytes >> pageShift))
        {
            throw new ArgumentOutOfRangeException(nameof(frames), frames, "a simulated machine has 1 frame to 128 TiB");
        }

        if (firstPfn > ulong.MaxValue - frames)
        {
            throw new ArgumentOutOfRangeException(nameof(firstPfn), firstPfn, "the frames run past the last pfn");
        }

        Frames = frames;
        FirstPfn = firstPfn;
        _liveFrames = frames;
        PageShift = pageShift;
        PageSize = 1 << pageShift;
        _entriesPerTable = Math.Max(tableEntries, PageSize >> 3);
        _bytes = (nuint)(frames << pageShift);
        _written = new ulong[]?[(frames + ChunkMask) >> ChunkShift];
        _base = HostMemory.Reserve(_bytes, out _mapped);
    }

    ~FrameStore() => Release();

    public ulong Frames { get; }

    /// <summary>The first frame's pfn: where RAM starts, in frames.</summary>
    public ulong FirstPfn { get; }

    public int PageShift { get; }

    public int PageSize { get; }

    /// <summary>Frames the simulation wrote and has not discarded.</summary>
    public long MaterializedFrames => Interlocked.Read(ref _materialized);

    /// <summary>Simulated bytes of frame contents the host keeps.</summary>
    public long MaterializedBytes => MaterializedFrames * PageSize;

    public bool IsMaterialized(ulong pfn)
    {
        Check(pfn);
        ulong i = pfn - FirstPfn;
        ulong[]? chunk = Volatile.Read(ref _written[i >> ChunkShift]);
        return chunk is not null && (Volatile.Read(ref chunk[(i & ChunkMask) >> 6]) & (1UL << (int)(i & 63))) != 0;
    }

    /// <summary>The frame's bytes for reading: zeroes if nobody wrote it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Read(ulong pfn) => new(At(pfn), PageSize);

    /// <summary>The frame's bytes for writing; the frame counts as materialized from now on.</summary>
    public Span<byte> Write(ulong pfn)
    {
        MarkWritten(pfn);
        return new Span<byte>(At(pfn), PageSize);
    }

    /// <summary>
    /// The frame's bytes without counting it as written: to fill a frame completely before
    /// <see cref="Write"/> publishes it as written, so a concurrent reader never sees it half done.
    /// </summary>
    internal Span<byte> Unmarked(ulong pfn) => new(At(pfn), PageSize);

    /// <summary>
    /// A page-table frame as its 8-byte entries: the walkers' hot path, with no bookkeeping. The
    /// frame must have been materialized (a table is cleared through <see cref="Write"/> when allocated).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<ulong> Table(ulong pfn) => new(At(pfn), _entriesPerTable);

    /// <summary>A table that starts at entry <paramref name="entryOffset"/> of frame <paramref name="pfn"/> (a fragment of the page: s390's 2 KiB page tables before v6.7).</summary>
    public Span<ulong> Table(ulong pfn, int entryOffset) => Table(pfn)[entryOffset..];

    /// <summary>A copy of what <see cref="Table"/> needs, for a walker to keep in registers.</summary>
    public TableView Tables
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return new(_base, PageShift, FirstPfn, Frames, _entriesPerTable);
        }
    }

    /// <summary>Disposed: its memory is gone, and every use throws.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>
    /// A holder of a <see cref="TableView"/> that outlives no store: <paramref name="forget"/> runs when
    /// the store is disposed, for the holder to drop its view (an empty view refuses every pfn).
    /// </summary>
    internal void OnDispose(Action forget)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _onDispose += forget;
    }

    /// <summary>Is <paramref name="pfn"/> a frame of the live store? (A disposed store has none.)</summary>
    internal bool IsLive(ulong pfn) => pfn - FirstPfn < _liveFrames;

    /// <summary>The exception for a pfn that is not a live frame: beyond the machine, or the store disposed.</summary>
    internal Exception NotLive(ulong pfn) => _disposed
        ? new ObjectDisposedException(nameof(FrameStore), "the simulated memory was disposed")
        : new ArgumentOutOfRangeException(nameof(pfn), $"pfn 0x{pfn:x} is outside the machine's {Frames} frames from pfn 0x{FirstPfn:x}");

    /// <summary>Forget the frame's bytes: it reads as zeroes again and the host memory goes back.</summary>
    public void Discard(ulong pfn)
    {
        Check(pfn);
        ulong i = pfn - FirstPfn;
        ulong[]? chunk = Volatile.Read(ref _written[i >> ChunkShift]);
        ulong bit = 1UL << (int)(i & 63);
        if (chunk is null)
        {
            return;
        }

        // A frame that holds no bytes (most do not) is left alone without an interlocked write:
        // the discard takes effect at that read, before any write that sets the bit after it.
        ref ulong word = ref chunk[(i & ChunkMask) >> 6];
        if ((Volatile.Read(ref word) & bit) == 0 || (Interlocked.And(ref word, ~bit) & bit) == 0)
        {
            return;
        }

        Interlocked.Decrement(ref _materialized);
        HostMemory.Release(At(pfn), (nuint)PageSize, _mapped);
    }

    public void Dispose()
    {
        Release();
        GC.SuppressFinalize(this);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* At(ulong pfn)
    {
        Check(pfn);
        return _base + ((pfn - FirstPfn) << PageShift);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Check(ulong pfn)
    {
        if (!IsLive(pfn))
        {
            ThrowNotLive(pfn);
        }
    }

    private void MarkWritten(ulong pfn)
    {
        Check(pfn);
        ObjectDisposedException.ThrowIf(_disposed, this);
        ulong i = pfn - FirstPfn;
        ref ulong[]? chunkRef = ref _written[i >> ChunkShift];
        ulong[] chunk = Volatile.Read(ref chunkRef) ?? Interlocked.CompareExchange(ref chunkRef, new ulong[(1 << ChunkShift) / 64], null) ?? chunkRef!;
        ulong bit = 1UL << (int)(i & 63);
        ref ulong word = ref chunk[(i & ChunkMask) >> 6];
        if ((Volatile.Read(ref word) & bit) == 0 && (Interlocked.Or(ref word, bit) & bit) == 0)
        {
            Interlocked.Increment(ref _materialized);
        }
    }

    private void ThrowNotLive(ulong pfn) => throw NotLive(pfn);

    private void Release()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Volatile.Write(ref _liveFrames, 0);
        _onDispose?.Invoke();
        HostMemory.Free(_base, _bytes, _mapped);
    }
}

/// <summary>
/// Page-table frames of a <see cref="FrameStore"/> as entries, from a copy of the store's base and
/// geometry: the walk's hot path, without a load through the store per level. Each pfn is checked
/// against the machine's frame count before it becomes an address. A view is valid while its store
/// lives: its holder drops it when the store is disposed (<see cref="FrameStore.OnDispose"/>), and
/// the empty view (<c>default</c>) refuses every pfn as a disposed store's.
/// </summary>
public readonly unsafe struct TableView
{
    // Where pfn 0 would be: the first frame's address less FirstPfn frames (never dereferenced below
    // the first frame: every pfn is checked to lie in [FirstPfn, FirstPfn + frames) first).
    private readonly byte* _pfnZero;
    private readonly int _shift;
    private readonly ulong _first;
    private readonly ulong _frames;
    private readonly int _entries;

    internal TableView(byte* @base, int shift, ulong first, ulong frames, int entries)
    {
        _pfnZero = @base - (first << shift);
        _shift = shift;
        _first = first;
        _frames = frames;
        _entries = entries;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<ulong> Table(ulong pfn)
    {
        if (pfn - _first >= _frames)
        {
            Throw(pfn, _frames);
        }

        return new Span<ulong>(_pfnZero + (pfn << _shift), _entries);
    }

    /// <summary>A table that starts at entry <paramref name="entryOffset"/> of frame <paramref name="pfn"/> (a fragment of the page).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<ulong> Table(ulong pfn, int entryOffset) => Table(pfn)[entryOffset..];

    /// <summary>Where pfn 0 would be, for <see cref="Table(byte*, ulong, ulong, int, int, ulong)"/>.</summary>
    internal byte* PfnZero => _pfnZero;

    /// <summary>The first frame's pfn.</summary>
    internal ulong First => _first;

    /// <summary>The frames the view covers (0: the store is gone).</summary>
    internal ulong Frames => _frames;

    /// <summary>
    /// <see cref="Table(ulong)"/> for a walker that knows the page shift at compile time: the same
    /// check, with the shift and the span's length folded to constants.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Span<ulong> Table(byte* pfnZero, ulong first, ulong frames, int shift, int entries, ulong pfn)
    {
        if (pfn - first >= frames)
        {
            Throw(pfn, frames);
        }

        return new Span<ulong>(pfnZero + (pfn << shift), entries);
    }

    /// <summary><see cref="Table(byte*, ulong, ulong, int, int, ulong)"/> for a table that starts at entry <paramref name="entryOffset"/> of its frame.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Span<ulong> Table(byte* pfnZero, ulong first, ulong frames, int shift, int entries, ulong pfn, int entryOffset)
    {
        if (pfn - first >= frames || (uint)entryOffset > (uint)entries)
        {
            Throw(pfn, frames);
        }

        return new Span<ulong>(pfnZero + (pfn << shift) + ((nuint)(uint)entryOffset << 3), entries - entryOffset);
    }

    private static void Throw(ulong pfn, ulong frames) => throw (frames == 0
        ? new ObjectDisposedException(nameof(FrameStore), "the simulated memory was disposed")
        : new ArgumentOutOfRangeException(nameof(pfn), $"pfn 0x{pfn:x} is beyond the machine"));
}

/// <summary>
/// Host address space for simulated memory: an anonymous private mapping reserved without
/// committing (Linux, macOS), so untouched pages never become resident; plain zeroed memory elsewhere.
/// </summary>
internal static unsafe partial class HostMemory
{
    private const int ProtReadWrite = 0x1 | 0x2;
    private const int MadvDontNeed = 4;

    public static (nint Base, bool Mapped) ReserveRaw(nuint bytes)
    {
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
        {
            // MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
            int flags = OperatingSystem.IsLinux() ? 0x02 | 0x20 | 0x4000 : 0x02 | 0x1000 | 0x40;
            nint p = Mmap(0, bytes, ProtReadWrite, flags, -1, 0);
            if (p != -1)
            {
                return (p, true);
            }
        }

        return ((nint)NativeMemory.AllocZeroed(bytes), false);
    }

    public static byte* Reserve(nuint bytes, out bool mapped)
    {
        (nint p, mapped) = ReserveRaw(bytes);
        if (p == 0)
        {
            throw new OutOfMemoryException($"cannot reserve {bytes} bytes of host address space for simulated memory");
        }

        return (byte*)p;
    }

    /// <summary>Give a frame's host pages back; the range reads as zeroes afterwards.</summary>
    public static void Release(byte* at, nuint bytes, bool mapped)
    {
        if (!mapped || Madvise((nint)at, bytes, MadvDontNeed) != 0)
        {
            NativeMemory.Clear(at, bytes);
        }
    }

    public static void Free(byte* at, nuint bytes, bool mapped)
    {
        if (mapped)
        {
            _ = Munmap((nint)at, bytes);
        }
        else
        {
            NativeMemory.Free(at);
        }
    }

    [LibraryImport("libc", EntryPoint = "mmap")]
    private static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint addr, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(nint addr, nuint length);
}
