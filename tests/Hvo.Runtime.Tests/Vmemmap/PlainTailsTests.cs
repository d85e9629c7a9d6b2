using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Vmemmap;

/// <summary>
/// <see cref="BootVmemmap{TArch}.TryGetPlainTails"/> is what lets a restore know a copy equal to its
/// target without producing either (Machine.CopyFrame): wherever it names the same plain tails for
/// a page (after reset_struct_pages' reset) and for a target page, the bytes are the same, and it
/// never names a page with a head or a folio field in it.
/// </summary>
[TestClass]
public sealed class PlainTailsTests
{
    /// <summary>Every layout of the records: the seed's, the reset (v5.18), page[3]'s hugetlb fields (v6.15), compound_info as a mask (v7.1).</summary>
    public static IEnumerable<object[]> Policies => new[] { "v5.14", "v5.18", "v6.15", "v7.1" }.Select(p => new object[] { p });

    [TestMethod]
    [DynamicData(nameof(Policies))]
    public void TheSamePlainTailsAreTheSameBytes(string policyName)
    {
        HvoPolicy policy = HvoPolicy.Find(policyName)!;
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 1UL << 30 });
        _ = new HvoOptimizer<Arch.X86_64>(m, policy); // lays out every compound page's records as the policy's kernel does
        int size = Arch.X86_64.StructPageBytes;
        int page = (int)Arch.X86_64.PageSize;
        var vas = new List<ulong>();
        foreach (int order in new[] { 9, 9, 2 }) // two 2 MiB pages and a small compound page (its records share a vmemmap page with others)
        {
            Assert.IsTrue(m.Pages.TryAllocPages(0, order, Gfp.Comp, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));
            var huge = new HugePage(pfn, order, 0, fromBoot: false);
            m.Compounds.Prep(huge);
            ulong first = m.StructPageAddress(pfn) & ~((ulong)page - 1);
            for (ulong va = first; va < m.StructPageAddress(pfn + huge.Frames); va += (ulong)page)
            {
                vas.Add(va);
            }
        }

        var source = new byte[page];
        var target = new byte[page];
        int same = 0, claimed = 0;
        foreach (ulong from in vas)
        {
            foreach (int reset in new[] { 0, 1, 2, 3, 4 })
            {
                m.BootVmemmap.FillStructPages(from, source);
                for (int i = 0; i < reset; i++)
                {
                    source.AsSpan(reset * size, size).CopyTo(source.AsSpan(i * size, size)); // reset_struct_pages
                }

                bool plain = m.BootVmemmap.TryGetPlainTails(from, reset, out PlainTails copied);
                if (plain)
                {
                    Assert.IsTrue(Enumerable.Range(1, page / size - 1).All(i => source.AsSpan(i * size, size).SequenceEqual(source.AsSpan(0, size))),
                        $"0x{from:x} reset {reset}: named plain tails, but its records differ");
                }

                foreach (ulong to in vas)
                {
                    m.BootVmemmap.FillStructPages(to, target);
                    bool equal = source.AsSpan().SequenceEqual(target);
                    same += equal ? 1 : 0;
                    if (plain && m.BootVmemmap.TryGetPlainTails(to, 0, out PlainTails tails) && tails == copied)
                    {
                        claimed++;
                        Assert.IsTrue(equal, $"0x{from:x} reset {reset} and 0x{to:x} are named the same plain tails {tails} but differ");
                    }
                }
            }
        }

        Assert.IsTrue(claimed > 0, "some page is named equal to another: the shortcut is used");
        Assert.IsTrue(claimed < same, "and not for every equal pair (a head page copied over itself, another compound page's tails)");
        ulong head = vas[0];
        Assert.IsFalse(m.BootVmemmap.TryGetPlainTails(head, 0, out _), "a page holding the head is not plain tails");
        Assert.AreEqual(policy.ResetStructPagesOnRestore, m.BootVmemmap.TryGetPlainTails(head, policy.ResetStructPagesOnRestore ? policy.NrResetStructPage : 0, out _),
            "a head page reset as the policy's restore resets it holds plain tails only");
    }
}
