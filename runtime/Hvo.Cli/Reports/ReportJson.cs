using System;
using System.Collections.Generic;
using System.Text.Json;
using System.Text.Json.Serialization;
using Hvo.HugeTlb;

namespace Hvo.Cli.Reports;

/// <summary>The report (<see cref="SimulationReport"/>) as JSON, from the source-generated <see cref="ReportJsonContext"/>.</summary>
internal static class ReportJson
{
    /// <summary>One report: one indented object.</summary>
    public static string Render(SimulationReport report) => JsonSerializer.Serialize(report, ReportJsonContext.Default.SimulationReport);

    /// <summary>Several runs (<c>hvo compare --json</c>): an array of the reports.</summary>
    public static string Render(IReadOnlyList<SimulationReport> reports) => JsonSerializer.Serialize([.. reports], ReportJsonContext.Default.SimulationReportArray);
}

/// <summary>The report's JSON: camelCase keys in declaration order, indented by two.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(SimulationReport))]
[JsonSerializable(typeof(SimulationReport[]))]
[JsonSerializable(typeof(ExampleInfo[]))]
internal sealed partial class ReportJsonContext : JsonSerializerContext;

/// <summary>/proc/meminfo as an object of the kernel's keys and values, in the kernel's order (<see cref="MemInfo.Fields"/>).</summary>
internal sealed class MemInfoJsonConverter : JsonConverter<MemInfo>
{
    public override MemInfo Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("reports are written, never read back");

    public override void Write(Utf8JsonWriter writer, MemInfo value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        writer.WriteStartObject();
        foreach (KeyValuePair<string, ulong> field in value.Fields)
        {
            writer.WriteNumber(field.Key, field.Value);
        }

        writer.WriteEndObject();
    }
}
