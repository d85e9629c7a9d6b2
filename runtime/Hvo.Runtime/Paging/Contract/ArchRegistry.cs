using System;
using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;

namespace Hvo.Paging;

/// <summary>
/// Runs code that is generic over an architecture for an architecture chosen at run time:
/// the one place where a name becomes a type argument, with no reflection.
/// </summary>
public interface IArchVisitor<out TResult>
{
    TResult Visit<TArch>() where TArch : struct, IPagingArch;
}

/// <summary>One architecture of the registry.</summary>
public abstract class ArchEntry
{
    private protected ArchEntry()
    {
    }

    public abstract ArchInfo Info { get; }

    public string Name => Info.Name;

    public abstract TResult Accept<TResult>(IArchVisitor<TResult> visitor);

    public static ArchEntry Create<TArch>() where TArch : struct, IPagingArch => new Entry<TArch>();

    public override string ToString() => Name;

    private sealed class Entry<TArch> : ArchEntry where TArch : struct, IPagingArch
    {
        public override ArchInfo Info => TArch.Info;

        public override TResult Accept<TResult>(IArchVisitor<TResult> visitor) => visitor.Visit<TArch>();
    }
}

/// <summary>Every architecture generated from <c>specs/*.json</c>, sorted by name.</summary>
public static partial class ArchRegistry
{
    private static readonly Lazy<ImmutableArray<ArchEntry>> s_all =
        new(() => [.. CreateEntries().OrderBy(e => e.Name, StringComparer.Ordinal)]);

    public static ImmutableArray<ArchEntry> All => s_all.Value;

    public static IEnumerable<string> Names => All.Select(e => e.Name);

    /// <summary>The architecture called <paramref name="name"/>, or null.</summary>
    public static ArchEntry? Find(string name) =>
        All.FirstOrDefault(e => string.Equals(e.Name, name, StringComparison.Ordinal));

    // Emitted by the generator: one entry per spec.
    private static partial IEnumerable<ArchEntry> CreateEntries();
}
