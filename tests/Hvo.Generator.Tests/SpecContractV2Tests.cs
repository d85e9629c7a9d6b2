using System;
using System.Linq;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Tests.Harness;
using Microsoft.CodeAnalysis;

namespace Hvo.Generator.Tests;

/// <summary>
/// The keys specs/README.md added for RISC-V and LoongArch: a frame number that starts below the page
/// offset (entry.pfn.lo), kinds told apart by any of several bits (entry.kinds.*.any), empty entries
/// that point at shared tables (entry.empty), no PAGE_KERNEL_RO (entry.readOnly.pageKernelRo), RAM
/// above 0 (ramBase, vmemmap.offsetByRamBase) and mainline's HVO (mainlineHvo). Each misuse is one
/// located diagnostic.
/// </summary>
[TestClass]
public sealed class SpecContractV2Tests
{
    private static readonly SpecAssert s_riscv = new("riscv64-sv39.json", "Riscv64_Sv39.g.cs");
    private static readonly SpecAssert s_loongarch = new("loongarch64-4k.json", "Loongarch64_4k.g.cs");
    private static readonly SpecAssert s_x86 = new("x86_64.json", "X86_64.g.cs");

    [TestMethod]
    public void AFrameNumberFromBit10_GeneratesShiftsBy10AndBlockMasksAlignedInFrameNumbers()
    {
        GeneratorRun run = s_riscv.Run(new SpecEdit(s_riscv.Original, 0));

        Assert.IsEmpty(run.Diagnostics, string.Join(Environment.NewLine, run.Diagnostics));
        string code = run.Sources["Riscv64_Sv39.g.cs"];
        StringAssert.Contains(code, "0 => 0x1UL | ((tablePfn << 10) & OutputMask),");
        StringAssert.Contains(code, ": LeafOutputMask(level))) >> 10;");

        // A 2 MiB leaf clears 9 frame-number bits from bit 10 (PPN[0]), a 1 GiB one 18: bits 19 and 28 up.
        StringAssert.Contains(code, "1 => 0xe7UL | ((pfn << 10) & 0x3ffffffff80000UL),");
        StringAssert.Contains(code, "0 => 0xe7UL | ((pfn << 10) & 0x3ffffff0000000UL),");
    }

    [TestMethod]
    public void HVO007_FrameNumberFieldThatEndsBelowItsStart_PointsAtHi()
    {
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"pfn\": { \"lo\": 10, \"hi\": 53 }", "53", "9");

