using System.Collections.Generic;
using MetaBrain.Core;
using MetaBrain.Proto;
using UnityEngine;

namespace MetaBrain.Unity
{
    /// <summary>Marks an NPC for telemetry and receives its tactic hints.</summary>
    [AddComponentMenu("MetaBrain/MetaBrain NPC")]
    public sealed class MetaBrainNpc : MonoBehaviour
    {
        public static readonly Dictionary<uint, MetaBrainNpc> ById = new Dictionary<uint, MetaBrainNpc>();
        static uint _nextId = 1;

        public string kind = "grunt";
        [Range(0f, 1f)] public float health = 1f;
        public NpcState state = NpcState.Chase;
        public string targetPlayerId = "p1";
        public NpcTactic tactic = NpcTactic.Advance;
        public float aggression = 0.5f;
        public uint NpcId { get; private set; }

        void OnEnable() { NpcId = _nextId++; ById[NpcId] = this; }
        void OnDisable() { ById.Remove(NpcId); }

        public void ApplyHint(NpcTactic hinted, float hintedAggression)
        {
            tactic = hinted;
            aggression = hintedAggression;
        }

        /// <summary>Adds this NPC's row to the frame's tables (the form MetaBrainDirector sends).</summary>
        public void AddTo(FrameTables tables)
        {
            var p = transform.position;
            tables.AddNpc(NpcId, p.x, p.y, p.z, Mathf.Clamp01(health), state, tactic, targetPlayerId, kind);
        }

        /// <summary>This NPC as an Npc message (the row form).</summary>
        public Npc ToProto()
        {
            var p = transform.position;
            return new Npc
            {
                NpcId = NpcId, Kind = kind, Health = Mathf.Clamp01(health), State = state, TargetPlayerId = targetPlayerId,
                Tactic = tactic, Position = new Vec3 { X = p.x, Y = p.y, Z = p.z },
            };
        }
    }
}
