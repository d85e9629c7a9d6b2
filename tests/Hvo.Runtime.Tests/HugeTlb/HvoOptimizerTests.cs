using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Tests;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// The kernel's promises for HVO (docs/ARCHITECTURE.md §7.2, §8), for every architecture, every
/// optimizable huge page size and every policy, checked on the struct page bytes and the page
/// table, with strict mode watching every free.
/// </summary>
[TestClass]
public sealed class HvoOptimizerTests
{
    [TestMethod]
    [DynamicData(nameof(HvoCases.SizesAndPolicies), typeof(HvoCases))]
    public void OptimizeFreesWhatTheSpecArithmeticSays(string arch, ulong size, string policy) =>
        Archs.Run(arch, new FreesTheSpecsNumber(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(HvoCases.SizesAndPoliciesCi), typeof(HvoCases))]
    public void StructPagesReadTheSameBeforeOptimizeAfterOptimizeAndAfterRestore(string arch, ulong size, string policy) =>
        Archs.Run(arch, new SameBytes(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [TestCategory("Long")]
    [DynamicData(nameof(HvoCases.SizesAndPoliciesLong), typeof(HvoCases))]
    public void StructPagesReadTheSameOnTheRestOfEachFamily(string arch, ulong size, string policy)
    {
        LongRun.Require("struct pages through optimize and restore on the specs that differ from CI's only in their levels");
        Archs.Run(arch, new SameBytes(size, HvoPolicy.Find(policy)!));
    }

    [TestMethod]
    [DynamicData(nameof(HvoCases.SizesAndPolicies), typeof(HvoCases))]
    public void TailPtesMapTheReuseFrameWithPageKernelRoUntilRestoreGivesDistinctWritableFrames(string arch, ulong size, string policy) =>
        Archs.Run(arch, new TailMappings(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(HvoCases.SizesAndPolicies), typeof(HvoCases))]
    public void FlushesArePerSplitAndPerPageOrTwoPerBatch(string arch, ulong size, string policy) =>
        Archs.Run(arch, new FlushCounts(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(HvoCases.OptimizeFaultCasesCi), typeof(HvoCases))]
    public void OptimizeUnderTheKthAllocationFailingIsAllOrNothing(string arch, ulong size, string policy) =>
        Archs.Run(arch, new OptimizeFaults(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [TestCategory("Long")]
    [DynamicData(nameof(HvoCases.OptimizeFaultCasesLong), typeof(HvoCases))]
    public void OptimizeUnderTheKthAllocationFailingIsAllOrNothingOnTheLargestVmemmaps(string arch, ulong size, string policy)
    {
        LongRun.Require("exhaustive allocation-failure injection for the break-before-make policies on the largest vmemmaps");
        Archs.Run(arch, new OptimizeFaults(size, HvoPolicy.Find(policy)!));
    }

    [TestMethod]
    [DynamicData(nameof(HvoCases.FaultCases), typeof(HvoCases))]
    public void RestoreUnderTheKthAllocationFailingChangesNothing(string arch, ulong size, string policy) =>
        Archs.Run(arch, new RestoreFaults(size, HvoPolicy.Find(policy)!));

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void TheSysctlAffectsOnlyPagesAllocatedAfterIt(string arch) => Archs.Run(arch, new SysctlOnlyAffectsNewPages());

    /// <summary>Vmemmap pages of the page and the ones the policy frees, from the spec's arithmetic.</summary>
    internal static (ulong Pages, ulong Freed) Expected<TArch>(ulong size, HvoPolicy policy) where TArch : struct, IPagingArch
    {
        HugePageVmemmap g = HugePageVmemmap.For(TArch.Info, size);
        return (g.VmemmapPages, g.FreedPages(policy.ReservePages));
    }

    /// <summary>Boot leaves (above the last level) the page's vmemmap lies in: the splits a first optimize makes.</summary>
    internal static int BootLeavesSpanned<TArch>(Machine<TArch> machine, HugePage page) where TArch : struct, IPagingArch
    {
        if (TArch.VmemmapBootLevel == TArch.LastLevel)
        {
            return 0;
        }

        ulong leaf = TArch.LevelSize(TArch.VmemmapBootLevel);
        ulong start = machine.StructPageAddress(page.HeadPfn);
        ulong end = start + (page.Frames * (ulong)TArch.StructPageBytes);
        return (int)(((end + leaf - 1) / leaf) - (start / leaf));
    }

    private sealed class FreesTheSpecsNumber(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size);
            HugePage page = r.Allocate();
            ulong memTotal = r.Machine.MemTotalBytes;
            long bootVmemmap = r.Machine.Owners.Count(FrameOwner.BootVmemmap);

            r.Optimizer.Optimize(page);

            (ulong pages, ulong freed) = Expected<TArch>(size, policy);
            Assert.IsTrue(page.VmemmapOptimized, "HPageVmemmapOptimized");
            HvoCounters c = r.Optimizer.Total;
            Assert.AreEqual((long)freed, c.VmemmapPagesFreed);
            Assert.AreEqual(1, c.OptimizedPages);
            Assert.AreEqual(BootLeavesSpanned(r.Machine, page), (int)c.PmdsSplit);
            Assert.AreEqual(c.PmdsSplit, c.PteTablesAllocated);

            // Boot vmemmap frames go back with free_bootmem_page: MemTotal rises by them (docs/ARCHITECTURE.md §7.3).
            long bootFreed = bootVmemmap - r.Machine.Owners.Count(FrameOwner.BootVmemmap);
            Assert.AreEqual((long)freed + (policy.CopyHead ? 1 : 0), bootFreed, "with a head copy the old head goes too");
            Assert.AreEqual(memTotal + ((ulong)bootFreed << TArch.PageShift), r.Machine.MemTotalBytes);
            Assert.AreEqual(policy.SharedTail ? 1 : 0, c.SharedTailPages, "v7.1: the zone's first page of this order allocates its shared tail");
            Assert.AreEqual((long)(freed * TArch.PageSize) - ((c.PteTablesAllocated + c.SharedTailPages) * (long)TArch.PageSize), c.NetBytesSaved(TArch.PageSize));

            var head = new byte[TArch.StructPageBytes];
            Assert.AreEqual(AccessFault.None, r.Machine.ReadStructPage(0, page.HeadPfn, head));
            Assert.AreNotEqual(0UL, StructPage.Flags(head) & StructPage.PgHugeVmemmapOptimized);
            Assert.IsTrue(r.Machine.OwnersAddUp());
            Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
            Assert.IsTrue(pages > freed);
            return true;
        }
    }

    private sealed class SameBytes(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size);
            HugePage page = r.Allocate();
            byte[] before = r.ReadStructPages(page);
            AssertCompound(r.Machine, page, before, r.Machine.BootVmemmap.CompoundInfoMask);
            Assert.AreEqual(policy.SharedTail, r.Machine.BootVmemmap.CompoundInfoMask, "v7.1's tails hold a mask");

            r.Optimizer.Optimize(page);
            byte[] during = r.ReadStructPages(page);
            r.Optimizer.Restore(page);
            byte[] after = r.ReadStructPages(page);

            CollectionAssert.AreEqual(before, after, "restore gives back every byte");
            int size64 = TArch.StructPageBytes;
            int perPage = r.StructPagesPerPage;
            for (int i = 0; i < (int)page.Frames; i++)
            {
                var was = before.AsSpan(i * size64, size64);
                var now = during.AsSpan(i * size64, size64);
                if (i == 0)
                {
                    Assert.AreEqual(StructPage.Flags(was) | StructPage.PgHugeVmemmapOptimized, StructPage.Flags(now));
                    Assert.IsTrue(was[8..].SequenceEqual(now[8..]));
                    continue;
                }

                int slot = i % perPage;
                bool headPageCopy = policy.FakeHeads && i >= perPage && slot < 3;
                if (!headPageCopy)
                {
                    Assert.IsTrue(was.SequenceEqual(now), $"struct page {i} changed while optimized");
                    continue;
                }

                // v5.18+: a tail vmemmap page shows the head page's first struct pages. At a page boundary
                // that is a fake head, which page_fixed_fake_head resolves through page[1].compound_head.
                if (slot == 0)
                {
                    Assert.AreNotEqual(0UL, StructPage.Flags(now) & StructPage.PgHead, "fake head");
                    ulong realHead = StructPage.CompoundHead(during.AsSpan((i + 1) * size64, size64));
                    Assert.AreEqual(r.Machine.StructPageAddress(page.HeadPfn) | 1, realHead, "page[1] leads to the real head");
                }
            }

            Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
            return true;
        }
    }

