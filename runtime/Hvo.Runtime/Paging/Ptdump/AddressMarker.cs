namespace Hvo.Paging.Ptdump;

/// <summary>
/// A named point of the address space (the kernel's <c>struct addr_marker</c>): a dump prints
/// <c>---[ Name ]---</c> where the walk reaches <see cref="Start"/>, and no run of entries
/// continues across it. <see cref="Start"/> 0 is the top of the address space (the end of a
/// region that ends there, LoongArch's vmemmap), as a walk's end 0 is.
/// </summary>
public readonly record struct AddressMarker(ulong Start, string Name);
