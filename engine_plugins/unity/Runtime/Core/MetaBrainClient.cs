// The Unity-free session client: hello/resume, reconnects with backoff, a bounded non-blocking send queue
// and a newest-guidance mailbox, all driven from the game thread by TrySend and Poll over a transport
// (Transport/: System.Net.WebSockets, or the browser's WebSocket in a WebGL player). No UnityEngine here:
// this file compiles with Mono's mcs and is tested against the real sidecar outside Unity.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using MetaBrain.Proto;

namespace MetaBrain.Core
{
    /// <summary>One difficulty knob the director may move.</summary>
    [Serializable]
    public sealed class KnobDefinition
    {
        public string Name = "";
        public float Min;
        public float Max = 1f;
        public float Default = 0.5f;
        /// <summary>Largest change per second of game time; 0 means unlimited.</summary>
        public float MaxChangePerSecond;
        public bool HigherIsEasier;

        public KnobDefinition() { }

        public KnobDefinition(string name, float min, float max, float def, float maxChangePerSecond = 0f)
        {
            Name = name; Min = min; Max = max; Default = def; MaxChangePerSecond = maxChangePerSecond;
        }
    }

    public sealed class ClientOptions
    {
        public string Url = "ws://127.0.0.1:50052/metabrain/v1/session";
        public string Token = "";
        public string GameId = "my.game";
        public string GameBuild = "";
        /// <summary>"static", "rubber_band", "intensity", "predictive", or empty for the sidecar's default.</summary>
        public string Policy = "";
        public Dictionary<string, string> PolicyParams = new Dictionary<string, string>();
        public List<KnobDefinition> Knobs = new List<KnobDefinition>();
        public List<NpcTactic> NpcTactics = new List<NpcTactic>();
        public float TickRateHz = 10f;
        public bool RequestNpcHints = true;
        public bool RequestInsight = true;
        public bool RecordingConsent;
        public TimeSpan ReconnectMin = TimeSpan.FromMilliseconds(250);
        public TimeSpan ReconnectMax = TimeSpan.FromSeconds(5);
        public TimeSpan ConnectTimeout = TimeSpan.FromSeconds(3);
        /// <summary>Frames waiting to be sent; when full the oldest is dropped (never queue without bound).</summary>
        public int MaxQueuedFrames = 4;
        /// <summary>How to reach the sidecar; null: the platform's WebSocket (ClientTransports.Connect).</summary>
        public TransportFactory Transport;
    }

    public enum ClientState { Stopped, Connecting, Open, Backoff }

    public sealed class ClientStats
    {
        public long FramesQueued, FramesSent, FramesDropped, Guidance, StaleGuidance, Superseded, Errors, Connects, Resumes;
    }

    /// <summary>
    /// Streams frames to a metabrain sidecar and keeps the newest guidance. Call <see cref="TrySend"/> and
    /// <see cref="Poll"/> from the game thread; neither ever blocks on the network. The connection makes
    /// progress in them (and, on platforms with threads, in its transport's background task).
    /// </summary>
    public sealed class MetaBrainClient : IDisposable
    {
        readonly ClientOptions _opt;
        readonly Queue<Frame> _queue = new Queue<Frame>();  // serialized when sent (a dropped one's events move on)
        readonly Dictionary<string, float> _knobs = new Dictionary<string, float>();
        readonly Stopwatch _clock = Stopwatch.StartNew();
        readonly List<Action> _events = new List<Action>();
        IClientTransport _transport;
        bool _running, _helloSent, _wasOpen;
        double _reconnectAt;
        TimeSpan _backoff;
        Guidance _mailbox;
        ulong _sequence;
        ulong _lastApplied;
        string _resumeToken = "";
        byte[] _goodbye;  // EndSession's goodbye, sent once the frames queued before it are
        bool _ending;  // EndSession was called: when the connection closes, stop instead of reconnecting
        bool _acknowledged;  // the sidecar answered EndSession's goodbye: the session is over, close now
        ClientState _state = ClientState.Stopped;
        double _lastPoll;
        bool _paused;
        EventType _pauseNews;  // Pause or Resume, for the next frame to carry (Unspecified: nothing to say)
        int _maxEvents = DefaultMaxEventsPerFrame;  // the sidecar's limit, from its welcome
        const int DefaultMaxEventsPerFrame = 256;

        public readonly ClientStats Stats = new ClientStats();
        public string SessionId { get; private set; }
        public string ModelVersion { get; private set; }
        public ClientState State { get { return _state; } }
        public bool IsOpen { get { return _state == ClientState.Open; } }
        public Guidance LastGuidance { get; private set; }

