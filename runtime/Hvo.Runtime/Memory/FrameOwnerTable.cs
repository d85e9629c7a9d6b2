using System;
using System.Threading;

namespace Hvo.Memory;

/// <summary>
/// The owner of every frame, stored sparsely: one byte per block of frames while the whole block
/// has one owner, and a byte per frame only for blocks whose frames have different owners. A
/// machine whose memory sits in large blocks costs a few bytes per block, however large it is.
/// Counts per owner are kept as frames change hands, so "the owners add up to the machine" is
/// checkable at any time.
/// </summary>
public sealed class FrameOwnerTable
{
    /// <summary>log2 of the frames in one block (512: a 2 MiB block of 4 KiB pages).</summary>
    public const int BlockShift = 9;

    private const ulong BlockMask = (1UL << BlockShift) - 1;

    private readonly FrameOwner[] _uniform;
    private readonly FrameOwner[]?[] _mixed;
    private readonly long[] _counts = new long[Enum.GetValues<FrameOwner>().Length];
    private readonly Lock _lock = new();

    /// <param name="frames">Frames of the machine.</param>
    /// <param name="initial">Their owner at first.</param>
    /// <param name="firstPfn">The machine's first pfn (RAM may start above 0); frames are [firstPfn, firstPfn + frames).</param>
    public FrameOwnerTable(ulong frames, FrameOwner initial = FrameOwner.Free, ulong firstPfn = 0)
    {
        Frames = frames;
        FirstPfn = firstPfn;
        ulong blocks = (frames + BlockMask) >> BlockShift;
        _uniform = new FrameOwner[blocks];
        _mixed = new FrameOwner[]?[blocks];
        Array.Fill(_uniform, initial);
        _counts[(int)initial] = (long)frames;
    }

    /// <summary>A table for the frames of <paramref name="layout"/>, all free.</summary>
    public static FrameOwnerTable For(MachineLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        return new FrameOwnerTable(layout.Frames, FrameOwner.Free, layout.FirstPfn);
    }

    public ulong Frames { get; }

    /// <summary>The first frame's pfn.</summary>
    public ulong FirstPfn { get; }

    /// <summary>One past the last frame's pfn.</summary>
    public ulong EndPfn => FirstPfn + Frames;

    /// <summary>Blocks holding a per-frame array (the table's only cost that grows with use).</summary>
    public int MixedBlocks { get; private set; }

    public FrameOwner this[ulong pfn]
    {
        get
        {
            Check(pfn, 1);
            return At(pfn - FirstPfn);
        }
    }

    /// <summary>Frames owned by <paramref name="owner"/> now.</summary>
    public long Count(FrameOwner owner) => Interlocked.Read(ref _counts[(int)owner]);

    /// <summary>Give [<paramref name="pfn"/>, +<paramref name="count"/>) to <paramref name="owner"/>, whoever had them.</summary>
    public void Set(ulong pfn, ulong count, FrameOwner owner)
    {
        Check(pfn, count);
        lock (_lock)
        {
            SetIndexes(pfn - FirstPfn, count, owner);
        }
    }

    private FrameOwner At(ulong index)
    {
        ulong block = index >> BlockShift;
        FrameOwner[]? mixed = Volatile.Read(ref _mixed[block]);
        return mixed is null ? _uniform[block] : mixed[index & BlockMask];
    }

    // Frames [index, index + count), counted from the machine's first frame; under the lock.
    private void SetIndexes(ulong index, ulong count, FrameOwner owner)
    {
        ulong end = index + count;
        while (index < end)
        {
            ulong block = index >> BlockShift;
            ulong blockStart = block << BlockShift;
            ulong blockEnd = Math.Min(blockStart + BlockMask + 1, Frames);
            ulong runEnd = Math.Min(end, blockEnd);
            if (index == blockStart && runEnd == blockEnd)
            {
                SetWholeBlock(block, blockEnd - blockStart, owner);
            }
            else
            {
                SetInBlock(block, index - blockStart, runEnd - index, owner);
            }

            index = runEnd;
        }
    }

    /// <summary>
    /// Move frames from <paramref name="expected"/> to <paramref name="owner"/>, failing (and
    /// changing nothing) if any of them belongs to someone else: a double allocation or a free
    /// of a frame its caller does not own.
    /// </summary>
    public void Transfer(ulong pfn, ulong count, FrameOwner expected, FrameOwner owner)
    {
        Check(pfn, count);
        lock (_lock)
        {
            TransferLocked(pfn, count, expected, owner);
        }
    }

