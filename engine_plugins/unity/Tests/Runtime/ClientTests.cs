// Runtime tests (Unity Test Runner, Play Mode / Edit Mode): the session client's state machine over a
// scripted transport, as it runs on every platform (WebGL included: there the transport is the jslib's
// browser WebSocket). Also run under Mono in CI (tests/test_unity_tests.py).
using System;
using System.Collections.Generic;
using MetaBrain.Core;
using MetaBrain.Proto;
using NUnit.Framework;

namespace MetaBrain.Tests
{
    /// <summary>A transport the test drives: its state, what it lets through, what has "arrived".</summary>
    sealed class ScriptedTransport : IClientTransport
    {
        public TransportState Now = TransportState.Connecting;
        public bool Room = true;
        public string Reason = "";
        public readonly List<SessionRequest> Sent = new List<SessionRequest>();
        public readonly Queue<byte[]> Arriving = new Queue<byte[]>();
        public bool Disposed;

        public TransportState State { get { return Now; } }
        public string CloseReason { get { return Reason; } }
        public bool CanSend { get { return Now == TransportState.Open && Room; } }
        public void Send(byte[] message) { if (Now == TransportState.Open) Sent.Add(SessionRequest.Parse(message)); }
        public bool TryReceive(out byte[] message)
        {
            message = Arriving.Count > 0 ? Arriving.Dequeue() : null;
            return message != null;
        }
        public void Close() { Now = TransportState.Closed; Reason = "closed by the client"; }
        public void Dispose() { Disposed = true; }

        public void Arrive(SessionResponse response) { Arriving.Enqueue(response.ToByteArray()); }
    }

    [TestFixture]
    public class ClientTests
    {
        readonly List<ScriptedTransport> _made = new List<ScriptedTransport>();
        readonly List<string> _urls = new List<string>();

        MetaBrainClient Client(int maxQueued = 4)
        {
            var opt = new ClientOptions
            {
                Url = "ws://sidecar.test/metabrain/v1/session",
                Token = "t0k",
                MaxQueuedFrames = maxQueued,
                ReconnectMin = TimeSpan.Zero,
                ReconnectMax = TimeSpan.Zero,
                Transport = (url, token, timeout) =>
                {
                    _urls.Add(url + " " + token);
                    var t = new ScriptedTransport();
                    _made.Add(t);
                    return t;
                },
            };
            opt.Knobs.Add(new KnobDefinition("enemy_accuracy", 0f, 1f, 0.5f, maxChangePerSecond: 0.05f));
            return new MetaBrainClient(opt);
        }

        static SessionResponse Welcome(string id, string token, bool resumed = false)
        {
            return new SessionResponse { Welcome = new Welcome { SessionId = id, ResumeToken = token, Resumed = resumed } };
        }

        static SessionResponse Guidance(ulong sequence, float accuracy)
        {
            var g = new Guidance { Sequence = sequence };
            g.Knobs.Add(new KnobValue { Name = "enemy_accuracy", Value = accuracy });
            return new SessionResponse { Guidance = g };
        }

        /// <summary>A client welcomed by the sidecar; maxEvents: the events-per-frame limit its welcome
        /// states (0: none).</summary>
        MetaBrainClient Opened(int maxQueued = 4, uint maxEvents = 0)
        {
            var c = Client(maxQueued);
            c.Start();
            _made[0].Now = TransportState.Open;
            var welcome = Welcome("s-1", "resume-1");
            if (maxEvents > 0) welcome.Welcome.Limits = new Limits { MaxEventsPerFrame = maxEvents };
            _made[0].Arrive(welcome);
            c.Poll();
            return c;
        }

        [Test]
        public void SaysHelloOnceOpenAndOpensOnTheWelcome()
        {
            var c = Client();
            string connected = null;
            c.Connected += (id, resumed) => connected = id;
            c.Start();
            Assert.AreEqual(1, _made.Count);
            Assert.AreEqual("ws://sidecar.test/metabrain/v1/session t0k", _urls[0]);
            c.Poll();
            Assert.AreEqual(0, _made[0].Sent.Count, "nothing is sent before the socket opens");
            Assert.AreEqual(ClientState.Connecting, c.State);
            _made[0].Now = TransportState.Open;
            c.Poll();
            Assert.AreEqual(1, _made[0].Sent.Count);
            Assert.IsNotNull(_made[0].Sent[0].Hello);
            Assert.AreEqual("enemy_accuracy", _made[0].Sent[0].Hello.Knobs[0].Name);
            Assert.IsFalse(c.IsOpen, "open only once welcomed");
            _made[0].Arrive(Welcome("s-1", "resume-1"));
            c.Poll();
            Assert.IsTrue(c.IsOpen);
            Assert.AreEqual("s-1", connected);
            c.Poll();
            Assert.AreEqual(1, _made[0].Sent.Count, "one hello");
        }

        [Test]
        public void FramesWaitForRoomAndTheOldestGoPastTheQueue()
        {
            var c = Opened(maxQueued: 4);
            var t = _made[0];
            t.Room = false;
            for (int i = 0; i < 6; i++) Assert.IsTrue(c.TrySend(new Frame()));
            Assert.AreEqual(1, t.Sent.Count, "only the hello went out");
            Assert.AreEqual(2L, c.Stats.FramesDropped);
            t.Room = true;
            c.Poll();
            Assert.AreEqual(5, t.Sent.Count);
            Assert.AreEqual(3UL, t.Sent[1].Frame.Sequence, "frames 1 and 2 were dropped");
            Assert.AreEqual(6UL, t.Sent[4].Frame.Sequence);
            Assert.AreEqual(0.5f, t.Sent[1].Frame.KnobValues[0], "the knob's current value travels with the frame");
            c.TrySend(new Frame());
            Assert.AreEqual(6, t.Sent.Count, "with room, a frame goes out at once");
        }

