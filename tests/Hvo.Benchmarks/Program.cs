using BenchmarkDotNet.Running;

namespace Hvo.Benchmarks;

public static class Program
{
    // dotnet run -c Release --project tests/Hvo.Benchmarks -- --filter '*Walk*'
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
