using System.Collections.Generic;
using System.Linq;
using CsCheck;
using Hvo.Memory;
using Hvo.Tests;
using static Hvo.Runtime.Tests.Memory.AllocatorMachine;

namespace Hvo.Runtime.Tests.Memory;

/// <summary>
/// Random sequences of alloc_pages_node, __free_pages, split_page, alloc_contig_pages and
/// free_contig_range on a 64 MiB, two-node x86-64 machine (DMA, DMA32 on node 0; DMA32 on node 1).
/// </summary>
[TestClass]
public sealed class BuddyPropertyTests
{
    private enum Kind
    {
        Alloc,
        Free,
        Split,
        AllocContig,
        FreeContigPart,
    }

    private static readonly Gen<(Kind Kind, int Node, int Order, bool ThisNode, int Pick)> Step = Gen.Select(
        Gen.Int[0, 9].Select(i => i switch
        {
            <= 3 => Kind.Alloc,
            <= 6 => Kind.Free,
            7 => Kind.Split,
            8 => Kind.AllocContig,
            _ => Kind.FreeContigPart,
        }),
        Gen.Int[0, 1],
        Gen.Select(Gen.Int[0, 10], Gen.Int[0, 3], (big, small) => small == 0 ? big : small - 1), // low orders most of the time
        Gen.Bool,
        Gen.Int[0, int.MaxValue]);

    private static readonly Gen<(Kind Kind, int Node, int Order, bool ThisNode, int Pick)[]> Sequences = Step.Array[1, 300];

    [TestMethod]
    public void NoFrameIsHandedOutTwiceAndCountsAreConserved() =>
        FixedSeeds.Sample(Sequences, steps =>
        {
            var run = new Run();
            foreach (var step in steps)
            {
                run.Do(step);
                run.AssertConserved();
            }
        }, nameof(NoFrameIsHandedOutTwiceAndCountsAreConserved), 150);

    [TestMethod]
    public void FreeingEverythingMergesBackToTheInitialBlocks() =>
        FixedSeeds.Sample(Sequences, steps =>
        {
            var run = new Run();
            foreach (var step in steps)
            {
                run.Do(step);
            }

            run.FreeAll();
            Assert.AreEqual(run.Initial, run.Allocator.BuddyInfo());
            Assert.AreEqual(run.Allocator.ManagedPages, run.Allocator.NrFreePages);
        }, nameof(FreeingEverythingMergesBackToTheInitialBlocks), 150);

    private sealed class Run
    {
        // Blocks from alloc_pages_node (Order >= 0) and ranges from alloc_contig_pages (Order -1).
        private readonly List<(ulong Pfn, int Order, ulong Frames)> _held = [];

        public Run()
        {
            Allocator = Create("x86_64", 64 * MiB, nodes: 2);
            Initial = Allocator.BuddyInfo();
        }

        public PageAllocator Allocator { get; }

        public string Initial { get; }

        public void Do((Kind Kind, int Node, int Order, bool ThisNode, int Pick) step)
        {
            Gfp gfp = step.ThisNode ? Gfp.ThisNode : Gfp.Kernel;
            int pick = _held.Count == 0 ? -1 : step.Pick % _held.Count;
            switch (step.Kind)
            {
                case Kind.Alloc when Allocator.TryAllocPages(step.Node, step.Order, gfp, AllocSite.Other, FrameOwner.Buddy, out ulong pfn):
                    Assert.AreEqual(0UL, pfn % (1UL << step.Order));
                    if (step.ThisNode)
                    {
                        Assert.AreEqual(step.Node, Allocator.Layout.NodeOf(pfn));
                    }

                    _held.Add((pfn, step.Order, 1UL << step.Order));
                    break;
                case Kind.AllocContig when Allocator.TryAllocContigPages(step.Node, 1UL << (step.Order + 1), gfp, AllocSite.HugePage, FrameOwner.Buddy, out ulong pfn):
                    _held.Add((pfn, -1, 1UL << (step.Order + 1)));
                    break;
                case Kind.Free when pick >= 0:
                    Release(_held[pick]);
                    _held.RemoveAt(pick);
                    break;
                case Kind.Split when pick >= 0 && _held[pick].Order > 0:
                    (ulong head, int order, _) = _held[pick];
                    Allocator.SplitPage(head, order);
                    _held.RemoveAt(pick);
                    _held.AddRange(Enumerable.Range(0, 1 << order).Select(i => (head + (ulong)i, 0, 1UL)));
                    break;
                case Kind.FreeContigPart when pick >= 0 && _held[pick].Order < 0 && _held[pick].Frames > 1:
                    (ulong start, _, ulong frames) = _held[pick];
                    Allocator.FreeContigRange(start, frames / 2, FrameOwner.Buddy);
                    _held[pick] = (start + (frames / 2), -1, frames - (frames / 2));
                    break;
            }
        }

        public void AssertConserved()
        {
            long held = (long)_held.Sum(h => (decimal)h.Frames);
            Assert.AreEqual(Allocator.NrFreePages, Allocator.Owners.Count(FrameOwner.Free), "free lists and owner table agree");
            Assert.AreEqual(held, Allocator.Owners.Count(FrameOwner.Buddy), "every frame held is held once");
            Assert.AreEqual(Allocator.ManagedPages, Allocator.NrFreePages + held, "free + allocated == managed");
            long inBlocks = Enumerable.Range(0, Allocator.MaxOrder + 1).Sum(o => Allocator.FreeBlocks(o) << o);
            Assert.AreEqual(Allocator.NrFreePages, inBlocks, "nr_free per order adds up to the free pages");
        }

        public void FreeAll()
        {
            foreach (var h in _held)
            {
                Release(h);
            }

            _held.Clear();
        }

        private void Release((ulong Pfn, int Order, ulong Frames) h)
        {
            if (h.Order >= 0)
            {
                Allocator.FreePages(h.Pfn, h.Order, FrameOwner.Buddy);
            }
            else
            {
                Allocator.FreeContigRange(h.Pfn, h.Frames, FrameOwner.Buddy);
            }
        }
    }
}
