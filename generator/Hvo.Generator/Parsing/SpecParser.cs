using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Hvo.Generator.Diagnostics;
using Hvo.Generator.Helpers;
using Hvo.Generator.Model;

namespace Hvo.Generator.Parsing;

/// <summary>What parsing one spec file gave: a model when it is valid, and its diagnostics either way.</summary>
internal sealed record ParseResult(ArchModel? Model, SpecLocation? NameLocation, EquatableArray<DiagnosticInfo> Diagnostics);

/// <summary>
/// Reads one spec file against the contract of specs/README.md and checks that it describes a
/// page table the generated code can walk: every error is a diagnostic at the offending value.
/// </summary>
internal static class SpecParser
{
    private static readonly Regex s_name = new("^[a-z][a-z0-9_-]*$");
    private static readonly Regex s_levelName = new("^[a-z][a-z0-9]*$");
    private static readonly string[] s_ptdumpFormats = { "generic", "x86", "arm64" };
    private static readonly Regex s_release = new("^v([1-9][0-9]?)\\.([0-9]{1,2})$");

    public static ParseResult Parse(string path, string text)
    {
        var spec = new SpecText(path, text);
        try
        {
            JsonNode? root = JsonTreeReader.Read(spec, out DiagnosticInfo? jsonError);
            if (root is null)
            {
                return new ParseResult(null, null, new[] { jsonError! }.ToEquatableArray());
            }

            var reader = new SpecReader(spec);
            ArchModel? model = Validate(reader, root, Path.GetFileName(path), out SpecLocation? nameLocation);
            return new ParseResult(reader.HasErrors ? null : model, nameLocation, reader.Diagnostics.ToEquatableArray());
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The generator must never crash the build (CS8785): an unexpected failure is a diagnostic too.
            return new ParseResult(
                null,
                null,
                new[] { DiagnosticInfo.Create(DiagnosticDescriptors.InternalError, spec.Locate(0, 0), e.GetType().Name, e.Message) }.ToEquatableArray());
        }
    }

    /// <summary>The C# type name for a spec name: "arm64-4k" -> "Arm64_4k".</summary>
    public static string TypeNameOf(string name) =>
        string.Join("_", name.Split(new[] { '-', '_' }, StringSplitOptions.RemoveEmptyEntries)
            .Select(p => char.ToUpperInvariant(p[0]) + p.Substring(1)));

    private static ArchModel? Validate(SpecReader r, JsonNode root, string specFile, out SpecLocation? nameLocation)
    {
        nameLocation = null;
        if (r.Object(root, "the spec") is null)
        {
            return null;
        }

        r.CheckKeys(root, string.Empty, "$schema", "name", "title", "pageShift", "vaBits", "levels", "entry", "contiguous", "vmemmap", "hugePageSizes", "zones", "breakBeforeMake", "replacement", "ptdump", "ramBase", "ramHole", "mainlineHvo");

        // name, title
        JsonNode? nameNode = r.Required(root, string.Empty, "name", "the architecture's identifier, e.g. \"x86_64\"");
        string? name = r.String(nameNode, "name");
        if (name is not null)
        {
            nameLocation = r.Text.Locate(nameNode!);
            if (!s_name.IsMatch(name))
            {
                r.Report(DiagnosticDescriptors.InvalidName, nameNode, name);
                name = null;
            }
        }

        string title = r.String(SpecReader.Find(root, "title"), "title") ?? name ?? string.Empty;

        JsonNode? pageShiftNode = r.Required(root, string.Empty, "pageShift", "log2 of the base page size, e.g. 12 for 4 KiB");
        int? pageShift = r.Int(pageShiftNode, "pageShift", 10, 24);
        JsonNode? vaBitsNode = r.Required(root, string.Empty, "vaBits", "the number of virtual address bits, e.g. 48");
        int? vaBits = r.Int(vaBitsNode, "vaBits", 16, 64);

        List<(LevelModel Level, JsonNode Node)>? levels = ReadLevels(r, root, pageShift, vaBits);

        JsonNode? entry = r.Object(r.Required(root, string.Empty, "entry", "the descriptor format: pfn, kinds and readOnly"), "entry");
        EntryFormat? format = entry is null ? null : ReadEntry(r, entry, pageShift, levels);

        List<ContiguousModel> contiguous = ReadContiguous(r, root, levels, format);

        JsonNode? ramBaseNode = SpecReader.Find(root, "ramBase");
        ulong? ramBase = r.Number(ramBaseNode, "ramBase");
        JsonNode? vmemmap = r.Object(r.Required(root, string.Empty, "vmemmap", "start, size, structPageBytes, bootMapping and sectionShift"), "vmemmap");
        VmemmapModel? vm = vmemmap is null ? null : ReadVmemmap(r, vmemmap, pageShift, vaBits, levels, ramBase ?? 0, ramBaseNode);

        (string? hvoSince, string? hvoUntil) = ReadMainlineHvo(r, root);
        (ulong holeStart, ulong holeEnd, ulong holeFrom) = ReadRamHole(r, root, vm?.SectionShift);

        List<HugeSizeModel> huge = ReadHugePageSizes(r, root, pageShift, levels, contiguous);

        List<ZoneModel> zones = ReadZones(r, root, pageShift);
        JsonNode? bbmNode = SpecReader.Find(root, "breakBeforeMake");
        bool bbm = r.Bool(bbmNode, "breakBeforeMake") ?? false;
        string replacement = ReadReplacement(r, root, bbmNode, bbm);
        string ptdump = "generic";
        JsonNode? ptdumpNode = SpecReader.Find(root, "ptdump");
        string? ptdumpValue = r.String(ptdumpNode, "ptdump");
        if (ptdumpValue is not null)
        {
            if (Array.IndexOf(s_ptdumpFormats, ptdumpValue) < 0)
            {
                r.Report(DiagnosticDescriptors.InvalidValue, ptdumpNode, "ptdump", $"\"{ptdumpValue}\" is not a ptdump format; use one of: {string.Join(", ", s_ptdumpFormats)}");
            }
            else
            {
                ptdump = ptdumpValue;
            }
        }

        if (name is null || pageShift is null || vaBits is null || levels is null || format is null || vm is null || (ramBaseNode is not null && ramBase is null) || r.HasErrors)
        {
            return null;
        }

        return new ArchModel(
            name,
            TypeNameOf(name),
            title,
            specFile,
            pageShift.Value,
            vaBits.Value,
            levels.Select(l => l.Level).ToEquatableArray(),
            format.PfnLo,
            format.PfnHi,
            format.Table,
            format.Block,
            format.Page,
            format.ReadOnlyClear,
            format.ReadOnlySet,
            contiguous.ToEquatableArray(),
            vm.Start,
            vm.Size,
            vm.StructPageBytes,
            vm.BootLevel,
            vm.SectionShift,
            vm.LinearMapBits,
            huge.ToEquatableArray(),
            zones.ToEquatableArray(),
            bbm,
            ptdump)
        {
            AccessFlag = format.AccessFlag,
            EmptyIsInvalidTable = format.EmptyIsInvalidTable,
            PageKernelRo = format.PageKernelRo,
            RamBase = ramBase ?? 0,
            VmemmapOffsetByRamBase = vm.OffsetByRamBase,
            RamHoleStart = holeStart,
            RamHoleEnd = holeEnd,
            RamHoleFrom = holeFrom,
            MainlineHvoSince = hvoSince,
            MainlineHvoUntil = hvoUntil,
            Replacement = replacement,
        };
    }

