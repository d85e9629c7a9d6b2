// Build script: `dotnet tool restore && dotnet cake --target=CI` (targets below; default Test).
//   Clean    dotnet clean, then remove artifacts/ and every TestResults/ folder
//   Restore  dotnet restore Generated.sln
//   Build    Release, --no-restore (warnings as errors come from Directory.Build.props)
//   Test     dotnet test --no-build with TRX results in artifacts/test-results, then the line
//            `N passed, N failed[, N skipped]`; fails on any failed test or when no test ran
//   Bench    BenchmarkDotNet: --benchFilter=PATTERN (default *), --job=NAME (default short)
//   CI       Clean -> Restore -> Build -> Test
using System.Xml.Linq;

var target = Argument("target", "Test");
var benchFilter = Argument("benchFilter", "*");
var benchJob = Argument("job", "short");

const string Solution = "Generated.sln";
const string Configuration = "Release";
var artifacts = Directory("artifacts");
var testResults = artifacts + Directory("test-results");

Task("Clean")
    .Does(() =>
{
    DotNetClean(Solution, new DotNetCleanSettings
    {
        Configuration = Configuration,
        Verbosity = DotNetVerbosity.Minimal,
    });
    var dirs = GetDirectories("./**/TestResults").Append(MakeAbsolute(artifacts));
    foreach (var dir in dirs.Where(DirectoryExists))
    {
        DeleteDirectory(dir, new DeleteDirectorySettings { Recursive = true, Force = true });
    }
});

Task("Restore")
    .Does(() => DotNetRestore(Solution));

Task("Build")
    .IsDependentOn("Restore")
    .Does(() => DotNetBuild(Solution, new DotNetBuildSettings
    {
        Configuration = Configuration,
        NoRestore = true,
    }));

Task("Test")
    .IsDependentOn("Build")
    .Does(() =>
{
    EnsureDirectoryExists(testResults);
    CleanDirectory(testResults); // stale TRX files would be counted again

    // A failing run still writes its TRX files: print the counts before failing the task.
    Exception testFailure = null;
    try
    {
        DotNetTest(Solution, new DotNetTestSettings
        {
            Configuration = Configuration,
            NoBuild = true,
            Loggers = { "trx" },
            ResultsDirectory = testResults,
        });
    }
    catch (Exception e)
    {
        testFailure = e;
    }

    // Sum the <Counters> of every TRX; VSTest counts a skipped test as total but not executed.
    XNamespace trx = "http://microsoft.com/schemas/VisualStudio/TeamTest/2010";
    int passed = 0, failed = 0, skipped = 0;
    foreach (var file in GetFiles($"{testResults}/**/*.trx"))
    {
        var c = XDocument.Load(file.FullPath).Descendants(trx + "Counters").Single();
        int Count(string name) => (int?)c.Attribute(name) ?? 0;
        passed += Count("passed");
        failed += Count("failed") + Count("error") + Count("timeout") + Count("aborted");
        skipped += Count("total") - Count("executed");
    }

    // Plain Console, not Information(): CI matches this line exactly, and Cake's log adds colour codes.
    Console.WriteLine(skipped > 0
        ? $"{passed} passed, {failed} failed, {skipped} skipped"
        : $"{passed} passed, {failed} failed");

    if (failed > 0) throw new CakeException($"{failed} test(s) failed.");
    if (testFailure != null) throw testFailure;
    if (passed + skipped == 0) throw new CakeException($"No tests ran (no TRX results in {testResults}).");
});

Task("Bench")
    .Does(() => DotNetRun(
        "tests/Hvo.Benchmarks",
        new ProcessArgumentBuilder().Append("--filter").AppendQuoted(benchFilter).Append("--job").Append(benchJob),
        new DotNetRunSettings { Configuration = Configuration }));

Task("CI")
    .IsDependentOn("Clean")
    .IsDependentOn("Restore")
    .IsDependentOn("Build")
    .IsDependentOn("Test");

RunTarget(target);
