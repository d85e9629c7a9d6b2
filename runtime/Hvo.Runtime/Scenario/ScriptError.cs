using System;
using System.Globalization;

namespace Hvo.Scenario;

/// <summary>Where a statement or a word of a script is: a file name as given, and a 1-based line and column.</summary>
public readonly record struct SourceLocation(string File, int Line, int Column)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}:{Column}");
}

/// <summary>
/// A script that cannot run: a syntax error, or a boot line the simulated machine cannot boot
/// with. <see cref="Exception.Message"/> is the whole <c>file:line:column: message</c> line.
/// </summary>
public sealed class ScriptError : Exception
{
    public ScriptError(SourceLocation location, string reason)
        : base($"{location}: {reason}")
    {
        Location = location;
        Reason = reason;
    }

    public SourceLocation Location { get; }

    /// <summary>The message without its location.</summary>
    public string Reason { get; }
}
