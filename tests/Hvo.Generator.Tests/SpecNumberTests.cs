using Hvo.Generator.Parsing;

namespace Hvo.Generator.Tests;

/// <summary>Numbers in a spec: JSON whole numbers, or strings in hex, decimal or with a binary size suffix.</summary>
[TestClass]
public sealed class SpecNumberTests
{
    [TestMethod]
    [DataRow("0x1f", 0x1fUL)]
    [DataRow("0X1F", 0x1fUL)]
    [DataRow("0x0", 0UL)]
    [DataRow("0xffffea0000000000", 0xffffea0000000000UL)]
    [DataRow("0x8000000000000163", 0x8000000000000163UL)]
    [DataRow("0x1_0000", 0x10000UL)]
    [DataRow("0xffff_ffff_ffff_ffff", ulong.MaxValue)]
    public void Hex_Parses(string text, ulong expected) => AssertParses(text, expected);

    [TestMethod]
    [DataRow("0", 0UL)]
    [DataRow("64", 64UL)]
    [DataRow("4096", 4096UL)]
    [DataRow("18446744073709551615", ulong.MaxValue)]
    public void Decimal_Parses(string text, ulong expected) => AssertParses(text, expected);

    [TestMethod]
    [DataRow("2MiB", 2UL << 20)]
    [DataRow("1G", 1UL << 30)]
    [DataRow("1GiB", 1UL << 30)]
    [DataRow("64K", 64UL << 10)]
    [DataRow("64KiB", 64UL << 10)]
    [DataRow("1TiB", 1UL << 40)]
    [DataRow("32M", 32UL << 20)]
    [DataRow("512GiB", 512UL << 30)]
    [DataRow("4P", 4UL << 50)]
    [DataRow("15EiB", 15UL << 60)]
    public void Size_Parses(string text, ulong expected) => AssertParses(text, expected);

    [TestMethod]
    [DataRow("16EiB")]
    [DataRow("16E")]
    [DataRow("0x1_0000_0000_0000_0000")]
    [DataRow("0x10000000000000000")]
    [DataRow("18446744073709551616")]
    [DataRow("99999999999999999999999")]
    public void Overflow_IsRejected(string text) => AssertRejected(text);

    [TestMethod]
    [DataRow("")]
    [DataRow("0x")]
    [DataRow("0xg")]
    [DataRow("MiB")]
    [DataRow("2MB")]
    [DataRow("2 bytes")]
    [DataRow("-1")]
    [DataRow("1.5")]
    [DataRow("two")]
    public void Malformed_IsRejected(string text) => AssertRejected(text);

    [TestMethod]
    [DataRow("64", 64UL)]
    [DataRow("0", 0UL)]
    [DataRow("18446744073709551615", ulong.MaxValue)]
    [DataRow("\"0x40\"", 64UL)]
    [DataRow("\"2MiB\"", 2UL << 20)]
    public void JsonValue_Parses(string json, ulong expected)
    {
        Assert.IsTrue(SpecNumber.TryParse(ReadJson(json), out ulong value, out string error), error);
        Assert.AreEqual(expected, value);
    }

    [TestMethod]
    [DataRow("-1")]
    [DataRow("-0")]
    [DataRow("1.5")]
    [DataRow("64.0")]
    [DataRow("1e3")]
    [DataRow("18446744073709551616")]
    public void JsonNumber_NegativeFractionalOrTooLarge_IsRejected(string json)
    {
        Assert.IsFalse(SpecNumber.TryParse(ReadJson(json), out _, out string error));
        Assert.Contains(json, error);
    }

    [TestMethod]
    [DataRow("true", "a boolean")]
    [DataRow("null", "null")]
    [DataRow("[64]", "an array")]
    [DataRow("{}", "an object")]
    public void JsonValue_OfAnotherKind_IsRejectedNamingTheKind(string json, string kind)
    {
        Assert.IsFalse(SpecNumber.TryParse(ReadJson(json), out _, out string error));
        Assert.Contains(kind, error);
    }

    private static void AssertParses(string text, ulong expected)
    {
        Assert.IsTrue(SpecNumber.TryParse(text, out ulong value, out string error), error);
        Assert.AreEqual(expected, value, text);
    }

    private static void AssertRejected(string text)
    {
        Assert.IsFalse(SpecNumber.TryParse(text, out ulong value, out string error), $"{text} parsed as {value}");
        Assert.IsFalse(string.IsNullOrWhiteSpace(error), text);
        Assert.Contains($"\"{text}\"", error);
    }

    private static JsonNode ReadJson(string json)
    {
        JsonNode? node = JsonTreeReader.Read(new SpecText("value.json", json), out var error);
        Assert.IsNotNull(node, error?.ToString());
        return node;
    }
}
