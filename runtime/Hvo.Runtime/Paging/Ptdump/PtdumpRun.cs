namespace Hvo.Paging.Ptdump;

/// <summary>
/// Consecutive entries at one level with the same protection bits, as note_page collects them
/// before printing one line: [<see cref="Start"/>, <see cref="End"/>).
/// </summary>
/// <param name="Start">First address of the run.</param>
/// <param name="End">First address after the run.</param>
/// <param name="Level">Spec level of the entries, root first (0 is the pgd).</param>
/// <param name="Prot">The bits the format compares (note_page's <c>prot</c>): the entry without its output address; 0 for a hole.</param>
/// <param name="Present">The entries are valid leaves (pte_present / pmd_leaf); false for a hole.</param>
public readonly record struct PtdumpRun(ulong Start, ulong End, int Level, ulong Prot, bool Present)
{
    public ulong Size => End - Start;
}
