using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using Hvo.Generator.Model;
using Scriban;
using Scriban.Runtime;

namespace Hvo.Generator.Emitting;

/// <summary>Renders the models through the embedded Scriban templates.</summary>
internal static class Emitter
{
    private static readonly Lazy<Template> s_arch = new(() => Load("Arch.sbn"));
    private static readonly Lazy<Template> s_registry = new(() => Load("Registry.sbn"));

    public static string HintName(ArchModel model) => model.TypeName + ".g.cs";

    public static string RenderArch(ArchModel model) => Render(s_arch.Value, "a", new ArchTemplateModel(model));

    public static string RenderRegistry(IEnumerable<string> typeNames) =>
        Render(s_registry.Value, "types", typeNames.OrderBy(t => t, StringComparer.Ordinal).ToArray());

    private static string Render(Template template, string name, object model)
    {
        var globals = new ScriptObject();
        globals.SetValue(name, model, readOnly: true);
        var context = new TemplateContext
        {
            MemberRenamer = member => member.Name,
            StrictVariables = true,
            LoopLimit = 0,
        };
        context.PushGlobal(globals);
        return template.Render(context);
    }

    private static Template Load(string file)
    {
        string resource = "Hvo.Generator.Templates." + file;
        using Stream stream = typeof(Emitter).GetTypeInfo().Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException("missing embedded template " + resource);
        using var reader = new StreamReader(stream);
        Template template = Template.Parse(reader.ReadToEnd(), file);
        if (template.HasErrors)
        {
            throw new InvalidOperationException($"template {file}: " + string.Join("; ", template.Messages));
        }

        return template;
    }
}
