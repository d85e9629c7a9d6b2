using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.Generator.Helpers;
using Hvo.Generator.Model;

namespace Hvo.Generator.Emitting;

/// <summary>
/// Everything the templates print, computed here: the templates hold the shape of the code and
/// do no arithmetic. Numbers are pre-formatted as C# literals.
/// </summary>
internal sealed class ArchTemplateModel
{
    public ArchTemplateModel(ArchModel m)
    {
        TypeName = m.TypeName;
        Name = Literal(m.Name);
        Title = Literal(m.Title);
        TitleXml = OneLine(System.Security.SecurityElement.Escape(m.Title) ?? m.Title);
        SpecFile = Literal(m.SpecFile);
        SpecFileXml = OneLine(System.Security.SecurityElement.Escape(m.SpecFile) ?? m.SpecFile);
        PageShift = m.PageShift;
        PageSize = U(1UL << m.PageShift);
        VaBits = m.VaBits;
        LevelCount = m.Levels.Count;
        LastLevel = m.LastLevel;
        PfnLo = m.PfnLo;
        PfnHi = m.PfnHi;
        PfnMask = U(m.PfnMask);
        TableMask = U(m.Table.Mask);
        TableValue = U(m.Table.Value);
        TableMake = U(m.Table.Make);
        TableAny = m.Table.Any == 0 ? null : U(m.Table.Any);
        TableTest = Test("Table", m.Table);
        HasBlock = m.Block is not null;
        BlockMask = U(m.Block?.Mask ?? 0);
        BlockValue = U(m.Block?.Value ?? 0);
        BlockMake = U(m.Block?.Make ?? 0);
        BlockAny = m.Block is null || m.Block.Any == 0 ? null : U(m.Block.Any);
        BlockTest = m.Block is null ? string.Empty : Test("Block", m.Block);
        PageMask = U(m.Page.Mask);
        PageValue = U(m.Page.Value);
        PageMake = U(m.Page.Make);
        PageAny = m.Page.Any == 0 ? null : U(m.Page.Any);
        PageTest = Test("Page", m.Page);
        EmptyIsInvalidTable = m.EmptyIsInvalidTable;
        ArchInfoInits = InitLines(m);
        ReadOnlyClear = U(m.ReadOnlyClear);
        ReadOnlySet = U(m.ReadOnlySet);
        AccessFlag = U(m.AccessFlag);

        // Write permission: the bits PAGE_KERNEL_RO sets must be clear; failing those, the bits it clears must be set.
        WritableMask = U(m.ReadOnlySet != 0 ? m.ReadOnlySet : m.ReadOnlyClear);
        WritableValue = U(m.ReadOnlySet != 0 ? 0 : m.ReadOnlyClear);

        VmemmapStart = U(m.VmemmapStart);
        VmemmapSize = U(m.VmemmapSize);
        StructPageBytes = m.StructPageBytes;
        VmemmapBootLevel = m.VmemmapBootLevel;
        SectionShift = m.SectionShift;
        LinearMapBits = m.LinearMapBits == 0 ? "null" : m.LinearMapBits.ToString(CultureInfo.InvariantCulture);
        BreakBeforeMake = m.BreakBeforeMake || m.Replacement == "breakBeforeMake" ? "true" : "false";
        Replacement = m.Replacement switch { "breakBeforeMake" => "BreakBeforeMake", "invalidate" => "Invalidate", _ => "Store" };
        Ptdump = m.Ptdump switch { "x86" => "X86", "arm64" => "Arm64", _ => "Generic" };

        Levels = m.Levels.Select((l, i) => new LevelTemplateModel(m, l, i)).ToArray();
        for (int i = 0; i + 1 < Levels.Length; i++)
        {
            Levels[i].Child = Levels[i + 1];
        }

        RootConst = Levels[0].Const;
        SplitLevels = Levels.Where(l => l.CanSplit).ToArray();
        Contiguous = m.Contiguous.Select(c => new ContiguousTemplateModel(c.Level, c.Count, c.Bit)).ToArray();
        Zones = m.Zones.Select(z => new ZoneTemplateModel(Literal(z.Name), z.End == 0 ? "null" : U(z.End))).ToArray();
        HugePageSizes = m.HugePageSizes.Select(h => new HugeSizeTemplateModel(U(h.Size), h.Level, h.Count, Bits.Size(h.Size))).ToArray();
    }