        /// <summary>Raised from Poll() on the game thread.</summary>
        public event Action<string, bool> Connected;
        public event Action<string> Disconnected;
        public event Action<string, float> DifficultyChanged;
        public event Action<NpcHint> NpcHintReceived;
        public event Action<PlayerInsight> InsightReceived;
        public event Action<Guidance> GuidanceReceived;

        public MetaBrainClient(ClientOptions options)
        {
            _opt = options;
            foreach (var k in _opt.Knobs) _knobs[k.Name] = k.Default;
        }

        /// <summary>Start connecting (and reconnecting, with backoff, whenever the connection ends).</summary>
        public void Start()
        {
            if (_running) return;
            _running = true;
            _backoff = _opt.ReconnectMin;
            _reconnectAt = 0;
            Pump();
        }

        public void Stop()
        {
            if (!_running) return;
            _running = false;
            if (_transport != null) { _transport.Dispose(); _transport = null; }
            _queue.Clear();
            _goodbye = null;
            _ending = false;
            _acknowledged = false;
            _wasOpen = false;
            _state = ClientState.Stopped;
        }

        /// <summary>End the session cleanly: a goodbye after the frames already queued; the sidecar answers
        /// them, acknowledges and closes, and the client stops (no reconnect; <see cref="Disconnected"/> is
        /// raised). cutShort: the game ends the session for its own reasons (a time limit, the match over),
        /// not because the player chose to stop, so the sidecar's portfolio does not count it as the player
        /// quitting. Without a goodbye (<see cref="Stop"/>) the session counts as the player leaving once its
        /// resume window closes. While not connected it just stops.</summary>
        public void EndSession(bool cutShort = false)
        {
            if (!_running || _ending) return;
            if (_state != ClientState.Open || _transport == null) { Stop(); return; }
            _ending = true;
            var bye = new Goodbye { Reason = cutShort ? "session cut short by the game" : "game stopped", CutShort = cutShort };
            _goodbye = new SessionRequest { Goodbye = bye }.ToByteArray();
            Flush();
        }

        /// <summary>For the moment the app quits (MetaBrainDirector calls it from OnApplicationQuit):
        /// <see cref="EndSession"/>, then poll on this thread until the sidecar has acknowledged, at most
        /// timeoutMs, so the goodbye is out before the process goes. The sidecar then counts the player's
        /// quit at once (without it: once the session's resume window closes). Returns whether the
        /// acknowledgement came in time.</summary>
        public bool EndSessionAndWait(bool cutShort, int timeoutMs)
        {
            if (!_running) return false;
#if UNITY_WEBGL && !UNITY_EDITOR
            EndSession(cutShort);  // the browser delivers the answer only once this frame returns: no waiting
            return false;
#else
            string reason = null;
            Action<string> seen = r => reason = r;
            Disconnected += seen;
            try
            {
                EndSession(cutShort);
                var until = DateTime.UtcNow.AddMilliseconds(timeoutMs);
                while (_state != ClientState.Stopped && DateTime.UtcNow < until)
                {
                    Poll();
                    Thread.Sleep(2);
                }
                Poll();  // raises Disconnected, if it ended in the last pass
                return reason == GoodbyeAcknowledged;
            }
            finally { Disconnected -= seen; }
#endif
        }

        /// <summary>The reason <see cref="Disconnected"/> gives when the sidecar acknowledged EndSession.</summary>
        public const string GoodbyeAcknowledged = "goodbye acknowledged";

        public void Dispose() { Stop(); }

        /// <summary>The knob's current value: the director's while connected; while the sidecar is away it
        /// returns to the designer's default at the knob's MaxChangePerSecond.</summary>
        public float Knob(string name)
        {
            float v;
            return _knobs.TryGetValue(name, out v) ? v : 0f;
        }

        public double GameTime { get { return _clock.Elapsed.TotalSeconds; } }

        /// <summary>The game paused (true) or resumed (false). The next frame tells the sidecar
        /// (EVENT_TYPE_PAUSE / RESUME), which then keeps the session through a silence of up to its
        /// Limits.MaxPauseS (30 minutes by default) instead of closing it after IdleTimeoutS without frames
        /// and counting the player as gone. Send a frame right after pausing (MetaBrainDirector does): no
        /// frame, no news.</summary>
        public void SetPaused(bool paused)
        {
            if (paused == _paused) return;
            _paused = paused;
            _pauseNews = paused ? EventType.Pause : EventType.Resume;
        }

        public bool IsPaused { get { return _paused; } }

        /// <summary>The sidecar has not yet been sent the latest pause or resume (the frame that carried it was
        /// dropped, or a new connection opened while paused): send a frame.</summary>
        public bool PauseNewsPending { get { return _pauseNews != EventType.Unspecified; } }

