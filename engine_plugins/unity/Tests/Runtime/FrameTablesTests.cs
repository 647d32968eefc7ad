// Runtime tests (Unity Test Runner, Play Mode / Edit Mode): the table form a game's frames travel in.
// Also run under Mono in CI (tests/test_unity_tests.py) with the repository's small NUnit-compatible runner.
using System;
using MetaBrain.Core;
using MetaBrain.Proto;
using NUnit.Framework;

namespace MetaBrain.Tests
{
    [TestFixture]
    public class FrameTablesTests
    {
        static float Cell(byte[] values, int row, int columns, int column)
        {
            return BitConverter.ToSingle(values, (row * columns + column) * 4);  // little-endian on every host
        }

        [Test]
        public void PlayersAndNpcsLandInTheirColumns()
        {
            var t = new FrameTables();
            int alice = t.AddPlayer("alice", 1f, 2f, 3f, 0f, 0f, -1f, 75f, 100f);
            t.AddPlayer("bob", -4f, 0f, 8f, 0f, 0f, 0f, 0f, 50f, dead: true);
            t.SetInput(alice, 0.5f, -0.5f, 0f, 0f, 3, 2, 1, 90f);
            t.AddNpc(7, 1f, 0f, 1f, 0.5f, NpcState.Attack, NpcTactic.Flank, "bob", "grunt");
            t.AddNpc(8, 0f, 0f, 0f, 1f, NpcState.Idle, NpcTactic.Unspecified);
            var frame = new Frame { Sequence = 1, GameTime = 0.2 };
            t.WriteTo(frame);

            Assert.AreEqual(2, frame.PlayerTable.PlayerIds.Count);
            Assert.AreEqual("bob", frame.PlayerTable.PlayerIds[1]);
            int pc = FrameTables.PlayerColumns, nc = FrameTables.NpcColumns;
            byte[] p = frame.PlayerTable.Values, n = frame.NpcTable.Values;
            Assert.AreEqual(2 * pc * 4, p.Length);
            Assert.AreEqual(3f, Cell(p, 0, pc, TableColumns.PlayerPositionZ));
            Assert.AreEqual(-1f, Cell(p, 0, pc, TableColumns.PlayerVelocityZ));
            Assert.AreEqual(75f, Cell(p, 0, pc, TableColumns.PlayerHealth));
            Assert.AreEqual(1f, Cell(p, 1, pc, TableColumns.PlayerDead));
            Assert.AreEqual(3f, Cell(p, 0, pc, TableColumns.PlayerInputShotsFired));
            Assert.AreEqual(90f, Cell(p, 0, pc, TableColumns.PlayerInputActionsPerMinute));
            Assert.AreEqual(1f, Cell(n, 0, nc, TableColumns.NpcTarget), "NPC 7 targets row 1 (bob)");
            Assert.AreEqual(-1f, Cell(n, 1, nc, TableColumns.NpcTarget), "no target");
            Assert.AreEqual((float)NpcTactic.Flank, Cell(n, 0, nc, TableColumns.NpcTactic));
            Assert.AreEqual(7u, BitConverter.ToUInt32(frame.NpcTable.NpcIds, 0));
        }

        [Test]
        public void ClearStartsAnEmptyFrameWithoutNpcs()
        {
            var t = new FrameTables();
            t.AddPlayer("p", 0f, 0f, 0f, 0f, 0f, 0f, 1f, 1f);
            t.AddNpc(1, 0f, 0f, 0f, 1f, NpcState.Idle, NpcTactic.Unspecified);
            t.Clear();
            t.AddPlayer("q", 0f, 0f, 0f, 0f, 0f, 0f, 1f, 1f);
            var frame = new Frame();
            t.WriteTo(frame);
            Assert.AreEqual(1, t.PlayerCount);
            Assert.AreEqual(0, t.NpcCount);
            Assert.IsNull(frame.NpcTable);
        }

        [Test]
        public void AFrameSurvivesTheWire()
        {
            var t = new FrameTables();
            t.AddPlayer("p", 1f, 2f, 3f, 0f, 0f, 0f, 10f, 20f);
            var frame = new Frame { Sequence = 42, GameTime = 1.5 };
            t.WriteTo(frame);
            var back = SessionRequest.Parse(new SessionRequest { Frame = frame }.ToByteArray()).Frame;
            Assert.AreEqual(42ul, back.Sequence);
            Assert.AreEqual(1.5, back.GameTime);
            Assert.AreEqual(frame.PlayerTable.Values, back.PlayerTable.Values);
        }
    }
}
