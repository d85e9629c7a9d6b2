namespace Hvo.HugeTlb;

/// <summary>The errno a sysfs / procfs write of the pool returns.</summary>
public enum HugeTlbStatus
{
    /// <summary>The write succeeded (it may have done less than asked: read the counts back).</summary>
    Ok,

    /// <summary>-ENOMEM: demote could not restore the page's vmemmap; the page stays in the pool.</summary>
    NoMemory,

    /// <summary>-EINVAL: not a thing this hstate does (demote with no smaller size, overcommit of gigantic pages).</summary>
    Invalid,

    /// <summary>-EBUSY: no free page could be demoted.</summary>
    Busy,
}

/// <summary>
/// What one write of nr_hugepages did (set_max_huge_pages). The write itself always succeeds;
/// <see cref="Persistent"/> is the count it achieved (max_huge_pages), which
/// /proc/sys/vm/nr_hugepages reads back.
/// </summary>
/// <param name="Requested">The count written (for a per-node file, as written, before the kernel adds the other nodes' pages).</param>
/// <param name="Allocated">Fresh huge pages allocated and added to the pool.</param>
/// <param name="Freed">Pages given back to the page allocator.</param>
/// <param name="SurplusMadePersistent">Surplus pages turned persistent without allocating (adjust_pool_surplus -1).</param>
/// <param name="PersistentMadeSurplus">Pages in use turned surplus, to be freed when released (adjust_pool_surplus +1).</param>
/// <param name="RestoreFailures">Pages whose vmemmap restore failed: they stay in the pool as surplus.</param>
/// <param name="Persistent">persistent_huge_pages after the write.</param>
/// <param name="Interrupted">Growth stopped for a pending signal (Ctrl-C) before the count was reached.</param>
public readonly record struct PoolResize(
    ulong Requested,
    ulong Allocated,
    ulong Freed,
    ulong SurplusMadePersistent,
    ulong PersistentMadeSurplus,
    ulong RestoreFailures,
    ulong Persistent,
    bool Interrupted = false);

/// <summary>What a write of the demote file did: pages demoted before it stopped, and its errno.</summary>
public readonly record struct DemoteResult(ulong Demoted, HugeTlbStatus Status);
