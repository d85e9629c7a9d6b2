using System;
using System.Linq;
using Hvo.Lib;
using Hvo.Memory;
using Hvo.Paging;
using Hvo.Runtime.Tests.Cli;
using Hvo.Runtime.Tests.Scenario;
using Hvo.Scenario;
using Hvo.Vmemmap;

namespace Hvo.Runtime.Tests.Machine;

/// <summary>
/// RAM that starts above pfn 0 (spec key ramBase, <see cref="MachineConfig.RamBase"/>, the boot line's
/// mem=SIZE@START, simulate's --ram-base): pfns are physical, and the vmemmap holds RAM's first struct
/// page at VMEMMAP_START where the spec offsets it by the RAM base (RISC-V phys_ram_base, arm64
/// memstart_addr), at VMEMMAP_START + pfn * sizeof(struct page) where it does not (x86-64, LoongArch).
/// </summary>
[TestClass]
public sealed class RamBaseTests
{
    private const ulong GiB = 1UL << 30;

    [TestMethod]
    [DynamicData(nameof(Archs.All), typeof(Archs))]
    public void RamOneGiBAboveTheSpecsBaseIsWhereTheMachinesFramesAndStructPagesAre(string arch) => Archs.Run(arch, new RamAbove());

    [TestMethod]
    public void ARiscvMachineStartsItsRamAndItsVmemmapAt0x80000000()
    {
        using var m = Machine<Hvo.Arch.Riscv64_Sv39>.Boot(new MachineConfig { MemoryBytes = 2 * GiB });

        Assert.AreEqual(0x80000UL, m.Layout.FirstPfn, "CONFIG_PHYS_RAM_BASE 0x80000000");
        Assert.AreEqual(0xffffffc500000000UL, m.StructPageAddress(0x80000), "vmemmap = VMEMMAP_START - (phys_ram_base >> PAGE_SHIFT)");
        Assert.AreEqual(FrameOwner.Reserved, m.Owners[0x80000], "firmware (OpenSBI) at the start of RAM");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => _ = m.Owners[0x7ffff], "below RAM there are no frames");
    }

    [TestMethod]
    public void BootLineMemAtStartSaysWhereRamStarts()
    {
        ArchInfo riscv = Archs.Get("riscv64-sv39").Info;
        BootLine boot = BootLine.Resolve(ScriptParser.Parse("boot mem=16G@0x40000000", "t.hvo"), riscv, GiB);

        Assert.AreEqual(16 * GiB, boot.MemoryBytes);
        Assert.AreEqual(0x40000000UL, boot.RamBase);
        Assert.AreEqual(0x40000000UL, boot.Config(strict: false).RamBase);
        Assert.IsNull(BootLine.Resolve(ScriptParser.Parse("boot mem=16G", "t.hvo"), riscv, GiB).RamBase, "without @ the spec's base");

        ScriptError bad = Assert.ThrowsExactly<ScriptError>(() => ScriptParser.Parse("boot mem=16G@later", "t.hvo"));
        StringAssert.StartsWith(bad.Message, "t.hvo:1:14: mem=16G@later: 'later' is not where RAM starts");
    }

    [TestMethod]
    public void RamOffASectionIsRefusedBySimulateAndTheBootLineAlike()
    {
        ArchInfo riscv = Archs.Get("riscv64-sv39").Info;
        string? why = MachineSize.Check(riscv, 4 * GiB, 1, ramBase: 0x80100000);
        Assert.IsNotNull(why);
        StringAssert.Contains(why, "does not start on a 128 MiB memory section");

        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--arch", "riscv64-sv39", "--memory", "4G", "--ram-base", "0x80100000"), "128 MiB memory section");
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => ScenarioHarness.Run("riscv64-sv39", "boot mem=4G@0x80100000"));
        Assert.AreEqual($"test.hvo:1:6: mem=4G@0x80100000 {why}", e.Message);
    }

    [TestMethod]
    public void AMachineBeyondTheVmemmapIsRefusedWithBothSizes()
    {
        // x86-64's vmemmap describes pfns from 0 up to 2^46 bytes: RAM from 32 TiB leaves room for 32 TiB.
        ArchInfo x86 = Archs.Get("x86_64").Info;
        ulong start = 32UL << 40;
        string? why = MachineSize.Check(x86, 48UL << 40, 1, ramBase: start);
        Assert.AreEqual($"is more than x86_64's vmemmap can describe for RAM from 0x{start:x} (32T)", why);
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--memory", "48T", "--ram-base", "32T"), $"--memory: 48T {why}");

        // Offset by its RAM base, RISC-V Sv39's 4 GiB vmemmap describes 256 GiB wherever RAM starts.
        ArchInfo riscv = Archs.Get("riscv64-sv39").Info;
        Assert.AreEqual(256 * GiB, riscv.DescribableBytes(riscv.RamBase));
        Assert.AreEqual(256 * GiB, riscv.DescribableBytes(64 * GiB));
        CliRun.AssertUsageError(CliRun.InProcess("simulate", "--arch", "riscv64-sv39", "--memory", "512G"), "--memory: 512G is more than riscv64-sv39's vmemmap can describe for RAM from 0x80000000 (256G)");
    }

    [TestMethod]
    public void SimulateRamBaseBootsTheMachineThere()
    {
        var (exit, output, err) = CliRun.InProcess("simulate", "--arch", "riscv64-sv39", "--memory", "4G", "--ram-base", "0x100000000", "--hugepages", "2M:64", "--json");

        Assert.AreEqual(0, exit, err);
        using var json = System.Text.Json.JsonDocument.Parse(output);
        ulong freed = HugePageVmemmap.For(Archs.Get("riscv64-sv39").Info, 2UL << 20).FreedPages(VmemmapReserve.V5_18);
        Assert.AreEqual((long)(64 * freed), json.RootElement.GetProperty("hvo").GetProperty("vmemmapPagesFreed").GetInt64());
    }

    private sealed class RamAbove : IArchVisitor<bool>
    {
        public bool Visit<TArch>() where TArch : struct, IPagingArch
        {
            ArchInfo a = TArch.Info;
            ulong ramBase = a.RamBase + GiB;
            using var m = Machine<TArch>.Boot(new MachineConfig { MemoryBytes = 2 * GiB, RamBase = ramBase });
            Assert.AreEqual(ramBase >> TArch.PageShift, m.Layout.FirstPfn);
            Assert.AreEqual(m.Layout.FirstPfn, m.Layout.NodeStart(0));

            ulong first = m.Layout.FirstPfn;
            ulong expected = TArch.VmemmapStart + (a.VmemmapOffsetByRamBase ? 0 : first * (ulong)TArch.StructPageBytes);
            Assert.AreEqual(expected, m.StructPageAddress(first), "RAM's first struct page");

            // Every frame a leaf of the vmemmap maps is RAM, and struct pages read as boot wrote them.
            var page = new byte[TArch.StructPageBytes];
            for (ulong pfn = first; pfn < m.Layout.EndPfn; pfn += m.Layout.Frames / 16)
            {
                Assert.IsTrue(m.PageTable.TryTranslate(m.StructPageAddress(pfn), out ulong pa), $"pfn 0x{pfn:x}");
                Assert.IsTrue(pa >> TArch.PageShift >= first && pa >> TArch.PageShift < m.Layout.EndPfn, "the vmemmap lives in RAM");
                Assert.AreEqual(AccessFault.None, m.ReadStructPage(0, pfn, page));
                Assert.AreEqual(m.Layout.ZoneOf(pfn), StructPage.Zone(page));
            }

            Assert.IsTrue(m.OwnersAddUp());
            Assert.AreEqual(FrameOwner.Reserved, m.Owners[first], "firmware at the start of RAM");
            return true;
        }
    }
}