    /// <summary>
    /// The table's lock, for a caller that makes several transfers in a row with
    /// <see cref="TransferHeld"/> (the page allocator's order-0 batches). It is also the page
    /// allocator's own lock (zone->lock and the owner table's are one), so a batch takes it once.
    /// </summary>
    internal Lock Sync => _lock;

    /// <summary><see cref="Transfer"/> by a caller holding <see cref="Sync"/>.</summary>
    internal void TransferHeld(ulong pfn, ulong count, FrameOwner expected, FrameOwner owner)
    {
        Check(pfn, count);
        TransferLocked(pfn, count, expected, owner);
    }

    /// <summary>
    /// <see cref="TransferHeld"/> when every frame of the range is <paramref name="expected"/>'s;
    /// false, with nothing changed, when one is not.
    /// </summary>
    internal bool TryTransferHeld(ulong pfn, ulong count, FrameOwner expected, FrameOwner owner)
    {
        Check(pfn, count);
        ulong first = pfn - FirstPfn;
        for (ulong p = first; p < first + count; p = NextCheck(p, first + count))
        {
            if (At(p) != expected)
            {
                return false;
            }
        }

        SetIndexes(first, count, owner);
        return true;
    }

    private void TransferLocked(ulong pfn, ulong count, FrameOwner expected, FrameOwner owner)
    {
        ulong first = pfn - FirstPfn;
        if (count == 1 && _mixed[first >> BlockShift] is { } mixed)
        {
            // One frame of a block whose frames have owners of their own (every order-0 page the
            // page allocator hands out or takes back there): its byte, as SetInBlock would change it.
            ref FrameOwner slot = ref mixed[first & BlockMask];
            if (slot != expected)
            {
                ThrowNotExpected(first, slot, expected, owner);
            }

            _counts[(int)expected]--;
            slot = owner;
            _counts[(int)owner]++;
            return;
        }

        for (ulong p = first; p < first + count; p = NextCheck(p, first + count))
        {
            FrameOwner actual = At(p);
            if (actual != expected)
            {
                ThrowNotExpected(p, actual, expected, owner);
            }
        }

        SetIndexes(first, count, owner);
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ThrowNotExpected(ulong index, FrameOwner actual, FrameOwner expected, FrameOwner owner) =>
        throw new InvalidOperationException($"frame 0x{index + FirstPfn:x} belongs to {actual}, not {expected}: it cannot go to {owner}");

    // Uniform blocks are checked once; mixed ones frame by frame.
    private ulong NextCheck(ulong p, ulong end)
    {
        ulong block = p >> BlockShift;
        if (_mixed[block] is not null)
        {
            return p + 1;
        }

        return Math.Min(end, (block + 1) << BlockShift);
    }

    private void SetWholeBlock(ulong block, ulong frames, FrameOwner owner)
    {
        FrameOwner[]? mixed = _mixed[block];
        if (mixed is not null)
        {
            // A block that once mixed keeps its per-frame array (frames change hands in the same
            // blocks again and again, and a reader may still hold the array): fill it instead.
            for (ulong i = 0; i < frames; i++)
            {
                _counts[(int)mixed[i]]--;
            }

            Array.Fill(mixed, owner, 0, (int)frames);
            _counts[(int)owner] += (long)frames;
            return;
        }

        _counts[(int)_uniform[block]] -= (long)frames;
        _uniform[block] = owner;
        _counts[(int)owner] += (long)frames;
    }

    private void SetInBlock(ulong block, ulong offset, ulong count, FrameOwner owner)
    {
        FrameOwner[]? mixed = _mixed[block];
        if (mixed is null)
        {
            if (_uniform[block] == owner)
            {
                return;
            }

            mixed = new FrameOwner[BlockMask + 1];
            Array.Fill(mixed, _uniform[block]);
            Volatile.Write(ref _mixed[block], mixed);
            MixedBlocks++;
        }

        for (ulong i = offset; i < offset + count; i++)
        {
            _counts[(int)mixed[i]]--;
            mixed[i] = owner;
        }

        _counts[(int)owner] += (long)count;
    }

    // Small enough to inline on every look-up and transfer; the message is built apart.
    private void Check(ulong pfn, ulong count)
    {
        if (pfn - FirstPfn >= Frames || count > Frames - (pfn - FirstPfn))
        {
            ThrowOutside(pfn, count);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private void ThrowOutside(ulong pfn, ulong count) =>
        throw new ArgumentOutOfRangeException(nameof(pfn), $"frames 0x{pfn:x}+{count} are outside the machine's {Frames} frames from pfn 0x{FirstPfn:x}");
}
