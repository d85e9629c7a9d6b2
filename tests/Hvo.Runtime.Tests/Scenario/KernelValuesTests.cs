using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>The kernel's number and boolean parsers, as a write to a file meets them.</summary>
[TestClass]
public sealed class KernelValuesTests
{
    [TestMethod]
    [DataRow("12", Errno.None, 12UL)]
    [DataRow("12\n", Errno.None, 12UL)]
    [DataRow("+12\n", Errno.None, 12UL)]
    [DataRow("18446744073709551615\n", Errno.None, ulong.MaxValue)]
    [DataRow("18446744073709551616\n", Errno.ERANGE, 0UL)]
    [DataRow("99999999999999999999999999\n", Errno.ERANGE, 0UL)]
    [DataRow("-1\n", Errno.EINVAL, 0UL)]
    [DataRow("\n", Errno.EINVAL, 0UL)]
    [DataRow("", Errno.EINVAL, 0UL)]
    [DataRow("0x10\n", Errno.EINVAL, 0UL)]
    [DataRow(" 12\n", Errno.EINVAL, 0UL)]
    [DataRow("12 \n", Errno.EINVAL, 0UL)]
    [DataRow("12\n\n", Errno.EINVAL, 0UL)]
    [DataRow("1٢\n", Errno.EINVAL, 0UL)]
    public void KstrToULongBase10(string text, Errno errno, ulong value)
    {
        Assert.AreEqual(errno, KernelValues.KstrToULong(text, 10, out ulong v));
        Assert.AreEqual(value, v);
    }

    [TestMethod]
    [DataRow("0x10\n", Errno.None, 16UL)]
    [DataRow("010\n", Errno.None, 8UL)]
    [DataRow("0\n", Errno.None, 0UL)]
    [DataRow("0x\n", Errno.EINVAL, 0UL)] // 0 then x: trailing garbage
    public void KstrToULongBase0TakesPrefixes(string text, Errno errno, ulong value)
    {
        Assert.AreEqual(errno, KernelValues.KstrToULong(text, 0, out ulong v));
        Assert.AreEqual(value, v);
    }

    [TestMethod]
    [DataRow("-5\n", Errno.None, -5L)]
    [DataRow("9223372036854775807", Errno.None, long.MaxValue)]
    [DataRow("-9223372036854775808", Errno.None, long.MinValue)]
    [DataRow("9223372036854775808", Errno.ERANGE, 0L)]
    [DataRow("--1", Errno.EINVAL, 0L)]
    public void KstrToLong(string text, Errno errno, long value)
    {
        Assert.AreEqual(errno, KernelValues.KstrToLong(text, 0, out long v));
        Assert.AreEqual(value, v);
    }

    [TestMethod]
    [DataRow("12\n", Errno.None, 12UL)]
    [DataRow("  12\n", Errno.None, 12UL)]
    [DataRow("0x10\n", Errno.None, 16UL)]
    [DataRow("010", Errno.None, 8UL)]
    [DataRow("3 4\n", Errno.None, 3UL)]
    [DataRow("3\t", Errno.None, 3UL)]
    [DataRow("3abc\n", Errno.EINVAL, 0UL)]
    [DataRow("-1\n", Errno.EINVAL, 0UL)]
    [DataRow("18446744073709551616\n", Errno.EINVAL, 0UL)]
    [DataRow("\n", Errno.EINVAL, 0UL)]
    [DataRow("+3\n", Errno.EINVAL, 0UL)]
    public void ProcULongIsTheSysctlParser(string text, Errno errno, ulong value)
    {
        Assert.AreEqual(errno, KernelValues.ProcULong(text, out ulong v));
        Assert.AreEqual(value, v);
    }

    [TestMethod]
    [DataRow("1\n", Errno.None, 1)]
    [DataRow("-7\n", Errno.None, -7)]
    [DataRow("2147483648\n", Errno.EINVAL, 0)]
    [DataRow("-2147483648\n", Errno.None, int.MinValue)]
    [DataRow("-2147483649\n", Errno.EINVAL, 0)]
    public void ProcInt(string text, Errno errno, int value)
    {
        Assert.AreEqual(errno, KernelValues.ProcInt(text, out int v));
        Assert.AreEqual(value, v);
    }

    [TestMethod]
    [DataRow("Y\n", true, true)]
    [DataRow("yes", true, true)]
    [DataRow("1", true, true)]
    [DataRow("on", true, true)]
    [DataRow("N\n", true, false)]
    [DataRow("0", true, false)]
    [DataRow("off", true, false)]
    [DataRow("o", false, false)]
    [DataRow("maybe", false, false)]
    [DataRow("", false, false)]
    public void Kstrtobool(string text, bool ok, bool value)
    {
        Assert.AreEqual(ok, KernelValues.TryParseBool(text, out bool v));
        Assert.AreEqual(value, v);
    }
}
