using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using CsCheck;

namespace Hvo.Generator.Tests.Harness;

/// <summary>
/// Structure-aware spec inputs for the fuzz: plausible specs built from a random geometry (levels
/// that fit the page size, descriptor kinds after x86-64 or arm64, a vmemmap that can hold the
/// linear map), every number written in a random one of the contract's forms (JSON number,
/// decimal string, hex, size suffix), then some values swapped for hostile ones (numbers beyond
/// 64 bits, negative, fractional, shifts of 64 and more, suffix overflows, unicode, wrong JSON
/// types), keys dropped, duplicated or renamed, and finally byte- and token-level mutations of
/// the text (truncation, deleted, duplicated or swapped tokens, inserted junk).
/// </summary>
internal static class SpecFuzz
{
    // ------------------------------------------------------------------ JSON values with a shape

    /// <summary>A JSON value to print: a number (with the forms it may be written in), a string, an object, an array or a literal.</summary>
    internal abstract record V;

    internal sealed record Num(ulong Value) : V;

    internal sealed record Str(string Value) : V;

    internal sealed record Raw(string Text) : V;

    internal sealed record Obj(List<(string Key, V Value)> Members) : V;

    internal sealed record Arr(List<V> Items) : V;

    // ------------------------------------------------------------------ the random geometry

    /// <summary>What a title may hold that generated code must survive: line breaks of every kind, quotes, XML, comment markers.</summary>
    private const string TitleChars = "aZ09 \"\\\n\r\t\0\u0007\u0085\u2028\u2029<>&*/#{}\u00e9\U0001F600";

