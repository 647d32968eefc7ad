"""Plain C# protobuf classes from the schema's descriptors (no Google.Protobuf; C# 7.2, mcs and Unity).

Same wire behaviour as engine_codegen's GDScript and Python's upb: field-number order, proto3
implicit presence (a float -0.0 is written), packed repeated scalars, map entries with both key and
value; singular sub-messages merged, groups skipped, unknown fields kept and written back.
"""

from __future__ import annotations

import re

from engine_codegen import (
    BOOL,
    BYTES,
    DOUBLE,
    ENUM,
    FIXED32,
    FIXED64,
    FLOAT,
    INT32,
    INT64,
    MESSAGE,
    SFIXED32,
    SFIXED64,
    SINT32,
    SINT64,
    STRING,
    UINT32,
    UINT64,
    WIRE,
    Enum,
    Field,
    Message,
    parse,
)

_RUNTIME = """
    /// <summary>Growable byte buffer with protobuf primitives.</summary>
    public sealed class ProtoWriter
    {
        byte[] _buf = new byte[256];
        int _len;
        ProtoWriter _child;

        public int Length { get { return _len; } }

        public void Clear() { _len = 0; }

        /// <summary>A cleared scratch writer for a nested message (reused, no allocation per message).</summary>
        public ProtoWriter Child()
        {
            if (_child == null) _child = new ProtoWriter(); else _child.Clear();
            return _child;
        }

        void Ensure(int n)
        {
            if (_len + n <= _buf.Length) return;
            var grown = new byte[System.Math.Max(_buf.Length * 2, _len + n)];
            System.Buffer.BlockCopy(_buf, 0, grown, 0, _len);
            _buf = grown;
        }

        public void Byte(byte b) { Ensure(1); _buf[_len++] = b; }

        public void Varint(ulong v)
        {
            Ensure(10);
            while (v >= 0x80) { _buf[_len++] = (byte)(v | 0x80); v >>= 7; }
            _buf[_len++] = (byte)v;
        }

        public void Tag(int field, int wire) { Varint((ulong)((field << 3) | wire)); }
        public void Int64(long v) { Varint((ulong)v); }
        public void ZigZag32(int v) { Varint((uint)((v << 1) ^ (v >> 31))); }
        public void ZigZag64(long v) { Varint((ulong)((v << 1) ^ (v >> 63))); }

        public void Fixed32(uint v)
        {
            Ensure(4);
            _buf[_len++] = (byte)v;
            _buf[_len++] = (byte)(v >> 8);
            _buf[_len++] = (byte)(v >> 16);
            _buf[_len++] = (byte)(v >> 24);
        }

        public void Fixed64(ulong v) { Fixed32((uint)v); Fixed32((uint)(v >> 32)); }
        public void Float(float v) { Fixed32((uint)System.BitConverter.ToInt32(System.BitConverter.GetBytes(v), 0)); }
        public void Double(double v) { Fixed64((ulong)System.BitConverter.DoubleToInt64Bits(v)); }

        public void Bytes(byte[] b)
        {
            Varint((ulong)b.Length);
            Ensure(b.Length);
            System.Buffer.BlockCopy(b, 0, _buf, _len, b.Length);
            _len += b.Length;
        }

        public void String(string s) { Bytes(System.Text.Encoding.UTF8.GetBytes(s)); }

        /// <summary>String map keys in the order of their UTF-8 bytes (upb's deterministic order).</summary>
        public static int Utf8Order(string a, string b)
        {
            byte[] x = System.Text.Encoding.UTF8.GetBytes(a), y = System.Text.Encoding.UTF8.GetBytes(b);
            for (int i = 0; i < x.Length && i < y.Length; i++)
                if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
            return x.Length.CompareTo(y.Length);
        }

        public void Raw(byte[] b)
        {
            Ensure(b.Length);
            System.Buffer.BlockCopy(b, 0, _buf, _len, b.Length);
            _len += b.Length;
        }

        public void Nested(ProtoWriter w)
        {
            Varint((ulong)w._len);
            Ensure(w._len);
            System.Buffer.BlockCopy(w._buf, 0, _buf, _len, w._len);
            _len += w._len;
        }

        public byte[] ToArray()
        {
            var outBytes = new byte[_len];
            System.Buffer.BlockCopy(_buf, 0, outBytes, 0, _len);
            return outBytes;
        }

        public static bool IsSet(float v) { return v != 0f || System.BitConverter.GetBytes(v)[3] != 0; }
        public static bool IsSet(double v) { return System.BitConverter.DoubleToInt64Bits(v) != 0; }
    }

    /// <summary>Raised for bytes that are not a valid message.</summary>
    public sealed class ProtoException : System.Exception
    {
        public ProtoException(string message) : base(message) { }
    }

    /// <summary>Reader over a byte array.</summary>
    public sealed class ProtoReader
    {
        readonly byte[] _data;
        public int Pos;

        public ProtoReader(byte[] data) { _data = data; }

        public ulong Varint()
        {
            ulong result = 0;
            int shift = 0;
            while (Pos < _data.Length)
            {
                byte b = _data[Pos++];
                if (shift < 64) result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return result;
                shift += 7;
            }
            throw new ProtoException("truncated varint");
        }

        public int Int32() { return (int)Varint(); }
        public int ZigZag32() { uint v = (uint)Varint(); return (int)(v >> 1) ^ -(int)(v & 1); }
        public long ZigZag64() { ulong v = Varint(); return (long)(v >> 1) ^ -(long)(v & 1); }

        void Need(int n) { if (Pos + n > _data.Length) throw new ProtoException("truncated message"); }

        public uint Fixed32()
        {
            Need(4);
            uint v = (uint)(_data[Pos] | _data[Pos + 1] << 8 | _data[Pos + 2] << 16 | _data[Pos + 3] << 24);
            Pos += 4;
            return v;
        }

        public ulong Fixed64() { ulong lo = Fixed32(); ulong hi = Fixed32(); return lo | hi << 32; }
        public float Float() { return System.BitConverter.ToSingle(System.BitConverter.GetBytes(Fixed32()), 0); }
        public double Double() { return System.BitConverter.Int64BitsToDouble((long)Fixed64()); }

        public int Length()
        {
            ulong n = Varint();
            if (n > (ulong)(_data.Length - Pos)) throw new ProtoException("length past the end");
            return (int)n;
        }

        public byte[] Bytes()
        {
            int n = Length();
            var b = new byte[n];
            System.Buffer.BlockCopy(_data, Pos, b, 0, n);
            Pos += n;
            return b;
        }

        public string String()
        {
            int n = Length();
            string s = System.Text.Encoding.UTF8.GetString(_data, Pos, n);
            Pos += n;
            return s;
        }

        /// <summary>A field's key; Skip reads the field number of the last one to match a group's end.</summary>
        public int Key() { LastKey = (int)Varint(); return LastKey; }

        public int LastKey;

        public byte[] Slice(int from, int to)
        {
            var b = new byte[to - from];
            System.Buffer.BlockCopy(_data, from, b, 0, b.Length);
            return b;
        }

        public static byte[] Concat(byte[] a, byte[] b)
        {
            if (a.Length == 0) return b;
            var c = new byte[a.Length + b.Length];
            System.Buffer.BlockCopy(a, 0, c, 0, a.Length);
            System.Buffer.BlockCopy(b, 0, c, a.Length, b.Length);
            return c;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Need(8); Pos += 8; break;
                case 2: int n = Length(); Pos += n; break;
                case 3: SkipGroup(LastKey >> 3, 0); break;
                case 5: Need(4); Pos += 4; break;
                default: throw new ProtoException("unsupported wire type " + wire);
            }
        }

        // Deprecated groups are skipped as the spec says: up to the end tag of the same field number
        // (nested groups too, at most 100 deep, as upb allows).
        void SkipGroup(int field, int depth)
        {
            if (depth >= 100) throw new ProtoException("groups nested too deep");
            while (true)
            {
                if (Pos >= _data.Length) throw new ProtoException("truncated group");
                int k = (int)Varint();
                int w = k & 7;
                if (w == 4)
                {
                    if (k >> 3 != field) throw new ProtoException("group ended by another field's tag");
                    return;
                }
                if (w == 3) SkipGroup(k >> 3, depth + 1);
                else { LastKey = k; Skip(w); }
            }
        }
    }
"""

