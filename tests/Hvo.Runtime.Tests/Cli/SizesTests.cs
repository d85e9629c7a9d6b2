using Hvo.Cli;
using Hvo.Lib;

namespace Hvo.Runtime.Tests.Cli;

/// <summary>Command-line sizes: memparse, and after it only B, or iB after a suffix.</summary>
[TestClass]
public sealed class SizesTests
{
    [TestMethod]
    [DataRow("64G", 64UL << 30)]
    [DataRow(" 64G ", 64UL << 30)]
    [DataRow("2MiB", 2UL << 20)]
    [DataRow("2MB", 2UL << 20)]
    [DataRow("2m", 2UL << 20)]
    [DataRow("4096", 4096UL)]
    [DataRow("4096B", 4096UL)]
    [DataRow("0x1000", 4096UL)]
    [DataRow("0x1G", 1UL << 30)]
    [DataRow("010M", 8UL << 20)]
    [DataRow("15EiB", 15UL << 60)]
    public void ASizeIsMemparsesWithAnOptionalByteUnit(string text, ulong bytes)
    {
        Assert.IsTrue(Sizes.TryParse(text, out ulong value, out string error), error);
        Assert.AreEqual(bytes, value);
        Assert.AreEqual(CmdLine.Memparse(text.Trim()).Bytes, value, "the number is memparse's");
    }

    [TestMethod]
    [DataRow("1.5T", 3UL << 39)]
    [DataRow("1.5G", 3UL << 29)]
    [DataRow("0.25M", 1UL << 18)]
    [DataRow("2.5KiB", 2560UL)]
    [DataRow("1.000T", 1UL << 40)]
    public void ADecimalBeforeASuffixIsTakenWhereItIsWholeBytes(string text, ulong bytes)
    {
        Assert.IsTrue(Sizes.TryParse(text, out ulong value, out string error), error);
        Assert.AreEqual(bytes, value);
    }

    [TestMethod]
    [DataRow("", "is not a size")]
    [DataRow("G", "is not a size")]
    [DataRow("-1G", "is not a size")]
    [DataRow("0x", "is not a hex number")]
    [DataRow("0xG", "is not a hex number")]
    [DataRow("4096iB", "unknown unit 'iB'")]
    [DataRow("2MiBs", "unknown unit 'MiBs'")]
    [DataRow("2mib", "unknown unit 'mib'")]
    [DataRow("1.3K", "is not a whole number of bytes")]
    [DataRow("1.5", "a fraction of a byte")]
    [DataRow("1.5X", "unknown unit 'X'")]
    [DataRow(".5G", "is not a size")]
    [DataRow("1.G", "is not a size")]
    [DataRow("99999999999999999999.5E", "does not fit in 64 bits")]
    [DataRow("08G", "unknown unit '8G'")]
    [DataRow("12Q", "unknown unit 'Q'")]
    [DataRow("16EiB", "does not fit in 64 bits")]
    [DataRow("18446744073709551616", "does not fit in 64 bits")]
    public void AnythingElseAfterTheSizeIsRefusedWithTheReason(string text, string why)
    {
        Assert.IsFalse(Sizes.TryParse(text, out ulong value, out string error));
        Assert.AreEqual(0UL, value);
        StringAssert.Contains(error, $"'{text}'");
        StringAssert.Contains(error, why);
    }
}