        static Frame WithEvents(params EventType[] types)
        {
            var f = new Frame();
            foreach (var type in types) f.Events.Add(new GameEvent { Type = type, PlayerId = "p1" });
            return f;
        }

        static int Count(List<SessionRequest> sent, EventType type)
        {
            int n = 0;
            foreach (var r in sent) if (r.Frame != null) foreach (var e in r.Frame.Events) if (e.Type == type) n++;
            return n;
        }

        [Test]
        public void ADroppedFramesEventsAndPauseNewsTravelOnInTheNextFrame()
        {
            var c = Opened(maxQueued: 2);
            var t = _made[0];
            t.Room = false;
            c.SetPaused(true);
            Assert.IsTrue(c.TrySend(WithEvents(EventType.Death)));  // carries the pause news and a death
            Assert.IsTrue(c.TrySend(WithEvents(EventType.Kill)));
            Assert.IsTrue(c.TrySend(new Frame()));  // the first frame gives way
            Assert.IsTrue(c.TrySend(WithEvents(EventType.Kill)));  // and the second
            Assert.AreEqual(2L, c.Stats.FramesDropped);
            Assert.IsFalse(c.PauseNewsPending, "the news is in a queued frame");
            t.Room = true;
            c.Poll();
            Assert.AreEqual(3, t.Sent.Count, "the hello and the two newest frames");
            Assert.AreEqual(1, Count(t.Sent, EventType.Pause), "the pause news reached the sidecar once");
            Assert.AreEqual(1, Count(t.Sent, EventType.Death));
            Assert.AreEqual(2, Count(t.Sent, EventType.Kill));
            Assert.AreEqual(EventType.Death, t.Sent[1].Frame.Events[0].Type, "the dropped frame's events go first");
            Assert.AreEqual(EventType.Pause, t.Sent[1].Frame.Events[1].Type);
        }

        [Test]
        public void CarriedEventsStayWithinTheSidecarsLimitAndKeepThePauseNews()
        {
            var c = Opened(maxQueued: 1, maxEvents: 3);
            var t = _made[0];
            t.Room = false;
            c.SetPaused(true);
            c.TrySend(WithEvents(EventType.Death, EventType.Death));  // pause + 2 deaths
            c.TrySend(WithEvents(EventType.Kill, EventType.Kill));  // 5 events: over the limit of 3
            c.SetPaused(false);
            c.TrySend(WithEvents(EventType.Kill));  // resume + kill, after the 3 carried
            t.Room = true;
            c.Poll();
            Assert.AreEqual(2, t.Sent.Count);
            var events = t.Sent[1].Frame.Events;
            Assert.AreEqual(3, events.Count, "never more events than the sidecar accepts");
            Assert.AreEqual(EventType.Pause, events[0].Type, "the pause news is kept");
            Assert.AreEqual(EventType.Kill, events[1].Type, "then the newest of the rest, in order");
            Assert.AreEqual(EventType.Resume, events[2].Type, "and the resume");
        }

        [Test]
        public void PastALimitOfOneOnlyTheNewestPauseNewsGoes()
        {
            var c = Opened(maxQueued: 1, maxEvents: 1);
            var t = _made[0];
            t.Room = false;
            c.SetPaused(true);
            c.TrySend(new Frame());  // the pause news
            c.SetPaused(false);
            c.TrySend(new Frame());  // the resume news, and the pause carried: two for a limit of one
            t.Room = true;
            c.Poll();
            var events = t.Sent[1].Frame.Events;
            Assert.AreEqual(1, events.Count);
            Assert.AreEqual(EventType.Resume, events[0].Type, "the newest news stands");
        }

        [Test]
        public void TheNewestGuidanceWins()
        {
            var c = Opened();
            float seen = -1f;
            c.DifficultyChanged += (name, value) => seen = value;
            _made[0].Arrive(Guidance(2, 0.7f));
            _made[0].Arrive(Guidance(1, 0.2f));
            c.Poll();
            Assert.AreEqual(0.7f, c.Knob("enemy_accuracy"));
            Assert.AreEqual(0.7f, seen);
            Assert.AreEqual(1L, c.Stats.StaleGuidance);
            Assert.AreEqual(2UL, c.LastGuidance.Sequence);
        }

        [Test]
        public void AClosedTransportReconnectsAndResumes()
        {
            var c = Opened();
            string lost = null;
            c.Disconnected += reason => lost = reason;
            _made[0].Arrive(Guidance(1, 0.9f));
            _made[0].Now = TransportState.Closed;
            _made[0].Reason = "connection lost (1006)";
            c.Poll();
            // What arrived before the close is still applied; then the knob eases toward its default.
            Assert.AreEqual(0.9, c.Knob("enemy_accuracy"), 0.01, "applied, then eased at 0.05 a second");
            Assert.AreEqual("connection lost (1006)", lost);
            Assert.IsTrue(_made[0].Disposed);
            Assert.IsFalse(c.TrySend(new Frame()), "frames are dropped while the sidecar is away");
            c.Poll();
            Assert.AreEqual(2, _made.Count, "a new connection after the backoff");
            _made[1].Now = TransportState.Open;
            c.Poll();
            Assert.AreEqual("resume-1", _made[1].Sent[0].Hello.ResumeToken);
            _made[1].Arrive(Welcome("s-1", "resume-2", resumed: true));
            c.Poll();
            Assert.IsTrue(c.IsOpen);
            Assert.AreEqual(1L, c.Stats.Resumes);
            c.Stop();
            Assert.IsTrue(_made[1].Disposed);
            Assert.AreEqual(ClientState.Stopped, c.State);
        }
    }
}
