using System;
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
    [DataRow("cat < /x", 1, 5, "shell syntax '<'")]
    [DataRow("echo 1>/proc/sys/vm/nr_hugepages", 1, 6, "redirects file descriptor 1")]
    [DataRow("echo 1 >", 1, 9, "'>' needs a file name")]
    [DataRow("echo 1 > /a > /b", 1, 13, "one redirection per line")]
    [DataRow("cat", 1, 4, "cat needs a file")]
    [DataRow("> /x", 1, 1, "starts with a command")]
    [DataRow("echo 1 \\", 1, 8, "the script ends with '\\'")]
    [DataRow("echo $(ls)", 1, 6, "command substitution $(...)")]
    [DataRow("echo `ls`", 1, 6, "command substitution (`...`)")]
    [DataRow("echo $((1+2))", 1, 6, "arithmetic expansion")]
    [DataRow("echo ${N:-1}", 1, 6, "only ${NAME}")]
    [DataRow("echo \"$1\"", 1, 7, "'$1' is not supported")]
    [DataRow("echo {1..3}", 1, 6, "brace expansion")]
    [DataRow("echo 1 &", 1, 8, "in the background")]
    [DataRow("(echo 1)", 1, 1, "no subshells")]
    [DataRow("echo 1 && ", 1, 11, "a command is missing")]
    [DataRow("echo 1; ;", 1, 9, "unexpected ';'")]
    [DataRow("if true; then echo; fi", 1, 1, "'if' is not supported")]
    [DataRow("done", 1, 1, "'done' outside a for loop")]
    [DataRow("for; do echo; done", 1, 4, "for needs a variable name")]
    [DataRow("for 1x in a; do echo; done", 1, 5, "for needs a variable name")]
    [DataRow("for n; do echo; done", 1, 6, "needs 'in'")]
    [DataRow("for n in 1 2; echo $n; done", 1, 15, "'do' is missing")]
    [DataRow("for n in 1 2; do echo $n", 1, 1, "has no 'done'")]
    [DataRow("for n in 1 2; do done", 1, 18, "no command between")]
    [DataRow("N=1 echo $N", 1, 5, "before a command is not supported")]
    [DataRow("N=1 > /x", 1, 5, "needs a command")]
    [DataRow("$CMD /x", 1, 1, "a command's name is written out")]
    [DataRow("sudo -i", 1, 6, "sudo: options")]
    [DataRow("sudo", 1, 1, "sudo needs a command")]
    [DataRow("echo 1 | boot mem=1G", 1, 10, "'boot' stands alone")]
    [DataRow("cat -n /a", 1, 5, "option '-n' is not supported")]
    [DataRow("sysctl", 1, 7, "sysctl needs a key")]
    [DataRow("sysctl -w vm.nr_hugepages", 1, 11, "is not KEY=VALUE")]
    [DataRow("sysctl -p /etc/sysctl.conf", 1, 8, "option '-p'")]
    [DataRow("grep", 1, 5, "grep needs a PATTERN")]
    [DataRow("grep Huge", 1, 5, "needs a file, or input from a pipe")]
    [DataRow("grep -z x /a", 1, 6, "option '-z'")]
    [DataRow("grep '[' /a", 1, 6, "not a valid regular expression")]
    [DataRow("grep -E 'a(' /a", 1, 9, "not a valid regular expression")]
    [DataRow("tee -x /a", 1, 5, "option '-x'")]
    [DataRow("sleep", 1, 6, "sleep needs a time")]
    [DataRow("sleep 1 abc", 1, 9, "invalid time interval 'abc'")]
    [DataRow("sync now", 1, 6, "sync takes no arguments")]
    [DataRow("set", 1, 4, "set needs an option")]
    [DataRow("set -k", 1, 5, "option '-k'")]
    [DataRow("set -o foo", 1, 8, "set -o foo is not supported")]
    [DataRow("set x", 1, 5, "positional parameters")]
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
    [DataRow("echo xK|", 1, 9, "a command is missing here")]
    [DataRow("echo xK|\r", 1, 9, "a command is missing here")]
    [DataRow("echo xK| \r\r", 1, 10, "a command is missing here")]
    public void SyntaxErrorsNameTheLineAndColumn(string text, int line, int column, string reason)
    {
        ScriptError e = Error(text);
        Assert.HasCount(1, e.All, e.Message);
        Assert.AreEqual(new SourceLocation("t.hvo", line, column), e.Location);
        StringAssert.Contains(e.Reason, reason);
        Assert.AreEqual($"t.hvo:{line}:{column}: {e.Reason}", e.Message);
    }

    [TestMethod]
    public void EveryErrorOfTheScriptIsReportedInOrderAndTheParserGoesOnAfterEach()
    {
        ScriptError e = Error("boot mem=1G\nech 1\necho ok\nfor n in 1 2; do\n  frob $n\n  echo $n\ndone\ncat\necho $(x) 'unterminated\n");
        (int Line, int Column, string Reason)[] expected = [(2, 1, "unknown command 'ech'"), (5, 3, "unknown command 'frob'"), (8, 4, "cat needs a file"), (9, 6, "command substitution")];
        Assert.HasCount(expected.Length, e.All, e.Message);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(new SourceLocation("t.hvo", expected[i].Line, expected[i].Column), e.All[i].Location, e.Message);
            StringAssert.StartsWith(e.All[i].Reason, expected[i].Reason);
        }

        Assert.AreEqual(string.Join('\n', e.All.Select(x => $"{x.Location}: {x.Reason}")), e.Message, "one line per error");
        Assert.AreEqual(e.All[0].Location, e.Location);
    }

    [TestMethod]
    public void AnErrorInALoopBodyStillFindsTheLoopsEnd()
    {
        ScriptError e = Error("for n in 1 2; do frob; echo $n; done\necho ok\nnope\n");
        CollectionAssert.AreEqual(new[] { (1, 18), (3, 1) }, e.All.Select(x => (x.Location.Line, x.Location.Column)).ToArray(), e.Message);
    }

    [TestMethod]
    [DataRow("echo 1; cat /x", 2)]
    [DataRow("echo 1 && cat /x || echo no", 1)]
    [DataRow("echo 1 | tee /x | grep 1", 1)]
    [DataRow("N=512; echo $N > /x", 2)]
    [DataRow("for n in 1 2; do echo $n; done", 1)]
    [DataRow("sysctl -w vm.nr_hugepages=1", 1)]
    [DataRow("cat /sys/*/x", 1)]
    [DataRow("echo \"$N\" > /x", 1)]
    [DataRow("sudo sysctl vm.nr_hugepages", 1)]
    public void ShellLinesAreOneStatementHoldingTheirList(string line, int items)
    {
        var s = (ShellStatement)Statements(line).Single();
        Assert.AreEqual(line, s.Text);
        Assert.HasCount(items, s.Body.Items);
    }

    [TestMethod]
    public void ALoopMaySpanLinesAndIsOneStatementWithItsSource()
    {
        string text = "for n in 64 128\ndo\n  echo $n > /x   # grow\n\n  cat /x\ndone\necho after\n";
        Script s = ScriptParser.Parse(text, "t.hvo");
        var loop = (ShellStatement)s.Lines[0];
        Assert.AreEqual("for n in 64 128\ndo\n  echo $n > /x   # grow\n\n  cat /x\ndone", loop.Text);
        var f = (ForCommand)loop.Body.Items.Single().First.Commands.Single();
        Assert.AreEqual("n", f.Variable);
        CollectionAssert.AreEqual(new[] { "64", "128" }, f.Items.Select(w => w.Text).ToArray());
        Assert.HasCount(2, f.Body.Items);
        Assert.AreEqual(7, ((EchoStatement)s.Lines[1]).Location.Line);
    }

    [TestMethod]
    public void ABackslashAtTheEndOfALineAndATrailingAndOrPipeJoinTheNextLine()
    {
        Script s = ScriptParser.Parse("echo 1 \\\n  > /x\necho a &&\n  echo b |\n  tee /y\n", "t.hvo");
        var echo = (EchoStatement)s.Lines[0];
        Assert.AreEqual("/x", echo.Target!.Value.Value);
        var list = (ShellStatement)s.Lines[1];
        Assert.HasCount(1, list.Body.Items[0].Rest);
        Assert.HasCount(2, list.Body.Items[0].Rest[0].Pipeline.Commands);
    }

    [TestMethod]
    public void WordsKeepVariablesQuotesAndGlobsApart()
    {
        var s = (ShellStatement)Statements("cat \"$D\"/x '*' /a/*/b ${N}k")[0];
        var cat = (SimpleCommand)s.Body.Items[0].First.Commands[0];
        Assert.IsInstanceOfType<VariablePart>(cat.Words[1].Parts[0]);
        Assert.IsTrue(((VariablePart)cat.Words[1].Parts[0]).Quoted);
        Assert.IsTrue(cat.Words[2].IsLiteral, "a quoted * is no glob");
        Assert.IsFalse(cat.Words[3].IsLiteral, "an unquoted * is a glob");
        Assert.AreEqual("$Nk", cat.Words[4].Text);
        Assert.AreEqual("N", ((VariablePart)cat.Words[4].Parts[0]).Name);
    }
}
