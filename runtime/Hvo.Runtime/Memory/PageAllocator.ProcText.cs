using System.Globalization;
using System.Text;

namespace Hvo.Memory;

/// <summary>The allocator's counters as the kernel prints them (mm/vmstat.c).</summary>
public sealed partial class PageAllocator
{
    /// <summary>
    /// /proc/buddyinfo (frag_show_print): a line per populated zone,
    /// <c>Node %d, zone %8s </c> then <c>%6lu </c> free blocks per order, 0 to <see cref="MaxOrder"/>.
    /// </summary>
    public string BuddyInfo()
    {
        var text = new StringBuilder();
        lock (_lock)
        {
            foreach (Zone zone in Zones)
            {
                if (!zone.IsPopulated)
                {
                    continue;
                }

                text.Append(CultureInfo.InvariantCulture, $"Node {zone.Node}, zone {zone.Name,8} ");
                for (int order = 0; order <= MaxOrder; order++)
                {
                    text.Append(CultureInfo.InvariantCulture, $"{zone.FreeBlocks(order),6} ");
                }

                text.Append('\n');
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// /proc/zoneinfo (zoneinfo_show_print), every zone of every node: free pages, watermarks,
    /// spanned, present and managed pages and the lowmem reserves ("protection"); populated zones
    /// add their free-page counter, their per-CPU pagesets (count, high, batch) and start pfn. Per-node
    /// statistics are not modelled.
    /// </summary>
    public string ZoneInfo()
    {
        var text = new StringBuilder();
        lock (_lock)
        {
            foreach (Zone zone in Zones)
            {
                text.Append(CultureInfo.InvariantCulture, $"Node {zone.Node}, zone {zone.Name,8}");
                text.Append(CultureInfo.InvariantCulture, $"\n  pages free     {zone.FreePages}");
                text.Append("\n        boost    0");
                text.Append(CultureInfo.InvariantCulture, $"\n        min      {zone.MinWatermark}");
                text.Append(CultureInfo.InvariantCulture, $"\n        low      {zone.LowWatermark}");
                text.Append(CultureInfo.InvariantCulture, $"\n        high     {zone.HighWatermark}");
                text.Append(CultureInfo.InvariantCulture, $"\n        spanned  {zone.SpannedPages}");
                text.Append(CultureInfo.InvariantCulture, $"\n        present  {zone.PresentPages}");
                text.Append(CultureInfo.InvariantCulture, $"\n        managed  {zone.ManagedPages}");
                text.Append("\n        cma      0");
                text.Append("\n        protection: (");
                text.AppendJoin(", ", zone.LowmemReserve);
                text.Append(')');
                if (zone.IsPopulated)
                {
                    text.Append(CultureInfo.InvariantCulture, $"\n      {"nr_free_pages",-12} {zone.FreePages}");
                    AppendPagesets(text, zone);
                    text.Append("\n  node_unreclaimable:  0");
                    text.Append(CultureInfo.InvariantCulture, $"\n  start_pfn:           {zone.StartPfn}");
                }

                text.Append('\n');
            }
        }

        return text.ToString();
    }
}
