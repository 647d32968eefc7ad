// Editor tests (Unity Test Runner, Edit Mode): the generated codec reads what the protobuf spec says a
// reader must accept. Also run under Mono in CI (tests/test_unity_tests.py). The same cases, and 3,000
// messages from protobufjs, are checked byte for byte against Python's protobuf in tests/test_csharp_codec.py.
using System;
using MetaBrain.Proto;
using NUnit.Framework;

namespace MetaBrain.Tests
{
    [TestFixture]
    public class CodecConformanceTests
    {
        static byte[] Unhex(string s)
        {
            var b = new byte[s.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(s.Substring(2 * i, 2), 16);
            return b;
        }

        static string Hex(byte[] b) { return BitConverter.ToString(b).Replace("-", "").ToLowerInvariant(); }

        [Test]
        public void ASubMessageSeenTwiceIsMerged()
        {
            // hello{game_id "g", target{low 0.2}} then hello{target{high 0.4}, npc_tactics [1]}
            var r = SessionRequest.Parse(Unhex("0a0a1201675a050dcdcc4c3e0a0a2a01015a0515cdcccc3e"));
            Assert.AreEqual("g", r.Hello.GameId);
            Assert.AreEqual(0.2f, r.Hello.Target.PFailLow, 1e-6);
            Assert.AreEqual(0.4f, r.Hello.Target.PFailHigh, 1e-6);
        }

        [Test]
        public void UnknownFieldsAndGroupsAreKeptAndWrittenBack()
        {
            // A Vec3 with an unknown varint (field 99), a group (101) holding a nested group, and field 1 as a varint.
            string unknown = "9806808080808020" + "ab060805b30612017ab406ac06" + "0807";
            var bytes = Unhex("0d0000c03f" + unknown);
            var v = Vec3.Parse(bytes);
            Assert.AreEqual(1.5f, v.X);
            Assert.AreEqual(Hex(bytes), Hex(v.ToByteArray()));
        }

        [Test]
        public void NulInsideAStringIsKept()
        {
            var v = KnobValue.Parse(Unhex("0a03610062"));
            Assert.AreEqual("a\0b", v.Name);
        }

        [Test]
        public void TruncatedAndMismatchedGroupsAreRefused()
        {
            Assert.Throws<ProtoException>(() => Frame.Parse(new byte[] { 0x0a }));
            Assert.Throws<ProtoException>(() => Vec3.Parse(Unhex("ab06" + "b406")));  // group 101 ended by 102
        }
    }
}
