using Microsoft.CodeAnalysis;

namespace Hvo.Generator.Diagnostics;

/// <summary>
/// Every diagnostic the generator reports, one ID each, in order. Each message says what is
/// wrong with the value it points at and what would be right. Keep
/// <c>AnalyzerReleases.Unshipped.md</c> in step.
/// </summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "Hvo.Spec";

    public static readonly DiagnosticDescriptor MalformedJson = Error(
        "HVO001", "Spec is not valid JSON",
        "Spec is not valid JSON: {0}. Comments and trailing commas are allowed; everything else must be JSON.");

    public static readonly DiagnosticDescriptor MissingKey = Error(
        "HVO002", "Spec lacks a required key",
        "'{0}' is missing the required key '{1}': {2}");

    public static readonly DiagnosticDescriptor UnknownKey = new(
        "HVO003", "Spec key is not part of the contract",
        "'{0}' is not a key of {1}; known keys are: {2}. It is ignored.",
        Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor InvalidValue = Error(
        "HVO004", "Spec value has the wrong type or form",
        "'{0}' is invalid: {1}");

    public static readonly DiagnosticDescriptor LevelsNotContiguous = Error(
        "HVO005", "Page-table levels overlap or leave a gap",
        "Level '{0}' covers address bits [{1}, {2}) but the next level '{3}' ends at bit {4}: each level's shift must equal the next level's shift + bits");

    public static readonly DiagnosticDescriptor LevelsInconsistent = Error(
        "HVO006", "Page-table levels disagree with pageShift or vaBits",
        "{0}");

    public static readonly DiagnosticDescriptor PfnFieldOutOfRange = Error(
        "HVO007", "Frame-number field cannot hold a page frame number",
        "entry.pfn [{0}, {1}] cannot hold a page frame number: {2}");

    public static readonly DiagnosticDescriptor PfnFieldOverlap = Error(
        "HVO008", "Frame-number field overlaps descriptor bits",
        "{0} {1} uses bits {2} inside entry.pfn [{3}, {4}]: the bits that tell kinds apart, build entries or change permissions must lie outside the frame-number field (a block's may use the low field bits its alignment keeps zero)");

    public static readonly DiagnosticDescriptor AmbiguousKinds = Error(
        "HVO009", "Descriptor kinds cannot be told apart",
        "{0}");

    public static readonly DiagnosticDescriptor StructPageNotPowerOfTwo = Error(
        "HVO010", "struct page size is not a power of two of at least 64",
        "vmemmap.structPageBytes is {0}: the kernel's struct page is a power of two (HVO shares whole tail pages) of at least 64 bytes; use 64");

    public static readonly DiagnosticDescriptor VmemmapMisaligned = Error(
        "HVO011", "vmemmap start is not aligned to the boot mapping",
        "vmemmap.start {0} is not aligned to {1}, the size of a '{2}' leaf that maps it at boot; use a multiple of {1}");

    public static readonly DiagnosticDescriptor VmemmapTooSmall = Error(
        "HVO012", "vmemmap region cannot describe the memory",
        "{0}");

    public static readonly DiagnosticDescriptor BadHugePageSize = Error(
        "HVO013", "Huge page size is not a leaf or contiguous size",
        "Huge page size {0} is neither the size of a leaf level ({1}) nor of a contiguous run ({2})");

    public static readonly DiagnosticDescriptor DuplicateName = Error(
        "HVO014", "Two specs have the same name",
        "Spec name '{0}' (type {1}) is already used by {2}; every spec needs a unique name, and this one is not generated");

    public static readonly DiagnosticDescriptor InvalidName = Error(
        "HVO015", "Spec name is not a valid identifier",
        "Spec name '{0}' is invalid: use lower-case letters, digits, '_' and '-', starting with a letter (e.g. \"arm64-4k\")");

    public static readonly DiagnosticDescriptor UnknownLevel = Error(
        "HVO016", "Spec names a level it does not define",
        "{0} '{1}' is not {2}; use one of: {3}");

    public static readonly DiagnosticDescriptor InternalError = Error(
        "HVO017", "The generator failed on a spec",
        "The Hvo generator failed on this spec ({0}: {1}); please report it with the spec attached");

    private static DiagnosticDescriptor Error(string id, string title, string message) =>
        new(id, title, message, Category, DiagnosticSeverity.Error, isEnabledByDefault: true);
}
