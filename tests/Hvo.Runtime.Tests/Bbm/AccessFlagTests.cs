using System.Collections.Generic;
using System.Linq;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.HugeTlb;

namespace Hvo.Runtime.Tests.Bbm;

/// <summary>
/// The arm64 access flag (spec key entry.accessFlag) in the MMU and in the break-before-make
/// checker: an aged entry faults or gets AF set by the hardware; replacing an aged entry is safe
/// only after a flush and only if nobody set AF meanwhile.
/// </summary>
[TestClass]
public sealed class AccessFlagTests
{
    public static IEnumerable<object[]> AccessFlagArchs =>
        ArchRegistry.All.Where(e => e.Info.AccessFlag != 0).Select(e => new object[] { e.Name });

    [TestMethod]
    public void TheArm64SpecsHaveAnAccessFlagAndX86HasNone()
    {
        foreach (ArchEntry e in ArchRegistry.All)
        {
            Assert.AreEqual(e.Info.BreakBeforeMake, e.Info.AccessFlag != 0, e.Name);
            Assert.AreEqual(e.Info.AccessFlag, e.Info.AccessFlag & e.Info.Page.Make, $"{e.Name}: PAGE_KERNEL has AF set");
        }
    }

    [TestMethod]
    [DynamicData(nameof(AccessFlagArchs))]
    public void AnAgedEntryFaultsWithoutHardwareAccessFlagAndIsSetWithIt(string arch) => Archs.Run(arch, new AgedEntryAccess());

    [TestMethod]
    [DynamicData(nameof(AccessFlagArchs))]
    public void TheCheckerAcceptsAMakeOverAFlushedAgedEntryOnly(string arch) => Archs.Run(arch, new AgedEntryChecks());

    /// <summary>A live vmemmap PTE of a fresh huge page, on a machine with the checker on.</summary>
    private static (HvoRig<TArch> Rig, ulong Va, WalkResult Pte) LivePte<TArch>(bool hardwareAccessFlag) where TArch : struct, IPagingArch
    {
        var r = new HvoRig<TArch>(HvoPolicy.Arm64BbmAccessFlag, TArch.HugePageSizes.ToArray().Select(h => h.Size).Where(s => s >= TArch.PageSize * 512).Min(), checkBreakBeforeMake: true, hardwareAccessFlag: hardwareAccessFlag);
        ulong va = r.Machine.StructPageAddress(r.Allocate().HeadPfn) + TArch.PageSize;
        WalkResult w = r.Machine.PageTable.Walk(va);
        if (w.Level < TArch.LastLevel)
        {
            Assert.AreEqual(SplitStatus.Split, r.Machine.PageTable.SplitLeaf(w.Level, va));
            r.Machine.Violations.Clear();
            w = r.Machine.PageTable.Walk(va);
        }

        Assert.AreEqual(TArch.LastLevel, w.Level);
        Assert.AreNotEqual(0UL, w.Entry & TArch.AccessFlag, "PAGE_KERNEL has AF");
        return (r, va, w);
    }

    private sealed class AgedEntryAccess : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            foreach (bool hardware in new[] { false, true })
            {
                (HvoRig<TArch> r, ulong va, WalkResult pte) = LivePte<TArch>(hardware);
                using (r)
                {
                    var ctx = r.Machine.PageTable.Ctx();
                    ulong aged = pte.Entry & ~TArch.AccessFlag;
                    ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, aged, va);
                    ctx.FlushTlbRange(va, va + TArch.PageSize);
                    var b = new byte[8];

                    AccessFault fault = r.Machine.Mmu.Read(1, va, b);

                    ulong now = r.Machine.PageTable.Walk(va).Entry;
                    if (hardware)
                    {
                        Assert.AreEqual(AccessFault.None, fault);
                        Assert.AreEqual(pte.Entry, now, "FEAT_HAFDBS set AF in the descriptor");
                        Assert.AreEqual(1, r.Machine.Mmu.AccessFlagUpdates);
                        Assert.IsTrue(r.Machine.Mmu.TlbReaches(TArch.PfnOf(pte.Level, pte.Entry), out int cpu, out _) && cpu == 1);
                    }
                    else
                    {
                        Assert.AreEqual(AccessFault.AccessFlag, fault);
                        Assert.AreEqual(aged, now, "nothing changed the descriptor");
                        Assert.AreEqual(1, r.Machine.Mmu.AccessFlagFaults);
                        Assert.IsFalse(r.Machine.Mmu.TlbReaches(TArch.PfnOf(pte.Level, pte.Entry), out _, out _), "nothing was cached");
                    }

                    Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
                }
            }

            return true;
        }
    }

    private sealed class AgedEntryChecks : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            // Age, flush, make over the aged value with a cmpxchg: accepted.
            (HvoRig<TArch> r, ulong va, WalkResult pte) = LivePte<TArch>(hardwareAccessFlag: true);
            using (r)
            {
                ulong other = TArch.ToReadOnly(TArch.MakeLeaf(TArch.LastLevel, TArch.PfnOf(pte.Level, pte.Entry) - 1));
                var ctx = r.Machine.PageTable.Ctx();
                ulong aged = pte.Entry & ~TArch.AccessFlag;
                ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, aged, va);
                ctx.FlushTlbRange(va, va + TArch.PageSize);
                Assert.IsTrue(ctx.CompareExchange(pte.Level, pte.TablePfn, pte.Index, aged, other, va));
                Assert.AreEqual(0, r.Machine.Violations.Count, string.Join("\n", r.Machine.Violations.Snapshot()));
            }

            // Age, then make before the flush: a TLB may still hold the young translation.
            (r, va, pte) = LivePte<TArch>(hardwareAccessFlag: true);
            using (r)
            {
                ulong other = TArch.ToReadOnly(TArch.MakeLeaf(TArch.LastLevel, TArch.PfnOf(pte.Level, pte.Entry) - 1));
                var ctx = r.Machine.PageTable.Ctx();
                ulong aged = pte.Entry & ~TArch.AccessFlag;
                ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, aged, va);
                Assert.IsTrue(ctx.CompareExchange(pte.Level, pte.TablePfn, pte.Index, aged, other, va));
                StringAssert.Contains(r.Machine.Violations.Snapshot().Single().Detail, "access flag cleared was replaced before a TLB flush");
            }

            // Age, flush, a reader sets AF (and caches the old frame), then a plain store: a live change.
            (r, va, pte) = LivePte<TArch>(hardwareAccessFlag: true);
            using (r)
            {
                ulong other = TArch.ToReadOnly(TArch.MakeLeaf(TArch.LastLevel, TArch.PfnOf(pte.Level, pte.Entry) - 1));
                var ctx = r.Machine.PageTable.Ctx();
                ulong aged = pte.Entry & ~TArch.AccessFlag;
                ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, pte.Entry, aged, va);
                ctx.FlushTlbRange(va, va + TArch.PageSize);
                Assert.AreEqual(AccessFault.None, r.Machine.Mmu.Read(1, va, new byte[8]));

                Assert.IsFalse(ctx.CompareExchange(pte.Level, pte.TablePfn, pte.Index, aged, other, va), "the cmpxchg sees AF set");
                Assert.AreEqual(0, r.Machine.Violations.Count, "a failed cmpxchg changes nothing");
                ctx.SetEntry(pte.Level, pte.TablePfn, pte.Index, aged, other, va);
                Violation v = r.Machine.Violations.Snapshot().First(x => x.Kind == ViolationKind.BreakBeforeMake);
                Assert.AreEqual(va, v.Address);
                StringAssert.Contains(v.Detail, "changed under the writer");
            }

            return true;
        }
    }
}
