using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;

namespace Hvo.Scenario;

/// <summary>
/// <c>dmesg</c>: the kernel log so far (<see cref="ShellContext.KernelLog"/>), one message a line
/// without timestamps: the boot line's notices, HugeTLB's boot lines in the kernel version's format,
/// then what the machine logged since. It takes no options here.
/// </summary>
public sealed class DmesgCommand : IShellCommand
{
    public string Name => "dmesg";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.Count > 0 ? new ShellUsage("dmesg takes no arguments here: it prints the kernel log so far", 0) : null;
    }

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(output);
        if (ShellCommands.Refuse(this, args, input, errors, 1) is { } refused)
        {
            return refused;
        }

        foreach (string line in shell.KernelLog)
        {
            output.Write(line + "\n");
        }

        return 0;
    }
}

/// <summary>
/// <c>plug ADDRESS [node=N]</c>: not a program but the machine's firmware announcing a memory device
/// of one memory block at physical ADDRESS (an ACPI PNP0C80 device, what QEMU's <c>device_add
/// pc-dimm</c> sends), on NUMA node N when given (<see cref="IShellFirmware.PlugMemoryDevice"/>).
/// ADDRESS is read as the kernel reads numbers (0x hex, 0 octal, decimal). What the kernel logs
/// about it shows as <c>kernel:</c> lines in the transcript; the event itself always succeeds (the
/// status is 0), as the firmware does not wait for the kernel. It has no output to redirect.
/// </summary>
public sealed class PlugCommand : IShellCommand
{
    private const string Usage = "plug takes a physical address and optionally node=N: plug 0x100000000 [node=1]";

    public string Name => "plug";

    public ShellUsage? Check(IReadOnlyList<string> args, bool readsInput) => Parse(args, out _, out _);

    public int Run(ShellContext shell, IReadOnlyList<string> args, string? input, TextWriter output, TextWriter errors)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(errors);
        if (Parse(args, out ulong address, out int? node) is { } usage)
        {
            errors.WriteLine(usage.Message);
            return 1;
        }

        foreach (string line in shell.Firmware.PlugMemoryDevice(address, node))
        {
            errors.Write("kernel: " + line + "\n");
        }

        return 0;
    }

    private static ShellUsage? Parse(IReadOnlyList<string> args, out ulong address, out int? node)
    {
        ArgumentNullException.ThrowIfNull(args);
        address = 0;
        node = null;
        if (args.Count is < 1 or > 2)
        {
            return new ShellUsage(Usage, args.Count > 0 ? 0 : null);
        }

        if (KernelValues.KstrToULong(args[0], 0, out address) != Errno.None)
        {
            return new ShellUsage($"'{args[0]}' is not an address: {Usage}", 0);
        }

        if (args.Count == 2)
        {
            string word = args[1];
            if (!word.StartsWith("node=", StringComparison.Ordinal)
                || !int.TryParse(word["node=".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out int n)
                || n >= MachineSize.MaxNodes)
            {
                return new ShellUsage($"'{word}': {Usage}, N a node below {MachineSize.MaxNodes}", 1);
            }

            node = n;
        }

        return null;
    }
}
