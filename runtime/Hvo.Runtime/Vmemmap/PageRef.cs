using System;
using System.Buffers.Binary;
using Hvo.Paging;

namespace Hvo.Vmemmap;

/// <summary>
/// A speculative PFN walker's get_page_unless_zero (compaction, page_idle, ...): it takes a
/// reference on any pfn's struct page without knowing what the page is, and may do so while that
/// page turns into a tail of a huge page whose vmemmap HVO remaps read-only. page_ref_add_unless
/// reads _refcount and, unless it is 0, tries a compare-and-exchange — which, like x86's LOCK
/// CMPXCHG, writes the location even when the compare fails. Split in two so that a test can put
/// another CPU's work between the read and the write, the window of bd225530a4c7. From v6.10 to
/// v7.0 the whole is under rcu_read_lock, and page_count_writable declines a fake head (the head
/// struct page seen through a tail's read-only alias); v7.1 drops both (32c440d67e6c), since a
/// tail's shared struct page always reads refcount 0.
/// </summary>
public static class PageRef<TArch> where TArch : struct, IPagingArch
{
    /// <summary>
    /// The first half: read the refcount. With <paramref name="rcu"/> (bd225530a4c7, v6.10 to v7.0)
    /// under rcu_read_lock, and a fake head counts as 0 (page_count_writable), so nothing is written.
    /// </summary>
    public static SpeculativeRef Begin(Machine<TArch> machine, int cpu, ulong pfn, bool rcu)
    {
        ArgumentNullException.ThrowIfNull(machine);
        if (rcu)
        {
            machine.Rcu.ReadLock(cpu);
        }

        Span<byte> count = stackalloc byte[4];
        ulong page = machine.StructPageAddress(pfn);
        ulong va = page + StructPage.RefcountOffset;
        AccessFault fault = machine.Mmu.Read(cpu, va, count);
        int seen = fault == AccessFault.None ? BinaryPrimitives.ReadInt32LittleEndian(count) : 0;
        if (rcu && seen != 0 && IsFakeHead(machine, cpu, page))
        {
            seen = 0;
        }

        return new SpeculativeRef(cpu, pfn, va, seen, rcu);
    }

    /// <summary>
    /// page_fixed_fake_head: a struct page at the start of a vmemmap page that says PG_head, whose
    /// next struct page's compound_head names another head, is a tail seen through the head's page.
    /// </summary>
    private static bool IsFakeHead(Machine<TArch> machine, int cpu, ulong page)
    {
        if (page % TArch.PageSize != 0)
        {
            return false;
        }

        Span<byte> word = stackalloc byte[8];
        if (machine.Mmu.Read(cpu, page + StructPage.FlagsOffset, word) != AccessFault.None
            || (BinaryPrimitives.ReadUInt64LittleEndian(word) & StructPage.PgHead) == 0
            || machine.Mmu.Read(cpu, page + (ulong)TArch.StructPageBytes + StructPage.CompoundHeadOffset, word) != AccessFault.None)
        {
            return false;
        }

        ulong head = BinaryPrimitives.ReadUInt64LittleEndian(word);
        return (head & 1) != 0 && head - 1 != page;
    }

    /// <summary>
    /// The second half: a refcount read as 0 takes nothing and writes nothing; any other value is
    /// compare-and-exchanged with itself plus one, a locked write whatever the compare finds. A write
    /// the vmemmap's mapping forbids is the kernel's oops, logged as the kernel would print it.
    /// Then rcu_read_unlock. Returns the fault (None when the write was allowed or not tried).
    /// </summary>
    public static AccessFault Finish(Machine<TArch> machine, in SpeculativeRef r)
    {
        ArgumentNullException.ThrowIfNull(machine);
        AccessFault fault = AccessFault.None;
        try
        {
            if (r.Seen == 0)
            {
                return fault;
            }

            Span<byte> now = stackalloc byte[4];
            fault = machine.Mmu.Read(r.Cpu, r.Address, now);
            if (fault == AccessFault.None)
            {
                int current = BinaryPrimitives.ReadInt32LittleEndian(now);
                BinaryPrimitives.WriteInt32LittleEndian(now, current == r.Seen ? current + 1 : current);
                fault = machine.Mmu.Write(r.Cpu, r.Address, now);
            }

            if (fault == AccessFault.WriteProtect)
            {
                machine.Log($"BUG: unable to handle page fault for address: {r.Address:x16}");
                machine.Log("#PF: supervisor write access in kernel mode");
                machine.Log("#PF: error_code(0x0003) - permissions violation");
                machine.Log($"RIP: page_ref_add_unless (speculative get_page_unless_zero of pfn 0x{r.Pfn:x} on CPU {r.Cpu})");
            }

            return fault;
        }
        finally
        {
            if (r.Rcu)
            {
                machine.Rcu.ReadUnlock(r.Cpu);
            }
        }
    }
}

/// <summary>A get_page_unless_zero between its read of _refcount (<paramref name="Seen"/>) and its compare-and-exchange.</summary>
public readonly record struct SpeculativeRef(int Cpu, ulong Pfn, ulong Address, int Seen, bool Rcu);
