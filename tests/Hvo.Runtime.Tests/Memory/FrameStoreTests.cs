using System;
using Hvo.Memory;

namespace Hvo.Runtime.Tests.Memory;

[TestClass]
public sealed class FrameStoreTests
{
    [TestMethod]
    public void AFrameNobodyWroteReadsAsZeroesAndIsNotMaterialized()
    {
        using var store = new FrameStore(1UL << 28, 12); // 1 TiB of 4 KiB frames
        Assert.IsTrue(store.Read(123_456_789).IndexOfAnyExcept((byte)0) < 0);
        Assert.IsFalse(store.IsMaterialized(123_456_789));
        Assert.AreEqual(0, store.MaterializedFrames);
    }

    [TestMethod]
    public void WritesAreKeptAndCountedOncePerFrame()
    {
        using var store = new FrameStore(1UL << 20, 14);
        store.Write(77)[5] = 0xab;
        store.Write(77)[6] = 0xcd;
        store.Write(1_000_000)[0] = 1;

        Assert.AreEqual(0xab, store.Read(77)[5]);
        Assert.AreEqual(0xcd, store.Read(77)[6]);
        Assert.AreEqual(2, store.MaterializedFrames);
        Assert.AreEqual(2L * 16384, store.MaterializedBytes);
        Assert.AreEqual(store.PageSize / 8, store.Table(77).Length);
    }

    [TestMethod]
    public void DiscardForgetsTheBytes()
    {
        using var store = new FrameStore(1024, 16);
        store.Write(3).Fill(0xff);
        store.Discard(3);
        store.Discard(3);

        Assert.IsFalse(store.IsMaterialized(3));
        Assert.AreEqual(0, store.MaterializedFrames);
        Assert.IsTrue(store.Read(3).IndexOfAnyExcept((byte)0) < 0, "a discarded frame reads as zeroes");
    }

    [TestMethod]
    public void AFrameBeyondTheMachineIsRefused()
    {
        using var store = new FrameStore(1024, 12);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => store.Read(1024));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => store.Write(ulong.MaxValue));
    }

    [TestMethod]
    public void ADisposedStoreRefusesEveryUseInsteadOfReachingFreedMemory()
    {
        var store = new FrameStore(1024, 12);
        store.Write(3).Fill(1);
        store.Dispose();

        Assert.ThrowsExactly<ObjectDisposedException>(() => store.Read(3));
        Assert.ThrowsExactly<ObjectDisposedException>(() => store.Write(3));
        Assert.ThrowsExactly<ObjectDisposedException>(() => store.Table(3));
        Assert.ThrowsExactly<ObjectDisposedException>(() => store.IsMaterialized(3));
        Assert.ThrowsExactly<ObjectDisposedException>(() => store.Tables);
        store.Dispose(); // twice is harmless
    }

    [TestMethod]
    public void ADisposedMachineRefusesAWalk()
    {
        var m = Hvo.Machine<Hvo.Arch.X86_64>.Boot(new Hvo.MachineConfig { MemoryBytes = 1UL << 30 });
        m.Dispose();
        Assert.ThrowsExactly<ObjectDisposedException>(() => m.PageTable.Walk(Hvo.Arch.X86_64.VmemmapStart));
        Assert.ThrowsExactly<ObjectDisposedException>(() => m.PageTable.SplitLeaf(2, Hvo.Arch.X86_64.VmemmapStart));
        Assert.ThrowsExactly<ObjectDisposedException>(() => m.PageTable.Ctx());
        Assert.ThrowsExactly<ObjectDisposedException>(() => m.Mmu.Read(0, Hvo.Arch.X86_64.VmemmapStart, new byte[8]));
    }
}
