using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using Hvo.Memory.Hotplug;
using Hvo.Paging;

namespace Hvo.Scenario;

/// <summary>
/// /sys/devices/system/memory (drivers/base/memory.c) over the machine's <see cref="MemoryHotplug{TArch}"/>:
/// block_size_bytes, auto_online_blocks, probe (x86's CONFIG_ARCH_MEMORY_PROBE) and each block's
/// memoryN/{state, online, phys_index, phys_device, removable, valid_zones}; and, where
/// CONFIG_MHP_MEMMAP_ON_MEMORY is (x86-64), /sys/module/memory_hotplug/parameters/memmap_on_memory.
/// </summary>
public sealed partial class KernelFiles<TArch> : IShellFirmware
{
    private const string MemoryDir = "/sys/devices/system/memory/";
    private readonly HashSet<ulong> _blockFiles = [];

    /// <summary>The firmware announces a memory device of one block (<c>plug</c>): what the kernel logged about it.</summary>
    public IReadOnlyList<string> PlugMemoryDevice(ulong physAddr, int? node)
    {
        int logged = _machine.KernelLog.Count;
        _machine.Hotplug.AddMemoryDevice(physAddr, node);
        return [.. _machine.KernelLog.Skip(logged)];
    }

    private void AddMemoryHotplug(bool memmapOnMemoryRequested)
    {
        MemoryHotplug<TArch> hotplug = _machine.Hotplug;
        Add(MemoryDir + "block_size_bytes", () => string.Create(CultureInfo.InvariantCulture, $"{hotplug.BlockBytes:x}\n"));
        Add(MemoryDir + "auto_online_blocks", () => BootLine.OnlineTypeName(hotplug.AutoOnline) + "\n", data =>
        {
            if (!BootLine.TryParseOnlineType(data, out OnlineType type))
            {
                return Errno.EINVAL;
            }

            hotplug.AutoOnline = type;
            return Errno.None;
        });
        if (TArch.Info.Ptdump == PtdumpFormat.X86)
        {
            // probe_store: kstrtoull(buf, 0), then one block at that address.
            Add(MemoryDir + "probe", null, data =>
            {
                Errno e = KernelValues.KstrToULong(data, 0, out ulong address);
                if (e != Errno.None)
                {
                    return e;
                }

                return Status(hotplug.Probe(address));
            });

            // The parameter's get: param_get_bool.
            Add("/sys/module/memory_hotplug/parameters/memmap_on_memory", () =>
                _optimizer.Policy.MemmapOnMemoryParameterReads(memmapOnMemoryRequested, _optimizer.Switches.BootEnabled) ? "Y\n" : "N\n");
        }
    }

    // /sys/devices/system/memory lists every present block's memoryN, whether or not a path named it yet (globs, ls).
    private IReadOnlyList<string> WithMemoryBlocks(string directory, IReadOnlyList<string> names)
    {
        if (directory + "/" != MemoryDir)
        {
            return names;
        }

        return [.. names.Union(_machine.Hotplug.Blocks.Select(b => string.Create(CultureInfo.InvariantCulture, $"memory{b.Id}")), System.StringComparer.Ordinal)
            .Order(System.StringComparer.Ordinal)];
    }

    // memoryN/ of a present block, made when a path names it first: a machine of many terabytes
    // has tens of thousands of blocks, and a script looks at a few.
    private void AddMemoryBlockFiles(string path)
    {
        const string Prefix = MemoryDir + "memory";
        if (!path.StartsWith(Prefix, System.StringComparison.Ordinal))
        {
            return;
        }

        int end = path.IndexOf('/', Prefix.Length);
        string digits = end < 0 ? path[Prefix.Length..] : path[Prefix.Length..end];
        if (digits.Length == 0 || digits.Length > 1 && digits[0] == '0'
            || !ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out ulong id))
        {
            return;
        }

        MemoryHotplug<TArch> hotplug = _machine.Hotplug;
        if (hotplug.Block(id) is not { } block || !_blockFiles.Add(id))
        {
            return;
        }

        string dir = string.Create(CultureInfo.InvariantCulture, $"{MemoryDir}memory{block.Id}/");
        Add(dir + "phys_index", () => string.Create(CultureInfo.InvariantCulture, $"{block.Id:x8}\n"));
        Add(dir + "phys_device", () => "0\n");
        Add(dir + "removable", () => "1\n"); // CONFIG_MEMORY_HOTREMOVE: always 1
        Add(dir + "valid_zones", () => hotplug.ValidZones(block) + "\n");

        // state_store: one of the four words, then device_online / device_offline; a block in
        // that state already (they return 1) is -EINVAL.
        Add(dir + "state", () => block.State == MemoryBlockState.Online ? "online\n" : "offline\n", data =>
        {
            if (!BootLine.TryParseOnlineType(data, out OnlineType type))
            {
                return Errno.EINVAL;
            }

            HotplugResult r = type == OnlineType.Offline ? hotplug.Offline(block) : hotplug.Online(block, type);
            return r == HotplugResult.Unchanged ? Errno.EINVAL : Status(r);
        });

        // The device core's online_store: kstrtobool, then device_online / device_offline; a
        // block in that state already is success.
        Add(dir + "online", () => block.State == MemoryBlockState.Online ? "1\n" : "0\n", data =>
        {
            if (!KernelValues.TryParseBool(data, out bool online))
            {
                return Errno.EINVAL;
            }

            HotplugResult r = online ? hotplug.Online(block) : hotplug.Offline(block);
            return r == HotplugResult.Unchanged ? Errno.None : Status(r);
        });
    }

    private static Errno Status(HotplugResult r) => r switch
    {
        HotplugResult.Ok or HotplugResult.Unchanged => Errno.None,
        HotplugResult.Busy => Errno.EBUSY,
        HotplugResult.NoMemory => Errno.ENOMEM,
        HotplugResult.Exists => Errno.EEXIST,
        HotplugResult.OutOfRange => Errno.E2BIG,
        HotplugResult.Interrupted => Errno.EINTR,
        _ => Errno.EINVAL,
    };
}
