using System;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Tests.Harness;

namespace Hvo.Generator.Tests;

/// <summary>
/// The keys specs/README.md added for s390x: tables that are not one page (levels[].tableBytes), a
/// table or block descriptor of a level's own (levels[].tableMake, blockMake), empty entries that are
/// invalid entries rather than 0 (levels[].empty), the rule for changing a live entry (replacement)
/// and a kernel address space of its own (vmemmap.ownAddressSpace). Each misuse is one located diagnostic.
/// </summary>
[TestClass]
public sealed class SpecContractV3Tests
{
    private static readonly SpecAssert s_s390 = new("s390x.json", "S390x.g.cs");
    private static readonly SpecAssert s_x86 = new("x86_64.json", "X86_64.g.cs");

    private const string PteLevel = "{ \"name\": \"pte\", \"shift\": 12, \"bits\": 8, \"tableBytes\": \"2KiB\", \"empty\": \"0x400\", \"fragmentsUntil\": \"v6.7\" }";
    private const string PmdLevel = "{ \"name\": \"pmd\", \"shift\": 20, \"bits\": 11, \"leaf\": true, \"tableBytes\": \"16KiB\", \"empty\": \"0x20\" }";

    [TestMethod]
    public void S390_GeneratesPerLevelTablesDescriptorsAndEmptyEntries()
    {
        GeneratorRun run = s_s390.Run(new SpecEdit(s_s390.Original, 0));

        Assert.IsEmpty(run.Diagnostics, string.Join(Environment.NewLine, run.Diagnostics));
        string code = run.Sources["S390x.g.cs"];
        StringAssert.Contains(code, "0 => 0x7UL | ((tablePfn << 12) & OutputMask),", "_REGION3_ENTRY at the region-third level");
        StringAssert.Contains(code, "1 => 0x1UL | (((tablePfn & TableRef.PfnMask) << 12) & OutputMask) | (((ulong)TableRef.EntryOffset(tablePfn) << 3) & 0x800UL),",
            "_SEGMENT_ENTRY at the segment level, with the page table's origin inside its page (bit 11: the upper 2 KiB fragment)");
        StringAssert.Contains(code, "ulong child = ((entry & OutputMask) >> 12) | ((entry & 0x800UL) << (TableRef.OffsetShift - 3));", "the walk finds a fragment at its frame and offset");
        StringAssert.Contains(code, "FragmentsUntil = \"v6.7\"");
        StringAssert.Contains(code, "0 => 0xf505UL | ((pfn << 12)", "REGION3_KERNEL for a 2 GiB leaf");
        StringAssert.Contains(code, "1 => 0xf501UL | ((pfn << 12)", "SEGMENT_KERNEL for a 1 MiB leaf");
        StringAssert.Contains(code, "public static int MaxTableEntries => 2048;");
        StringAssert.Contains(code, "1 => 0x20UL,", "_SEGMENT_ENTRY_EMPTY");
        StringAssert.Contains(code, "_ => 0x400UL,", "_PAGE_INVALID");
        StringAssert.Contains(code, "public static ReplacementRule Replacement => ReplacementRule.Invalidate;");
        StringAssert.Contains(code, "for (int i = 0; i < 256; i++)", "a split fills a 256-entry page table");
    }

    [TestMethod]
    public void HVO004_FragmentsUntilThatIsNoRelease_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(s_s390.Original, PteLevel, "\"v6.7\"", "\"6.7-rc1\"");

