// The Unity-free session client: WebSocket transport, hello/resume, a non-blocking send queue, a
// background receive loop and a newest-guidance mailbox read on the game thread. No UnityEngine here:
// this file compiles with Mono's mcs and is tested against the real sidecar outside Unity.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Threading;
using System.Threading.Tasks;
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
    }

    public enum ClientState { Stopped, Connecting, Open, Backoff }

    public sealed class ClientStats
    {
        public long FramesQueued, FramesSent, FramesDropped, Guidance, StaleGuidance, Superseded, Errors, Connects, Resumes;
    }

    /// <summary>
    /// Streams frames to a metabrain sidecar and keeps the newest guidance. Call <see cref="TrySend"/> and
    /// <see cref="Poll"/> from the game thread; neither ever blocks on the network.
    /// </summary>
    public sealed class MetaBrainClient : IDisposable
    {
        readonly ClientOptions _opt;
        readonly object _queueLock = new object();
        readonly Queue<byte[]> _queue = new Queue<byte[]>();
        readonly SemaphoreSlim _queued = new SemaphoreSlim(0);
        readonly Dictionary<string, float> _knobs = new Dictionary<string, float>();
        readonly Stopwatch _clock = Stopwatch.StartNew();
        readonly List<Action> _events = new List<Action>();
        CancellationTokenSource _cts;
        Task _loop;
        Guidance _mailbox;
        ulong _sequence;
        ulong _lastApplied;
        string _resumeToken = "";
        volatile ClientState _state = ClientState.Stopped;
        volatile bool _wasOpen;
        double _lastPoll;

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

        public void Start()
        {
            if (_loop != null) return;
            _cts = new CancellationTokenSource();
            _loop = Task.Run(() => RunAsync(_cts.Token));
        }

        public void Stop()
        {
            if (_cts == null) return;
            _cts.Cancel();
            try { _loop.Wait(2000); } catch (AggregateException) { }
            _loop = null;
            _cts = null;
            _state = ClientState.Stopped;
        }

        public void Dispose() { Stop(); }

        /// <summary>The knob's current value: the director's while connected; while the sidecar is away it
        /// returns to the designer's default at the knob's MaxChangePerSecond.</summary>
        public float Knob(string name)
        {
            float v;
            return _knobs.TryGetValue(name, out v) ? v : 0f;
        }

        public double GameTime { get { return _clock.Elapsed.TotalSeconds; } }

        /// <summary>Queue a frame (sequence, game time and knob values filled in). Never blocks; returns false if
        /// the frame was dropped because the sidecar is away.</summary>
        public bool TrySend(Frame frame)
        {
            if (_state != ClientState.Open)
            {
                Interlocked.Increment(ref Stats.FramesDropped);
                return false;
            }
            frame.Sequence = ++_sequence;
            if (frame.GameTime == 0) frame.GameTime = GameTime;
            if (frame.Knobs.Count == 0 && frame.KnobValues.Count == 0)  // the compact form, in the hello's order
                foreach (var k in _opt.Knobs) frame.KnobValues.Add(Knob(k.Name));
            var bytes = new SessionRequest { Frame = frame }.ToByteArray();
            bool dropped = false;
            lock (_queueLock)
            {
                if (_queue.Count >= _opt.MaxQueuedFrames) { _queue.Dequeue(); dropped = true; }
                _queue.Enqueue(bytes);
            }
            if (dropped) Interlocked.Increment(ref Stats.FramesDropped); else _queued.Release();
            Interlocked.Increment(ref Stats.FramesQueued);
            return true;
        }

        /// <summary>Game thread: apply the newest guidance that has arrived and raise the events.</summary>
        public void Poll()
        {
            List<Action> pending = null;
            lock (_events)
            {
                if (_events.Count > 0) { pending = new List<Action>(_events); _events.Clear(); }
            }
            if (pending != null) foreach (var a in pending) a();
            var g = Interlocked.Exchange(ref _mailbox, null);
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

        void Raise(Action a) { lock (_events) _events.Add(a); }

        async Task RunAsync(CancellationToken stop)
        {
            var backoff = _opt.ReconnectMin;
            while (!stop.IsCancellationRequested)
            {
                _state = ClientState.Connecting;
                Interlocked.Increment(ref Stats.Connects);
                string reason;
                using (var ws = new ClientWebSocket())
                {
                    if (!string.IsNullOrEmpty(_opt.Token)) ws.Options.SetRequestHeader("Authorization", "Bearer " + _opt.Token);
                    reason = await SessionAsync(ws, stop).ConfigureAwait(false);
                }
                if (_wasOpen)
                {
                    _wasOpen = false;
                    var r = reason;
                    Raise(() => { if (Disconnected != null) Disconnected(r); });
                }
                else
                {
                    backoff = TimeSpan.FromMilliseconds(Math.Min(backoff.TotalMilliseconds * 2, _opt.ReconnectMax.TotalMilliseconds));
                }
                _state = ClientState.Backoff;
                lock (_queueLock) _queue.Clear();
                try { await Task.Delay(backoff, stop).ConfigureAwait(false); } catch (TaskCanceledException) { }
                if (_wasOpen) backoff = _opt.ReconnectMin;
            }
        }

        async Task<string> SessionAsync(ClientWebSocket ws, CancellationToken stop)
        {
            try
            {
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop))
                {
                    timeout.CancelAfter(_opt.ConnectTimeout);
                    await ws.ConnectAsync(new Uri(_opt.Url), timeout.Token).ConfigureAwait(false);
                }
                var hello = new SessionRequest { Hello = BuildHello() }.ToByteArray();
                await ws.SendAsync(new ArraySegment<byte>(hello), WebSocketMessageType.Binary, true, stop).ConfigureAwait(false);
                var sender = SendLoopAsync(ws, stop);
                var reason = await ReceiveLoopAsync(ws, stop).ConfigureAwait(false);
                _state = ClientState.Backoff;
                _queued.Release();  // wake the sender so it sees the socket closed
                try { await sender.ConfigureAwait(false); } catch (Exception) { }
                return reason;
            }
            catch (OperationCanceledException)
            {
                return stop.IsCancellationRequested ? "stopped" : "no WebSocket handshake from " + _opt.Url + " within " + _opt.ConnectTimeout.TotalSeconds + " s";
            }
            catch (Exception e)
            {
                return "connection to " + _opt.Url + " failed: " + e.Message;
            }
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

        async Task SendLoopAsync(ClientWebSocket ws, CancellationToken stop)
        {
            while (!stop.IsCancellationRequested && ws.State == WebSocketState.Open)
            {
                await _queued.WaitAsync(stop).ConfigureAwait(false);
                byte[] next = null;
                lock (_queueLock) if (_queue.Count > 0) next = _queue.Dequeue();
                if (next == null || ws.State != WebSocketState.Open) continue;
                await ws.SendAsync(new ArraySegment<byte>(next), WebSocketMessageType.Binary, true, stop).ConfigureAwait(false);
                Interlocked.Increment(ref Stats.FramesSent);
            }
        }

        async Task<string> ReceiveLoopAsync(ClientWebSocket ws, CancellationToken stop)
        {
            var buffer = new byte[1 << 16];
            var message = new System.IO.MemoryStream();
            while (ws.State == WebSocketState.Open)
            {
                WebSocketReceiveResult res;
                try { res = await ws.ReceiveAsync(new ArraySegment<byte>(buffer), stop).ConfigureAwait(false); }
                catch (WebSocketException e) { return "connection lost: " + e.Message; }
                if (res.MessageType == WebSocketMessageType.Close)
                    return "closed by the sidecar (" + (int?)res.CloseStatus + " " + res.CloseStatusDescription + ")";
                message.Write(buffer, 0, res.Count);
                if (!res.EndOfMessage) continue;
                var bytes = message.ToArray();
                message.SetLength(0);
                SessionResponse resp;
                try { resp = SessionResponse.Parse(bytes); }
                catch (ProtoException) { Interlocked.Increment(ref Stats.Errors); continue; }
                Handle(resp);
            }
            return "closed";
        }

        void Handle(SessionResponse resp)
        {
            if (resp.Welcome != null)
            {
                var w = resp.Welcome;
                SessionId = w.SessionId;
                ModelVersion = w.ModelVersion;
                _resumeToken = w.ResumeToken;
                _wasOpen = true;
                _state = ClientState.Open;
                if (w.Resumed) Interlocked.Increment(ref Stats.Resumes);
                var id = w.SessionId;
                var resumed = w.Resumed;
                Raise(() => { if (Connected != null) Connected(id, resumed); });
            }
            else if (resp.Guidance != null)
            {
                Interlocked.Increment(ref Stats.Guidance);
                var g = resp.Guidance;
                var current = Volatile.Read(ref _mailbox);
                if (current != null && current.Sequence >= g.Sequence) { Interlocked.Increment(ref Stats.StaleGuidance); return; }
                Interlocked.Exchange(ref _mailbox, g);
            }
            else if (resp.Superseded != null) Interlocked.Increment(ref Stats.Superseded);
            else if (resp.Error != null)
            {
                Interlocked.Increment(ref Stats.Errors);
                if (resp.Error.Code == ErrorCode.ResumeRejected) _resumeToken = "";
            }
        }
    }
}