    /// <summary>A spec tree whose values mostly agree with each other (so many are valid).</summary>
    internal static Gen<Obj> Plausible => Gen.Select(
        Gen.Select(Gen.Frequency((6, Gen.Const(12)), (2, Gen.Const(14)), (2, Gen.Const(16)), (1, Gen.Int[10, 24])), Gen.Frequency((8, Gen.Int[3, 5]), (1, Gen.Int[1, 6])), Gen.Int[1, 12], Gen.Bool),
        Gen.Select(Gen.Int[36, 55], Gen.Bool, Gen.Int[0, 3], Gen.Int[0, 2]),
        Gen.Select(Gen.Frequency((6, Gen.Const(-1)), (2, Gen.Int[0, 7])), Gen.Int[52, 62], Gen.Frequency((5, Gen.Const(64)), (1, Gen.Int[1, 256])), Gen.Int[20, 40]),
        Gen.Select(Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789_-"], 1, 12], Gen.Frequency((3, Gen.String[Gen.Char.AlphaNumeric, 0, 30]), (1, Gen.String[Gen.Char[TitleChars], 0, 30])), Gen.Int[0, 2], Gen.Bool),
        (geo, entry, vm, names) => Build(geo.Item1, geo.Item2, geo.Item3, geo.Item4, entry.Item1, entry.Item2, entry.Item3, entry.Item4, vm.Item1, vm.Item2, vm.Item3, vm.Item4, names.Item1, names.Item2, names.Item3, names.Item4));

    private static Obj Build(
        int pageShift, int levelCount, int rootBits, bool x86Kinds,
        int pfnHi, bool leafAbove, int contiguousKind, int zonesKind,
        int vmemmapStartPick, int contBit, int structPage, int sectionExtra,
        string nameTail, string title, int hugeKind, bool bbm)
    {
        int tableBits = pageShift - 3;
        rootBits = Math.Min(rootBits, tableBits);
        var levels = new List<(string Name, int Shift, int Bits, bool Leaf)>();
        int shift = pageShift;
        for (int i = levelCount - 1; i >= 0; i--)
        {
            int bits = i == 0 ? rootBits : tableBits;
            bool leaf = i > 0 && i < levelCount - 1 && (leafAbove || i == levelCount - 2);
            levels.Insert(0, (string.Empty, shift, bits, leaf));
            shift += bits;
        }

        // Unique level names: the last two are the kernel's pmd and pte, the ones above by index.
        levels = levels.Select((l, i) => (i == levels.Count - 1 ? "pte" : i == levels.Count - 2 ? "pmd" : "l" + i, l.Shift, l.Bits, l.Leaf)).ToList();
        int vaBits = Math.Min(64, shift);
        pfnHi = Math.Max(pageShift + 1, Math.Min(pfnHi, x86Kinds ? 51 : 47)); // below the kinds' make bits

        ulong kindMask = x86Kinds ? 0x81UL : 0x3UL;
        var kinds = new Obj([
            ("table", Kind(kindMask, x86Kinds ? 0x01UL : 0x3UL, x86Kinds ? 0x67UL : 0x1000000000000003UL)),
            ("block", Kind(kindMask, x86Kinds ? 0x81UL : 0x1UL, x86Kinds ? 0x80000000000001e3UL : 0x0060000000000701UL)),
            ("page", Kind(x86Kinds ? 0x1UL : 0x3UL, x86Kinds ? 0x1UL : 0x3UL, x86Kinds ? 0x8000000000000163UL : 0x0068000000000703UL)),
        ]);
        Obj readOnly = x86Kinds ? new Obj([("clear", new Num(0x2))]) : new Obj([("set", new Num(0x80)), ("clear", new Num(1UL << 51))]);

        var contiguous = new List<V>();
        if (contiguousKind >= 1)
        {
            contiguous.Add(new Obj([("level", new Str("pte")), ("count", new Num(16)), ("bit", new Num((ulong)contBit))]));
        }

        if (contiguousKind >= 2)
        {
            contiguous.Add(new Obj([("level", new Str("pmd")), ("count", new Num(32)), ("bit", new Num((ulong)contBit))]));
        }

        int pmdShift = levels.Count >= 2 ? levels[^2].Shift : pageShift;
        ulong[] starts = [0xffffea0000000000UL, 0xfffffdffc0000000UL, 0xffd4000000000000UL, 0xffff000000000000UL, 1UL << pmdShift, 0, ulong.MaxValue << 40, 0xffffffff00000000UL];
        int linearBits = Math.Min(vaBits - 2, 46);
        int spShift = (int)Math.Log2(Math.Max(1, structPage));
        ulong size = linearBits - pageShift + spShift is > 0 and < 64 ? 1UL << (linearBits - pageShift + spShift) : 1UL << 40;

        var huge = new List<V>();
        foreach ((string _, int s, int _, bool leaf) in levels.Take(levels.Count - 1))
        {
            if (leaf && (hugeKind > 0 || huge.Count == 0))
            {
                huge.Add(new Num(1UL << s));
            }
        }

        if (hugeKind == 2 && contiguousKind >= 1)
        {
            huge.Add(new Num(16UL << pageShift));
        }

        var zones = zonesKind switch
        {
            0 => null,
            1 => new Arr([new Obj([("name", new Str("Normal"))])]),
            _ => new Arr([new Obj([("name", new Str("DMA32")), ("end", new Num(4UL << 30))]), new Obj([("name", new Str("Normal"))])]),
        };

        var members = new List<(string, V)>
        {
            ("name", new Str("a" + nameTail)),
            ("title", new Str(title)),
            ("pageShift", new Num((ulong)pageShift)),
            ("vaBits", new Num((ulong)vaBits)),
            ("levels", new Arr([.. levels.Select(l => (V)new Obj(l.Leaf
                ? [("name", new Str(l.Name)), ("shift", new Num((ulong)l.Shift)), ("bits", new Num((ulong)l.Bits)), ("leaf", new Raw("true"))]
                : [("name", new Str(l.Name)), ("shift", new Num((ulong)l.Shift)), ("bits", new Num((ulong)l.Bits))]))])),
            ("entry", new Obj([("pfn", new Obj([("lo", new Num((ulong)pageShift)), ("hi", new Num((ulong)pfnHi))])), ("kinds", kinds), ("readOnly", readOnly)])),
            ("contiguous", new Arr(contiguous)),
            ("vmemmap", new Obj([
                // The upper half of the address space (aligned to all of it), or one of a few fixed starts, some invalid.
                ("start", new Num(vmemmapStartPick < 0 ? 0UL - (1UL << (vaBits - 1)) : starts[vmemmapStartPick % starts.Length])),
                ("size", new Num(size)),
                ("structPageBytes", new Num((ulong)structPage)),
                ("bootMapping", new Str("pmd")),
                ("sectionShift", new Num((ulong)(pageShift + sectionExtra % 20))),
                ("linearMapBits", new Num((ulong)linearBits)),
            ])),
            ("hugePageSizes", new Arr(huge)),
            ("breakBeforeMake", new Raw(bbm ? "true" : "false")),
        };
        if (zones is not null)
        {
            members.Add(("zones", zones));
        }

        return new Obj(members);
    }

    private static Obj Kind(ulong mask, ulong value, ulong make) => new([("mask", new Num(mask)), ("value", new Num(value)), ("make", new Num(make))]);

    // ------------------------------------------------------------------ printing with random forms

    /// <summary>How to print each number and string: a stream of random choices consumed in order.</summary>
    internal sealed class Printer(uint[] choices)
    {
        private int _next;

        private uint Next() => choices.Length == 0 ? 0 : choices[_next++ % choices.Length];

        public string Print(V root)
        {
            var sb = new StringBuilder();
            Write(sb, root, 0);
            return sb.ToString();
        }

        private void Write(StringBuilder sb, V v, int depth)
        {
            switch (v)
            {
                case Num n:
                    sb.Append(NumberText(n.Value, Next()));
                    break;
                case Str s:
                    sb.Append(Quote(s.Value));
                    break;
                case Raw r:
                    sb.Append(r.Text);
                    break;
                case Arr a:
                    sb.Append('[');
                    for (int i = 0; i < a.Items.Count; i++)
                    {
                        sb.Append(i == 0 ? string.Empty : ", ");
                        Write(sb, a.Items[i], depth + 1);
                    }

                    sb.Append(Next() % 8 == 0 ? ",]" : "]"); // a trailing comma is allowed
                    break;
                case Obj o:
                    sb.Append("{\n");
                    for (int i = 0; i < o.Members.Count; i++)
                    {
                        uint c = Next();
                        sb.Append(' ', 2 * (depth + 1));
                        if (c % 16 == 0)
                        {
                            sb.Append("// a comment\n").Append(' ', 2 * (depth + 1));
                        }

                        sb.Append(Quote(o.Members[i].Key)).Append(": ");
                        Write(sb, o.Members[i].Value, depth + 1);
                        sb.Append(i + 1 < o.Members.Count || c % 8 == 1 ? ",\n" : "\n");
                    }

                    sb.Append(' ', 2 * depth).Append('}');
                    break;
            }
        }
    }

    /// <summary><paramref name="v"/> in one of the contract's number forms, picked by <paramref name="c"/>.</summary>
    internal static string NumberText(ulong v, uint c)
    {
        string[] units = ["K", "M", "G", "T", "P", "E"];
        switch (c % 6)
        {
            case 0:
                return v.ToString(CultureInfo.InvariantCulture);
            case 1:
                return Quote(v.ToString(CultureInfo.InvariantCulture));
            case 2:
                return Quote((c % 12 < 6 ? "0x" : "0X") + v.ToString(c % 5 == 0 ? "X" : "x", CultureInfo.InvariantCulture));
            case 3 when v != 0:
                {
                    // The largest binary unit that divides it, written K/M/.. or KiB/MiB/..
                    int u = -1;
                    while (u + 1 < units.Length && v % (1UL << (10 * (u + 2))) == 0)
                    {
                        u++;
                    }

                    return u < 0 ? Quote(v.ToString(CultureInfo.InvariantCulture)) : Quote((v >> (10 * (u + 1))).ToString(CultureInfo.InvariantCulture) + units[u] + (c % 12 < 6 ? "iB" : string.Empty));
                }

            case 4:
                return Quote(" " + v.ToString(CultureInfo.InvariantCulture) + " ");
            default:
                return v <= 0xffff ? v.ToString(CultureInfo.InvariantCulture) : Quote("0x" + v.ToString("x", CultureInfo.InvariantCulture));
        }
    }

    internal static string Quote(string s)
    {
        var sb = new StringBuilder("\"");
        foreach (char ch in s)
        {
            sb.Append(ch switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                < ' ' => "\\u" + ((int)ch).ToString("x4", CultureInfo.InvariantCulture),
                _ => ch.ToString(),
            });
        }

        return sb.Append('"').ToString();
    }

