using System.Linq;
using Hvo.Scenario;

namespace Hvo.Runtime.Tests.Scenario;

[TestClass]
public sealed class ScriptParserTests
{
    private static Statement[] Statements(string text) => [.. ScriptParser.Parse(text, "t.hvo").Statements];

    private static ScriptError Error(string text)
    {
        try
        {
            ScriptParser.Parse(text, "t.hvo");
        }
        catch (ScriptError e)
        {
            return e;
        }

        Assert.Fail($"no error for: {text}");
        return null!;
    }

    [TestMethod]
    public void BootLineKeepsEachParameterWithItsColumn()
    {
        var boot = (BootStatement)Statements("boot mem=4G  numa=fake=2 hugepagesz=1G hugepages=0:1,1:2 default_hugepagesz=2M hugetlb_free_vmemmap=on foo")[0];
        Assert.AreEqual(1, boot.Location.Line);
        CollectionAssert.AreEqual(
            new[] { ("mem=4G", 6), ("numa=fake=2", 14), ("hugepagesz=1G", 26), ("hugepages=0:1,1:2", 40), ("default_hugepagesz=2M", 58), ("hugetlb_free_vmemmap=on", 80), ("foo", 104) },
            boot.Parameters.Select(p => (p.Value, p.Column)).ToArray());
    }

    [TestMethod]
    [DataRow("echo 1024 > /proc/sys/vm/nr_hugepages", "1024", true, "/proc/sys/vm/nr_hugepages", 13)]
    [DataRow("echo 1024 >/proc/sys/vm/nr_hugepages", "1024", true, "/proc/sys/vm/nr_hugepages", 12)]
    [DataRow("echo on>/x", "on", true, "/x", 9)]
    [DataRow("echo \"1 2\" > /x", "1 2", true, "/x", 14)]
    [DataRow("echo '$x|y' > /x", "$x|y", true, "/x", 15)]
    [DataRow("echo 1 2   3 > /x", "1 2 3", true, "/x", 16)]
    [DataRow("echo -n 5 > /x", "5", false, "/x", 13)]
    [DataRow("echo -ne 5 >> /x", "5", false, "/x", 15)]
    [DataRow("echo \"-n\" 5 > /x", "5", false, "/x", 15)]
    [DataRow("echo 1 > /x tail", "1 tail", true, "/x", 10)]
    [DataRow("echo a\\ b > /x", "a b", true, "/x", 13)]
    [DataRow("echo \"a\\\"b\" > /x", "a\"b", true, "/x", 15)]
    [DataRow("echo > /x", "", true, "/x", 8)]
    [DataRow("  echo 7 > /x # grow", "7", true, "/x", 12)]
    [DataRow("echo a#b > /x", "a#b", true, "/x", 12)]
    public void EchoForms(string line, string value, bool newline, string target, int targetColumn)
    {
        var echo = (EchoStatement)Statements(line)[0];
        Assert.AreEqual(value, echo.Value);
        Assert.AreEqual(newline, echo.Newline);
        Assert.AreEqual(value + (newline ? "\n" : string.Empty), echo.Data);
        Assert.AreEqual(target, echo.Target!.Value.Value);
        Assert.AreEqual(targetColumn, echo.Target!.Value.Column);
        Assert.AreEqual(line.Trim(), echo.Text);
    }

    [TestMethod]
    public void EchoWithoutRedirectionPrints()
    {
        var echo = (EchoStatement)Statements("echo hello world")[0];
        Assert.IsNull(echo.Target);
        Assert.AreEqual("hello world\n", echo.Data);
    }

    [TestMethod]
    public void CatTakesOneOrMorePaths()
    {
        var cat = (CatStatement)Statements("cat /proc/meminfo  /proc/buddyinfo")[0];
        CollectionAssert.AreEqual(new[] { ("/proc/meminfo", 5), ("/proc/buddyinfo", 20) }, cat.Paths.Select(p => (p.Value, p.Column)).ToArray());
    }

