using System.Linq;
using Hvo.HugeTlb;
using Hvo.Memory;
using Hvo.Paging;

namespace Hvo.Runtime.Tests.HugeTlb;

/// <summary>
/// docs/ARCHITECTURE.md §7.3 with NUMA: a huge page's vmemmap savings and its restore allocations belong to
/// the page's node; the PTE tables of splits come from the node of the CPU doing the work.
/// </summary>
[TestClass]
public sealed class NumaAttributionTests
{
    [TestMethod]
    public void SavingsAndRestoresBelongToThePagesNodeAndSplitTablesToTheWorkingCpus()
    {
        using var m = Machine<Arch.X86_64>.Boot(new MachineConfig { MemoryBytes = 8UL << 30, Nodes = 2, Cpus = 2, Strict = true });
        var hvo = new HvoOptimizer<Arch.X86_64>(m, HvoPolicy.V5_18);
        Assert.IsTrue(m.Pages.TryAllocPages(0, 9, Gfp.ThisNode, AllocSite.HugePage, FrameOwner.HugePage, out ulong pfn));
        var page = new HugePage(pfn, 9, node: 0, fromBoot: false);
        m.Compounds.Prep(page);
        m.CurrentCpu = 1; // on node 1
        long node0Free = TestMachines.NodeFreePages(m, 0);
        long node1Free = TestMachines.NodeFreePages(m, 1);

        hvo.Optimize(page);

        ulong freed = hvo.Geometry(9).Freed;
        Assert.AreEqual((long)freed, hvo.For(9, 0).VmemmapPagesFreed, "savings counted on the page's node");
        Assert.AreEqual(0, hvo.For(9, 1).VmemmapPagesFreed);
        Assert.AreEqual(node0Free + (long)freed, TestMachines.NodeFreePages(m, 0), "the freed vmemmap pages were node 0's");
        Assert.AreEqual(node1Free - hvo.Total.PteTablesAllocated, TestMachines.NodeFreePages(m, 1), "the split's table came from CPU 1's node");
        WalkResult pte = m.PageTable.Walk(m.StructPageAddress(pfn));
        Assert.AreEqual(1, m.Layout.NodeOf(pte.TablePfn));

        m.CurrentCpu = 0;
        node0Free = TestMachines.NodeFreePages(m, 0);
        node1Free = TestMachines.NodeFreePages(m, 1);
        Assert.AreEqual(RestoreResult.Ok, hvo.Restore(page));

        Assert.AreEqual(node0Free - (long)freed, TestMachines.NodeFreePages(m, 0), "restore allocates on the page's node (__GFP_THISNODE)");
        Assert.AreEqual(node1Free, TestMachines.NodeFreePages(m, 1));
        Assert.AreEqual((long)freed, hvo.For(9, 0).VmemmapPagesRestored);
        var frames = Enumerable.Range(1, (int)freed).Select(i => m.PageTable.Walk(m.StructPageAddress(pfn) + ((ulong)i << 12)));
        Assert.IsTrue(frames.All(w => m.Layout.NodeOf(Arch.X86_64.PfnOf(w.Level, w.Entry)) == 0));
    }
}
