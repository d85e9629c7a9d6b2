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
/// another CPU's work between the read and the write, the window of bd225530a4c7.
/// </summary>
public static class PageRef<TArch> where TArch : struct, IPagingArch
{
    /// <summary>The first half: from v6.10 under rcu_read_lock (<paramref name="rcu"/>), read the refcount.</summary>
    public static SpeculativeRef Begin(Machine<TArch> machine, int cpu, ulong pfn, bool rcu)
    {
        ArgumentNullException.ThrowIfNull(machine);
        if (rcu)
        {
            machine.Rcu.ReadLock(cpu);
        }

        Span<byte> count = stackalloc byte[4];
        ulong va = Machine<TArch>.StructPageAddress(pfn) + StructPage.RefcountOffset;
        AccessFault fault = machine.Mmu.Read(cpu, va, count);
        return new SpeculativeRef(cpu, pfn, va, fault == AccessFault.None ? BinaryPrimitives.ReadInt32LittleEndian(count) : 0, rcu);
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
