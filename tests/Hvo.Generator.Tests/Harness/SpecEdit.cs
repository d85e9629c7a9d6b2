using System;
using Microsoft.CodeAnalysis.Text;

namespace Hvo.Generator.Tests.Harness;

/// <summary>A spec's text with one deliberate change, and where in it the change starts.</summary>
internal sealed record SpecEdit(string Text, int Offset)
{
    /// <summary>
    /// Replaces <paramref name="oldValue"/> inside the one occurrence of <paramref name="context"/>;
    /// <see cref="Offset"/> is where <paramref name="newValue"/> starts.
    /// </summary>
    public static SpecEdit Replace(string text, string context, string oldValue, string newValue)
    {
        int at = IndexOfOnly(text, context);
        int inner = context.IndexOf(oldValue, StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, inner, $"'{oldValue}' is part of '{context}'");
        string edited = context.Substring(0, inner) + newValue + context.Substring(inner + oldValue.Length);
        return new SpecEdit(text.Substring(0, at) + edited + text.Substring(at + context.Length), at + inner);
    }

    /// <summary>Inserts <paramref name="insertion"/> right after the one occurrence of <paramref name="anchor"/>.</summary>
    public static SpecEdit InsertAfter(string text, string anchor, string insertion)
    {
        int at = IndexOfOnly(text, anchor) + anchor.Length;
        return new SpecEdit(text.Insert(at, insertion), at);
    }

    /// <summary>Removes the one occurrence of <paramref name="removed"/>; <see cref="Offset"/> is where it was.</summary>
    public static SpecEdit Remove(string text, string removed)
    {
        int at = IndexOfOnly(text, removed);
        return new SpecEdit(text.Remove(at, removed.Length), at);
    }

    /// <summary>The same text with <see cref="Offset"/> moved to <paramref name="offset"/>.</summary>
    public SpecEdit At(int offset) => this with { Offset = offset };

    /// <summary>The zero-based line and column of <see cref="Offset"/>, counted in characters.</summary>
    public LinePosition Position => PositionOf(Text, Offset);

    public static LinePosition PositionOf(string text, int offset)
    {
        int line = 0, lineStart = 0;
        for (int i = 0; i < offset; i++)
        {
            if (text[i] == '\n')
            {
                line++;
                lineStart = i + 1;
            }
        }

        return new LinePosition(line, offset - lineStart);
    }

    private static int IndexOfOnly(string text, string value)
    {
        int at = text.IndexOf(value, StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, at, $"the spec contains '{value}'");
        Assert.AreEqual(-1, text.IndexOf(value, at + 1, StringComparison.Ordinal), $"the spec contains '{value}' once");
        return at;
    }
}
