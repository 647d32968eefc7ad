using System.Collections.Generic;
using MetaBrain.Core;
using MetaBrain.Proto;
using UnityEngine;

namespace MetaBrain.Unity
{
    /// <summary>Marks a player for telemetry. Set health from your game; position and velocity are read here.</summary>
    [AddComponentMenu("MetaBrain/MetaBrain Player")]
    public sealed class MetaBrainPlayer : MonoBehaviour
    {
        public static readonly List<MetaBrainPlayer> All = new List<MetaBrainPlayer>();

        public string playerId = "p1";
        public float health = 100f;
        public float maxHealth = 100f;
        public bool dead;
        Vector3 _lastPosition;
        Vector3 _velocity;

        void OnEnable() { All.Add(this); _lastPosition = transform.position; }
        void OnDisable() { All.Remove(this); }

        void FixedUpdate()
        {
            _velocity = (transform.position - _lastPosition) / Time.fixedDeltaTime;
            _lastPosition = transform.position;
        }

        /// <summary>Adds this player's row to the frame's tables (the form MetaBrainDirector sends).</summary>
        public int AddTo(FrameTables tables)
        {
            var p = transform.position;
            return tables.AddPlayer(playerId, p.x, p.y, p.z, _velocity.x, _velocity.y, _velocity.z,
                                    Mathf.Clamp(health, 0f, maxHealth), maxHealth, dead);
        }

        /// <summary>This player as a PlayerState message (the row form).</summary>
        public PlayerState ToProto()
        {
            var p = transform.position;
            return new PlayerState
            {
                PlayerId = playerId, Health = Mathf.Clamp(health, 0f, maxHealth), MaxHealth = maxHealth, Dead = dead,
                Position = new Vec3 { X = p.x, Y = p.y, Z = p.z },
                Velocity = new Vec3 { X = _velocity.x, Y = _velocity.y, Z = _velocity.z },
            };
        }
    }
}