    public string TypeName { get; }
    public string Name { get; }
    public string Title { get; }
    public string TitleXml { get; }
    public string SpecFile { get; }
    public string SpecFileXml { get; }
    public int PageShift { get; }
    public string PageSize { get; }
    public int VaBits { get; }
    public int LevelCount { get; }
    public int LastLevel { get; }
    public int PfnLo { get; }
    public int PfnHi { get; }
    public string PfnMask { get; }
    public string TableMask { get; }
    public string TableValue { get; }
    public string TableMake { get; }
    public bool HasBlock { get; }
    public string BlockMask { get; }
    public string BlockValue { get; }
    public string BlockMake { get; }
    public string PageMask { get; }
    public string PageValue { get; }
    public string PageMake { get; }
    public string? TableAny { get; }
    public string? BlockAny { get; }
    public string? PageAny { get; }
    public string TableTest { get; }
    public string BlockTest { get; }
    public string PageTest { get; }
    public bool EmptyIsInvalidTable { get; }
    public string[] ArchInfoInits { get; }
    public string ReadOnlyClear { get; }
    public string ReadOnlySet { get; }
    public string AccessFlag { get; }
    public string WritableMask { get; }
    public string WritableValue { get; }
    public string VmemmapStart { get; }
    public string VmemmapSize { get; }
    public int StructPageBytes { get; }
    public int VmemmapBootLevel { get; }
    public int SectionShift { get; }
    public string LinearMapBits { get; }
    public string BreakBeforeMake { get; }

    /// <summary>The ReplacementRule member of the spec's replacement key.</summary>
    public string Replacement { get; }

    /// <summary>The most 8-byte slots a table of any level spans (the table views' span length).</summary>
    public int MaxTableEntries => Levels.Max(l => l.SpanEntries);
    public string Ptdump { get; }
    public LevelTemplateModel[] Levels { get; }
    public string RootConst { get; }
    public LevelTemplateModel[] SplitLevels { get; }
    public ContiguousTemplateModel[] Contiguous { get; }
    public HugeSizeTemplateModel[] HugePageSizes { get; }
    public ZoneTemplateModel[] Zones { get; }

    public static string U(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture) + "UL";

    /// <summary>The C# test for a kind on <c>entry</c>: mask and value, and one of the any bits where the kind has them.</summary>
    private static string Test(string kind, KindModel k) =>
        $"(entry & {kind}Mask) == {kind}Value" + (k.Any == 0 ? string.Empty : $" && (entry & {kind}Any) != 0");

    /// <summary>ArchInfo's optional properties, each only where the spec gives it (so a spec without them generates what it did).</summary>
    private static string[] InitLines(ArchModel m)
    {
        var lines = new List<string> { "AccessFlag = AccessFlagBit," };
        if (m.EmptyIsInvalidTable)
        {
            lines.Add("EmptyIsInvalidTable = true,");
        }

        if (!m.PageKernelRo)
        {
            lines.Add("PageKernelRo = false,");
        }

        if (m.RamBase != 0)
        {
            lines.Add($"RamBase = {U(m.RamBase)},");
        }

        if (m.VmemmapOffsetByRamBase)
        {
            lines.Add("VmemmapOffsetByRamBase = true,");
        }

        if (m.RamHoleEnd != 0)
        {
            lines.Add($"RamHoleStart = {U(m.RamHoleStart)},");
            lines.Add($"RamHoleEnd = {U(m.RamHoleEnd)},");
            lines.Add($"RamHoleFrom = {U(m.RamHoleFrom)},");
        }

        if (m.MainlineHvoSince is not null)
        {
            lines.Add($"MainlineHvoSince = {Literal(m.MainlineHvoSince)},");
        }

        if (m.MainlineHvoUntil is not null)
        {
            lines.Add($"MainlineHvoUntil = {Literal(m.MainlineHvoUntil)},");
        }

        return lines.ToArray();
    }

    /// <summary>
    /// A C# string literal holding <paramref name="s"/>: quotes and backslashes escaped, and every
    /// control character and every character C# takes as a line break (U+0085, U+2028, U+2029)
    /// written as a \u escape, so no spec text can end the literal or the line.
    /// </summary>
    public static string Literal(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length + 2).Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                default:
                    if (char.IsControl(c) || c is '\u2028' or '\u2029')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        return sb.Append('"').ToString();
    }

    /// <summary>Text for a <c>///</c> comment: every line break or control character becomes a space.</summary>
    public static string OneLine(string s) =>
        new(s.Select(c => char.IsControl(c) || c is '\u2028' or '\u2029' ? ' ' : c).ToArray());
}

