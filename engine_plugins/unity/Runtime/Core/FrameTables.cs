// Builds a frame's players and NPCs in the table form (Frame.PlayerTable / NpcTable): rows of float32
// copied into one byte[] each, instead of a message per player and per NPC; the sidecar reads them
// without per-field work too. Columns by name from TableColumns (generated from sidecar/columns.py). Unity-free.
using System;
using System.Collections.Generic;
using MetaBrain.Proto;

namespace MetaBrain.Core
{
    public sealed class FrameTables
    {
        public const int PlayerColumns = TableColumns.PlayerColumns;
        public const int NpcColumns = TableColumns.NpcColumns;

        readonly List<string> _playerIds = new List<string>();
        readonly Dictionary<string, int> _rowOf = new Dictionary<string, int>();
        float[] _players = new float[PlayerColumns * 4];
        uint[] _npcIds = new uint[16];
        float[] _npcs = new float[NpcColumns * 16];
        readonly List<string> _targets = new List<string>();
        readonly List<string> _kinds = new List<string>();
        bool _anyKind;

        public int PlayerCount { get { return _playerIds.Count; } }
        public int NpcCount { get { return _targets.Count; } }

        /// <summary>Empties the tables for the next frame (their buffers are kept).</summary>
        public void Clear()
        {
            _playerIds.Clear();
            _rowOf.Clear();
            _targets.Clear();
            _kinds.Clear();
            _anyKind = false;
        }

        /// <summary>Adds a player's row; returns the row (for SetInput and SetBody). Ids must be unique.</summary>
        public int AddPlayer(string playerId, float px, float py, float pz, float vx, float vy, float vz,
                             float health, float maxHealth, bool dead = false, bool vr = false)
        {
            int row = _playerIds.Count;
            Grow(ref _players, (row + 1) * PlayerColumns);
            int i = row * PlayerColumns;
            Array.Clear(_players, i, PlayerColumns);
            _players[i + TableColumns.PlayerPositionX] = px;
            _players[i + TableColumns.PlayerPositionY] = py;
            _players[i + TableColumns.PlayerPositionZ] = pz;
            _players[i + TableColumns.PlayerVelocityX] = vx;
            _players[i + TableColumns.PlayerVelocityY] = vy;
            _players[i + TableColumns.PlayerVelocityZ] = vz;
            _players[i + TableColumns.PlayerHealth] = health;
            _players[i + TableColumns.PlayerMaxHealth] = maxHealth;
            _players[i + TableColumns.PlayerDead] = dead ? 1f : 0f;
            _players[i + TableColumns.PlayerVr] = vr ? 1f : 0f;
            _playerIds.Add(playerId);
            _rowOf[playerId] = row;
            return row;
        }

        /// <summary>What the player did with the controls since the last frame (axes in [-1, 1]).</summary>
        public void SetInput(int row, float moveX, float moveY, float aimX, float aimY,
                             uint shotsFired, uint shotsHit, uint dodges, float actionsPerMinute)
        {
            int i = row * PlayerColumns;
            _players[i + TableColumns.PlayerInputMoveX] = moveX;
            _players[i + TableColumns.PlayerInputMoveY] = moveY;
            _players[i + TableColumns.PlayerInputAimX] = aimX;
            _players[i + TableColumns.PlayerInputAimY] = aimY;
            _players[i + TableColumns.PlayerInputShotsFired] = shotsFired;
            _players[i + TableColumns.PlayerInputShotsHit] = shotsHit;
            _players[i + TableColumns.PlayerInputDodges] = dodges;
            _players[i + TableColumns.PlayerInputActionsPerMinute] = actionsPerMinute;
        }

        /// <summary>Body signals (0 = unknown), only when the player allowed them; they never leave the sidecar.</summary>
        public void SetBody(int row, float heartRateBpm, float skinConductanceUs)
        {
            _players[row * PlayerColumns + TableColumns.PlayerBiometricsHeartRateBpm] = heartRateBpm;
            _players[row * PlayerColumns + TableColumns.PlayerBiometricsSkinConductanceUs] = skinConductanceUs;
        }

        /// <summary>Adds an NPC's row; <paramref name="targetPlayerId"/> names a player of this frame ("" for none).</summary>
        public void AddNpc(uint npcId, float px, float py, float pz, float health, NpcState state, NpcTactic tactic,
                           string targetPlayerId = "", string kind = "")
        {
            int row = _targets.Count;
            Grow(ref _npcIds, row + 1);
            Grow(ref _npcs, (row + 1) * NpcColumns);
            _npcIds[row] = npcId;
            int i = row * NpcColumns;
            _npcs[i + TableColumns.NpcPositionX] = px;
            _npcs[i + TableColumns.NpcPositionY] = py;
            _npcs[i + TableColumns.NpcPositionZ] = pz;
            _npcs[i + TableColumns.NpcHealth] = health;
            _npcs[i + TableColumns.NpcState] = (float)state;
            _npcs[i + TableColumns.NpcTactic] = (float)tactic;
            _npcs[i + TableColumns.NpcTarget] = -1f;
            _targets.Add(targetPlayerId ?? "");
            _kinds.Add(kind ?? "");
            _anyKind |= !string.IsNullOrEmpty(kind);
        }

        /// <summary>Sets frame.PlayerTable and (with NPCs) frame.NpcTable; the frame must not hold rows.</summary>
        public void WriteTo(Frame frame)
        {
            frame.PlayerTable = new PlayerTable
            {
                PlayerIds = new List<string>(_playerIds),
                Values = LittleEndianBytes(_players, _playerIds.Count * PlayerColumns),
                Columns = PlayerColumns,
            };
            int n = _targets.Count;
            if (n == 0) { frame.NpcTable = null; return; }
            for (int row = 0; row < n; row++)
            {
                int target;
                _npcs[row * NpcColumns + TableColumns.NpcTarget] = _targets[row].Length > 0 && _rowOf.TryGetValue(_targets[row], out target) ? target : -1f;
            }
            var ids = new byte[n * 4];
            Buffer.BlockCopy(_npcIds, 0, ids, 0, ids.Length);
            if (!BitConverter.IsLittleEndian) SwapWords(ids);
            frame.NpcTable = new NpcTable
            {
                NpcIds = ids,
                Values = LittleEndianBytes(_npcs, n * NpcColumns),
                Columns = NpcColumns,
                Kinds = _anyKind ? new List<string>(_kinds) : new List<string>(),
            };
        }

        static byte[] LittleEndianBytes(float[] values, int count)
        {
            var bytes = new byte[count * 4];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);  // one copy: the machine's byte order
            if (!BitConverter.IsLittleEndian) SwapWords(bytes);
            return bytes;
        }

        static void SwapWords(byte[] b)
        {
            for (int i = 0; i + 3 < b.Length; i += 4)
            {
                byte t = b[i]; b[i] = b[i + 3]; b[i + 3] = t;
                t = b[i + 1]; b[i + 1] = b[i + 2]; b[i + 2] = t;
            }
        }

        static void Grow<T>(ref T[] a, int size)
        {
            if (a.Length < size) Array.Resize(ref a, Math.Max(size, a.Length * 2));
        }
    }
}
