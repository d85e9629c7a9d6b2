using System.Collections.Generic;
using System.Numerics;

namespace Hvo.Memory;

/// <summary>
/// free_pages_prepare's checks of the struct pages of a block about to be freed, made by the
/// layer that has the struct pages (the machine installs one: <c>Vmemmap.FreePageChecks</c>).
/// </summary>
public interface IFreePagesPrepare
{
    /// <summary>
    /// free_pages_prepare for the 2^<paramref name="order"/> frames at <paramref name="pfn"/>: the
    /// number of bad_page reports it made (0: the block may go to the free lists). A compound page
    /// stops being one here, whatever the outcome.
    /// </summary>
    int Prepare(ulong pfn, int order);
}

/// <summary>A block free_pages_prepare kept off the free lists: where, how big, and how many bad_page reports it made.</summary>
public readonly record struct BadPageLeak(ulong Pfn, int Order, int Reports);

public sealed partial class PageAllocator
{
    private readonly List<BadPageLeak> _badPageLeaks = [];

    /// <summary>The struct-page checks of the free path (free_pages_prepare), or null for none.</summary>
    public IFreePagesPrepare? FreeChecks { get; set; }

    /// <summary>Blocks a free gave up on because their struct pages were bad, oldest first: lost to the machine for good.</summary>
    public IReadOnlyList<BadPageLeak> BadPageLeaks
    {
        get
        {
            lock (_lock)
            {
                return [.. _badPageLeaks];
            }
        }
    }

    /// <summary>
    /// free_pages_prepare: true when the block may go to the free lists. When it returns false
    /// (a bad page) __free_pages / free_unref_page just return, and the frames are lost: they
    /// become <see cref="FrameOwner.BadPage"/>, so MemFree never sees them again.
    /// </summary>
    private bool PrepareFree(ulong pfn, ulong frames, FrameOwner owner)
    {
        if (FreeChecks is not { } checks || !BitOperations.IsPow2(frames))
        {
            return true;
        }

        int order = BitOperations.Log2(frames);
        int bad = checks.Prepare(pfn, order);
        if (bad == 0)
        {
            return true;
        }

        lock (_lock)
        {
            Owners.Transfer(pfn, frames, owner, FrameOwner.BadPage);
            _badPageLeaks.Add(new BadPageLeak(pfn, order, bad));
        }

        return false;
    }
}