        /// <summary>Queue a frame (sequence, game time and knob values filled in). Never blocks; returns false if
        /// the frame was dropped because the sidecar is away. Past MaxQueuedFrames unsent, the oldest goes, and its
        /// events (deaths, kills, a pause) travel on in this frame: the sidecar sums a frame's events as it does
        /// a superseded frame's, so a slow link costs states, not the counts the model reads or the pause news.</summary>
        public bool TrySend(Frame frame)
        {
            if (_state != ClientState.Open || _ending)
            {
                Stats.FramesDropped++;
                return false;
            }
            frame.Sequence = ++_sequence;
            if (frame.GameTime == 0) frame.GameTime = GameTime;
            if (_pauseNews != EventType.Unspecified)
            {
                frame.Events.Add(new GameEvent { Type = _pauseNews, GameTime = frame.GameTime });
                _pauseNews = EventType.Unspecified;
            }
            if (frame.Knobs.Count == 0 && frame.KnobValues.Count == 0)  // the compact form, in the hello's order
                foreach (var k in _opt.Knobs) frame.KnobValues.Add(Knob(k.Name));
            if (_queue.Count >= _opt.MaxQueuedFrames)
            {
                CarryEvents(_queue.Dequeue(), frame, _maxEvents);
                Stats.FramesDropped++;
            }
            _queue.Enqueue(frame);
            Stats.FramesQueued++;
            Flush();
            return true;
        }

        /// <summary>A dropped frame's events go first in the frame that takes its place, within the sidecar's
        /// events-per-frame limit: past it, pause and resume news are kept, then the newest of the rest.</summary>
        static void CarryEvents(Frame dropped, Frame into, int limit)
        {
            if (dropped.Events.Count == 0) return;
            var merged = new List<GameEvent>(dropped.Events);
            merged.AddRange(into.Events);
            if (merged.Count > limit)
            {
                int news = 0;
                foreach (var e in merged) if (IsPauseNews(e)) news++;
                int others = Math.Max(limit - news, 0);
                var kept = new List<GameEvent>(limit);
                int skip = merged.Count - news - others;  // the oldest of the rest give way
                int skipNews = Math.Max(news - limit, 0);  // and, past the limit, the oldest news too
                foreach (var e in merged)
                {
                    if (IsPauseNews(e)) { if (skipNews > 0) skipNews--; else kept.Add(e); }
                    else if (skip > 0) skip--;
                    else kept.Add(e);
                }
                merged = kept;
            }
            into.Events.Clear();
            into.Events.AddRange(merged);
        }

        static bool IsPauseNews(GameEvent e) { return e.Type == EventType.Pause || e.Type == EventType.Resume; }

        /// <summary>Game thread: move the connection on, apply the newest guidance that has arrived and raise
        /// the events.</summary>
        public void Poll()
        {
            Pump();
            List<Action> pending = null;
            if (_events.Count > 0) { pending = new List<Action>(_events); _events.Clear(); }
            if (pending != null) foreach (var a in pending) a();
            var g = _mailbox;
            _mailbox = null;
            if (g != null && g.Sequence > _lastApplied)
            {
                _lastApplied = g.Sequence;
                LastGuidance = g;
                foreach (var kv in g.Knobs) SetKnob(kv.Name, kv.Value);
                if (NpcHintReceived != null) foreach (var h in g.NpcHints) NpcHintReceived(h);
                if (InsightReceived != null) foreach (var i in g.Insights) InsightReceived(i);
                if (GuidanceReceived != null) GuidanceReceived(g);
            }
            double now = GameTime;
            if (_state != ClientState.Open) EaseToDefaults(now - _lastPoll);
            _lastPoll = now;
        }

        void SetKnob(string name, float value)
        {
            float old;
            if (_knobs.TryGetValue(name, out old) && old == value) return;
            _knobs[name] = value;
            if (DifficultyChanged != null) DifficultyChanged(name, value);
        }

        /// <summary>While the sidecar is away: each knob moves toward its default no faster than its
        /// MaxChangePerSecond (0: at once), so losing the sidecar never jumps the difficulty.</summary>
        void EaseToDefaults(double seconds)
        {
            foreach (var k in _opt.Knobs)
            {
                float now = Knob(k.Name);
                float gap = k.Default - now;
                float step = k.MaxChangePerSecond > 0f ? (float)(k.MaxChangePerSecond * Math.Max(seconds, 0.0)) : Math.Abs(gap);
                SetKnob(k.Name, Math.Abs(gap) <= step ? k.Default : now + Math.Sign(gap) * step);
            }
        }

        void Raise(Action a) { _events.Add(a); }

