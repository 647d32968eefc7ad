// Shared codec vectors in C#: Python bytes -> C# decode -> identical bytes, C#-built messages ->
// Python's bytes, and every re-encoding written out for Python to parse. Prints "N passed, N failed".
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using MetaBrain.Proto;
using MetaBrain.TestData;

public static class CodecVectorTests
{
    static int passed, failed;

    static void Check(bool ok, string what)
    {
        if (ok) passed++; else { failed++; Console.Error.WriteLine("FAIL: " + what); }
    }

    static string Hex(byte[] b)
    {
        var sb = new StringBuilder(b.Length * 2);
        foreach (var x in b) sb.Append(x.ToString("x2"));
        return sb.ToString();
    }

    static byte[] Unhex(string s)
    {
        var b = new byte[s.Length / 2];
        for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(s.Substring(2 * i, 2), 16);
        return b;
    }

    static byte[] Reencode(string type, byte[] data)
    {
        switch (type)
        {
            case "metabrain.testdata.AllTypes": return AllTypes.Parse(data).ToByteArray();
            case "metabrain.v1.SessionRequest": return SessionRequest.Parse(data).ToByteArray();
            case "metabrain.v1.SessionResponse": return SessionResponse.Parse(data).ToByteArray();
        }
        throw new ArgumentException("unknown type " + type);
    }

    static SessionRequest FrameLikePython()
    {
        var f = new Frame { Sequence = (1UL << 40) + 3, GameTime = 12.5 };
        var p = new PlayerState { PlayerId = "p1", Health = 80f, MaxHealth = 100f };
        p.Position = new Vec3 { X = 1f, Y = -0f, Z = 3.5f };
        p.Input = new InputSummary { ShotsFired = 3, MoveX = -1f, ActionsPerMinute = 120f };
        p.Vr = new VrPose { Head = new Pose { Position = new Vec3 { Y = 1.7f }, Rotation = new Quat { W = 1f } } };
        p.Biometrics = new Biometrics { HeartRateBpm = 92f };
        f.Players.Add(p);
        for (int i = 0; i < 16; i++)
        {
            f.Npcs.Add(new Npc { NpcId = (uint)(i + 1), Kind = "grunt", Health = 0.5f, State = NpcState.Attack,
                TargetPlayerId = "p1", Tactic = NpcTactic.Flank, Position = new Vec3 { X = i, Z = -(float)i } });
        }
        f.Events.Add(new GameEvent { Type = EventType.DamageTaken, PlayerId = "p1", NpcId = 3, Amount = 12f, GameTime = 12.4 });
        f.Knobs.Add(new KnobValue { Name = "enemy_accuracy", Value = 0.35f });
        return new SessionRequest { Frame = f };
    }

    // The named shared vectors' values, and messages built in C# compared with Python's bytes.
    static void NamedChecks(Dictionary<string, string> byName)
    {
        Check(Hex(FrameLikePython().ToByteArray()) == byName["frame_with_16_npcs"], "C#-built frame == Python bytes");
        var typical = AllTypes.Parse(Unhex(byName["all_types_typical"]));
        Check(typical.FString == "héllo ✓" && typical.FSint32 == -300 && typical.ChoiceCase == "choice_text", "typical values");
        Check(typical.Tags["k"] == "v" && typical.Named["n"].Id == 9, "maps");
        var edges = AllTypes.Parse(Unhex(byName["all_types_edges"]));
        Check(edges.FUint64 == ulong.MaxValue && edges.FInt64 == long.MinValue && edges.FSint32 == int.MinValue, "edge values");
        bool threw = false;
        try { Frame.Parse(new byte[] { 0x0a }); } catch (ProtoException) { threw = true; }
        Check(threw, "truncated input is refused");
        var unknown = Unhex("0d0000c03f980605a101080808080808080815000020c0");
        var v = Vec3.Parse(unknown);
        Check(v.X == 1.5f && v.Y == -2.5f, "unknown fields are skipped");
        var nul = AllTypes.Parse(Unhex(byName["nul_in_strings"]));
        Check(nul.FString == "a\0b" && nul.RString[1] == "x\0", "U+0000 inside a string is kept");
        var merged = SessionRequest.Parse(Unhex(byName["merge_singular_submessages"]));
        var target = merged.Hello.Target;
        Check(merged.Hello.GameId == "g" && target.PFailLow > 0.19f && target.PFailHigh > 0.39f, "a sub-message seen twice is merged");
        bool groupOk = AllTypes.Parse(Unhex(byName["unknown_fields_kept"])).FInt32 == 5;
        Check(groupOk, "a group is skipped and the fields after it read");
    }

    public static int Main(string[] args)
    {
        var lines = File.ReadAllLines(args[0]);
        var outLines = new List<string>();
        var byName = new Dictionary<string, string>();
        foreach (var line in lines)
        {
            var parts = line.Split('\t');
            if (parts.Length != 4) continue;
            byte[] again = null;
            try { again = Reencode(parts[1], Unhex(parts[2])); }
            catch (Exception e) { Console.Error.WriteLine(parts[0] + ": " + e.Message); }
            // parts[3]: what Python's protobuf writes for these bytes (the same unless they were not canonical).
            Check(again != null && Hex(again) == parts[3], parts[0] + " re-encodes as Python does");
            if (again != null) outLines.Add(parts[0] + "\t" + Hex(again));
            byName[parts[0]] = parts[2];
        }
        // --roundtrip-only: vectors from elsewhere (protobufjs), without the named cases.
        if (!(args.Length > 2 && args[2] == "--roundtrip-only")) NamedChecks(byName);
        File.WriteAllLines(args[1], outLines);
        Console.WriteLine(passed + " passed, " + failed + " failed");
        return failed == 0 && passed > 0 ? 0 : 1;
    }
}