        s_riscv.ReportsOnly(DiagnosticDescriptors.PfnFieldOutOfRange, edit, "the bit that holds frame-number bit 0");
    }

    [TestMethod]
    public void HVO007_FrameNumberFieldWiderThanAnAddressHolds_PointsAtHi()
    {
        // 54 bits of frame number above 12 of page offset: a 66-bit physical address.
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"pfn\": { \"lo\": 10, \"hi\": 53 }", "53", "63");

        s_riscv.ReportsOnly(DiagnosticDescriptors.PfnFieldOutOfRange, edit, "66-bit physical address; use hi at most 61");
    }

    [TestMethod]
    public void HVO009_AnyBitsThatTheMaskFixes_PointAtAny()
    {
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"block\": { \"mask\": \"0x1\", \"value\": \"0x1\", \"any\": \"0xe\"", "\"0xe\"", "\"0xf\"");

        s_riscv.ReportsOnly(DiagnosticDescriptors.AmbiguousKinds, edit, "shares bits 0x1 with its mask");
    }

    [TestMethod]
    public void HVO008_AnyBitsInsideTheFrameNumber_PointAtAny()
    {
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"page\": { \"mask\": \"0x1\", \"value\": \"0x1\", \"any\": \"0xe\"", "\"0xe\"", "\"0x40e\"");

        s_riscv.ReportsOnly(DiagnosticDescriptors.PfnFieldOverlap, edit, "entry.kinds.page.any");
    }

    [TestMethod]
    public void HVO009_AMakeWithNoneOfItsAnyBits_PointsAtMake()
    {
        // PAGE_KERNEL without R, W or X: a pointer to a table, not a page.
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"page\": { \"mask\": \"0x1\", \"value\": \"0x1\", \"any\": \"0xe\", \"make\": \"0xe7\" }", "\"0xe7\" }", "\"0xe1\" }");

        s_riscv.ReportsOnly(DiagnosticDescriptors.AmbiguousKinds, edit, "it sets none of the bits of any (0xe)");
    }

    [TestMethod]
    public void HVO009_ABlockWithoutAnyIsAlsoATable_PointsAtTheBlockMask()
    {
        // Valid alone does not tell a RISC-V leaf from a table: R, W or X must be set.
        SpecEdit replaced = SpecEdit.Replace(s_riscv.Original, "\"block\": { \"mask\": \"0x1\", \"value\": \"0x1\", \"any\": \"0xe\", \"make\": \"0xe7\" }", ", \"any\": \"0xe\"", string.Empty);
        SpecEdit edit = replaced.At(replaced.Text.IndexOf("\"0x1\"", replaced.Text.IndexOf("\"block\": { \"mask\": ", StringComparison.Ordinal), StringComparison.Ordinal));

        s_riscv.ReportsOnly(DiagnosticDescriptors.AmbiguousKinds, edit, "can be both a table");
    }

    [TestMethod]
    public void HVO008_ABlockBitBelowItsAlignmentIsFreeButNotInAPage()
    {
        // LoongArch's _PAGE_HGLOBAL (bit 12) is frame-number bit 0 of a 4 KiB page: free in a 2 MiB
        // huge PMD (the shipped spec builds), part of the frame in a page.
        Assert.IsEmpty(s_loongarch.Run(new SpecEdit(s_loongarch.Original, 0)).Diagnostics);
        SpecEdit edit = SpecEdit.Replace(s_loongarch.Original, "\"page\": { \"mask\": \"0x1\", \"value\": \"0x1\", \"make\": \"0x1d3\" }", "\"0x1d3\" }", "\"0x11d3\" }");

        s_loongarch.ReportsOnly(DiagnosticDescriptors.PfnFieldOverlap, edit, "entry.kinds.page.make 0x11d3 uses bits 0x1000");
    }

    [TestMethod]
    public void EmptyInvalidTable_GeneratesAWalkThatTakesTheSharedTableForAHole()
    {
        GeneratorRun run = s_loongarch.Run(new SpecEdit(s_loongarch.Original, 0));

        string code = run.Sources["Loongarch64_4k.g.cs"];
        StringAssert.Contains(code, "ulong none = ctx.EmptyEntry(2);");
        StringAssert.Contains(code, "if ((entry & TableMask) == TableValue && entry != none)");
        string x86 = s_x86.Run(new SpecEdit(s_x86.Original, 0)).Sources["X86_64.g.cs"];
        Assert.IsFalse(x86.Contains("ctx.EmptyEntry", StringComparison.Ordinal), "a spec without entry.empty walks as before");
    }

    [TestMethod]
    public void HVO004_AnEmptyEntryOfAnUnknownKind_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(s_loongarch.Original, "\"empty\": \"invalidTable\"", "\"invalidTable\"", "\"invalid\"");

        s_loongarch.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "\"invalid\" is not a kind of empty entry");
    }

    [TestMethod]
    public void HVO004_PageKernelRoThatIsNoBool_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"pageKernelRo\": false", "false", "\"no\"");

        s_riscv.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "entry.readOnly.pageKernelRo");
    }

    [TestMethod]
    public void HVO004_RamBaseOffASectionBoundary_PointsAtTheRamBase()
    {
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"ramBase\": \"0x80000000\"", "\"0x80000000\"", "\"0x80100000\"");

        s_riscv.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "is not a multiple of the 128M memory section");
    }

    [TestMethod]
    public void HVO012_RamAboveWhatAVmemmapFromPfn0Describes_PointsAtTheRamBase()
    {
        // x86-64's vmemmap starts at pfn 0 and describes 2^46 bytes (MAX_PHYSMEM_BITS): RAM at 64 TiB is beyond it.
        SpecEdit inserted = SpecEdit.InsertAfter(s_x86.Original, "\"vaBits\": 48,", "\n  \"ramBase\": \"64TiB\",");
        SpecEdit edit = inserted.At(inserted.Text.IndexOf("\"64TiB\"", StringComparison.Ordinal));

        s_x86.ReportsOnly(DiagnosticDescriptors.VmemmapTooSmall, edit, "lies above the 2^46 bytes of physical memory the vmemmap describes from pfn 0");
    }

    [TestMethod]
    public void HVO012_AVmemmapTooSmallForTheMemoryItDeclares_IsAnErrorAtTheSize()
    {
        // Sv39 declares 2^38 bytes of RAM (linearMapBits): 4 GiB of struct pages, not 2.
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"size\": \"4GiB\"", "\"4GiB\"", "\"2GiB\"");

        GeneratorRun run = s_riscv.ReportsOnly(DiagnosticDescriptors.VmemmapTooSmall, edit, "need 4G of 64-byte struct pages");
        Assert.AreEqual(DiagnosticSeverity.Error, run.Diagnostics.Single().Severity, "a build error, not a warning");
    }

    [TestMethod]
    [DataRow("\"6.4\"", "is not a mainline release")]
    [DataRow("\"v6.4-rc1\"", "is not a mainline release")]
    public void HVO004_AMainlineReleaseNotWrittenAsTheKernelTagsIt_PointsAtTheValue(string value, string message)
    {
        SpecEdit edit = SpecEdit.Replace(s_riscv.Original, "\"mainlineHvo\": { \"since\": \"v6.4\" }", "\"v6.4\"", value);

        s_riscv.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, message);
    }

    [TestMethod]
    [DataRow("\"3GiB\"", "\"3000MiB\"", "is not a multiple of the 128M memory section")]
    [DataRow("\"4GiB\"", "\"3GiB\"", "is not above start")]
    public void HVO004_ARamHoleOffASectionOrUpsideDown_PointsAtTheValue(string key, string value, string message)
    {
        const string Hole = "\"ramHole\": { \"start\": \"3GiB\", \"end\": \"4GiB\", \"from\": \"3584MiB\" }";
        string field = key == "\"3GiB\"" ? "\"start\": \"3GiB\"" : "\"end\": \"4GiB\"";
        SpecEdit replaced = SpecEdit.Replace(s_x86.Original, Hole, field, field.Replace(key, value, StringComparison.Ordinal));
        int keyAt = replaced.Text.IndexOf(field[..field.IndexOf(':', StringComparison.Ordinal)], replaced.Text.IndexOf("\"ramHole\"", StringComparison.Ordinal), StringComparison.Ordinal);
        SpecEdit edit = replaced.At(replaced.Text.IndexOf(value, keyAt, StringComparison.Ordinal));

        s_x86.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, message);
    }

    [TestMethod]
    public void HVO004_MainlineHvoOffBeforeItWasOn_PointsAtUntil()
    {
        SpecEdit replaced = SpecEdit.Replace(s_riscv.Original, "\"mainlineHvo\": { \"since\": \"v6.4\" }", " }", ", \"until\": \"v6.3\" }");
        SpecEdit edit = replaced.At(replaced.Text.IndexOf("\"v6.3\"", StringComparison.Ordinal));

        s_riscv.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "is not after since");
    }
}