_CS_TYPES = {
    DOUBLE: "double",
    FLOAT: "float",
    INT64: "long",
    UINT64: "ulong",
    INT32: "int",
    FIXED64: "ulong",
    FIXED32: "uint",
    BOOL: "bool",
    STRING: "string",
    BYTES: "byte[]",
    UINT32: "uint",
    SFIXED32: "int",
    SFIXED64: "long",
    SINT32: "int",
    SINT64: "long",
}
_CS_WRITE = {
    DOUBLE: "w.Double({})",
    FLOAT: "w.Float({})",
    INT64: "w.Int64({})",
    UINT64: "w.Varint({})",
    INT32: "w.Int64({})",
    FIXED64: "w.Fixed64({})",
    FIXED32: "w.Fixed32({})",
    BOOL: "w.Varint({} ? 1UL : 0UL)",
    STRING: "w.String({})",
    BYTES: "w.Bytes({})",
    UINT32: "w.Varint({})",
    ENUM: "w.Int64((long){})",
    SFIXED32: "w.Fixed32((uint){})",
    SFIXED64: "w.Fixed64((ulong){})",
    SINT32: "w.ZigZag32({})",
    SINT64: "w.ZigZag64({})",
}
_CS_READ = {
    DOUBLE: "r.Double()",
    FLOAT: "r.Float()",
    INT64: "(long)r.Varint()",
    UINT64: "r.Varint()",
    INT32: "r.Int32()",
    FIXED64: "r.Fixed64()",
    FIXED32: "r.Fixed32()",
    BOOL: "r.Varint() != 0",
    STRING: "r.String()",
    BYTES: "r.Bytes()",
    UINT32: "(uint)r.Varint()",
    SFIXED32: "(int)r.Fixed32()",
    SFIXED64: "(long)r.Fixed64()",
    SINT32: "r.ZigZag32()",
    SINT64: "r.ZigZag64()",
}


