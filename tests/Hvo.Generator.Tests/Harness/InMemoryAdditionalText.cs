using System.Text;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Hvo.Generator.Tests.Harness;

/// <summary>A spec handed to the generator as an AdditionalFile without touching the disk.</summary>
internal sealed class InMemoryAdditionalText : AdditionalText
{
    private readonly SourceText _text;

    public InMemoryAdditionalText(string path, string text)
    {
        Path = path;
        Text = text;
        _text = SourceText.From(text, Encoding.UTF8);
    }

    public override string Path { get; }

    /// <summary>The spec as a string, for tests that compute where a value starts.</summary>
    public string Text { get; }

    public override SourceText GetText(CancellationToken cancellationToken = default) => _text;

    /// <summary>The shipped spec <paramref name="fileName"/>, at its real path.</summary>
    public static InMemoryAdditionalText Shipped(string fileName) => new(Repo.SpecPath(fileName), Repo.ReadSpec(fileName));

    /// <summary>The same file with new contents, as an editor would save it.</summary>
    public InMemoryAdditionalText WithText(string text) => new(Path, text);
}
