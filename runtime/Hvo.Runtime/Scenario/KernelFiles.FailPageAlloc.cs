using System.Collections.Generic;
using Hvo.Memory;

namespace Hvo.Scenario;

/// <summary>/sys/kernel/debug/fail_page_alloc and /proc/self/fail-nth over the machine's <see cref="FaultInjection"/>.</summary>
public sealed partial class KernelFiles<TArch>
{
    private void AddFaultInjection(IReadOnlySet<AllocSite>? siteFilter, ulong seed)
    {
        var state = new FailPageAllocState(_machine.Faults, siteFilter, seed);
        foreach (FaultKnob knob in FaultInjectionFiles.Knobs)
        {
            Add(knob.Path, () => knob.Show(state), data => knob.Write(state, data));
        }
    }
}