    private static readonly string[] s_replacements = { "store", "breakBeforeMake", "invalidate" };

    /// <summary>
    /// replacement: how a live valid entry may become another valid one. "store" (x86-64: one store, then
    /// a flush), "breakBeforeMake" (arm64: an invalid entry and a flush between), "invalidate" (s390: the
    /// old entry invalidated by IPTE/IDTE, which purges every CPU's TLB, before the new one is stored).
    /// breakBeforeMake: true is the older spelling of "breakBeforeMake".
    /// </summary>
    private static string ReadReplacement(SpecReader r, JsonNode root, JsonNode? bbmNode, bool bbm)
    {
        JsonNode? node = SpecReader.Find(root, "replacement");
        string? value = r.String(node, "replacement");
        if (value is null)
        {
            return bbm ? "breakBeforeMake" : "store";
        }

        if (Array.IndexOf(s_replacements, value) < 0)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, node, "replacement", $"\"{value}\" is not a replacement rule; use one of: {string.Join(", ", s_replacements)}");
            return "store";
        }

        if (bbmNode is not null && bbm != (value == "breakBeforeMake"))
        {
            r.Report(DiagnosticDescriptors.InvalidValue, bbmNode, "breakBeforeMake", $"breakBeforeMake is {(bbm ? "true" : "false")} but replacement is \"{value}\"; give one of the two");
        }

        return value;
    }

    /// <summary>
    /// ramHole: { "start", "end", "from" }: with at least <c>from</c> bytes of RAM the firmware puts
    /// the RAM above <c>start</c> at <c>end</c> (a PC's 32-bit PCI hole); start below end, both on a
    /// memory section, from at or above start. (0, 0, 0) when the spec has none.
    /// </summary>
    private static (ulong Start, ulong End, ulong From) ReadRamHole(SpecReader r, JsonNode root, int? sectionShift)
    {
        JsonNode? obj = r.Object(SpecReader.Find(root, "ramHole"), "ramHole");
        if (obj is null)
        {
            return (0, 0, 0);
        }

        r.CheckKeys(obj, "ramHole", "start", "end", "from");
        JsonNode? startNode = r.Required(obj, "ramHole", "start", "where the hole starts, e.g. \"3GiB\"");
        JsonNode? endNode = r.Required(obj, "ramHole", "end", "where RAM resumes above the hole, e.g. \"4GiB\"");
        JsonNode? fromNode = r.Required(obj, "ramHole", "from", "the least RAM for which the firmware leaves the hole, e.g. \"3584MiB\"");
        ulong? start = r.Number(startNode, "ramHole.start");
        ulong? end = r.Number(endNode, "ramHole.end");
        ulong? from = r.Number(fromNode, "ramHole.from");
        if (start is null || end is null || from is null)
        {
            return (0, 0, 0);
        }

        ulong section = sectionShift is { } shift ? 1UL << shift : 1;
        if (start.Value == 0 || end.Value <= start.Value)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, endNode, "ramHole.end", $"{Bits.Hex(end.Value)} is not above start ({Bits.Hex(start.Value)}); the hole is [start, end) above 0");
            return (0, 0, 0);
        }

        if ((start.Value | end.Value) % section != 0)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, (start.Value % section != 0 ? startNode : endNode)!, (start.Value % section != 0 ? "ramHole.start" : "ramHole.end"),
                $"{Bits.Hex(start.Value % section != 0 ? start.Value : end.Value)} is not a multiple of the {Bits.Size(section)} memory section (vmemmap.sectionShift)");
            return (0, 0, 0);
        }

        if (from.Value < start.Value)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, fromNode, "ramHole.from", $"{Bits.Hex(from.Value)} is below start ({Bits.Hex(start.Value)}): with less RAM than start there is nothing to move");
            return (0, 0, 0);
        }

        return (start.Value, end.Value, from.Value);
    }

    /// <summary>mainlineHvo: { "since": "vX.Y", "until": "vX.Y" } (until optional, after since).</summary>
    private static (string? Since, string? Until) ReadMainlineHvo(SpecReader r, JsonNode root)
    {
        JsonNode? obj = r.Object(SpecReader.Find(root, "mainlineHvo"), "mainlineHvo");
        if (obj is null)
        {
            return (null, null);
        }

        r.CheckKeys(obj, "mainlineHvo", "since", "until");
        JsonNode? sinceNode = r.Required(obj, "mainlineHvo", "since", "the mainline release that first enabled HVO for the architecture, e.g. \"v6.4\"");
        JsonNode? untilNode = SpecReader.Find(obj, "until");
        (int, int)? since = Release(r, sinceNode, "mainlineHvo.since");
        (int, int)? until = Release(r, untilNode, "mainlineHvo.until");
        if (since is not null && until is not null && until.Value.CompareTo(since.Value) <= 0)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, untilNode, "mainlineHvo.until", $"{untilNode!.Text} is not after since ({sinceNode!.Text}); until is the release that turned HVO off again");
            return (null, null);
        }

        return (since is null ? null : sinceNode!.Text, until is null ? null : untilNode!.Text);
    }

    private static (int, int)? Release(SpecReader r, JsonNode? node, string path)
    {
        string? text = r.String(node, path);
        if (text is null)
        {
            return null;
        }

        Match m = s_release.Match(text);
        if (!m.Success)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, node, path, $"\"{text}\" is not a mainline release; write it as the kernel tags it, e.g. \"v6.4\"");
            return null;
        }

        return (int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    private static List<(LevelModel Level, JsonNode Node)>? ReadLevels(SpecReader r, JsonNode root, int? pageShift, int? vaBits)
    {
        JsonNode? array = r.Array(r.Required(root, string.Empty, "levels", "the page-table levels, root first"), "levels");
        if (array is null)
        {
            return null;
        }

        if (array.Items.Count is < 1 or > 6)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, array, "levels", $"{array.Items.Count} levels given; a page table has 1 to 6 levels");
            return null;
        }

        var levels = new List<(LevelModel Level, JsonNode Node, JsonNode? Shift, JsonNode? Bits)>();
        bool ok = true;
        for (int i = 0; i < array.Items.Count; i++)
        {
            string path = $"levels[{i}]";
            JsonNode? item = r.Object(array.Items[i], path);
            if (item is null)
            {
                ok = false;
                continue;
            }

            r.CheckKeys(item, path, "name", "shift", "bits", "leaf", "tableBytes", "tableMake", "blockMake", "empty", "fragmentsUntil");
            JsonNode? nameNode = r.Required(item, path, "name", "the kernel's name for the level, e.g. \"pmd\"");
            string? name = r.String(nameNode, path + ".name");
            if (name is not null && !s_levelName.IsMatch(name))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, nameNode, path + ".name", $"\"{name}\" is not a level name; use lower-case letters and digits, e.g. \"pmd\"");
                name = null;
            }
            else if (name is not null && levels.Any(l => l.Level.Name == name))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, nameNode, path + ".name", $"level \"{name}\" is defined twice; level names must be unique");
                name = null;
            }

            JsonNode? shiftNode = r.Required(item, path, "shift", "the lowest address bit of the level's index");
            int? shift = r.Int(shiftNode, path + ".shift", 0, 63);
            JsonNode? bitsNode = r.Required(item, path, "bits", "the number of index bits");
            int? bits = r.Int(bitsNode, path + ".bits", 1, 20);
            bool leaf = r.Bool(SpecReader.Find(item, "leaf"), path + ".leaf") ?? false;
            if (name is null || shift is null || bits is null)
            {
                ok = false;
                continue;
            }

            JsonNode? tableBytesNode = SpecReader.Find(item, "tableBytes");
            ulong? tableBytes = r.Number(tableBytesNode, path + ".tableBytes");
            JsonNode? tableMakeNode = SpecReader.Find(item, "tableMake"), blockMakeNode = SpecReader.Find(item, "blockMake"), emptyNode = SpecReader.Find(item, "empty");
            ulong? tableMake = r.Number(tableMakeNode, path + ".tableMake");
            ulong? blockMake = r.Number(blockMakeNode, path + ".blockMake");
            ulong? empty = r.Number(emptyNode, path + ".empty");
            JsonNode? fragmentsNode = SpecReader.Find(item, "fragmentsUntil");
            (int, int)? fragmentsUntil = Release(r, fragmentsNode, path + ".fragmentsUntil");
            if ((fragmentsNode is not null && fragmentsUntil is null) || (tableBytesNode is not null && tableBytes is null) || (tableMakeNode is not null && tableMake is null) ||
                (blockMakeNode is not null && blockMake is null) || (emptyNode is not null && empty is null))
            {
                ok = false;
                continue;
            }

            if (tableBytes is not null && (tableBytes.Value < 8 || tableBytes.Value > 1UL << 24 || (tableBytes.Value & (tableBytes.Value - 1)) != 0))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, tableBytesNode, path + ".tableBytes", $"{tableBytes} is not a power of two from 8 to 16 MiB; a table is 2^bits 8-byte entries");
                ok = false;
                continue;
            }

            if (blockMake is not null && !leaf)
            {
                r.Report(DiagnosticDescriptors.InvalidValue, blockMakeNode, path + ".blockMake", $"level '{name}' holds no blocks (leaf is false), so it has no block protection");
                ok = false;
                continue;
            }

            levels.Add((new LevelModel(name, shift.Value, bits.Value, leaf)
            {
                TableBytes = (int)(tableBytes ?? 0),
                TableMake = tableMake,
                BlockMake = blockMake,
                Empty = empty,
                FragmentsUntil = fragmentsUntil is null ? null : fragmentsNode!.Text,
            }, item, shiftNode, bitsNode));
        }

        if (!ok)
        {
            return null;
        }

        for (int i = 0; i + 1 < levels.Count; i++)
        {
            LevelModel upper = levels[i].Level, lower = levels[i + 1].Level;
            if (upper.Shift != lower.Shift + lower.Bits)
            {
                r.Report(DiagnosticDescriptors.LevelsNotContiguous, levels[i].Shift, upper.Name, upper.Shift, upper.Shift + upper.Bits, lower.Name, lower.Shift + lower.Bits);
                ok = false;
            }
        }

        var last = levels[levels.Count - 1];
        if (pageShift is not null && last.Level.Shift != pageShift)
        {
            r.Report(DiagnosticDescriptors.LevelsInconsistent, last.Shift,
                $"The last level '{last.Level.Name}' has shift {last.Level.Shift} but pageShift is {pageShift}: the last level maps base pages, so its shift must be {pageShift}");
            ok = false;
        }

        var top = levels[0];
        if (vaBits is not null && top.Level.Shift + top.Level.Bits != vaBits)
        {
            r.Report(DiagnosticDescriptors.LevelsInconsistent, top.Bits,
                $"The levels cover address bits up to {top.Level.Shift + top.Level.Bits} but vaBits is {vaBits}: the root level '{top.Level.Name}' needs shift + bits == {vaBits}");
            ok = false;
        }

        if (pageShift is not null)
        {
            int tableBits = pageShift.Value - 3; // a table is one page of 8-byte entries, unless tableBytes says otherwise
            for (int i = 0; i < levels.Count; i++)
            {
                var l = levels[i];
                long levelBytes = l.Level.TableBytes == 0 ? 1L << pageShift.Value : l.Level.TableBytes;
                if (l.Level.FragmentsUntil is not null && levelBytes == (8L << l.Level.Bits) && (i == 0 || levelBytes >= 1L << pageShift.Value))
                {
                    // (Where tableBytes and bits disagree, HVO006 below says so; that comes first.)
                    // levels[].fragmentsUntil: page_table_alloc's fragments are tables smaller than a page, below the root.
                    r.Report(DiagnosticDescriptors.InvalidValue, SpecReader.Find(l.Node, "fragmentsUntil"), $"levels[{i}].fragmentsUntil",
                        i == 0 ? $"the root level '{l.Level.Name}' is no fragment of a page; fragmentsUntil belongs to a level below it whose tableBytes is less than a page"
                            : $"level '{l.Level.Name}' has tables of {(l.Level.TableBytes == 0 ? 1 << pageShift.Value : l.Level.TableBytes)} bytes; only tables smaller than the {1 << pageShift.Value}-byte page are handed out as fragments of one (give tableBytes, e.g. \"2KiB\")");
                    ok = false;
                }

                if (l.Level.TableBytes != 0)
                {
                    // levels[].tableBytes: a table of 2^bits entries that is not one page (s390: 2048-entry
                    // region and segment tables of 16 KiB, 256-entry page tables of 2 KiB).
                    ulong entries = (ulong)l.Level.TableBytes / 8;
                    if (i == 0 ? (1UL << l.Level.Bits) > entries : (1UL << l.Level.Bits) != entries)
                    {
                        r.Report(DiagnosticDescriptors.LevelsInconsistent, SpecReader.Find(l.Node, "tableBytes"),
                            $"Level '{l.Level.Name}' has {l.Level.Bits} index bits, {1UL << l.Level.Bits} entries of 8 bytes, but tableBytes is {l.Level.TableBytes} ({entries} entries): use tableBytes {(1UL << l.Level.Bits) * 8}");
                        ok = false;
                    }

                    continue;
                }

                if (i == 0 ? l.Level.Bits > tableBits : l.Level.Bits != tableBits)
                {
                    r.Report(DiagnosticDescriptors.LevelsInconsistent, l.Bits, i == 0
                        ? $"The root level '{l.Level.Name}' has {l.Level.Bits} index bits, more than one {1 << pageShift.Value}-byte page of 8-byte entries holds: use at most {tableBits}"
                        : $"Level '{l.Level.Name}' has {l.Level.Bits} index bits, but a table below the root is one {1 << pageShift.Value}-byte page of 8-byte entries: use {tableBits}, or give the level's tableBytes");
                    ok = false;
                }
            }
        }

        return ok ? levels.Select(l => (l.Level, l.Node)).ToList() : null;
    }

    private sealed record EntryFormat(int PfnLo, int PfnHi, KindModel Table, KindModel? Block, KindModel Page, ulong ReadOnlyClear, ulong ReadOnlySet, ulong AccessFlag)
    {
        public bool PageKernelRo { get; init; } = true;

        public bool EmptyIsInvalidTable { get; init; }
    }

    private static EntryFormat? ReadEntry(SpecReader r, JsonNode entry, int? pageShift, List<(LevelModel Level, JsonNode Node)>? levels)
    {
        r.CheckKeys(entry, "entry", "pfn", "kinds", "readOnly", "accessFlag", "empty");

        // entry.pfn
        JsonNode? pfn = r.Object(r.Required(entry, "entry", "pfn", "the frame-number field as { \"lo\": N, \"hi\": N }, lo the bit that holds frame-number bit 0"), "entry.pfn");
        int? lo = null, hi = null;
        if (pfn is not null)
        {
            r.CheckKeys(pfn, "entry.pfn", "lo", "hi");
            JsonNode? loNode = r.Required(pfn, "entry.pfn", "lo", "the bit that holds frame-number bit 0: 12 on x86-64 and arm64, 10 on RISC-V");
            JsonNode? hiNode = r.Required(pfn, "entry.pfn", "hi", "the highest bit of the output address, e.g. 51 on x86-64, 47 on arm64");
            lo = r.Int(loNode, "entry.pfn.lo", 0, 63);
            hi = r.Int(hiNode, "entry.pfn.hi", 0, 63);
            if (lo is not null && hi is not null && hi <= lo)
            {
                r.Report(DiagnosticDescriptors.PfnFieldOutOfRange, hiNode, lo, hi, $"hi must be above lo ({lo}), the bit that holds frame-number bit 0, and at most 63");
                hi = null;
            }
            else if (lo is not null && hi is not null && pageShift is not null && hi.Value - lo.Value + 1 + pageShift.Value > 64)
            {
                // The field holds frame numbers, not addresses: frame-number bit 0 sits at lo
                // (x86-64 and arm64: 12, where the address bit it stands for lies; RISC-V: 10).
                r.Report(DiagnosticDescriptors.PfnFieldOutOfRange, hiNode, lo, hi,
                    $"{hi - lo + 1} bits of frame number above {pageShift} bits of page offset make a {hi - lo + 1 + pageShift}-bit physical address; use hi at most {63 - pageShift + lo}");
                hi = null;
            }
        }

        // entry.kinds
        JsonNode? kinds = r.Object(r.Required(entry, "entry", "kinds", "table, block and page descriptors"), "entry.kinds");
        KindModel? table = null, block = null, page = null;
        JsonNode? tableNode = null, blockNode = null, pageNode = null;
        bool needsBlock = levels?.Take(levels.Count - 1).Any(l => l.Level.CanMapLeaf) ?? false;
        if (kinds is not null)
        {
            r.CheckKeys(kinds, "entry.kinds", "table", "block", "page");
            tableNode = r.Required(kinds, "entry.kinds", "table", "the next-level table descriptor { mask, value, make }");
            table = ReadKind(r, tableNode, "entry.kinds.table");
            blockNode = SpecReader.Find(kinds, "block");
            if (blockNode is null && needsBlock)
            {
                r.Report(DiagnosticDescriptors.MissingKey, kinds, "entry.kinds", "block", "a level above the last is marked leaf, so a block descriptor { mask, value, make } is needed");
            }

            block = ReadKind(r, blockNode, "entry.kinds.block");
            pageNode = r.Required(kinds, "entry.kinds", "page", "the last-level page descriptor { mask, value, make } with make = PAGE_KERNEL");
            page = ReadKind(r, pageNode, "entry.kinds.page");
        }

        // entry.readOnly
        JsonNode? ro = r.Object(r.Required(entry, "entry", "readOnly", "how PAGE_KERNEL becomes PAGE_KERNEL_RO: { \"clear\": bits, \"set\": bits }"), "entry.readOnly");
        ulong roClear = 0, roSet = 0;
        bool pageKernelRo = true;
        JsonNode? roClearNode = null, roSetNode = null;
        if (ro is not null)
        {
            r.CheckKeys(ro, "entry.readOnly", "clear", "set", "pageKernelRo");
            pageKernelRo = r.Bool(SpecReader.Find(ro, "pageKernelRo"), "entry.readOnly.pageKernelRo") ?? true;
            roClearNode = SpecReader.Find(ro, "clear");
            roSetNode = SpecReader.Find(ro, "set");
            ulong? clear = r.Number(roClearNode, "entry.readOnly.clear");
            ulong? set = r.Number(roSetNode, "entry.readOnly.set");
            roClear = clear ?? 0;
            roSet = set ?? 0;
            if ((roClearNode is not null && clear is null) || (roSetNode is not null && set is null))
            {
                ro = null; // already reported at the value; checking the rest would only report its echo
            }
            else if (roClearNode is null && roSetNode is null)
            {
                r.Report(DiagnosticDescriptors.MissingKey, ro, "entry.readOnly", "clear", "give the bits to clear and/or to set to make PAGE_KERNEL read-only");
            }
            else if ((roClear & roSet) != 0)
            {
                r.Report(DiagnosticDescriptors.InvalidValue, roSetNode, "entry.readOnly.set", $"bits {Bits.Hex(roClear & roSet)} are both cleared and set; a bit is either cleared or set");
            }
        }

        // entry.accessFlag (optional): the access flag bit (arm64 AF, bit 10). A translation through a
        // leaf with it clear faults, or the hardware sets it (FEAT_HAFDBS); PAGE_KERNEL has it set.
        JsonNode? afNode = SpecReader.Find(entry, "accessFlag");
        ulong accessFlag = r.Number(afNode, "entry.accessFlag") ?? 0;
        if (afNode is not null && !Bits.IsPowerOfTwo(accessFlag))
        {
            r.Report(DiagnosticDescriptors.InvalidValue, afNode, "entry.accessFlag", $"{Bits.Hex(accessFlag)} is not one bit; the access flag is a single descriptor bit (arm64: \"0x400\", bit 10)");
            accessFlag = 0;
        }

        // entry.empty (optional): what an empty entry holds.
        JsonNode? emptyNode = SpecReader.Find(entry, "empty");
        string? empty = r.String(emptyNode, "entry.empty");
        bool emptyIsInvalidTable = false;
        if (empty is not null)
        {
            if (empty == "invalidTable")
            {
                emptyIsInvalidTable = true;
                if (levels is not null && levels.Count < 2)
                {
                    r.Report(DiagnosticDescriptors.InvalidValue, emptyNode, "entry.empty", "\"invalidTable\" points empty entries at a shared table of the level below, and a one-level page table has none; use \"zero\"");
                }
            }
            else if (empty != "zero")
            {
                r.Report(DiagnosticDescriptors.InvalidValue, emptyNode, "entry.empty", $"\"{empty}\" is not a kind of empty entry; use \"zero\" (the default) or \"invalidTable\" (LoongArch)");
            }
        }

        if (lo is null || hi is null || table is null || page is null || (needsBlock && block is null) || ro is null)
        {
            return null;
        }

        ulong pfnMask = Bits.Range(lo.Value, hi.Value);
        bool ok = true;

        void CheckOutside(string what, ulong bits, JsonNode? at, ulong field)
        {
            if ((bits & field) != 0)
            {
                r.Report(DiagnosticDescriptors.PfnFieldOverlap, at, what, Bits.Hex(bits), Bits.Hex(bits & field), lo, hi);
                ok = false;
            }
        }

        void CheckOutsidePfn(string what, ulong bits, JsonNode? at) => CheckOutside(what, bits, at, pfnMask);

        // A block's frame is aligned to its size, so the low bits of the field are zero in a block
        // and free for the kind's own bits (LoongArch _PAGE_HGLOBAL, bit 12, in a 4 KiB huge PMD).
        int blockShift = levels?.Take(levels.Count - 1).Where(l => l.Level.CanMapLeaf).Select(l => l.Level.Shift).DefaultIfEmpty(-1).Min() ?? -1;
        ulong blockField = pageShift is not null && blockShift >= pageShift && lo.Value + blockShift - pageShift.Value <= hi.Value
            ? Bits.Range(lo.Value + blockShift - pageShift.Value, hi.Value)
            : pfnMask;
        foreach ((string n, KindModel? k, JsonNode? node) in new[] { ("table", table, tableNode), ("block", block, blockNode), ("page", page, pageNode) })
        {
            if (k is null)
            {
                continue;
            }

            // Levels that failed to validate leave a block's alignment unknown: no second diagnostic for it.
            ulong field = n == "block" ? (levels is null ? 0UL : blockField) : pfnMask;
            CheckOutside($"entry.kinds.{n}.mask", k.Mask, SpecReader.Find(node!, "mask"), field);
            CheckOutside($"entry.kinds.{n}.any", k.Any, SpecReader.Find(node!, "any"), field);
            CheckOutside($"entry.kinds.{n}.make", k.Make, SpecReader.Find(node!, "make"), field);
        }

        CheckOutsidePfn("entry.readOnly.clear", roClear, roClearNode);
        CheckOutsidePfn("entry.readOnly.set", roSet, roSetNode);
        CheckOutsidePfn("entry.accessFlag", accessFlag, afNode);
        if (!ok)
        {
            return null;
        }

        // levels[].empty: every level says what its empty entry holds (s390: an invalid bit, not a zero
        // entry), or none does; then each level's empty entry, not 0, must be of no kind at its level.
        bool perLevelEmpty = levels is not null && levels.Any(l => l.Level.Empty is not null);
        int bare = perLevelEmpty ? levels!.FindIndex(l => l.Level.Empty is null) : -1;
        if (bare >= 0)
        {
            r.Report(DiagnosticDescriptors.MissingKey, levels![bare].Node, $"levels[{bare}]", "empty",
                "another level gives its empty entry, so every level must (s390: _REGION3_ENTRY_EMPTY, _SEGMENT_ENTRY_EMPTY, _PAGE_INVALID)");
            ok = false;
        }

        if (perLevelEmpty && emptyIsInvalidTable)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, emptyNode, "entry.empty", "levels give their own empty entries; leave out entry.empty");
            ok = false;
        }

        // Kinds must be told apart where they share a level, and an empty (zero) entry must be invalid.
        void CheckKind(string n, KindModel k, JsonNode node)
        {
            if ((k.Value & ~k.Mask) != 0)
            {
                r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "value"),
                    $"entry.kinds.{n}.value {Bits.Hex(k.Value)} has bits outside its mask {Bits.Hex(k.Mask)}, so no entry can match it; clear bits {Bits.Hex(k.Value & ~k.Mask)}");
                ok = false;
            }
            else if ((k.Any & k.Mask) != 0)
            {
                r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "any"),
                    $"entry.kinds.{n}.any {Bits.Hex(k.Any)} shares bits {Bits.Hex(k.Any & k.Mask)} with its mask {Bits.Hex(k.Mask)}; a bit is either fixed by mask and value or one of the bits of which any must be set");
                ok = false;
            }
            else if ((k.Make & k.Mask) != k.Value)
            {
                r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "make"),
                    $"entry.kinds.{n}.make {Bits.Hex(k.Make)} is not itself a {n} descriptor: make & mask is {Bits.Hex(k.Make & k.Mask)} but the value is {Bits.Hex(k.Value)}");
                ok = false;
            }
            else if (k.Any != 0 && (k.Make & k.Any) == 0)
            {
                r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "make"),
                    $"entry.kinds.{n}.make {Bits.Hex(k.Make)} is not itself a {n} descriptor: it sets none of the bits of any ({Bits.Hex(k.Any)})");
                ok = false;
            }
            else if (!perLevelEmpty && levels is not null && k.Matches(0)) // unknown levels may give their own empty entries
            {
                r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "value"),
                    $"entry.kinds.{n} matches an all-zero entry, so an empty table would translate; a valid descriptor needs a set bit (e.g. the present/valid bit) in value");
                ok = false;
            }
        }

        CheckKind("table", table, tableNode!);
        CheckKind("page", page, pageNode!);
        if (block is not null)
        {
            CheckKind("block", block, blockNode!);
            if (ok && needsBlock && CanBeBoth(table, block))
            {
                string level = levels!.Take(levels!.Count - 1).First(l => l.Level.CanMapLeaf).Level.Name;
                r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(blockNode!, "mask"),
                    $"At level '{level}' an entry can be both a table (mask {Bits.Hex(table.Mask)}, value {Bits.Hex(table.Value)}) and a block (mask {Bits.Hex(block.Mask)}, value {Bits.Hex(block.Value)}); the masks must share a bit where the values differ (x86-64: bit 7, PSE; arm64: bit 1), or one's any bits must all be fixed clear by the other (RISC-V: R, W, X)");
                ok = false;
            }
        }

        if (ok && levels is not null)
        {
            for (int i = 0; i < levels.Count; i++)
            {
                LevelModel l = levels[i].Level;
                JsonNode node = levels[i].Node;
                bool last = i == levels.Count - 1;
                if (l.TableMake is ulong tm && (last || !table.Matches(tm)))
                {
                    r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "tableMake"), last
                        ? $"levels[{i}].tableMake: the last level '{l.Name}' holds no tables"
                        : $"levels[{i}].tableMake {Bits.Hex(tm)} is not a table descriptor (mask {Bits.Hex(table.Mask)}, value {Bits.Hex(table.Value)})");
                    ok = false;
                }

                if (l.BlockMake is ulong bm && (last || block is null || !block.Matches(bm)))
                {
                    r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "blockMake"),
                        $"levels[{i}].blockMake {Bits.Hex(bm)} is not a block descriptor{(block is null ? string.Empty : $" (mask {Bits.Hex(block.Mask)}, value {Bits.Hex(block.Value)})")}");
                    ok = false;
                }

                if (l.Empty is ulong e && (last ? page.Matches(e) : table.Matches(e) || (l.CanMapLeaf && block is not null && block.Matches(e))))
                {
                    r.Report(DiagnosticDescriptors.AmbiguousKinds, SpecReader.Find(node, "empty"),
                        $"levels[{i}].empty {Bits.Hex(e)} is a valid {(last ? "page" : table.Matches(e) ? "table" : "block")} descriptor, so an empty table would translate; an empty entry has the invalid bit set (s390: _SEGMENT_ENTRY_INVALID)");
                    ok = false;
                }

                if (l.FragmentsUntil is not null && i > 0 && pageShift is int ps && lo is int pfnLo)
                {
                    // A fragment's origin lies inside its page (s390 _SEGMENT_ENTRY_ORIGIN ~0x7ff): the entry
                    // above holds its address from bit log2(tableBytes), so those bits must be address bits.
                    LevelModel parent = levels[i - 1].Level;
                    ulong origin = ((1UL << ps) - 1) & ~((ulong)l.TableBytes - 1);
                    ulong used = table.Mask | table.Any | (parent.TableMake ?? table.Make);
                    if (pfnLo != ps || (used & origin) != 0)
                    {
                        r.Report(DiagnosticDescriptors.InvalidValue, SpecReader.Find(node, "fragmentsUntil"), $"levels[{i}].fragmentsUntil",
                            pfnLo != ps
                                ? $"a '{parent.Name}' entry holds a frame number from bit {pfnLo}, not an address, so it cannot point into a page; fragments need entry.pfn.lo == pageShift ({ps})"
                                : $"a '{parent.Name}' table descriptor uses bits {Bits.Hex(used & origin)}, where a fragment's origin inside its page lies ({Bits.Hex(origin)})");
                        ok = false;
                    }
                }
            }
        }

        if (ok)
        {
            ulong readOnly = (page.Make & ~roClear) | roSet;
            if (readOnly == page.Make)
            {
                r.Report(DiagnosticDescriptors.InvalidValue, ro, "entry.readOnly", $"it leaves PAGE_KERNEL ({Bits.Hex(page.Make)}) unchanged; clear or set the bits that remove write permission");
                ok = false;
            }
            else if (!page.Matches(readOnly))
            {
                r.Report(DiagnosticDescriptors.AmbiguousKinds, ro,
                    $"entry.readOnly turns PAGE_KERNEL {Bits.Hex(page.Make)} into {Bits.Hex(readOnly)}, which is no longer a page descriptor (mask {Bits.Hex(page.Mask)}, value {Bits.Hex(page.Value)}); do not touch the kind bits");
                ok = false;
            }
        }

        if (ok && accessFlag != 0)
        {
            ulong kindBits = table.Mask | table.Any | page.Mask | page.Any | (block is null ? 0 : block.Mask | block.Any);
            if ((accessFlag & (kindBits | roClear | roSet)) != 0)
            {
                r.Report(DiagnosticDescriptors.AmbiguousKinds, afNode,
                    $"entry.accessFlag {Bits.Hex(accessFlag)} is one of the bits that tell kinds apart ({Bits.Hex(kindBits)}) or change permissions ({Bits.Hex(roClear | roSet)}); the access flag needs a bit of its own (arm64: bit 10)");
                ok = false;
            }
            else if ((page.Make & accessFlag) == 0 || (block is not null && (block.Make & accessFlag) == 0))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, afNode, "entry.accessFlag",
                    $"{Bits.Hex(accessFlag)} is clear in {((page.Make & accessFlag) == 0 ? "entry.kinds.page.make" : "entry.kinds.block.make")}, so every kernel mapping would take an access-flag fault; the kernel's PAGE_KERNEL sets it (arm64 PROT_NORMAL has PTE_AF)");
                ok = false;
            }
        }

        return ok ? new EntryFormat(lo.Value, hi.Value, table, block, page, roClear, roSet, accessFlag) { PageKernelRo = pageKernelRo, EmptyIsInvalidTable = emptyIsInvalidTable } : null;
    }

    /// <summary>
    /// Can one entry be of both kinds? Their fixed bits must agree, and each kind's any bits must
    /// have one that the other kind leaves free or fixes set (free bits can all be set at once).
    /// </summary>
    private static bool CanBeBoth(KindModel a, KindModel b)
    {
        if (((a.Value ^ b.Value) & a.Mask & b.Mask) != 0)
        {
            return false;
        }

        ulong fixedBits = a.Mask | b.Mask, fixedSet = a.Value | b.Value;
        bool Satisfiable(ulong any) => any == 0 || (any & ~fixedBits) != 0 || (any & fixedSet) != 0;
        return Satisfiable(a.Any) && Satisfiable(b.Any);
    }

    private static KindModel? ReadKind(SpecReader r, JsonNode? node, string path)
    {
        JsonNode? obj = r.Object(node, path);
        if (obj is null)
        {
            return null;
        }

        r.CheckKeys(obj, path, "mask", "value", "make", "any");
        ulong? mask = r.Number(r.Required(obj, path, "mask", "the bits that tell this kind apart"), path + ".mask");
        ulong? value = r.Number(r.Required(obj, path, "value", "what those bits hold in this kind"), path + ".value");
        ulong? make = r.Number(r.Required(obj, path, "make", "the descriptor bits the kernel writes (its pgprot), without the frame number"), path + ".make");
        JsonNode? anyNode = SpecReader.Find(obj, "any");
        ulong? any = r.Number(anyNode, path + ".any");
        if (anyNode is not null && any is null)
        {
            return null;
        }

        return mask is null || value is null || make is null ? null : new KindModel(mask.Value, value.Value, make.Value) { Any = any ?? 0 };
    }

    private static List<ContiguousModel> ReadContiguous(SpecReader r, JsonNode root, List<(LevelModel Level, JsonNode Node)>? levels, EntryFormat? format)
    {
        var result = new List<ContiguousModel>();
        JsonNode? array = r.Array(SpecReader.Find(root, "contiguous"), "contiguous");
        if (array is null)
        {
            return result;
        }

        for (int i = 0; i < array.Items.Count; i++)
        {
            string path = $"contiguous[{i}]";
            JsonNode? item = r.Object(array.Items[i], path);
            if (item is null)
            {
                continue;
            }

            r.CheckKeys(item, path, "level", "count", "bit");
            JsonNode? levelNode = r.Required(item, path, "level", "the level whose entries form the run, e.g. \"pte\"");
            string? levelName = r.String(levelNode, path + ".level");
            JsonNode? countNode = r.Required(item, path, "count", "entries in one run, a power of two, e.g. 16");
            int? count = r.Int(countNode, path + ".count", 2, 1 << 20);
            JsonNode? bitNode = r.Required(item, path, "bit", "the contiguous hint bit, e.g. 52 on arm64");
            int? bit = r.Int(bitNode, path + ".bit", 0, 63);
            if (count is not null && !Bits.IsPowerOfTwo((ulong)count.Value))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, countNode, path + ".count", $"{count} is not a power of two; a contiguous run is 2^n entries");
                count = null;
            }

            int level = -1;
            if (levelName is not null && levels is not null)
            {
                level = levels.FindIndex(l => l.Level.Name == levelName);
                if (level < 0 || !(levels[level].Level.CanMapLeaf || level == levels.Count - 1))
                {
                    r.Report(DiagnosticDescriptors.UnknownLevel, levelNode, path + ".level", levelName, "a level that maps leaves",
                        string.Join(", ", levels.Where((l, idx) => l.Level.CanMapLeaf || idx == levels.Count - 1).Select(l => l.Level.Name)));
                    level = -1;
                }
                else if (count is not null && count.Value > 1 << levels[level].Level.Bits)
                {
                    r.Report(DiagnosticDescriptors.InvalidValue, countNode, path + ".count", $"{count} entries do not fit in one '{levelName}' table of {1 << levels[level].Level.Bits}");
                    count = null;
                }
            }

            if (bit is not null && format is not null)
            {
                ulong b = 1UL << bit.Value;
                ulong pfnMask = Bits.Range(format.PfnLo, format.PfnHi);
                ulong kindBits = format.Table.Mask | format.Table.Any | format.Page.Mask | format.Page.Any | (format.Block is null ? 0 : format.Block.Mask | format.Block.Any) | format.ReadOnlyClear | format.ReadOnlySet | format.AccessFlag;
                if ((b & pfnMask) != 0)
                {
                    r.Report(DiagnosticDescriptors.PfnFieldOverlap, bitNode, path + ".bit", bit, Bits.Hex(b), format.PfnLo, format.PfnHi);
                    bit = null;
                }
                else if ((b & kindBits) != 0)
                {
                    r.Report(DiagnosticDescriptors.AmbiguousKinds, bitNode, $"{path}.bit {bit} is one of the bits that tell kinds apart, change permissions or hold the access flag; the contiguous hint needs a bit of its own");
                    bit = null;
                }
            }

            if (level >= 0 && count is not null && bit is not null)
            {
                result.Add(new ContiguousModel(level, count.Value, bit.Value));
            }
        }

        return result;
    }

    private sealed record VmemmapModel(ulong Start, ulong Size, int StructPageBytes, int BootLevel, int SectionShift, int LinearMapBits, bool OffsetByRamBase);

    private static VmemmapModel? ReadVmemmap(SpecReader r, JsonNode vm, int? pageShift, int? vaBits, List<(LevelModel Level, JsonNode Node)>? levels, ulong ramBase, JsonNode? ramBaseNode)
    {
        r.CheckKeys(vm, "vmemmap", "start", "size", "structPageBytes", "bootMapping", "sectionShift", "linearMapBits", "offsetByRamBase", "ownAddressSpace");
        // vmemmap.ownAddressSpace: the kernel translates through an address space of its own from 0
        // (s390's kernel ASCE), not the top of a shared one.
        bool ownSpace = r.Bool(SpecReader.Find(vm, "ownAddressSpace"), "vmemmap.ownAddressSpace") ?? false;
        bool offsetByRamBase = r.Bool(SpecReader.Find(vm, "offsetByRamBase"), "vmemmap.offsetByRamBase") ?? false;
        JsonNode? startNode = r.Required(vm, "vmemmap", "start", "VMEMMAP_START, e.g. \"0xffffea0000000000\"");
        ulong? start = r.Number(startNode, "vmemmap.start");
        JsonNode? sizeNode = r.Required(vm, "vmemmap", "size", "the size of the vmemmap region, e.g. \"1TiB\"");
        ulong? size = r.Number(sizeNode, "vmemmap.size");
        JsonNode? spNode = r.Required(vm, "vmemmap", "structPageBytes", "sizeof(struct page), 64");
        int? structPage = r.Int(spNode, "vmemmap.structPageBytes", 1, 4096);
        JsonNode? bootNode = r.Required(vm, "vmemmap", "bootMapping", "the level whose leaves map the vmemmap at boot (\"pmd\"), or \"pte\"");
        string? boot = r.String(bootNode, "vmemmap.bootMapping");
        int? sectionShift = r.Int(r.Required(vm, "vmemmap", "sectionShift", "SECTION_SIZE_BITS, e.g. 27"), "vmemmap.sectionShift", pageShift ?? 0, 63);
        if (sectionShift is not null && ramBaseNode is not null && (ramBase & ((1UL << sectionShift.Value) - 1)) != 0)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, ramBaseNode, "ramBase",
                $"{Bits.Hex(ramBase)} is not a multiple of the {Bits.Size(1UL << sectionShift.Value)} memory section (vmemmap.sectionShift); RAM starts on a section boundary");
        }

        JsonNode? linearNode = SpecReader.Find(vm, "linearMapBits");
        int? linearBits = r.Int(linearNode, "vmemmap.linearMapBits", pageShift ?? 0, 64);

        if (structPage is not null && (!Bits.IsPowerOfTwo((ulong)structPage.Value) || structPage < 64))
        {
            r.Report(DiagnosticDescriptors.StructPageNotPowerOfTwo, spNode, structPage);
            structPage = null;
        }

        if (size is not null && size == 0)
        {
            r.Report(DiagnosticDescriptors.VmemmapTooSmall, sizeNode, "vmemmap.size is 0; the vmemmap must hold the struct pages of all memory");
            size = null;
        }

        int bootLevel = -1;
        if (boot is not null && levels is not null)
        {
            bootLevel = levels.FindIndex(l => l.Level.Name == boot);
            if (boot == "pte")
            {
                bootLevel = levels.Count - 1;
            }

            if (bootLevel < 0 || !(levels[bootLevel].Level.CanMapLeaf || bootLevel == levels.Count - 1))
            {
                r.Report(DiagnosticDescriptors.UnknownLevel, bootNode, "vmemmap.bootMapping", boot, "a level that maps leaves",
                    string.Join(", ", levels.Where((l, idx) => l.Level.CanMapLeaf || idx == levels.Count - 1).Select(l => l.Level.Name)));
                bootLevel = -1;
            }
        }

        if (start is not null && bootLevel >= 0)
        {
            ulong align = 1UL << levels![bootLevel].Level.Shift;
            if ((start.Value & (align - 1)) != 0)
            {
                r.Report(DiagnosticDescriptors.VmemmapMisaligned, startNode, Bits.Hex(start.Value), Bits.Hex(align), levels[bootLevel].Level.Name);
                start = null;
            }
        }

        if (start is not null && size is not null)
        {
            if (size.Value - 1 > ulong.MaxValue - start.Value)
            {
                r.Report(DiagnosticDescriptors.VmemmapTooSmall, sizeNode,
                    $"vmemmap [{Bits.Hex(start.Value)}, +{Bits.Size(size.Value)}) runs past the top of the address space; end it at or below 2^64");
                size = null;
            }
            else if (ownSpace && vaBits is not null && vaBits < 64 && start.Value + (size.Value - 1) >= 1UL << vaBits.Value)
            {
                r.Report(DiagnosticDescriptors.VmemmapTooSmall, startNode,
                    $"vmemmap [{Bits.Hex(start.Value)}, +{Bits.Size(size.Value)}) runs past the kernel's own {vaBits}-bit address space, which ends at {Bits.Hex(1UL << vaBits.Value)}");
                start = null;
            }
            else if (!ownSpace && vaBits is not null && vaBits < 64 && start.Value < 0UL - (1UL << vaBits.Value))
            {
                r.Report(DiagnosticDescriptors.VmemmapTooSmall, startNode,
                    $"vmemmap.start {Bits.Hex(start.Value)} is below the kernel's {vaBits}-bit address space, which starts at {Bits.Hex(0UL - (1UL << vaBits.Value))}");
                start = null;
            }
        }

        if (size is not null && structPage is not null && linearBits is not null && pageShift is not null)
        {
            int needShift = linearBits.Value - pageShift.Value;
            int spShift = Log2((ulong)structPage.Value);
            if (needShift + spShift >= 64 || (1UL << (needShift + spShift)) > size.Value)
            {
                string need = needShift + spShift >= 64 ? "2^" + (needShift + spShift) : Bits.Size(1UL << (needShift + spShift));
                r.Report(DiagnosticDescriptors.VmemmapTooSmall, sizeNode,
                    $"vmemmap.size {Bits.Size(size.Value)} is too small for the linear map: 2^{linearBits} bytes of memory in {Bits.Size(1UL << pageShift.Value)} pages need {need} of {structPage}-byte struct pages; make the size at least that, or lower vmemmap.linearMapBits");
                size = null;
            }
            else if (!offsetByRamBase && ramBaseNode is not null && linearBits.Value < 64 && ramBase >= 1UL << linearBits.Value)
            {
                // Without the offset the vmemmap starts with pfn 0: RAM must lie in the physical
                // address space it describes.
                r.Report(DiagnosticDescriptors.VmemmapTooSmall, ramBaseNode,
                    $"ramBase {Bits.Hex(ramBase)} lies above the 2^{linearBits} bytes of physical memory the vmemmap describes from pfn 0; lower it, or set vmemmap.offsetByRamBase when the architecture starts the vmemmap at the first RAM pfn");
            }
        }

        return start is null || size is null || structPage is null || bootLevel < 0 || sectionShift is null
            ? null
            : new VmemmapModel(start.Value, size.Value, structPage.Value, bootLevel, sectionShift.Value, linearBits ?? 0, offsetByRamBase);
    }

    private static List<HugeSizeModel> ReadHugePageSizes(SpecReader r, JsonNode root, int? pageShift, List<(LevelModel Level, JsonNode Node)>? levels, List<ContiguousModel> contiguous)
    {
        var result = new List<HugeSizeModel>();
        JsonNode? array = r.Array(r.Required(root, string.Empty, "hugePageSizes", "the HugeTLB page sizes, e.g. [\"2MiB\", \"1GiB\"]"), "hugePageSizes");
        if (array is null || levels is null)
        {
            return result;
        }

        for (int i = 0; i < array.Items.Count; i++)
        {
            JsonNode node = array.Items[i];
            ulong? size = r.Number(node, $"hugePageSizes[{i}]");
            if (size is null)
            {
                continue;
            }

            if (result.Any(h => h.Size == size))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, node, $"hugePageSizes[{i}]", $"{Bits.Size(size.Value)} is listed twice");
                continue;
            }

            int leafLevel = levels.FindIndex(l => l.Level.CanMapLeaf && levels.IndexOf(l) < levels.Count - 1 && (1UL << l.Level.Shift) == size);
            if (leafLevel >= 0)
            {
                result.Add(new HugeSizeModel(size.Value, leafLevel, 1));
                continue;
            }

            ContiguousModel? run = contiguous.FirstOrDefault(c => c.Level < levels.Count && ((ulong)c.Count << levels[c.Level].Level.Shift) == size);
            if (run is not null)
            {
                result.Add(new HugeSizeModel(size.Value, run.Level, run.Count));
                continue;
            }

            string leafSizes = string.Join(", ", levels.Take(levels.Count - 1).Where(l => l.Level.CanMapLeaf).Select(l => $"{l.Level.Name} {Bits.Size(1UL << l.Level.Shift)}"));
            string contSizes = string.Join(", ", contiguous.Select(c => $"{c.Count} x {levels[c.Level].Level.Name} = {Bits.Size((ulong)c.Count << levels[c.Level].Level.Shift)}"));
            r.Report(DiagnosticDescriptors.BadHugePageSize, node, Bits.Size(size.Value),
                leafSizes.Length == 0 ? "none" : leafSizes,
                contSizes.Length == 0 ? "none" : contSizes);
        }

        return result;
    }

    /// <summary>The zones of each node, lowest first (x86-64: DMA, DMA32, Normal); default one Normal zone.</summary>
    private static List<ZoneModel> ReadZones(SpecReader r, JsonNode root, int? pageShift)
    {
        var result = new List<ZoneModel>();
        JsonNode? array = r.Array(SpecReader.Find(root, "zones"), "zones");
        if (array is null)
        {
            result.Add(new ZoneModel("Normal", 0));
            return result;
        }

        if (array.Items.Count is < 1 or > 4)
        {
            r.Report(DiagnosticDescriptors.InvalidValue, array, "zones", $"{array.Items.Count} zones given; a node has 1 to 4 zones, lowest first, e.g. [{{ \"name\": \"DMA32\", \"end\": \"4GiB\" }}, {{ \"name\": \"Normal\" }}]");
            return result;
        }

        ulong previous = 0;
        for (int i = 0; i < array.Items.Count; i++)
        {
            string path = $"zones[{i}]";
            JsonNode? item = r.Object(array.Items[i], path);
            if (item is null)
            {
                continue;
            }

            r.CheckKeys(item, path, "name", "end");
            JsonNode? nameNode = r.Required(item, path, "name", "the zone's name, e.g. \"DMA32\"");
            string? name = r.String(nameNode, path + ".name");
            if (name is not null && (name.Length == 0 || !name.All(char.IsLetterOrDigit) || result.Any(z => z.Name == name)))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, nameNode, path + ".name", $"\"{name}\" is not a new zone name; use letters and digits, each name once");
                name = null;
            }

            bool last = i == array.Items.Count - 1;
            JsonNode? endNode = SpecReader.Find(item, "end");
            ulong? end = r.Number(endNode, path + ".end");
            if (!last && endNode is null)
            {
                r.Report(DiagnosticDescriptors.MissingKey, item, path, "end", "every zone but the last ends at a physical address, e.g. \"4GiB\"");
            }
            else if (last && endNode is not null)
            {
                r.Report(DiagnosticDescriptors.InvalidValue, endNode, path + ".end", "the last zone takes the rest of memory; leave out its end");
                end = null;
            }
            else if (end is not null && (end <= previous || (pageShift is not null && (end.Value & ((1UL << pageShift.Value) - 1)) != 0)))
            {
                r.Report(DiagnosticDescriptors.InvalidValue, endNode, path + ".end", $"{Bits.Hex(end.Value)} must be page aligned and above the previous zone's end ({Bits.Hex(previous)})");
                end = null;
            }

            if (name is not null && (last || end is not null))
            {
                result.Add(new ZoneModel(name, last ? 0 : end!.Value));
                previous = end ?? previous;
            }
        }

        return result;
    }

    private static int Log2(ulong v)
    {
        int n = 0;
        while ((v >>= 1) != 0)
        {
            n++;
        }

        return n;
    }
}