    // ------------------------------------------------------------------ hostile values and key edits

    /// <summary>Values no spec should hold, each of which must be a diagnostic at its place.</summary>
    internal static readonly string[] Hostile =
    [
        "99999999999999999999", "18446744073709551616", "-1", "-0", "1.5", "1e3", "1E400", "0.0",
        "\"99999999999999999999\"", "\"18446744073709551616\"", "\"-1\"", "\"99999999999EiB\"", "\"16EiB\"", "\"17179869184G\"",
        "\"0x10000000000000000\"", "\"0x\"", "\"0x_\"", "\"0xg\"", "\"1Q\"", "\"1 KiB\"", "\"1kib\"", "\"\"", "\" \"",
        "64", "65", "255", "4294967296", "\"64\"", "\"0x40\"", "0", "1",
        "\"\u0661\u0662\"", "\"\uff11\uff12\"", "\"\U0001D7D9\"", "\"\u00e9\u2014\"", "\"\\u0000\"", "\"\\ud800\"", "\"x\\ny\"", "\"a\\u2028b\"",
        "true", "false", "null", "{}", "[]", "[1]", "{\"a\": 1}", "\"pmd\"", "\"pte\"", "\"pgd\"", "\"nope\"",
    ];

    /// <summary>Replace, drop, duplicate or rename members of the tree, each with probability about 1/<paramref name="oneIn"/>.</summary>
    internal static V Perturb(V v, uint[] choices, int oneIn)
    {
        int next = 0;
        uint Next() => choices.Length == 0 ? 1 : choices[next++ % choices.Length];

        V Walk(V node)
        {
            uint c = Next();
            if (c % (uint)oneIn == 0 && node is not Obj { Members.Count: > 8 })
            {
                return new Raw(Hostile[(c / (uint)oneIn) % (uint)Hostile.Length]);
            }

            switch (node)
            {
                case Obj o:
                    {
                        var members = new List<(string, V)>();
                        foreach ((string key, V value) in o.Members)
                        {
                            uint k = Next();
                            switch (k % (uint)(oneIn * 4))
                            {
                                case 0:
                                    continue; // dropped
                                case 1:
                                    members.Add((key, Walk(value)));
                                    members.Add((key, Walk(value))); // duplicated
                                    continue;
                                case 2:
                                    members.Add((key + "x", Walk(value))); // renamed
                                    continue;
                                case 3:
                                    members.Add((key.ToUpperInvariant(), Walk(value)));
                                    continue;
                            }

                            members.Add((key, Walk(value)));
                        }

                        return new Obj(members);
                    }

                case Arr a:
                    {
                        var items = a.Items.Select(Walk).ToList();
                        uint k = Next();
                        if (k % (uint)(oneIn * 2) == 0 && items.Count > 0)
                        {
                            items.Add(items[(int)(k / 7 % (uint)items.Count)]);
                        }
                        else if (k % (uint)(oneIn * 2) == 1 && items.Count > 0)
                        {
                            items.RemoveAt((int)(k / 7 % (uint)items.Count));
                        }

                        return new Arr(items);
                    }

                default:
                    return node;
            }
        }

        return Walk(v);
    }

