"""Engine codecs generated from the schema's descriptors: typed GDScript and plain C#.

Both engines get the same wire behaviour as Python's protobuf (upb) for proto3: fields written in
field-number order, implicit-presence scalars skipped when zero (a float -0.0 is not zero: its bits
are set), message fields written when present, repeated scalars and enums packed, map entries
always written with both key and value; on decode a singular sub-message seen twice is merged,
deprecated groups are skipped, and unknown fields (a known field with another wire type included) are
kept and written back after the known ones, as upb does. A Godot String cannot hold U+0000: the
GDScript codec reads it as U+FFFD and keeps the rest of the string. Neither codec depends on
anything outside its engine (no Google.Protobuf, no GDExtension).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

GODOT_OUT = Path("engine_plugins/godot/addons/metabrain/proto/metabrain_proto.gd")
CSHARP_OUT = Path("engine_plugins/unity/Runtime/Core/Generated/MetabrainProto.cs")

# FieldDescriptorProto.Type
DOUBLE, FLOAT, INT64, UINT64, INT32, FIXED64, FIXED32, BOOL, STRING, GROUP, MESSAGE, BYTES, UINT32, ENUM = range(1, 15)
SFIXED32, SFIXED64, SINT32, SINT64 = 15, 16, 17, 18
REPEATED = 3
WIRE = {
    DOUBLE: 1,
    FLOAT: 5,
    INT64: 0,
    UINT64: 0,
    INT32: 0,
    FIXED64: 1,
    FIXED32: 5,
    BOOL: 0,
    STRING: 2,
    MESSAGE: 2,
    BYTES: 2,
    UINT32: 0,
    ENUM: 0,
    SFIXED32: 5,
    SFIXED64: 1,
    SINT32: 0,
    SINT64: 0,
}
SCALAR_NUMERIC = {
    DOUBLE,
    FLOAT,
    INT64,
    UINT64,
    INT32,
    FIXED64,
    FIXED32,
    BOOL,
    UINT32,
    ENUM,
    SFIXED32,
    SFIXED64,
    SINT32,
    SINT64,
}


GD_KEYWORDS = frozenset(
    [
        "if",
        "elif",
        "else",
        "for",
        "while",
        "match",
        "when",
        "break",
        "continue",
        "pass",
        "return",
        "class",
        "class_name",
        "extends",
        "is",
        "in",
        "as",
        "self",
        "signal",
        "func",
        "static",
        "const",
        "enum",
        "var",
        "breakpoint",
        "preload",
        "await",
        "yield",
        "assert",
        "void",
        "super",
        "trait",
        "namespace",
        "not",
        "and",
        "or",
        "true",
        "false",
        "null",
        "PI",
        "TAU",
        "INF",
        "NAN",
    ]
)


@dataclass
class Field:
    name: str
    number: int
    type: int
    repeated: bool
    type_name: str  # short class name for messages/enums
    oneof: str | None
    map_key: Field | None = None
    map_value: Field | None = None

    @property
    def is_map(self) -> bool:
        return self.map_key is not None

    @property
    def packed(self) -> bool:
        return self.repeated and self.type in SCALAR_NUMERIC


@dataclass
class Message:
    name: str
    fields: list[Field]
    comment: str = ""


@dataclass
class Enum:
    name: str
    values: list[tuple[str, int]]


# Godot's built-in and global class names a generated class may not take: such names get a trailing "_".
GD_TYPE_CLASHES = frozenset(
    [
        "Error",
        "Color",
        "Object",
        "Node",
        "Resource",
        "String",
        "Array",
        "Dictionary",
        "Vector2",
        "Vector3",
        "Vector4",
        "Quaternion",
        "Transform2D",
        "Transform3D",
        "Basis",
        "Plane",
        "AABB",
        "Rect2",
        "Callable",
        "Signal",
        "Time",
        "OS",
        "Engine",
        "Input",
        "Variant",
        "int",
        "float",
        "bool",
    ]
)


def type_name(name: str) -> str:
    return name + "_" if name in GD_TYPE_CLASHES else name


def _short(type_name_: str, package: str) -> str:
    name = type_name_.lstrip(".")
    if name.startswith(package + "."):
        name = name[len(package) + 1 :]
    return type_name(name.replace(".", "_"))


def parse(descriptor_set: bytes) -> tuple[str, list[Message], list[Enum], str]:
    fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set)
    file = fds.file[-1]
    pkg = file.package
    messages: list[Message] = []
    enums: list[Enum] = [Enum(type_name(e.name), [(v.name, v.number) for v in e.value]) for e in file.enum_type]
    comments = {tuple(loc.path): loc.leading_comments.strip() for loc in file.source_code_info.location}

    def visit(msg: descriptor_pb2.DescriptorProto, prefix: str, path: tuple[int, ...]) -> None:
        name = type_name(prefix + msg.name)
        maps = {n.name: n for n in msg.nested_type if n.options.map_entry}
        for i, nested in enumerate(msg.nested_type):
            if not nested.options.map_entry:
                visit(nested, name + "_", (*path, 3, i))
        for e in msg.enum_type:
            enums.append(Enum(name + "_" + e.name, [(v.name, v.number) for v in e.value]))
        fields = []
        for f in sorted(msg.field, key=lambda f: f.number):
            oneof = msg.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") and not f.proto3_optional else None
            fld = Field(
                f.name + "_" if f.name in GD_KEYWORDS else f.name,
                f.number,
                f.type,
                f.label == REPEATED,
                _short(f.type_name, pkg) if f.type_name else "",
                oneof,
            )
            entry_name = f.type_name.rsplit(".", 1)[-1]
            if f.type == MESSAGE and entry_name in maps:
                entry = maps[entry_name]
                k, v = sorted(entry.field, key=lambda x: x.number)
                fld.map_key = Field(k.name, 1, k.type, False, "", None)
                fld.map_value = Field(v.name, 2, v.type, False, _short(v.type_name, pkg) if v.type_name else "", None)
            fields.append(fld)
        messages.append(Message(name, fields, comments.get(path, "")))

    for i, m in enumerate(file.message_type):
        visit(m, "", (4, i))
    return pkg, messages, enums, file.name


# ----------------------------------------------------------------------------------------------
# GDScript
# ----------------------------------------------------------------------------------------------

_GD_RUNTIME = """
## Wire writer: a growable byte buffer with protobuf primitives.
class Writer:
	var buf: StreamPeerBuffer = StreamPeerBuffer.new()
	var _child: Writer = null

	## A cleared scratch writer for a nested message, reused (no allocation per message).
	func child() -> Writer:
		if _child == null:
			_child = Writer.new()
		else:
			_child.buf.clear()
		return _child

	func varint(v: int) -> void:
		if v >= 0 and v < 0x80:
			buf.put_u8(v)
			return
		# GDScript ints are signed 64-bit: shift logically by masking after the arithmetic shift.
		while true:
			var low: int = v & 0x7F
			v = (v >> 7) & 0x01FFFFFFFFFFFFFF
			if v == 0:
				buf.put_u8(low)
				return
			buf.put_u8(low | 0x80)

	func tag(field: int, wire: int) -> void:
		varint((field << 3) | wire)

	func zigzag(v: int) -> void:
		varint((v << 1) ^ (v >> 63))

	func fixed32(v: int) -> void:
		buf.put_u32(v & 0xFFFFFFFF)

	func fixed64(v: int) -> void:
		buf.put_64(v)

	func float32(v: float) -> void:
		buf.put_float(v)

	func float64(v: float) -> void:
		buf.put_double(v)

	func bytes(b: PackedByteArray) -> void:
		varint(b.size())
		buf.put_data(b)

	## A map's keys in order (code points for strings, the order of their UTF-8 bytes too).
	static func sorted_keys(d: Dictionary) -> Array:
		var keys: Array = d.keys()
		keys.sort()
		return keys

	## Bytes kept from a decoded message (its unknown fields), written as they came.
	func raw(b: PackedByteArray) -> void:
		buf.put_data(b)

	## A nested message from a child writer: its length, then its bytes.
	func nested(w: Writer) -> void:
		var b: PackedByteArray = w.buf.data_array
		varint(b.size())
		buf.put_data(b)

	func data() -> PackedByteArray:
		return buf.data_array

	static func is_set_float(v: float) -> bool:
		# Written unless it is +0.0: -0.0 has its sign bit set and is written, as upb does.
		return v != 0.0 or is_inf(1.0 / v) and 1.0 / v < 0.0


