using System.Linq;
using Hvo.Generator.Helpers;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Hvo.Generator.Diagnostics;

/// <summary>A place in a spec file, as plain values so that it compares by value.</summary>
internal sealed record SpecLocation(string FilePath, int Start, int Length, int StartLine, int StartColumn, int EndLine, int EndColumn)
{
    public Location ToLocation() => Location.Create(
        FilePath,
        new TextSpan(Start, Length),
        new LinePositionSpan(new LinePosition(StartLine, StartColumn), new LinePosition(EndLine, EndColumn)));

    public override string ToString() => $"{FilePath}({StartLine + 1},{StartColumn + 1})";
}

/// <summary>A diagnostic waiting to be reported: equatable, holding no Roslyn object but its descriptor.</summary>
internal sealed record DiagnosticInfo(DiagnosticDescriptor Descriptor, SpecLocation? Location, EquatableArray<string> Arguments)
{
    public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, SpecLocation? location, params object?[] arguments) =>
        new(descriptor, location, arguments.Select(a => a?.ToString() ?? string.Empty).ToEquatableArray());

    public Diagnostic ToDiagnostic() =>
        Diagnostic.Create(Descriptor, Location?.ToLocation() ?? Microsoft.CodeAnalysis.Location.None, Arguments.Cast<object>().ToArray());
}
