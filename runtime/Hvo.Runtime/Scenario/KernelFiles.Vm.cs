using System.Globalization;
using Hvo.Memory;

namespace Hvo.Scenario;

/// <summary>
/// The page allocator's knobs: /proc/sys/vm/min_free_kbytes and watermark_scale_factor (each write
/// recomputes the watermarks), drop_caches, /sys/kernel/mm/transparent_hugepage/enabled, and
/// /sys/devices/system/node/online.
/// </summary>
public sealed partial class KernelFiles<TArch>
{
    private void AddVmKnobs()
    {
        PageAllocator pages = _machine.Pages;

        // min_free_kbytes_sysctl_handler: proc_dointvec_minmax with a minimum of 0.
        Add(ProcVm + "min_free_kbytes", () => Line((long)pages.MinFreeKbytes), data =>
        {
            Errno e = KernelValues.ProcInt(data, out int value);
            if (e != Errno.None || value < 0)
            {
                return Errno.EINVAL;
            }

            pages.MinFreeKbytes = value;
            return Errno.None;
        });

        // watermark_scale_factor_sysctl_handler: 1 to 3000.
        Add(ProcVm + "watermark_scale_factor", () => Line((long)pages.WatermarkScaleFactor), data =>
        {
            Errno e = KernelValues.ProcInt(data, out int value);
            if (e != Errno.None || value < 1 || value > 3000)
            {
                return Errno.EINVAL;
            }

            pages.WatermarkScaleFactor = value;
            return Errno.None;
        });

        // drop_caches_sysctl_handler: 1 to 4, write-only (0200, even for root); no page cache or
        // slab is modelled, so there is nothing to drop.
        Add(ProcVm + "drop_caches", null, data =>
        {
            Errno e = KernelValues.ProcInt(data, out int value);
            return e != Errno.None || value < 1 || value > 4 ? Errno.EINVAL : Errno.None;
        });

        // enabled_show / enabled_store (sysfs_streq on the three words).
        Add("/sys/kernel/mm/transparent_hugepage/enabled", () => pages.TransparentHugepages switch
        {
            ThpMode.Always => "[always] madvise never\n",
            ThpMode.Madvise => "always [madvise] never\n",
            _ => "always madvise [never]\n",
        }, data =>
        {
            string word = data.EndsWith('\n') ? data[..^1] : data;
            ThpMode? mode = word switch
            {
                "always" => ThpMode.Always,
                "madvise" => ThpMode.Madvise,
                "never" => ThpMode.Never,
                _ => null,
            };
            if (mode is not { } m)
            {
                return Errno.EINVAL;
            }

            if (pages.SetTransparentHugepages(m) is { } notice)
            {
                _machine.Log(notice);
            }

            return Errno.None;
        });

        // node_states[N_ONLINE] as a range list.
        int nodes = _machine.Layout.Nodes;
        Add("/sys/devices/system/node/online", () => nodes == 1 ? "0\n" : string.Create(CultureInfo.InvariantCulture, $"0-{nodes - 1}\n"));
    }
}
