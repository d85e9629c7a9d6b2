using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;

namespace Hvo.Scenario;

/// <summary>Where a statement or a word of a script is: a file name as given, and a 1-based line and column.</summary>
public readonly record struct SourceLocation(string File, int Line, int Column)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{File}:{Line}:{Column}");
}

/// <summary>
/// A script that cannot run: syntax errors, or a boot line the simulated machine cannot boot
/// with. <see cref="Exception.Message"/> is the <c>file:line:column: message</c> line of each error,
/// one a line, in the order of the script; <see cref="Location"/> and <see cref="Reason"/> are the first's.
/// </summary>
public sealed class ScriptError : Exception
{
    public ScriptError(SourceLocation location, string reason)
        : this(location, reason, [])
    {
    }

    private ScriptError(SourceLocation location, string reason, IReadOnlyList<ScriptError> more)
        : base(string.Join('\n', new[] { $"{location}: {reason}" }.Concat(more.Select(e => e.Message))))
    {
        Location = location;
        Reason = reason;
        All = [this, .. more];
    }

    public SourceLocation Location { get; }

    /// <summary>The message without its location.</summary>
    public string Reason { get; }

    /// <summary>Every error found, this one first.</summary>
    public IReadOnlyList<ScriptError> All { get; }

    /// <summary>One error holding <paramref name="errors"/> (at least one), in order.</summary>
    public static ScriptError Of(IReadOnlyList<ScriptError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        return errors.Count == 1 ? errors[0] : new ScriptError(errors[0].Location, errors[0].Reason, [.. errors.Skip(1)]);
    }
}