    // ------------------------------------------------------------------ text mutations

    internal enum Mutation
    {
        Truncate,
        DeleteToken,
        DuplicateToken,
        SwapTokens,
        InsertJunk,
        ReplaceChars,
        DeepNesting,
        HugeNumber,
    }

    private const string Alphabet = "{}[]\":,/*\n\r\t -+.0123456789abcdefxXGKMTiBE_e\\\u00e9\u2014\u2028\uFEFF\U0001D11E";

    internal static Gen<(Mutation Kind, int A, int B, string Chars)> Mutations => Gen.Select(
        Gen.Enum<Mutation>(), Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], Gen.String[Gen.Char[Alphabet], 1, 8]);

    /// <summary>The text split into JSON-ish tokens (strings, numbers and words, punctuation, whitespace), each with its offset.</summary>
    internal static List<(int Start, int Length)> Tokens(string text)
    {
        var tokens = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            int start = i;
            char c = text[i];
            if (c == '"')
            {
                i++;
                while (i < text.Length && text[i] != '"')
                {
                    i += text[i] == '\\' ? 2 : 1;
                }

                i = Math.Min(text.Length, i + 1);
            }
            else if (char.IsWhiteSpace(c))
            {
                while (i < text.Length && char.IsWhiteSpace(text[i]))
                {
                    i++;
                }
            }
            else if (char.IsLetterOrDigit(c) || c is '-' or '+' or '.')
            {
                while (i < text.Length && (char.IsLetterOrDigit(text[i]) || text[i] is '-' or '+' or '.'))
                {
                    i++;
                }
            }
            else
            {
                i++;
            }

            tokens.Add((start, i - start));
        }

        return tokens;
    }

    internal static string Apply(string text, (Mutation Kind, int A, int B, string Chars) m)
    {
        List<(int Start, int Length)> tokens = Tokens(text);
        if (tokens.Count == 0)
        {
            return m.Chars;
        }

        (int s, int l) = tokens[m.A % tokens.Count];
        (int s2, int l2) = tokens[m.B % tokens.Count];
        switch (m.Kind)
        {
            case Mutation.Truncate:
                return text.Substring(0, m.A % (text.Length + 1));
            case Mutation.DeleteToken:
                return text.Remove(s, l);
            case Mutation.DuplicateToken:
                return text.Insert(s, text.Substring(s, l));
            case Mutation.SwapTokens when s2 > s + l:
                return text.Substring(0, s) + text.Substring(s2, l2) + text.Substring(s + l, s2 - s - l) + text.Substring(s, l) + text.Substring(s2 + l2);
            case Mutation.InsertJunk:
                return text.Insert(s, m.Chars);
            case Mutation.DeepNesting:
                {
                    int depth = 1 + (m.B % 100);
                    return text.Insert(s, new string('[', depth) + "1" + new string(']', m.B % 2 == 0 ? depth : depth / 2));
                }

            case Mutation.HugeNumber:
                return text.Remove(s, l).Insert(s, m.B % 3 == 0 ? new string('9', 30 + (m.B % 400)) : m.B % 3 == 1 ? "\"" + new string('9', 25) + "EiB\"" : "\"0x" + new string('f', 17 + (m.B % 10)) + "\"");
            default:
                {
                    int at = m.A % (text.Length + 1);
                    int length = Math.Min(m.Chars.Length, text.Length - at);
                    return text.Remove(at, length).Insert(at, m.Chars);
                }
        }
    }

    // ------------------------------------------------------------------ the inputs

    /// <summary>
    /// A spec text: a plausible tree printed with random forms, perturbed in about 1 value of
    /// <c>oneIn</c> (sometimes not at all), then 0 to 3 text mutations (none half of the time).
    /// </summary>
    internal static Gen<string> Specs => Gen.Select(
        Plausible,
        Gen.UInt.Array[64, 64],
        Gen.Frequency((3, Gen.Const(0)), (4, Gen.Int[4, 40])),
        Gen.Frequency((5, Gen.Const(Array.Empty<(Mutation, int, int, string)>())), (5, Mutations.Array[1, 3])),
        (tree, choices, oneIn, mutations) =>
        {
            V v = oneIn == 0 ? tree : Perturb(tree, choices, oneIn);
            string text = new Printer(choices).Print(v);
            return mutations.Aggregate(text, Apply);
        });
}
