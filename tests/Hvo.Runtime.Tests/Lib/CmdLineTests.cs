using CsCheck;
using Hvo.Lib;

namespace Hvo.Runtime.Tests.Lib;

/// <summary>memparse as the kernel has it, where it stops, and the size format it reads back.</summary>
[TestClass]
public sealed class CmdLineTests
{
    [TestMethod]
    [DataRow("2M\n", 2UL << 20, 1, 2)]
    [DataRow("2048k", 2UL << 20, 4, 5)]
    [DataRow("1G", 1UL << 30, 1, 2)]
    [DataRow("1g", 1UL << 30, 1, 2)]
    [DataRow("15E", 15UL << 60, 2, 3)]
    [DataRow("3p", 3UL << 50, 1, 2)]
    [DataRow("4096", 4096UL, 4, 4)]
    [DataRow("0x200000", 2UL << 20, 8, 8)]
    [DataRow("0X1G", 1UL << 30, 3, 4)]
    [DataRow("010", 8UL, 3, 3)]
    [DataRow("08", 0UL, 1, 1)]
    [DataRow("0x", 0UL, 1, 1)]
    [DataRow("0xg", 0UL, 1, 1)]
    [DataRow("2MiB", 2UL << 20, 1, 2)]
    [DataRow("2 M", 2UL, 1, 1)]
    [DataRow("junk", 0UL, 0, 0)]
    [DataRow("K", 0UL, 0, 1)]
    [DataRow("-1G", 0UL, 0, 0)]
    [DataRow("+1G", 0UL, 0, 0)]
    [DataRow(" 2M", 0UL, 0, 0)]
    [DataRow("", 0UL, 0, 0)]
    public void MemparseReadsANumberAndOneSuffixAndSaysWhereItStopped(string text, ulong bytes, int numberEnd, int end)
    {
        Memparsed m = CmdLine.Memparse(text);
        Assert.AreEqual(bytes, m.Bytes);
        Assert.AreEqual(numberEnd, m.NumberEnd, "the number");
        Assert.AreEqual(end, m.End, "retptr");
        Assert.AreEqual(text[end..], m.Rest);
        Assert.IsFalse(m.Overflow);
    }

    [TestMethod]
    [DataRow("16E", 0UL)]
    [DataRow("17179869184G", 0UL)]
    [DataRow("18446744073709551616", 0UL)]
    [DataRow("0x10000000000000001", 1UL)]
    [DataRow("99999999999999999999K", 0x1D78B58C3FFFFC00UL)]
    public void OverflowWrapsAsTheKernelsDoesAndIsReported(string text, ulong wrapped)
    {
        Memparsed m = CmdLine.Memparse(text);
        Assert.IsTrue(m.Overflow);
        Assert.AreEqual(wrapped, m.Bytes);
        Assert.IsFalse(m.IsWhole, "a caller taking whole sizes refuses it");
    }

    [TestMethod]
    [DataRow("64G", true)]
    [DataRow("0x1000", true)]
    [DataRow("4096", true)]
    [DataRow("64G\n", false)]
    [DataRow("64GB", false)]
    [DataRow("3X", false)]
    [DataRow("K", false)]
    [DataRow("", false)]
    public void AWholeSizeIsANumberAndASuffixAndNothingElse(string text, bool whole) =>
        Assert.AreEqual(whole, CmdLine.Memparse(text).IsWhole);

    [TestMethod]
    [DataRow(0UL, "0")]
    [DataRow(4096UL, "4K")]
    [DataRow(3UL << 20, "3M")]
    [DataRow((1UL << 30) + 4096, "1048580K")]
    [DataRow(1UL << 47, "128T")]
    [DataRow(15UL << 60, "15E")]
    [DataRow(1023UL, "1023")]
    [DataRow(ulong.MaxValue, "18446744073709551615")]
    public void FormatSizeUsesTheLargestSuffixThatDivides(ulong bytes, string text) => Assert.AreEqual(text, CmdLine.FormatSize(bytes));

    [TestMethod]
    public void MemparseReadsEveryFormattedSizeBackExactly() =>
        Gen.Select(Gen.ULong, Gen.Int[0, 60]).Sample((n, shift) =>
        {
            foreach (ulong bytes in new[] { n, n << shift, (n >> shift) << shift })
            {
                Memparsed m = CmdLine.Memparse(CmdLine.FormatSize(bytes));
                Assert.IsTrue(m.IsWhole, CmdLine.FormatSize(bytes));
                Assert.AreEqual(bytes, m.Bytes);
            }
        });
}
