namespace Hvo.Cli;

public static class Program
{
    public static int Main(string[] args) => HvoCommand.Run(args, System.Console.Out, System.Console.Error);
}