## Wire reader over a PackedByteArray.
class Reader:
	var data: PackedByteArray
	var pos: int = 0
	var failed: bool = false
	var last_key: int = 0

	func _init(bytes_in: PackedByteArray) -> void:
		data = bytes_in

	func varint() -> int:
		var result: int = 0
		var shift: int = 0
		while pos < data.size():
			var b: int = data[pos]
			pos += 1
			if shift < 64:
				result |= (b & 0x7F) << shift
			if b < 0x80:
				return result
			shift += 7
		failed = true
		return 0

	func int32() -> int:
		# int32 and enums arrive as 64-bit varints; keep the low 32 bits, signed.
		var v: int = varint() & 0xFFFFFFFF
		return v - 0x100000000 if v >= 0x80000000 else v

	func zigzag() -> int:
		var v: int = varint()
		return ((v >> 1) & 0x7FFFFFFFFFFFFFFF) ^ -(v & 1)

	func fixed32() -> int:
		if pos + 4 > data.size():
			failed = true
			pos = data.size()
			return 0
		var v: int = data.decode_u32(pos)
		pos += 4
		return v

	func sfixed32() -> int:
		var v: int = fixed32()
		return v - 0x100000000 if v >= 0x80000000 else v

	func fixed64() -> int:
		if pos + 8 > data.size():
			failed = true
			pos = data.size()
			return 0
		var v: int = data.decode_s64(pos)
		pos += 8
		return v

	func float32() -> float:
		if pos + 4 > data.size():
			failed = true
			pos = data.size()
			return 0.0
		var v: float = data.decode_float(pos)
		pos += 4
		return v

	func float64() -> float:
		if pos + 8 > data.size():
			failed = true
			pos = data.size()
			return 0.0
		var v: float = data.decode_double(pos)
		pos += 8
		return v

	func length() -> int:
		var n: int = varint()
		if n < 0 or pos + n > data.size():
			failed = true
			pos = data.size()
			return 0
		return n

	func bytes() -> PackedByteArray:
		var n: int = length()
		var out: PackedByteArray = data.slice(pos, pos + n)
		pos += n
		return out

	## A UTF-8 string. A Godot String cannot hold U+0000 (get_string_from_utf8 stops at a 0 byte and
	## String.chr(0) is U+FFFD), so each U+0000 becomes U+FFFD and the rest of the string is kept.
	func string() -> String:
		var b: PackedByteArray = bytes()
		if not b.has(0):
			return b.get_string_from_utf8()
		var parts: PackedStringArray = PackedStringArray()
		var start: int = 0
		var at: int = b.find(0)
		while at != -1:
			parts.append(b.slice(start, at).get_string_from_utf8())
			start = at + 1
			at = b.find(0, start)
		parts.append(b.slice(start).get_string_from_utf8())
		return String.chr(0xFFFD).join(parts)

	## A field's key; skip() reads the field number of the last one to match a group's end.
	func key() -> int:
		last_key = varint()
		return last_key

	func skip(wire: int) -> void:
		match wire:
			0:
				varint()
			1:
				pos += 8
			2:
				pos += length()
			3:
				_skip_group(last_key >> 3, 0)
			5:
				pos += 4
			_:
				failed = true
				pos = data.size()
		if pos > data.size():
			failed = true
			pos = data.size()

	## Deprecated groups are skipped as the spec says: up to the end tag of the same field number
	## (nested groups too, at most 100 deep, as upb allows).
	func _skip_group(field: int, depth: int) -> void:
		if depth >= 100:
			failed = true
			pos = data.size()
			return
		while not failed:
			if pos >= data.size():
				failed = true
				return
			var k: int = varint()
			var w: int = k & 7
			if w == 4:
				if k >> 3 != field:
					failed = true
					pos = data.size()
				return
			if w == 3:
				_skip_group(k >> 3, depth + 1)
			else:
				last_key = k
				skip(w)