    /// <summary>The struct pages of a prepared page: a head, and tails pointing at it, or holding the mask (prep_compound_page).</summary>
    internal static void AssertCompound<TArch>(Machine<TArch> machine, HugePage page, byte[] structPages, bool mask) where TArch : struct, IPagingArch
    {
        int size = TArch.StructPageBytes;
        Assert.AreNotEqual(0UL, StructPage.Flags(structPages.AsSpan(0, size)) & StructPage.PgHead);
        ulong head = machine.StructPageAddress(page.HeadPfn);
        for (int i = 1; i < (int)page.Frames; i += Math.Max(1, (int)page.Frames / 97))
        {
            Assert.AreEqual(StructPage.TailCompoundInfo(head, page.Order, size, mask), StructPage.CompoundHead(structPages.AsSpan(i * size, size)), $"tail {i}");
        }

        Assert.AreEqual(page.Order, structPages[size + StructPage.CompoundOrderOffset]);
    }

    private sealed class TailMappings(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size);
            HugePage page = r.Allocate();
            r.Optimizer.Optimize(page);

            var ptes = r.VmemmapPtes(page).ToArray();
            int kept = policy.ReservePages;
            // The frame the tails map: the last kept page (v5.14..v7.0), or the zone's shared tail page (v7.1).
            ulong reuse = TArch.PfnOf(TArch.LastLevel, ptes[kept - 1].Pte.Entry);
            if (policy.SharedTail)
            {
                Assert.IsTrue(r.Optimizer.TryGetSharedTail(page, out reuse), "v7.1: the zone has a shared tail page for this order");
            }
            for (int i = 0; i < ptes.Length; i++)
            {
                WalkResult pte = ptes[i].Pte;
                Assert.AreEqual(TArch.LastLevel, pte.Level, "split down to PTEs");
                if (i < kept)
                {
                    Assert.IsTrue(TArch.IsWritable(pte.Entry), $"kept page {i} stays writable");
                    continue;
                }

                Assert.AreEqual(reuse, TArch.PfnOf(TArch.LastLevel, pte.Entry), $"tail vmemmap page {i} maps the reuse frame");
                Assert.AreEqual(!TArch.Info.PageKernelRo, TArch.IsWritable(pte.Entry), $"tail vmemmap page {i} is mapped PAGE_KERNEL_RO");
            }