        s_s390.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "is not a mainline release");
    }

    [TestMethod]
    public void HVO004_FragmentsUntilOnALevelWhoseTablesFillPages_PointsAtTheKeyAndNamesTableBytes()
    {
        // The segment level's tables are 16 KiB: no fragment of a page.
        SpecEdit edit = SpecEdit.InsertAfter(s_s390.Original, PmdLevel[..^2], ", \"fragmentsUntil\": \"v6.7\"");
        edit = edit.At(edit.Offset + ", \"fragmentsUntil\": ".Length);

        s_s390.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "only tables smaller than the 4096-byte page are handed out as fragments");
    }

    [TestMethod]
    public void HVO004_FragmentsUntilWhereTheEntryAboveUsesTheOriginBits_PointsAtTheKey()
    {
        // A segment entry's table descriptor with bit 11 set leaves a fragment's origin no room.
        SpecEdit edit = SpecEdit.Replace(s_s390.Original, PmdLevel, "\"empty\": \"0x20\"", "\"tableMake\": \"0x801\", \"empty\": \"0x20\"");
        edit = edit.At(edit.Text.IndexOf("\"v6.7\"", StringComparison.Ordinal));

        s_s390.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "where a fragment's origin inside its page lies (0x800)");
    }

    [TestMethod]
    public void HVO006_TableBytesThatDisagreeWithTheIndexBits_PointAtTableBytes()
    {
        SpecEdit edit = SpecEdit.Replace(s_s390.Original, PteLevel, "\"2KiB\"", "\"4KiB\"");

        s_s390.ReportsOnly(DiagnosticDescriptors.LevelsInconsistent, edit, "use tableBytes 2048");
    }

    [TestMethod]
    public void HVO006_APageTableOfLessThanAPageWithoutTableBytes_PointsAtBitsAndNamesTheKey()
    {
        SpecEdit edit = SpecEdit.Remove(s_s390.Original, ", \"tableBytes\": \"2KiB\"");
        edit = edit.At(edit.Text.IndexOf("8, \"empty\"", StringComparison.Ordinal));

        s_s390.ReportsOnly(DiagnosticDescriptors.LevelsInconsistent, edit, "or give the level's tableBytes");
    }

    [TestMethod]
    public void HVO002_ALevelWithoutItsEmptyEntry_PointsAtTheLevel()
    {
        SpecEdit edit = SpecEdit.Remove(s_s390.Original, ", \"empty\": \"0x20\"");
        int level = edit.Text.IndexOf("{ \"name\": \"pmd\"", StringComparison.Ordinal);

        s_s390.ReportsOnly(DiagnosticDescriptors.MissingKey, edit.At(level), "every level must");
    }

    [TestMethod]
    public void HVO009_AnEmptyEntryThatIsValid_PointsAtTheValue()
    {
        // 0x0 with the invalid bit clear is a valid segment table pointer: an empty table would translate.
        SpecEdit edit = SpecEdit.Replace(s_s390.Original, PmdLevel, "\"0x20\"", "\"0x0\"");

        s_s390.ReportsOnly(DiagnosticDescriptors.AmbiguousKinds, edit, "is a valid table descriptor");
    }

    [TestMethod]
    public void HVO009_ATableMakeThatIsNoTable_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(s_s390.Original, "\"tableMake\": \"0x7\"", "\"0x7\"", "\"0x27\"");

        s_s390.ReportsOnly(DiagnosticDescriptors.AmbiguousKinds, edit, "is not a table descriptor");
    }

    [TestMethod]
    public void HVO004_AnUnknownReplacementRule_PointsAtTheValue()
    {
        SpecEdit edit = SpecEdit.Replace(s_s390.Original, "\"replacement\": \"invalidate\"", "\"invalidate\"", "\"ipte\"");

        s_s390.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit, "is not a replacement rule");
    }

    [TestMethod]
    public void HVO004_AReplacementRuleThatContradictsBreakBeforeMake_PointsAtBreakBeforeMake()
    {
        SpecEdit edit = SpecEdit.InsertAfter(s_x86.Original, "\"ptdump\": \"x86\",", " \"replacement\": \"breakBeforeMake\", \"breakBeforeMake\": false,");
        int at = edit.Text.IndexOf("false,", edit.Offset, StringComparison.Ordinal);

        s_x86.ReportsOnly(DiagnosticDescriptors.InvalidValue, edit.At(at), "give one of the two");
    }

    [TestMethod]
    public void HVO012_AVmemmapPastTheKernelsOwnAddressSpace_PointsAtTheStart()
    {
        SpecEdit edit = SpecEdit.Replace(s_s390.Original, "\"start\": \"0x37200000000\"", "\"0x37200000000\"", "\"0x3ff00000000\"");

        s_s390.ReportsOnly(DiagnosticDescriptors.VmemmapTooSmall, edit, "runs past the kernel's own 42-bit address space");
    }
}