def pascal(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.strip("_").split("_") if p)


def _enum_member(enum: Enum, value_name: str) -> str:
    """NPC_TACTIC_FLANK in enum NpcTactic -> Flank (the enum's name is the prefix, as protoc's C# does)."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
    rest = value_name[len(snake) :] if value_name.startswith(snake) else value_name
    return pascal(rest.lower())


def _type(f: Field) -> str:
    if f.type == MESSAGE:
        return f.type_name
    if f.type == ENUM:
        return f.type_name
    return _CS_TYPES[f.type]


def _default(f: Field) -> str:
    if f.type == STRING:
        return ' = ""'
    if f.type == BYTES:
        return " = new byte[0]"
    return ""


def _is_set(f: Field, expr: str) -> str:
    if f.type in (FLOAT, DOUBLE):
        return f"ProtoWriter.IsSet({expr})"
    if f.type == BOOL:
        return expr
    if f.type == STRING:
        return f"!string.IsNullOrEmpty({expr})"
    if f.type == BYTES:
        return f"{expr} != null && {expr}.Length > 0"
    if f.type == ENUM:
        return f"(long){expr} != 0"
    return f"{expr} != 0"


def _write_scalar(f: Field, expr: str, w: str = "w") -> list[str]:
    value = expr
    code = _CS_WRITE[f.type].replace("w.", f"{w}.").format(value)
    return [f"{w}.Tag({f.number}, {WIRE[f.type]});", code + ";"]


def _read_scalar(f: Field) -> str:
    if f.type == ENUM:
        return f"({f.type_name})r.Int32()"
    return _CS_READ[f.type]


def _message(m: Message) -> list[str]:
    out = [""]
    if m.comment:
        out += ["    /// <summary>" + " ".join(m.comment.split()) + "</summary>"]
    out += [f"    public sealed class {m.name}", "    {"]
    for f in m.fields:
        name = pascal(f.name)
        if f.is_map:
            assert f.map_key is not None and f.map_value is not None
            out.append(
                f"        public Dictionary<{_type(f.map_key)}, {_type(f.map_value)}> {name} = "
                f"new Dictionary<{_type(f.map_key)}, {_type(f.map_value)}>();"
            )
        elif f.repeated:
            out.append(f"        public List<{_type(f)}> {name} = new List<{_type(f)}>();")
        elif f.oneof is not None and f.type != MESSAGE:
            out.append(
                f"        public {_type(f)}? {name};"
                if f.type not in (STRING, BYTES)
                else f"        public {_type(f)} {name};"
            )
        else:
            out.append(f"        public {_type(f)} {name}{_default(f)};")
    out += [
        "        /// <summary>Fields this schema does not know, as they came; written after the known ones.</summary>",
        "        public byte[] UnknownFields = new byte[0];",
    ]
    # WriteTo
    out += ["", "        public void WriteTo(ProtoWriter w)", "        {"]
    for f in m.fields:
        name = pascal(f.name)
        if f.is_map:
            assert f.map_key is not None and f.map_value is not None
            # Entries in key order, as upb's deterministic output writes them (not insertion order).
            order = "ProtoWriter.Utf8Order" if f.map_key.type == STRING else ""
            kt, vt = _type(f.map_key), _type(f.map_value)
            out += [
                f"            var keys{f.number} = new List<{kt}>({name}.Keys);",
                f"            keys{f.number}.Sort({order});",
                f"            foreach (var key in keys{f.number})",
                "            {",
                f"                var kv = new KeyValuePair<{kt}, {vt}>(key, {name}[key]);",
                "                var e = w.Child();",
            ]
            out += ["                " + s for s in _write_scalar(f.map_key, "kv.Key", "e")]
            if f.map_value.type == MESSAGE:
                out += [
                    "                var sub = new ProtoWriter();",
                    "                kv.Value.WriteTo(sub);",
                    "                e.Tag(2, 2);",
                    "                e.Nested(sub);",
                ]
            elif f.map_value.type == ENUM:
                out += ["                e.Tag(2, 0);", "                e.Int64((long)kv.Value);"]
            else:
                out += ["                " + s for s in _write_scalar(f.map_value, "kv.Value", "e")]
            out += [f"                w.Tag({f.number}, 2);", "                w.Nested(e);", "            }"]
        elif f.type == MESSAGE and f.repeated:
            out += [
                f"            foreach (var item in {name})",
                "            {",
                "                var sub = w.Child();",
                "                item.WriteTo(sub);",
                f"                w.Tag({f.number}, 2);",
                "                w.Nested(sub);",
                "            }",
            ]
        elif f.type == MESSAGE:
            out += [
                f"            if ({name} != null)",
                "            {",
                "                var sub = w.Child();",
                f"                {name}.WriteTo(sub);",
                f"                w.Tag({f.number}, 2);",
                "                w.Nested(sub);",
                "            }",
            ]
        elif f.packed:
            out += [
                f"            if ({name}.Count > 0)",
                "            {",
                "                var p = w.Child();",
                f"                foreach (var v in {name}) " + _CS_WRITE[f.type].replace("w.", "p.").format("v") + ";",
                f"                w.Tag({f.number}, 2);",
                "                w.Nested(p);",
                "            }",
            ]
        elif f.repeated:
            out += [f"            foreach (var v in {name})", "            {"]
            out += ["                " + s for s in _write_scalar(f, "v")]
            out.append("            }")
        elif f.oneof is not None:
            cond = f"{name} != null" if f.type in (STRING, BYTES) else f"{name}.HasValue"
            val = name if f.type in (STRING, BYTES) else f"{name}.Value"
            out += [f"            if ({cond})", "            {"]
            out += ["                " + s for s in _write_scalar(f, val)]
            out.append("            }")
        else:
            out += [f"            if ({_is_set(f, name)})", "            {"]
            out += ["                " + s for s in _write_scalar(f, name)]
            out.append("            }")
    out += ["            if (UnknownFields.Length > 0) w.Raw(UnknownFields);", "        }"]
    # MergeFrom
    out += [
        "",
        "        // Skips the field just keyed and keeps its bytes (key included) to write back.",
        "        void KeepUnknown(ProtoReader r, int at)",
        "        {",
        "            r.Skip(r.LastKey & 7);",
        "            UnknownFields = ProtoReader.Concat(UnknownFields, r.Slice(at, r.Pos));",
        "        }",
        "",
        "        public void MergeFrom(ProtoReader r, int end)",
        "        {",
        "            while (r.Pos < end)",
        "            {",
        "                int at = r.Pos;",
        "                int key = r.Key();",
    ]
    if m.fields:  # an empty message reads no field's wire type (an unused variable is a compiler warning)
        out.append("                int wire = key & 7;")
    out += [
        "                switch (key >> 3)",
        "                {",
    ]
    for f in m.fields:
        name = pascal(f.name)
        w = WIRE.get(f.type, 2)
        body: list[str]
        if f.is_map:
            assert f.map_key is not None and f.map_value is not None
            kt, vt = _type(f.map_key), _type(f.map_value)
            vinit = (
                f"new {vt}()"
                if f.map_value.type == MESSAGE
                else ('""' if f.map_value.type == STRING else f"default({vt})")
            )
            kinit = '""' if f.map_key.type == STRING else f"default({kt})"
            body = [
                "int eEnd = r.Length() + r.Pos;",
                f"{kt} mk = {kinit};",
                f"{vt} mv = {vinit};",
                "while (r.Pos < eEnd)",
                "{",
                "    int ek = r.Key();",
                f"    if (ek >> 3 == 1) mk = {_read_scalar(f.map_key)};",
            ]
            if f.map_value.type == MESSAGE:
                body.append("    else if (ek >> 3 == 2) { int ml = r.Length() + r.Pos; mv.MergeFrom(r, ml); }")
            else:
                body.append(f"    else if (ek >> 3 == 2) mv = {_read_scalar(f.map_value)};")
            body += ["    else r.Skip(ek & 7);", "}", f"{name}[mk] = mv;"]
            body = _if_wire(2, body)
        elif f.type == MESSAGE:
            # A singular sub-message seen twice is merged, as the spec says; a repeated one appends.
            make = f"new {f.type_name}()" if f.repeated else f"{name} ?? new {f.type_name}()"
            body = ["int mEnd = r.Length() + r.Pos;", f"var m = {make};", "m.MergeFrom(r, mEnd);"]
            if f.repeated:
                body.append(f"{name}.Add(m);")
            else:
                body.append(f"{name} = m;")
                body += _clear_oneof(m_fields=m, f=f)
            body = _if_wire(2, body)
        elif f.packed:
            body = [
                "if (wire == 2)",
                "{",
                "    int pEnd = r.Length() + r.Pos;",
                f"    while (r.Pos < pEnd) {name}.Add({_read_scalar(f)});",
                "}",
                f"else if (wire == {w}) {name}.Add({_read_scalar(f)});",
                "else KeepUnknown(r, at);",
            ]
        elif f.repeated:
            body = _if_wire(w, [f"{name}.Add({_read_scalar(f)});"])
        else:
            body = [f"{name} = {_read_scalar(f)};"]
            if f.oneof:
                body += _clear_oneof(m_fields=m, f=f)
            body = _if_wire(w, body)
        out.append(f"                    case {f.number}:")
        out += ["                        " + s for s in body]
        out.append("                        break;")
    out += [
        "                    default:",
        "                        KeepUnknown(r, at);",
        "                        break;",
        "                }",
        "            }",
        '            if (r.Pos != end) throw new ProtoException("message overran its length");',
        "        }",
        "",
        "        public byte[] ToByteArray()",
        "        {",
        "            var w = new ProtoWriter();",
        "            WriteTo(w);",
        "            return w.ToArray();",
        "        }",
        "",
        f"        public static {m.name} Parse(byte[] data)",
        "        {",
        f"            var m = new {m.name}();",
        "            m.MergeFrom(new ProtoReader(data), data.Length);",
        "            return m;",
        "        }",
    ]
    for o in sorted({f.oneof for f in m.fields if f.oneof}):
        out += [
            "",
            f"        /// <summary>Which member of the oneof '{o}' is set (its field name), or null.</summary>",
            f"        public string {pascal(o)}Case",
            "        {",
            "            get",
            "            {",
        ]
        for f in m.fields:
            if f.oneof == o:
                cond = f"{pascal(f.name)} != null"
                out.append(f'                if ({cond}) return "{f.name}";')
        out += ["                return null;", "            }", "        }"]
    out.append("    }")
    return out


def _if_wire(wire: int, body: list[str]) -> list[str]:
    # A known field with another wire type is an unknown field to the spec (upb keeps it as one).
    return [f"if (wire == {wire})", "{", *("    " + b for b in body), "}", "else KeepUnknown(r, at);"]


def _clear_oneof(m_fields: Message, f: Field) -> list[str]:
    if f.oneof is None:
        return []
    return [f"{pascal(o.name)} = null;" for o in m_fields.fields if o.oneof == f.oneof and o is not f]


def generate_csharp(descriptor_set: bytes, namespace: str = "MetaBrain.Proto") -> str:
    """One file per schema; the wire runtime (ProtoWriter/ProtoReader) lives in MetaBrain.Proto only."""
    pkg, messages, enums, source = parse(descriptor_set)
    # GDScript's clash renames (Error -> Error_) are not needed in C#.
    for e in enums:
        e.name = e.name.rstrip("_")
    for m in messages:
        m.name = m.name.rstrip("_")
        for f in m.fields:
            f.type_name = f.type_name.rstrip("_")
            if f.map_value is not None:
                f.map_value.type_name = f.map_value.type_name.rstrip("_")
    out = [
        f"// Generated by proto/generate.py from {source} ({pkg}); do not edit.",
        "// Plain C# protobuf classes: no Google.Protobuf, C# 7.2 (mcs and Unity).",
        "using System.Collections.Generic;",
    ]
    if namespace != "MetaBrain.Proto":
        out.append("using MetaBrain.Proto;")
    out += ["", f"namespace {namespace}", "{"]
    for e in enums:
        out += [f"    public enum {e.name}", "    {"]
        out += [f"        {_enum_member(e, n)} = {v}," for n, v in e.values]
        out += ["    }", ""]
    if namespace == "MetaBrain.Proto":
        out.append(_RUNTIME.strip("\n"))
    for m in messages:
        out += _message(m)
    out += ["}", ""]
    return "\n".join(out)
