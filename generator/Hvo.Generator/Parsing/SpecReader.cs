using System;
using System.Collections.Generic;
using System.Linq;
using Hvo.Generator.Diagnostics;
using Microsoft.CodeAnalysis;

namespace Hvo.Generator.Parsing;

/// <summary>Typed access to a located JSON tree that records a diagnostic for every bad value.</summary>
internal sealed class SpecReader
{
    private readonly List<DiagnosticInfo> _diagnostics = new();

    public SpecReader(SpecText text) => Text = text;

    public SpecText Text { get; }

    public IReadOnlyList<DiagnosticInfo> Diagnostics => _diagnostics;

    public bool HasErrors => _diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error);

    public void Report(DiagnosticDescriptor descriptor, JsonNode? at, params object?[] args) =>
        _diagnostics.Add(DiagnosticInfo.Create(descriptor, at is null ? Text.Locate(0, 0) : Text.Locate(at), args));

    public void Add(DiagnosticInfo diagnostic) => _diagnostics.Add(diagnostic);

    /// <summary>Warn about every key of <paramref name="obj"/> that the contract does not define.</summary>
    public void CheckKeys(JsonNode obj, string path, params string[] known)
    {
        foreach (JsonProperty p in obj.Properties)
        {
            if (System.Array.IndexOf(known, p.Name) < 0)
            {
                _diagnostics.Add(DiagnosticInfo.Create(
                    DiagnosticDescriptors.UnknownKey,
                    Text.Locate(p.NameStart, p.NameEnd),
                    p.Name,
                    path.Length == 0 ? "the spec" : $"'{path}'",
                    string.Join(", ", known)));
            }
        }
    }

    public static JsonNode? Find(JsonNode obj, string key)
    {
        // The last duplicate wins, as in System.Text.Json's own reading.
        for (int i = obj.Properties.Count - 1; i >= 0; i--)
        {
            if (obj.Properties[i].Name == key)
            {
                return obj.Properties[i].Value;
            }
        }

        return null;
    }

    public JsonNode? Required(JsonNode obj, string objPath, string key, string hint)
    {
        JsonNode? node = Find(obj, key);
        if (node is null)
        {
            Report(DiagnosticDescriptors.MissingKey, obj, objPath.Length == 0 ? "the spec" : objPath, key, hint);
        }

        return node;
    }

    public JsonNode? Object(JsonNode? node, string path)
    {
        if (node is null)
        {
            return null;
        }

        if (node.Kind != JsonKind.Object)
        {
            Report(DiagnosticDescriptors.InvalidValue, node, path, $"expected an object but found {node.KindName}");
            return null;
        }

        return node;
    }

    public JsonNode? Array(JsonNode? node, string path)
    {
        if (node is null)
        {
            return null;
        }

        if (node.Kind != JsonKind.Array)
        {
            Report(DiagnosticDescriptors.InvalidValue, node, path, $"expected an array but found {node.KindName}");
            return null;
        }

        return node;
    }

    public string? String(JsonNode? node, string path)
    {
        if (node is null)
        {
            return null;
        }

        if (node.Kind != JsonKind.String)
        {
            Report(DiagnosticDescriptors.InvalidValue, node, path, $"expected a string but found {node.KindName}");
            return null;
        }

        return node.Text;
    }

    public bool? Bool(JsonNode? node, string path)
    {
        if (node is null)
        {
            return null;
        }

        if (node.Kind is not (JsonKind.True or JsonKind.False))
        {
            Report(DiagnosticDescriptors.InvalidValue, node, path, $"expected true or false but found {node.KindName}");
            return null;
        }

        return node.Kind == JsonKind.True;
    }

    public ulong? Number(JsonNode? node, string path)
    {
        if (node is null)
        {
            return null;
        }

        if (!SpecNumber.TryParse(node, out ulong value, out string error))
        {
            Report(DiagnosticDescriptors.InvalidValue, node, path, error);
            return null;
        }

        return value;
    }

    /// <summary>A number within [min, max], or null after a diagnostic saying the range.</summary>
    public int? Int(JsonNode? node, string path, int min, int max)
    {
        ulong? value = Number(node, path);
        if (value is null)
        {
            return null;
        }

        if (value < (ulong)min || value > (ulong)max)
        {
            Report(DiagnosticDescriptors.InvalidValue, node, path, $"{value} is out of range; use a value from {min} to {max}");
            return null;
        }

        return (int)value.Value;
    }
}
