// Thin Unity layer over MetaBrain.Core: holds the knob and tactic definitions, fills frames (in the table
// form, FrameTables) from the MetaBrainPlayer / MetaBrainNpc components each FixedUpdate, and raises
// UnityEvents and C# events on the main thread. All networking and protocol work is in MetaBrainClient
// (Unity-free, tested outside Unity).
using System;
using System.Collections.Generic;
using MetaBrain.Core;
using MetaBrain.Proto;
using UnityEngine;
using UnityEngine.Events;

namespace MetaBrain.Unity
{
    [Serializable] public class DifficultyEvent : UnityEvent<string, float> { }
    [Serializable] public class NpcHintEvent : UnityEvent<MetaBrainNpc, NpcTactic, string, float> { }
    [Serializable] public class InsightEvent : UnityEvent<string, float, float, float> { }

    [AddComponentMenu("MetaBrain/MetaBrain Director")]
    public sealed class MetaBrainDirector : MonoBehaviour
    {
        [Header("Sidecar")]
        public string address = "127.0.0.1";
        public int port = 50052;
        public string token = "";
        public bool useTls;

        [Header("Game")]
        public string gameId = "my.game";
        public string gameBuild = "";
        [Tooltip("static, rubber_band, intensity, predictive; empty = the sidecar's default")]
        public string policy = "";
        public List<KnobDefinition> knobs = new List<KnobDefinition>();
        public List<NpcTactic> npcTactics = new List<NpcTactic>();
        [Tooltip("Send a frame every N FixedUpdates (3: ~17 Hz at Unity's default 50 Hz). Any rate gives the same predictions: the sidecar steps its model at the rate it learned and folds the frames between; more frames give smoother knobs and cost the sidecar more.")]
        public int sendEveryNFixedUpdates = 3;
        public bool recordingConsent;

        [Header("Events (main thread)")]
        public DifficultyEvent onDifficultyChanged = new DifficultyEvent();
        public NpcHintEvent onNpcHint = new NpcHintEvent();
        public InsightEvent onInsight = new InsightEvent();

        public event Action<string, float> DifficultyChanged;
        public event Action<PlayerInsight> InsightReceived;

        public MetaBrainClient Client { get; private set; }
        int _fixedUpdates;

        void OnEnable()
        {
            var opt = new ClientOptions
            {
                Url = (useTls ? "wss://" : "ws://") + address + ":" + port + "/metabrain/v1/session",
                Token = token, GameId = gameId, GameBuild = gameBuild, Policy = policy, RecordingConsent = recordingConsent,
                TickRateHz = 1f / (Time.fixedDeltaTime * Mathf.Max(sendEveryNFixedUpdates, 1)),
            };
            opt.Knobs.AddRange(knobs);
            opt.NpcTactics.AddRange(npcTactics);
            Client = new MetaBrainClient(opt);
            Client.DifficultyChanged += (k, v) => { onDifficultyChanged.Invoke(k, v); if (DifficultyChanged != null) DifficultyChanged(k, v); };
            Client.NpcHintReceived += h =>
            {
                MetaBrainNpc npc;
                if (MetaBrainNpc.ById.TryGetValue(h.NpcId, out npc) && npc != null)
                {
                    npc.ApplyHint(h.Tactic, h.Aggression);
                    onNpcHint.Invoke(npc, h.Tactic, h.TargetPlayerId, h.Aggression);
                }
            };
            Client.InsightReceived += i =>
            {
                onInsight.Invoke(i.PlayerId, i.PFail, i.PQuit, i.Skill);
                if (InsightReceived != null) InsightReceived(i);
            };
            Client.Start();
        }

        // The player quit the app: the goodbye goes out before the process does (at most 250 ms), and the
        // sidecar counts the quit at once. A session the game ends for its own reasons: Client.EndSession(true).
        void OnApplicationQuit()
        {
            if (Client != null) Client.EndSessionAndWait(false, 250);
        }

        // Disabled or destroyed (a scene unloaded): the session ends as the player leaving, at once, not when
        // its resume window closes (at most 100 ms; a session ended already returns at once). A scene
        // change the game makes for its own reasons (the level over): Client.EndSession(true) before it.
        void OnDisable()
        {
            if (Client != null)
            {
                Client.EndSessionAndWait(false, 100);
                Client.Dispose();
            }
            Client = null;
        }

        public float Knob(string name) { return Client != null ? Client.Knob(name) : 0f; }

        /// <summary>Report a game event; it rides with the next frame.</summary>
        public void ReportEvent(EventType type, string playerId, uint npcId = 0, float amount = 0f)
        {
            _events.Add(new GameEvent { Type = type, PlayerId = playerId, NpcId = npcId, Amount = amount, GameTime = Time.time });
        }

        readonly List<GameEvent> _events = new List<GameEvent>();
        readonly FrameTables _tables = new FrameTables();

        /// <summary>A pause menu that keeps time running opened (true) or closed (false). The director also
        /// pauses by itself while Time.timeScale is 0 (followTimeScale) and while the app is paused (it lost
        /// focus with Run In Background off, or went to the background on mobile). While any of these holds,
        /// the sidecar is told at once and keeps the session through the silence (its Limits.MaxPauseS)
        /// instead of closing it as idle and counting the player as gone.</summary>
        public void SetPaused(bool paused) { _menuPaused = paused; ApplyPause(); }

        [Tooltip("Tell the sidecar the game paused while Time.timeScale is 0, so it keeps the session.")]
        public bool followTimeScale = true;

        bool _menuPaused, _timeStopped, _appPaused;

        void ApplyPause()
        {
            bool paused = _menuPaused || _timeStopped || _appPaused;
            if (Client == null || Client.IsPaused == paused) return;
            Client.SetPaused(paused);
            if (paused) SendFrame();  // no FixedUpdate follows while time stands still: the news goes now
        }

        void OnApplicationPause(bool paused) { _appPaused = paused; ApplyPause(); }

        void FixedUpdate()
        {
            if (Client == null || ++_fixedUpdates % Mathf.Max(sendEveryNFixedUpdates, 1) != 0) return;
            SendFrame();
        }

        void SendFrame()
        {
            _tables.Clear();
            foreach (var p in MetaBrainPlayer.All) p.AddTo(_tables);
            if (_tables.PlayerCount == 0) return;
            foreach (var n in MetaBrainNpc.ById.Values) if (n != null) n.AddTo(_tables);
            var frame = new Frame { GameTime = Time.time };
            _tables.WriteTo(frame);  // the table form: one byte[] for the players, one for the NPCs
            frame.Events.AddRange(_events);
            _events.Clear();
            Client.TrySend(frame);  // never blocks; dropped while the sidecar is away
        }

        void Update()
        {
            if (Client == null) return;
            bool stopped = followTimeScale && Time.timeScale == 0f;
            if (stopped != _timeStopped) { _timeStopped = stopped; ApplyPause(); }
            Client.Poll();
            if (Client.IsPaused && Client.IsOpen && Client.PauseNewsPending) SendFrame();  // (re)connected while paused
        }
    }
}