            ulong tailVa = ptes[^1].Va + 64;
            var probe = new byte[8];
            var scribble = new byte[8] { 1, 2, 3, 4, 5, 6, 7, 8 };
            var again = new byte[8];
            Assert.AreEqual(AccessFault.None, r.Machine.Mmu.Read(0, tailVa, probe));
            if (TArch.Info.PageKernelRo)
            {
                // A struct page written through a read-only tail traps and changes nothing.
                Assert.AreEqual(AccessFault.WriteProtect, r.Machine.Mmu.Write(0, tailVa, scribble));
                r.Machine.Mmu.Read(0, tailVa, again);
                CollectionAssert.AreEqual(probe, again);
            }
            else
            {
                // No PAGE_KERNEL_RO (PAGE_KERNEL instead): the write lands on the reuse frame, and every tail shows it.
                Assert.AreEqual(AccessFault.None, r.Machine.Mmu.Write(0, tailVa, scribble));
                r.Machine.Mmu.Read(0, ptes[kept].Va + 64, again);
                CollectionAssert.AreEqual(scribble, again, "the first tail maps the same frame");
                Assert.AreEqual(AccessFault.None, r.Machine.Mmu.Write(0, tailVa, probe));
            }

            Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(page));
            var restored = r.VmemmapPtes(page).Select(p => p.Pte).ToArray();
            Assert.IsTrue(restored.All(p => p.Level == TArch.LastLevel), "no coalescing back to a block");
            Assert.IsTrue(restored.All(p => TArch.IsWritable(p.Entry)));
            Assert.AreEqual(restored.Length, restored.Select(p => TArch.PfnOf(TArch.LastLevel, p.Entry)).Distinct().Count(), "distinct frames");
            Assert.AreEqual(AccessFault.None, r.Machine.Mmu.Write(0, tailVa, probe));
            Assert.IsFalse(page.VmemmapOptimized);
            Assert.AreEqual(0, r.Optimizer.Total.OptimizedPages);
            Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
            return true;
        }
    }

    private sealed class FlushCounts(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size);
            HugePage[] pages = Enumerable.Range(0, 3).Select(_ => r.Allocate()).ToArray();
            r.Optimizer.OptimizeBatch(pages);

            HvoCounters c = r.Optimizer.Total;
            Assert.IsTrue(pages.All(p => p.VmemmapOptimized));
            // Break (or s390's invalidation), flush, make: one flush per split and one per changed entry
            // (the tails, and the head's entry when it moves to a fresh copy); no flush after the walk.
            long changedPerPage = (long)Expected<TArch>(size, policy).Freed + (policy.CopyHead ? 1 : 0);
            bool breaks = policy.RequiredWriter is EntryWriterKind.BreakFlushMake or EntryWriterKind.Invalidate or EntryWriterKind.PauseCpus;
            if (policy.Batched)
            {
                Assert.AreEqual(2, c.TlbFullFlushes, "one after the split pass, one after the remap pass");
                Assert.AreEqual(breaks ? c.PmdsSplit + (pages.Length * changedPerPage) : 0, c.TlbRangeFlushes, "the pause writer's flush per change inside the pause");
            }
            else if (breaks)
            {
                Assert.AreEqual(0, c.TlbFullFlushes);
                Assert.AreEqual(c.PmdsSplit + (pages.Length * changedPerPage), c.TlbRangeFlushes, "one per split, one per changed entry");
            }
            else
            {
                // Direct replacement, and clear-AF + cmpxchg with no reader in the way: the flush after
                // the remap (or after clearing AF) is the page's only one.
                Assert.AreEqual(0, c.TlbFullFlushes);
                Assert.AreEqual(c.PmdsSplit + pages.Length, c.TlbRangeFlushes, "one per split, one per page");
            }

            Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
            return true;
        }
    }

    /// <summary>What a page's vmemmap maps: (frame, writable) per vmemmap page.</summary>
    private static (ulong Pfn, bool Writable)[] Mapping<TArch>(HvoRig<TArch> r, HugePage page) where TArch : struct, IPagingArch =>
        r.VmemmapPtes(page).Select(p =>
        {
            Assert.IsTrue(p.Pte.IsLeaf);
            ulong pfn = TArch.PfnOf(p.Pte.Level, p.Pte.Entry) + ((p.Va & (TArch.LevelSize(p.Pte.Level) - 1)) >> TArch.PageShift);
            return (pfn, TArch.IsWritable(p.Pte.Entry));
        }).ToArray();

    private sealed class OptimizeFaults(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            long allocations;
            using (var probe = new HvoRig<TArch>(policy, size))
            {
                HugePage page = probe.Allocate();
                long before = probe.Machine.Faults.Calls;
                probe.Optimizer.Optimize(page);
                allocations = probe.Machine.Faults.Calls - before;
            }

            Assert.IsTrue(allocations >= (TArch.VmemmapBootLevel < TArch.LastLevel ? 1 : 0) + (policy.CopyHead ? 1 : 0), "the operation allocates");
            for (long k = 1; k <= allocations; k++)
            {
                using var r = new HvoRig<TArch>(policy, size);
                HugePage page = r.Allocate();
                byte[] bytes = r.ReadStructPages(page);
                var mapping = Mapping(r, page);
                long tables = r.Machine.Owners.Count(FrameOwner.PageTable);

                r.Machine.Faults.FailNth(k);
                r.Optimizer.Optimize(page);

                HvoCounters c = r.Optimizer.Total;
                Assert.AreEqual(c.OptimizedPages == 1, page.VmemmapOptimized, $"k={k}: flag and counters agree");
                var now = Mapping(r, page);
                if (page.VmemmapOptimized)
                {
                    Assert.IsTrue(c.HeadCopyFailures == 1 && c.OptimizeFailures == 0, $"k={k}: only the head copy may fail without stopping HVO");
                    Assert.IsTrue(now.Skip(policy.ReservePages).All(m => !m.Writable));
                }
                else
                {
                    Assert.AreEqual(1, c.OptimizeFailures, $"k={k}: counted as an ENOMEM");
                    Assert.IsTrue(now.All(m => m.Writable), $"k={k}: fully backed again");
                    Assert.AreEqual(now.Length, now.Select(m => m.Pfn).Distinct().Count(), $"k={k}: every vmemmap page has a frame of its own");
                    CollectionAssert.AreEqual(bytes, r.ReadStructPages(page), $"k={k}: same struct pages");
                }

                // Nothing leaked: a frame that left the mapping was freed; split tables stay.
                foreach ((ulong pfn, _) in mapping.Except(now))
                {
                    if (!now.Any(m => m.Pfn == pfn))
                    {
                        Assert.AreEqual(FrameOwner.Free, r.Machine.Owners[pfn], $"k={k}: frame 0x{pfn:x} left the vmemmap and must be free");
                    }
                }

                foreach ((ulong pfn, _) in now)
                {
                    FrameOwner o = r.Machine.Owners[pfn];
                    Assert.IsTrue(o is FrameOwner.BootVmemmap or FrameOwner.RuntimeVmemmap, $"k={k}: mapped frame 0x{pfn:x} is {o}");
                }

                Assert.AreEqual(tables + c.PteTablesAllocated, r.Machine.Owners.Count(FrameOwner.PageTable), $"k={k}: splits so far stay");
                // v7.1's shared tail page stays in its zone once allocated (vmemmap_get_tail), mapped or not.
                Assert.AreEqual(r.Machine.Owners.Count(FrameOwner.RuntimeVmemmap), now.Where(m => r.Machine.Owners[m.Pfn] == FrameOwner.RuntimeVmemmap).Select(m => m.Pfn).Union(r.Optimizer.SharedTailFrames).Count(),
                    $"k={k}: every runtime vmemmap frame is mapped, or is a zone's shared tail page");
                Assert.IsTrue(r.Machine.OwnersAddUp());
                Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
            }

            return true;
        }
    }

    private sealed class RestoreFaults(ulong size, HvoPolicy policy) : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            using var r = new HvoRig<TArch>(policy, size);
            HugePage page = r.Allocate();
            r.Optimizer.Optimize(page);
            Assert.IsTrue(page.VmemmapOptimized);
            var mapping = Mapping(r, page);
            long runtime = r.Machine.Owners.Count(FrameOwner.RuntimeVmemmap);
            long free = r.Machine.Owners.Count(FrameOwner.Free);
            long allocations = (long)Expected<TArch>(size, policy).Freed;

            // Restore asks for one page per freed vmemmap page: fail each of them in turn.
            for (long k = 1; k <= allocations; k++)
            {
                r.Machine.Faults.FailNth(k);
                Assert.AreEqual(RestoreResult.NoMemory, r.Optimizer.Restore(page), $"k={k}");
                Assert.IsTrue(page.VmemmapOptimized, $"k={k}: still optimized");
                Assert.AreEqual(k, r.Optimizer.Total.RestoreFailures);
                Assert.IsTrue(mapping.AsSpan().SequenceEqual(Mapping(r, page)), $"k={k}: mapping untouched");
                Assert.AreEqual(runtime, r.Machine.Owners.Count(FrameOwner.RuntimeVmemmap), $"k={k}: all or nothing");
                Assert.AreEqual(free, r.Machine.Owners.Count(FrameOwner.Free), $"k={k}: nothing leaked");
            }

            Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(page));
            Assert.AreEqual((long)Expected<TArch>(size, policy).Freed, r.Optimizer.Total.VmemmapPagesRestored);
            Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
            return true;
        }
    }

    private sealed class SysctlOnlyAffectsNewPages : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            HugePageSizeInfo smallest = TArch.HugePageSizes.ToArray()
                .Where(h => HugePageVmemmap.For(TArch.Info, h.Size).IsOptimizable(HvoPolicy.Newest.ReservePages))
                .OrderBy(h => h.Size).First();
            using var r = new HvoRig<TArch>(HvoPolicy.Newest, smallest.Size);
            HugePage early = r.Allocate();
            r.Optimizer.Optimize(early);
            r.Optimizer.Switches.Sysctl = false;

            HugePage late = r.Allocate();
            r.Optimizer.Optimize(late);

            Assert.IsTrue(early.VmemmapOptimized);
            Assert.IsFalse(late.VmemmapOptimized, "echo 0 > /proc/sys/vm/hugetlb_optimize_vmemmap");
            Assert.AreEqual(RestoreResult.Ok, r.Optimizer.Restore(early), "pages optimized earlier are still restored");
            Assert.IsFalse(early.VmemmapOptimized);
            return true;
        }
    }
}
