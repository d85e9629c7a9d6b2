using System;
using System.IO;
using Hvo.Paging;

namespace Hvo.Scenario;

/// <summary>Builds the report of a finished script from its session, on the session's architecture.</summary>
public interface IScenarioReporter<out TReport>
{
    TReport Report<TArch>(ScenarioSession<TArch> session) where TArch : struct, IPagingArch;
}

/// <summary>
/// Runs a script on the architecture the registry dispatches to: boot from the boot line (the
/// policy comes from <see cref="ScenarioOptions"/>), execute every command writing the transcript
/// to <paramref name="output"/>, and return what <paramref name="reporter"/> makes of the end state.
/// </summary>
public sealed class ScenarioRunner<TReport>(Script script, ScenarioOptions options, TextWriter output, IScenarioReporter<TReport> reporter) : IArchVisitor<TReport>
{
    public TReport Visit<TArch>() where TArch : struct, IPagingArch
    {
        ArgumentNullException.ThrowIfNull(reporter);
        using ScenarioSession<TArch> session = ScenarioSession<TArch>.Boot(script, options);
        session.Run(output);
        return reporter.Report(session);
    }
}
