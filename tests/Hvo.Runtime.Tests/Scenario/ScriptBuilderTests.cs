using System;
using System.Linq;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Scenario;

/// <summary>Scripts written in code are the scripts the parser makes of their text.</summary>
[TestClass]
public sealed class ScriptBuilderTests
{
    [TestMethod]
    [DataRow("12")]
    [DataRow("N")]
    [DataRow("-1")]
    [DataRow("0x10")]
    [DataRow("a b")]
    [DataRow("it's")]
    [DataRow("$HOME > /x; cat")]
    [DataRow("")]
    [DataRow("#1")]
    [DataRow("\\")]
    public void TheLinesTextParsesBackToTheSameStatements(string value)
    {
        Script built = new ScriptBuilder("t").Boot("mem=1G", "numa=fake=2", "quiet").Echo(value, "/proc/sys/vm/nr_hugepages").Build();
        Script parsed = ScriptParser.Parse(string.Join("\n", built.Lines.Select(l => l.Text)) + "\n", "t");

        Assert.HasCount(parsed.Lines.Count, built.Lines);
        var (boot, parsedBoot) = (built.Boot!, parsed.Boot!);
        Assert.AreEqual(parsedBoot with { Parameters = boot.Parameters }, boot);
        CollectionAssert.AreEqual(parsedBoot.Parameters.ToArray(), boot.Parameters.ToArray());
        Assert.AreEqual(parsed.Lines[1], built.Lines[1]);
        Assert.AreEqual(value + "\n", ((EchoStatement)built.Lines[1]).Data);
    }

    [TestMethod]
    public void TheBootLineIsFirstAndCheckedAsTheParserChecksIt()
    {
        ScriptError e = Assert.ThrowsExactly<ScriptError>(() => new ScriptBuilder("t").Boot("quiet", "mem=3X"));
        Assert.AreEqual(new SourceLocation("t", 1, 12), e.Location);
        Assert.ThrowsExactly<InvalidOperationException>(() => new ScriptBuilder("t").Echo("1", "/proc/sys/vm/nr_hugepages").Boot("mem=1G"));
        Assert.ThrowsExactly<ArgumentException>(() => new ScriptBuilder("t").Boot("mem=1G quiet"));
    }

    [TestMethod]
    [DataRow("-n")]
    [DataRow("-neE")]
    public void AValueEchoWouldTakeAsAFlagCannotBeWritten(string value) =>
        Assert.ThrowsExactly<ArgumentException>(() => new ScriptBuilder("t").Echo(value, "/proc/sys/vm/nr_hugepages"));
}
