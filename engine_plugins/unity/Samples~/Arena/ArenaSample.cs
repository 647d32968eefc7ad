// A minimal scene script: add it to an empty GameObject, press Play with `metabrain serve` running.
// Enemies read the director's knobs each frame; their tactics follow the NPC hints.
using MetaBrain.Core;
using MetaBrain.Proto;
using MetaBrain.Unity;
using UnityEngine;

public sealed class ArenaSample : MonoBehaviour
{
    MetaBrainDirector _director;
    MetaBrainPlayer _player;

    void Awake()
    {
        _director = gameObject.AddComponent<MetaBrainDirector>();
        _director.gameId = "metabrain.unity.sample";
        _director.knobs.Add(new KnobDefinition("enemy_accuracy", 0.05f, 0.65f, 0.35f, 0.1f));
        _director.knobs.Add(new KnobDefinition("enemy_speed", 1.5f, 5.5f, 3.5f, 0.7f));
        _director.onDifficultyChanged.AddListener((knob, value) => Debug.Log("difficulty " + knob + " = " + value));
        var player = GameObject.CreatePrimitive(PrimitiveType.Capsule);
        _player = player.AddComponent<MetaBrainPlayer>();
        for (int i = 0; i < 4; i++)
        {
            var enemy = GameObject.CreatePrimitive(PrimitiveType.Cube);
            enemy.transform.position = new Vector3(10 * Mathf.Cos(i), 0, 10 * Mathf.Sin(i));
            enemy.AddComponent<MetaBrainNpc>();
        }
    }

    void Update()
    {
        float speed = _director.Knob("enemy_speed");
        foreach (var npc in MetaBrainNpc.ById.Values)
        {
            var toPlayer = _player.transform.position - npc.transform.position;
            float dir = npc.tactic == NpcTactic.Retreat ? -1f : npc.tactic == NpcTactic.Hold ? 0f : 1f;
            if (toPlayer.magnitude > 3f) npc.transform.position += toPlayer.normalized * dir * speed * Time.deltaTime;
        }
    }
}
