using System.Linq;
using Hvo.Arch;
using Hvo.HugeTlb;
using Hvo.Paging;
using Hvo.Runtime.Tests.HugeTlb;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Paging;

/// <summary>
/// The entries a simulated RISC-V and LoongArch kernel writes are the kernel's, bit for bit: the
/// values below are the kernel headers' (arch/riscv/include/asm/pgtable*.h,
/// arch/loongarch/include/asm/pgtable*.h), written out here to check the specs against them.
/// </summary>
[TestClass]
public sealed class KernelEntryFormatTests
{
    private const ulong RiscvPageKernel = 0xe7;          // R | W | V | A | D | G
    private const ulong RiscvPageTable = 0x1;            // _PAGE_TABLE: V only
    private const ulong LoongArchPageKernel = 0x1d3;     // PRESENT | VALID | DIRTY | WRITE | GLOBAL | CC
    private const ulong LoongArchHuge = 0x40 | 0x1000;  // _PAGE_HUGE | _PAGE_HGLOBAL
    private const ulong LoongArchCacheBase = 0x9000000000000000; // CSR_DMW1_BASE

    [TestMethod]
    public void RiscvEntriesHoldTheFrameNumberFromBit10AndHvoMapsTailsPageKernel()
    {
        using var r = new HvoRig<Riscv64_Sv39>(HvoPolicy.V5_18, 2UL << 20);
        HugePage page = r.Allocate();
        ulong va = r.Machine.StructPageAddress(page.HeadPfn);

        // Boot: a PMD leaf (pfn_pmd(pfn, PAGE_KERNEL)) under a pgd table entry (pfn << 10 | _PAGE_TABLE).
        WalkResult pmd = r.Machine.PageTable.Walk(va);
        Assert.AreEqual(Riscv64_Sv39.Levels.Pmd, pmd.Level);
        Assert.AreEqual((Riscv64_Sv39.PfnOf(pmd.Level, pmd.Entry) << 10) | RiscvPageKernel, pmd.Entry);
        WalkResult pgd = r.Machine.PageTable.EntryAt(Riscv64_Sv39.Levels.Pgd, va);
        Assert.AreEqual((pmd.TablePfn << 10) | RiscvPageTable, pgd.Entry);

        r.Optimizer.Optimize(page);

        // After HVO: PTEs split from the block, every tail pointing at the reuse frame with PAGE_KERNEL
        // (no PAGE_KERNEL_RO on RISC-V), the frame number from bit 10.
        var ptes = r.VmemmapPtes(page).ToArray();
        ulong reuse = Riscv64_Sv39.PfnOf(Riscv64_Sv39.LastLevel, ptes[0].Pte.Entry);
        foreach ((ulong _, WalkResult pte) in ptes.Skip(VmemmapReserve.V5_18))
        {
            Assert.AreEqual((reuse << 10) | RiscvPageKernel, pte.Entry);
        }
    }

    [TestMethod]
    public void LoongArchDirectoriesHoldDirectMapAddressesAndEmptyOnesTheInvalidTable()
    {
        using var r = new HvoRig<Loongarch64_16k>(HvoPolicy.V5_18, 32UL << 20);
        HugePage page = r.Allocate();
        KernelPageTable<Loongarch64_16k> pt = r.Machine.PageTable;
        ulong va = r.Machine.StructPageAddress(page.HeadPfn);

        // A huge PMD: pfn_pmd(pfn, PAGE_KERNEL) | _PAGE_HUGE | _PAGE_HGLOBAL; its pgd entry the pmd table's cached address.
        WalkResult pmd = pt.Walk(va);
        Assert.AreEqual(Loongarch64_16k.Levels.Pmd, pmd.Level);
        Assert.AreEqual((Loongarch64_16k.PfnOf(pmd.Level, pmd.Entry) << 14) | LoongArchPageKernel | LoongArchHuge, pmd.Entry);
        Assert.AreEqual(LoongArchCacheBase | (pmd.TablePfn << 14), pt.EntryAt(Loongarch64_16k.Levels.Pgd, va).Entry);

        // Empty entries point at invalid_pmd_table (in the pgd) and invalid_pte_table (in a pmd table): not 0, yet holes.
        ulong invalidPte = pt.InvalidTables[Loongarch64_16k.Levels.Pte - 1], invalidPmd = pt.InvalidTables[Loongarch64_16k.Levels.Pmd - 1];
        ulong unmappedPmd = va + (Loongarch64_16k.LevelSize(Loongarch64_16k.Levels.Pmd) * 1024);
        WalkResult hole = pt.Walk(unmappedPmd);
        Assert.IsFalse(hole.IsLeaf);
        Assert.AreEqual(LoongArchCacheBase | (invalidPte << 14), hole.Entry, "pmd_none: the entry is invalid_pte_table's address");
        WalkResult top = pt.Walk(0xffff800000000000);
        Assert.AreEqual(Loongarch64_16k.Levels.Pgd, top.Level);
        Assert.AreEqual(LoongArchCacheBase | (invalidPmd << 14), top.Entry, "pgd_none: invalid_pmd_table's address");
        Assert.IsTrue(pt.Frames.Table(invalidPte).ToArray().All(e => e == 0), "invalid_pte_table holds empty PTEs");

        r.Optimizer.Optimize(page);

        // The split PTEs: PAGE_KERNEL, and PAGE_KERNEL again on the tails (no PAGE_KERNEL_RO on LoongArch).
        var ptes = r.VmemmapPtes(page).ToArray();
        ulong reuse = Loongarch64_16k.PfnOf(Loongarch64_16k.LastLevel, ptes[0].Pte.Entry);
        Assert.AreEqual(LoongArchCacheBase, pt.EntryAt(Loongarch64_16k.Levels.Pmd, va).Entry & ~Loongarch64_16k.OutputMask, "the pmd now points at a PTE table, by its cached address");
        foreach ((ulong _, WalkResult pte) in ptes.Skip(VmemmapReserve.V5_18))
        {
            Assert.AreEqual((reuse << 14) | LoongArchPageKernel, pte.Entry);
        }
    }
}