internal sealed class LevelTemplateModel
{
    public LevelTemplateModel(ArchModel m, LevelModel l, int index)
    {
        Index = index;
        Name = l.Name;
        NameLiteral = ArchTemplateModel.Literal(l.Name);
        Const = char.ToUpperInvariant(l.Name[0]) + l.Name.Substring(1);
        Shift = l.Shift;
        Bits = l.Bits;
        IndexEnd = l.Shift + l.Bits;
        Entries = 1 << l.Bits;
        IndexMask = ArchTemplateModel.U((1UL << l.Bits) - 1);
        Size = ArchTemplateModel.U(1UL << l.Shift);
        SizeText = Helpers.Bits.Size(1UL << l.Shift);
        OffsetMask = ArchTemplateModel.U((1UL << l.Shift) - 1);
        IsLast = index == m.LastLevel;
        CanMapLeaf = l.CanMapLeaf || IsLast;
        CanMapLeafLiteral = CanMapLeaf ? "true" : "false";
        CanSplit = l.CanMapLeaf && !IsLast;
        // Frame-number units: frame-number bit 0 sits at entry bit PfnLo, so a leaf's alignment
        // clears (Shift - PageShift) bits from there; one entry of this level steps by 2^EntryStepShift.
        EntryStepShift = l.Shift - m.PageShift + m.PfnLo;
        LeafOutputMask = ArchTemplateModel.U(m.PfnMask & ~((1UL << EntryStepShift) - 1));
        LeafMake = ArchTemplateModel.U(IsLast ? m.Page.Make : (l.BlockMake ?? m.Block?.Make ?? 0));
        TableMake = ArchTemplateModel.U(l.TableMake ?? m.Table.Make);

        // levels[].tableBytes: a table larger than a page takes an aligned block of 2^TableOrder pages
        // (s390 region and segment tables, CRST_ALLOC_ORDER); a smaller one takes a whole page.
        int bytes = l.TableBytes == 0 ? 1 << m.PageShift : l.TableBytes;
        int order = 0;
        while ((1L << (m.PageShift + order)) < bytes)
        {
            order++;
        }

        TableOrder = order;
        SpanEntries = (1 << (m.PageShift + order)) / 8;
        var inits = new List<string>();
        if (l.TableBytes != 0)
        {
            inits.Add($"TableBytes = {l.TableBytes}");
        }

        if (l.TableMake is not null)
        {
            inits.Add($"TableMake = {TableMake}");
        }

        if (l.BlockMake is not null)
        {
            inits.Add($"BlockMake = {LeafMake}");
        }

        if (l.Empty is ulong empty)
        {
            inits.Add($"Empty = {ArchTemplateModel.U(empty)}");
        }

        if (l.FragmentsUntil is not null)
        {
            inits.Add($"FragmentsUntil = {ArchTemplateModel.Literal(l.FragmentsUntil)}");
        }

        // levels[].fragmentsUntil: a table smaller than a page may start inside one (a fragment); the entry
        // above holds the address bits from log2(tableBytes) up (s390 _SEGMENT_ENTRY_ORIGIN ~0x7ff).
        SubPageOrigin = l.FragmentsUntil is not null && l.TableBytes != 0 && l.TableBytes < 1 << m.PageShift && m.PfnLo == m.PageShift
            ? ArchTemplateModel.U(((1UL << m.PageShift) - 1) & ~((ulong)l.TableBytes - 1))
            : null;
        InfoInit = inits.Count == 0 ? string.Empty : " { " + string.Join(", ", inits) + " }";
        Empty = ArchTemplateModel.U(l.Empty ?? 0);
    }

    /// <summary>The level's table descriptor bits (levels[].tableMake, else entry.kinds.table.make).</summary>
    public string TableMake { get; }

    /// <summary>log2 of the pages one table of this level takes.</summary>
    public int TableOrder { get; }

    /// <summary>The 8-byte slots of the pages one table takes (at least its entries).</summary>
    public int SpanEntries { get; }

    /// <summary>The LevelInfo initializer for the per-level keys, or empty.</summary>
    public string InfoInit { get; }

    /// <summary>The bits of a table address inside its page where this level's tables may start (s390 0x800), or null.</summary>
    public string? SubPageOrigin { get; }

    /// <summary>levels[].empty, or 0.</summary>
    public string Empty { get; }

    public int Index { get; }
    public string Name { get; }
    public string NameLiteral { get; }
    public string Const { get; }
    public int Shift { get; }
    public int Bits { get; }
    public int IndexEnd { get; }
    public int Entries { get; }
    public string IndexMask { get; }
    public string Size { get; }
    public string SizeText { get; }
    public string OffsetMask { get; }
    public bool IsLast { get; }
    public bool CanMapLeaf { get; }
    public string CanMapLeafLiteral { get; }
    public bool CanSplit { get; }
    public string LeafOutputMask { get; }
    public int EntryStepShift { get; }
    public string LeafMake { get; }
    public LevelTemplateModel? Child { get; set; }
}

internal sealed record ContiguousTemplateModel(int Level, int Count, int Bit);

internal sealed record ZoneTemplateModel(string Name, string End);

internal sealed record HugeSizeTemplateModel(string Size, int Level, int Count, string SizeText);