        /// <summary>The connection's state machine: connect when the backoff allows, say hello once open,
        /// take what arrived, send what waits, and notice the end.</summary>
        void Pump()
        {
            if (!_running) return;
            if (_transport == null)
            {
                if (GameTime < _reconnectAt) return;
                _state = ClientState.Connecting;
                Stats.Connects++;
                _helloSent = false;
                _transport = (_opt.Transport ?? ClientTransports.Connect)(_opt.Url, _opt.Token, _opt.ConnectTimeout);
            }
            var t = _transport;
            var state = t.State;
            if (state == TransportState.Open && !_helloSent)
            {
                t.Send(new SessionRequest { Hello = BuildHello() }.ToByteArray());
                _helloSent = true;
            }
            byte[] message;
            while (t.TryReceive(out message)) Receive(message);
            if (state == TransportState.Closed || _acknowledged) Ended(t);
            else Flush();
        }

        void Flush()
        {
            var t = _transport;
            if (t == null || _state != ClientState.Open) return;
            while (_queue.Count > 0 && t.CanSend)
            {
                t.Send(new SessionRequest { Frame = _queue.Dequeue() }.ToByteArray());
                Stats.FramesSent++;
            }
            if (_goodbye != null && _queue.Count == 0 && t.CanSend)
            {
                t.Send(_goodbye);
                _goodbye = null;
            }
        }

        void Ended(IClientTransport t)
        {
            string reason = _acknowledged ? GoodbyeAcknowledged : t.CloseReason;
            t.Dispose();
            _transport = null;
            _queue.Clear();
            if (_ending)  // the goodbye was acknowledged (or the connection ended on the way): done
            {
                Stop();
                Raise(() => { if (Disconnected != null) Disconnected(reason); });
                return;
            }
            if (_wasOpen)
            {
                _wasOpen = false;
                _backoff = _opt.ReconnectMin;
                Raise(() => { if (Disconnected != null) Disconnected(reason); });
            }
            else
            {
                _backoff = TimeSpan.FromMilliseconds(Math.Min(_backoff.TotalMilliseconds * 2, _opt.ReconnectMax.TotalMilliseconds));
            }
            _state = ClientState.Backoff;
            _reconnectAt = GameTime + _backoff.TotalSeconds;
        }

        Hello BuildHello()
        {
            var h = new Hello { ProtocolVersion = 1, GameId = _opt.GameId, GameBuild = _opt.GameBuild, TickRateHz = _opt.TickRateHz,
                RecordingConsent = _opt.RecordingConsent, ResumeToken = _resumeToken, Policy = _opt.Policy };
            foreach (var k in _opt.Knobs)
                h.Knobs.Add(new KnobSpec { Name = k.Name, MinValue = k.Min, MaxValue = k.Max, DefaultValue = k.Default,
                    MaxChangePerSecond = k.MaxChangePerSecond, HigherIsEasier = k.HigherIsEasier });
            h.NpcTactics.AddRange(_opt.NpcTactics);
            if (_opt.RequestNpcHints) h.Capabilities.Add(Capability.NpcHints);
            if (_opt.RequestInsight) h.Capabilities.Add(Capability.Insight);
            foreach (var kv in _opt.PolicyParams) h.PolicyParams[kv.Key] = kv.Value;
            return h;
        }

        void Receive(byte[] bytes)
        {
            SessionResponse resp;
            try { resp = SessionResponse.Parse(bytes); }
            catch (ProtoException) { Stats.Errors++; return; }
            if (resp.Welcome != null)
            {
                var w = resp.Welcome;
                SessionId = w.SessionId;
                ModelVersion = w.ModelVersion;
                _resumeToken = w.ResumeToken;
                _maxEvents = w.Limits != null && w.Limits.MaxEventsPerFrame > 0 ? (int)w.Limits.MaxEventsPerFrame : DefaultMaxEventsPerFrame;
                _wasOpen = true;
                _state = ClientState.Open;
                if (w.Resumed) Stats.Resumes++;
                if (_paused) _pauseNews = EventType.Pause;  // a new or reset session has not heard it yet
                var id = w.SessionId;
                var resumed = w.Resumed;
                Raise(() => { if (Connected != null) Connected(id, resumed); });
            }
            else if (resp.Guidance != null)
            {
                Stats.Guidance++;
                var g = resp.Guidance;
                if (_mailbox != null && _mailbox.Sequence >= g.Sequence) { Stats.StaleGuidance++; return; }
                _mailbox = g;
            }
            else if (resp.Superseded != null) Stats.Superseded++;
            else if (resp.Goodbye != null && _ending) _acknowledged = true;  // closed by Pump, not waited for
            else if (resp.Error != null)
            {
                Stats.Errors++;
                if (resp.Error.Code == ErrorCode.ResumeRejected) _resumeToken = "";
            }
        }
    }
}
