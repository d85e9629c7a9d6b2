using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using Hvo.Generator.Diagnostics;

namespace Hvo.Generator.Parsing;

internal enum JsonKind
{
    Object,
    Array,
    String,
    Number,
    True,
    False,
    Null,
}

/// <summary>A JSON value with the place it came from, which System.Text.Json's DOM does not keep.</summary>
internal sealed class JsonNode
{
    public JsonNode(JsonKind kind, int start, int end, string? text)
    {
        Kind = kind;
        Start = start;
        End = end;
        Text = text;
    }

    public JsonKind Kind { get; }

    /// <summary>UTF-8 byte offsets of the value in the file, end exclusive.</summary>
    public int Start { get; }

    public int End { get; set; }

    /// <summary>A string's value, or a number's literal text.</summary>
    public string? Text { get; }

    public List<JsonProperty> Properties { get; } = new();

    public List<JsonNode> Items { get; } = new();

    public string KindName => Kind switch
    {
        JsonKind.Object => "an object",
        JsonKind.Array => "an array",
        JsonKind.String => "a string",
        JsonKind.Number => "a number",
        JsonKind.True or JsonKind.False => "a boolean",
        _ => "null",
    };
}

internal sealed class JsonProperty
{
    public JsonProperty(string name, int nameStart, int nameEnd, JsonNode value)
    {
        Name = name;
        NameStart = nameStart;
        NameEnd = nameEnd;
        Value = value;
    }

    public string Name { get; }

    public int NameStart { get; }

    public int NameEnd { get; }

    public JsonNode Value { get; }
}

/// <summary>The text of one spec file, able to turn byte offsets into Roslyn locations.</summary>
internal sealed class SpecText
{
    private readonly int[] _lineStarts; // char offsets

    public SpecText(string path, string text)
    {
        Path = path;
        Text = text;
        Bytes = Encoding.UTF8.GetBytes(text);
        var starts = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n')
            {
                starts.Add(i + 1);
            }
        }

        _lineStarts = starts.ToArray();
    }

    public string Path { get; }

    public string Text { get; }

    public byte[] Bytes { get; }

    public SpecLocation Locate(int byteStart, int byteEnd)
    {
        byteStart = Clamp(byteStart);
        byteEnd = Math.Max(byteStart, Clamp(byteEnd));
        int start = Encoding.UTF8.GetCharCount(Bytes, 0, byteStart);
        int end = start + Encoding.UTF8.GetCharCount(Bytes, byteStart, byteEnd - byteStart);
        (int sl, int sc) = LineColumn(start);
        (int el, int ec) = LineColumn(end);
        return new SpecLocation(Path, start, end - start, sl, sc, el, ec);
    }

    /// <summary>A location from a 0-based line and a 0-based byte position in it (JsonException's terms).</summary>
    public SpecLocation LocateLine(long line, long bytePositionInLine)
    {
        int l = (int)Math.Max(0, Math.Min(line, _lineStarts.Length - 1));
        int lineStartChar = _lineStarts[l];
        int lineStartByte = Encoding.UTF8.GetByteCount(Text.Substring(0, lineStartChar));
        int b = Clamp(lineStartByte + (int)Math.Max(0, bytePositionInLine));
        return Locate(b, Math.Min(Bytes.Length, b + 1));
    }

    public SpecLocation Locate(JsonNode node) => Locate(node.Start, node.End);

    private int Clamp(int offset) => Math.Max(0, Math.Min(offset, Bytes.Length));

    private (int Line, int Column) LineColumn(int charOffset)
    {
        int index = Array.BinarySearch(_lineStarts, charOffset);
        int line = index >= 0 ? index : ~index - 1;
        return (line, charOffset - _lineStarts[line]);
    }
}

/// <summary>Reads a spec with Utf8JsonReader (comments and trailing commas allowed) into located nodes.</summary>
internal static class JsonTreeReader
{
    private const int MaxDepth = 64;

    /// <summary>The root value, or null with <paramref name="error"/> set to where and why the JSON is malformed.</summary>
    public static JsonNode? Read(SpecText text, out DiagnosticInfo? error)
    {
        error = null;
        var options = new JsonReaderOptions
        {
            CommentHandling = JsonCommentHandling.Skip,
            AllowTrailingCommas = true,
            MaxDepth = MaxDepth,
        };
        var reader = new Utf8JsonReader(text.Bytes, options);
        try
        {
            if (!reader.Read())
            {
                error = DiagnosticInfo.Create(DiagnosticDescriptors.MalformedJson, text.Locate(0, 0), "the file is empty");
                return null;
            }

            JsonNode root = ReadValue(ref reader);
            if (reader.Read())
            {
                error = DiagnosticInfo.Create(
                    DiagnosticDescriptors.MalformedJson,
                    text.Locate((int)reader.TokenStartIndex, (int)reader.TokenStartIndex + 1),
                    "more content after the top-level value");
                return null;
            }

            return root;
        }
        catch (JsonException e)
        {
            error = DiagnosticInfo.Create(
                DiagnosticDescriptors.MalformedJson,
                text.LocateLine(e.LineNumber ?? 0, e.BytePositionInLine ?? 0),
                TrimLocationSuffix(e.Message));
            return null;
        }
        catch (InvalidOperationException e)
        {
            // GetString on a string whose escapes do not decode (a lone surrogate such as "\ud800"):
            // the reader accepted the token, so this is the token it is on.
            error = DiagnosticInfo.Create(
                DiagnosticDescriptors.MalformedJson,
                text.Locate((int)reader.TokenStartIndex, (int)reader.BytesConsumed),
                $"the string cannot be read ({TrimLocationSuffix(e.Message)}); write a surrogate pair as both halves, e.g. \\ud834\\udd1e");
            return null;
        }
    }

    private static JsonNode ReadValue(ref Utf8JsonReader reader)
    {
        int start = (int)reader.TokenStartIndex;
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                {
                    var node = new JsonNode(JsonKind.Object, start, start, null);
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                    {
                        int nameStart = (int)reader.TokenStartIndex;
                        string name = reader.GetString() ?? string.Empty;
                        int nameEnd = (int)reader.BytesConsumed;
                        reader.Read();
                        node.Properties.Add(new JsonProperty(name, nameStart, nameEnd, ReadValue(ref reader)));
                    }

                    node.End = (int)reader.BytesConsumed;
                    return node;
                }

            case JsonTokenType.StartArray:
                {
                    var node = new JsonNode(JsonKind.Array, start, start, null);
                    while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    {
                        node.Items.Add(ReadValue(ref reader));
                    }

                    node.End = (int)reader.BytesConsumed;
                    return node;
                }

            case JsonTokenType.String:
                return new JsonNode(JsonKind.String, start, (int)reader.BytesConsumed, reader.GetString());
            case JsonTokenType.Number:
                return new JsonNode(JsonKind.Number, start, (int)reader.BytesConsumed, Encoding.UTF8.GetString(reader.ValueSpan.ToArray()));
            case JsonTokenType.True:
                return new JsonNode(JsonKind.True, start, (int)reader.BytesConsumed, null);
            case JsonTokenType.False:
                return new JsonNode(JsonKind.False, start, (int)reader.BytesConsumed, null);
            default:
                return new JsonNode(JsonKind.Null, start, (int)reader.BytesConsumed, null);
        }
    }

    private static string TrimLocationSuffix(string message)
    {
        int at = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (at > 0 ? message.Substring(0, at) : message).TrimEnd('.', ' ');
    }
}