    [TestMethod]
    public void CommentsBlankLinesAndLineEndingsKeepTheirLines()
    {
        Script s = ScriptParser.Parse("# header\r\n\r\nboot mem=1G\n   \n  # indented\ncat /proc/meminfo # trailing\n", "t.hvo");
        Assert.AreEqual(6, s.Lines.Count);
        Assert.IsInstanceOfType<CommentLine>(s.Lines[0]);
        Assert.AreEqual("# header", s.Lines[0].Text);
        Assert.IsInstanceOfType<BlankLine>(s.Lines[1]);
        Assert.IsInstanceOfType<BootStatement>(s.Lines[2]);
        Assert.IsInstanceOfType<BlankLine>(s.Lines[3]);
        Assert.AreEqual("# indented", s.Lines[4].Text);
        var cat = (CatStatement)s.Lines[5];
        Assert.AreEqual(6, cat.Location.Line);
        Assert.AreEqual("/proc/meminfo", cat.Paths.Single().Value);
        Assert.IsNotNull(s.Boot);
    }

    [TestMethod]
    public void AScriptWithoutBootLineHasNone() => Assert.IsNull(ScriptParser.Parse("cat /proc/meminfo\n", "t").Boot);

    [TestMethod]
    [DataRow("ech 2", 1, 1, "unknown command 'ech'")]
    [DataRow("cat /a\n  frobnicate", 2, 3, "unknown command 'frobnicate'")]
    [DataRow("echo \"abc > /x", 1, 6, "unterminated \" quote")]
    [DataRow("echo 'abc > /x", 1, 6, "unterminated ' quote")]
    [DataRow("echo 1 | cat", 1, 8, "shell syntax '|'")]
    [DataRow("echo 1; cat /x", 1, 7, "shell syntax ';'")]
    [DataRow("echo $HOME > /x", 1, 6, "shell syntax '$'")]
    [DataRow("echo \"a$b\" > /x", 1, 8, "shell syntax '$'")]
    [DataRow("cat < /x", 1, 5, "shell syntax '<'")]
    [DataRow("echo 1>/proc/sys/vm/nr_hugepages", 1, 6, "redirects file descriptor 1")]
    [DataRow("echo 1 >", 1, 9, "'>' needs a file name")]
    [DataRow("echo 1 > /a > /b", 1, 13, "one redirection per line")]
    [DataRow("cat", 1, 4, "cat needs a file")]
    [DataRow("cat /a > /b", 1, 8, "cannot be redirected")]
    [DataRow("> /x", 1, 1, "starts with a command")]
    [DataRow("echo 1 \\", 1, 8, "cannot end with '\\'")]
    [DataRow("# c\ncat /a\nboot mem=1G", 3, 1, "must be the first statement")]
    [DataRow("boot mem=1G\nboot mem=2G", 2, 1, "must be the first statement")]
    [DataRow("boot quiet mem=3X", 1, 12, "mem=3X is not a memory size")]
    [DataRow("boot mem=0", 1, 6, "mem=0 is not a memory size")]
    [DataRow("boot mem=99999999999999999999G", 1, 6, "is not a memory size")]
    [DataRow("boot mem=16E", 1, 6, "is not a memory size")]
    [DataRow("boot numa=on", 1, 6, "only numa=fake=N")]
    [DataRow("boot numa=fake=0", 1, 16, "numa=fake=0")]
    [DataRow("boot numa=fake=65", 1, 16, "from 1 to 64")]
    [DataRow("boot numa=fake=-1", 1, 16, "numa=fake=-1")]
    [DataRow("boot hugetlb_free_vmemmap=maybe", 1, 6, "use on or off")]
    [DataRow("boot mem=1G > /x", 1, 13, "no redirection")]
    public void SyntaxErrorsNameTheLineAndColumn(string text, int line, int column, string reason)
    {
        ScriptError e = Error(text);
        Assert.AreEqual(new SourceLocation("t.hvo", line, column), e.Location);
        StringAssert.Contains(e.Reason, reason);
        Assert.AreEqual($"t.hvo:{line}:{column}: {e.Reason}", e.Message);
    }
}