"""

_GD_TYPES = {
    DOUBLE: ("float", "0.0"),
    FLOAT: ("float", "0.0"),
    INT64: ("int", "0"),
    UINT64: ("int", "0"),
    INT32: ("int", "0"),
    FIXED64: ("int", "0"),
    FIXED32: ("int", "0"),
    BOOL: ("bool", "false"),
    STRING: ("String", '""'),
    BYTES: ("PackedByteArray", "PackedByteArray()"),
    UINT32: ("int", "0"),
    ENUM: ("int", "0"),
    SFIXED32: ("int", "0"),
    SFIXED64: ("int", "0"),
    SINT32: ("int", "0"),
    SINT64: ("int", "0"),
}
_GD_WRITE = {
    DOUBLE: "float64",
    FLOAT: "float32",
    INT64: "varint",
    UINT64: "varint",
    INT32: "varint",
    FIXED64: "fixed64",
    FIXED32: "fixed32",
    BOOL: "varint",
    UINT32: "varint",
    ENUM: "varint",
    SFIXED32: "fixed32",
    SFIXED64: "fixed64",
    SINT32: "zigzag",
    SINT64: "zigzag",
}
_GD_READ = {
    DOUBLE: "in_.float64()",
    FLOAT: "in_.float32()",
    INT64: "in_.varint()",
    UINT64: "in_.varint()",
    INT32: "in_.int32()",
    FIXED64: "in_.fixed64()",
    FIXED32: "in_.fixed32()",
    BOOL: "in_.varint() != 0",
    UINT32: "in_.varint() & 0xFFFFFFFF",
    ENUM: "in_.int32()",
    SFIXED32: "in_.sfixed32()",
    SFIXED64: "in_.fixed64()",
    SINT32: "in_.zigzag()",
    SINT64: "in_.zigzag()",
}


def _gd_type(f: Field) -> tuple[str, str]:
    if f.is_map:
        assert f.map_key is not None and f.map_value is not None
        return "Dictionary", "{}"
    if f.type == MESSAGE:
        base = f.type_name
        return (f"Array[{base}]", "[]") if f.repeated else (base, "null")
    t, default = _GD_TYPES[f.type]
    if f.repeated:
        return f"Array[{t}]", "[]"
    return t, default


def _gd_tag(w: str, number: int, wire: int) -> str:
    key = (number << 3) | wire
    # Most tags fit one byte: write it directly (a measurable share of encode time in GDScript).
    return f"{w}.buf.put_u8({key})" if key < 0x80 else f"{w}.tag({number}, {wire})"


def _gd_scalar_write(f: Field, expr: str, w: str = "out_") -> list[str]:
    if f.type == STRING:
        return [_gd_tag(w, f.number, 2), f"{w}.bytes({expr}.to_utf8_buffer())"]
    if f.type == BYTES:
        return [_gd_tag(w, f.number, 2), f"{w}.bytes({expr})"]
    value = f"(1 if {expr} else 0)" if f.type == BOOL else expr
    return [_gd_tag(w, f.number, WIRE[f.type]), f"{w}.{_GD_WRITE[f.type]}({value})"]


def _gd_is_set(f: Field, expr: str) -> str:
    if f.type in (DOUBLE, FLOAT):
        return f"Writer.is_set_float({expr})"
    if f.type == BOOL:
        return expr
    if f.type in (STRING, BYTES):
        return f"not {expr}.is_empty()"
    return f"{expr} != 0"


def _gd_read_scalar(f: Field) -> str:
    if f.type == STRING:
        return "in_.string()"
    if f.type == BYTES:
        return "in_.bytes()"
    return _GD_READ[f.type]


def _gd_message(m: Message) -> list[str]:
    out = [""]
    if m.comment:
        out += [f"## {line}".rstrip() for line in m.comment.splitlines()]
    out.append(f"class {m.name}:")
    for f in m.fields:
        t, default = _gd_type(f)
        if f.oneof is not None and f.type != MESSAGE:
            # A scalar in a oneof has explicit presence: assigning it sets it and clears the others.
            out += [
                f"\tvar _has_{f.name}: bool = false",
                f"\tvar {f.name}: {t} = {default}:",
                "\t\tset(value):",
                f"\t\t\t{f.name} = value",
                f"\t\t\t_has_{f.name} = true",
            ]
            out += ["\t\t\t" + x for x in _gd_clear_oneof(m, f)]
        else:
            out.append(f"\tvar {f.name}: {t} = {default}")
    out += [
        "\t## Fields this schema does not know, as they came on the wire; written back after the known ones.",
        "\tvar unknown_fields: PackedByteArray = PackedByteArray()",
    ]
    # write()
    out += ["", "\tfunc write(out_: Writer) -> void:"]
    body: list[str] = []
    for f in m.fields:
        n = f.name
        if f.is_map:
            assert f.map_key is not None and f.map_value is not None
            kt = _gd_type(f.map_key)[0]
            # Entries in key order, as upb's deterministic output writes them (not insertion order).
            body += [f"for k_: {kt} in Writer.sorted_keys({n}):", "\tvar e_: Writer = Writer.new()"]
            body += ["\t" + s for s in _gd_scalar_write(f.map_key, "k_", "e_")]
            if f.map_value.type == MESSAGE:
                body += [
                    "\tvar sub_: Writer = out_.child()",
                    f"\t{n}[k_].write(sub_)",
                    "\te_.buf.put_u8(18)",
                    "\te_.nested(sub_)",
                ]
            else:
                body += ["\t" + s for s in _gd_scalar_write(f.map_value, f"{n}[k_]", "e_")]
            body += [f"\t{_gd_tag('out_', f.number, 2)}", "\tout_.bytes(e_.data())"]
        elif f.type == MESSAGE and f.repeated:
            body += [
                f"for item_: {f.type_name} in {n}:",
                "\tvar sub_: Writer = out_.child()",
                "\titem_.write(sub_)",
                f"\t{_gd_tag('out_', f.number, 2)}",
                "\tout_.nested(sub_)",
            ]
        elif f.type == MESSAGE:
            body += [
                f"if {n} != null:",
                "\tvar sub_: Writer = out_.child()",
                f"\t{n}.write(sub_)",
                f"\t{_gd_tag('out_', f.number, 2)}",
                "\tout_.nested(sub_)",
            ]
        elif f.packed:
            et = _GD_TYPES[f.type][0]
            body += [f"if not {n}.is_empty():", "\tvar p_: Writer = Writer.new()", f"\tfor v_: {et} in {n}:"]
            value = "(1 if v_ else 0)" if f.type == BOOL else "v_"
            body += [
                f"\t\tp_.{_GD_WRITE[f.type]}({value})",
                f"\t{_gd_tag('out_', f.number, 2)}",
                "\tout_.bytes(p_.data())",
            ]
        elif f.repeated:
            body += [f"for v_: {_GD_TYPES[f.type][0]} in {n}:"] + ["\t" + s for s in _gd_scalar_write(f, "v_")]
        elif f.oneof is not None:
            body += [f"if _has_{n}:"]
            body += ["\t" + s for s in _gd_scalar_write(f, n)]
        else:
            body += [f"if {_gd_is_set(f, n)}:"] + ["\t" + s for s in _gd_scalar_write(f, n)]
    body += ["if not unknown_fields.is_empty():", "\tout_.raw(unknown_fields)"]
    out += ["\t\t" + s for s in body]
    # read()
    out += [
        "",
        "\t## Skips the field just keyed and keeps its bytes (key included) to write back.",
        "\tfunc _keep_unknown(in_: Reader, at_: int) -> void:",
        "\t\tin_.skip(in_.last_key & 7)",
        "\t\tif not in_.failed:",
        "\t\t\tunknown_fields.append_array(in_.data.slice(at_, in_.pos))",
        "",
        "\tfunc read(in_: Reader, end_: int) -> void:",
        "\t\twhile in_.pos < end_ and not in_.failed:",
        "\t\t\tvar at_: int = in_.pos",
        "\t\t\tvar key_: int = in_.key()",
        "\t\t\tvar wire_: int = key_ & 7",
        "\t\t\tmatch key_ >> 3:",
    ]
    for f in m.fields:
        n = f.name
        w = WIRE.get(f.type, 2)
        lines: list[str]
        if f.is_map:
            assert f.map_key is not None and f.map_value is not None
            lines = [
                "var e_end_: int = in_.length() + in_.pos",
                f"var mk_: {_gd_type(f.map_key)[0]} = {_gd_type(f.map_key)[1]}",
            ]
            if f.map_value.type == MESSAGE:
                lines.append(f"var mv_: {f.map_value.type_name} = {f.map_value.type_name}.new()")
            else:
                lines.append(f"var mv_: {_gd_type(f.map_value)[0]} = {_gd_type(f.map_value)[1]}")
            lines += [
                "while in_.pos < e_end_ and not in_.failed:",
                "\tvar ek_: int = in_.key()",
                "\tif ek_ >> 3 == 1:",
                f"\t\tmk_ = {_gd_read_scalar(f.map_key)}",
                "\telif ek_ >> 3 == 2:",
            ]
            if f.map_value.type == MESSAGE:
                lines += ["\t\tvar ml_: int = in_.length() + in_.pos", "\t\tmv_.read(in_, ml_)"]
            else:
                lines += [f"\t\tmv_ = {_gd_read_scalar(f.map_value)}"]
            lines += ["\telse:", "\t\tin_.skip(ek_ & 7)", f"{n}[mk_] = mv_"]
            lines = _gd_if_wire(2, lines)
        elif f.type == MESSAGE:
            # A singular sub-message seen twice is merged, as the spec says (scalars overwritten,
            # repeated fields appended); a repeated one appends a new element.
            make = f"{f.type_name}.new()" if f.repeated else f"{n} if {n} != null else {f.type_name}.new()"
            lines = [
                "var m_end_: int = in_.length() + in_.pos",
                f"var m_: {f.type_name} = {make}",
                "m_.read(in_, m_end_)",
            ]
            if f.repeated:
                lines.append(f"{n}.append(m_)")
            else:
                lines.append(f"{n} = m_")
                if f.oneof:
                    lines += _gd_clear_oneof(m, f)
            lines = _gd_if_wire(2, lines)
        elif f.packed:
            lines = [
                "if wire_ == 2:",
                "\tvar p_end_: int = in_.length() + in_.pos",
                "\twhile in_.pos < p_end_ and not in_.failed:",
                f"\t\t{n}.append({_gd_read_scalar(f)})",
                f"elif wire_ == {w}:",
                f"\t{n}.append({_gd_read_scalar(f)})",
                "else:",
                "\t_keep_unknown(in_, at_)",
            ]
        elif f.repeated:
            lines = _gd_if_wire(w, [f"{n}.append({_gd_read_scalar(f)})"])
        else:
            lines = [f"{n} = {_gd_read_scalar(f)}"]
            if f.oneof:
                lines += _gd_clear_oneof(m, f)
            lines = _gd_if_wire(w, lines)
        out.append(f"\t\t\t\t{f.number}:")
        out += ["\t\t\t\t\t" + s for s in lines]
    out += ["\t\t\t\t_:", "\t\t\t\t\t_keep_unknown(in_, at_)"]
    # convenience
    out += [
        "",
        "\tfunc encode() -> PackedByteArray:",
        "\t\tvar out_: Writer = Writer.new()",
        "\t\twrite(out_)",
        "\t\treturn out_.data()",
        "",
        f"\tstatic func decode(bytes_in: PackedByteArray) -> {m.name}:",
        f"\t\tvar m_: {m.name} = {m.name}.new()",
        "\t\tvar in_: Reader = Reader.new(bytes_in)",
        "\t\tm_.read(in_, bytes_in.size())",
        "\t\treturn null if in_.failed else m_",
    ]
    oneofs = sorted({f.oneof for f in m.fields if f.oneof})
    for o in oneofs:
        names = [f.name for f in m.fields if f.oneof == o]
        out += [
            "",
            f"\t## Which field of the oneof `{o}` is set: one of {', '.join(names)}, or an empty string.",
            f"\tfunc which_{o}() -> String:",
        ]
        for f in m.fields:
            if f.oneof == o:
                cond = f"{f.name} != null" if f.type == MESSAGE else f"_has_{f.name}"
                out += [f"\t\tif {cond}:", f'\t\t\treturn "{f.name}"']
        out.append('\t\treturn ""')
    return out


def _gd_clear_oneof(m: Message, f: Field) -> list[str]:
    """Decoding one member of a oneof clears the others (the last one on the wire_ wins)."""
    out = []
    for o in m.fields:
        if o.oneof == f.oneof and o is not f:
            out.append(f"{o.name} = null" if o.type == MESSAGE else f"_has_{o.name} = false")
    return out


def _gd_if_wire(wire_: int, lines: list[str]) -> list[str]:
    # A known field with another wire type is an unknown field to the spec (upb keeps it as one).
    return [f"if wire_ == {wire_}:", *("\t" + x for x in lines), "else:", "\t_keep_unknown(in_, at_)"]


def generate_gdscript(descriptor_set: bytes, class_name: str = "MetaBrainProto") -> str:
    """The wire runtime (Writer, Reader) lives in MetaBrainProto; other schemas' files reuse it."""
    pkg, messages, enums, source = parse(descriptor_set)
    out = [
        f"# Generated by proto/generate.py from {source} ({pkg}); do not edit.",
        "# Typed GDScript protobuf codec: encode() -> PackedByteArray, decode(bytes) -> message or null.",
        f"class_name {class_name}",
        "extends RefCounted",
        "",
    ]
    for e in enums:
        out.append(f"enum {e.name} {{")
        out += [f"\t{n} = {v}," for n, v in e.values]
        out += ["}", ""]
    if class_name == "MetaBrainProto":
        out.append(_GD_RUNTIME.strip("\n"))
    body: list[str] = []
    for m in messages:
        body += _gd_message(m)
    text = "\n".join(body)
    if class_name != "MetaBrainProto":
        text = re.sub(r"\b(Writer|Reader)\b", r"MetaBrainProto.\1", text)
    return "\n".join(out) + text + "\n"
