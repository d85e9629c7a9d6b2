using System;

namespace Hvo.Memory;

/// <summary>
/// Contents of a frame nobody has written yet that is not all zeroes: struct pages still as
/// boot initialised them, produced from the pfn on demand the way the kernel's deferred struct
/// page init fills them late. Written frames are read from the frame store instead.
/// </summary>
public interface IFrameContent
{
    /// <summary>Fill <paramref name="frame"/> with the frame's contents, or return false for plain zeroes.</summary>
    bool TryFill(ulong pfn, Span<byte> frame);
}
