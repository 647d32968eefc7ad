// Random and edge-case messages of the schema, made and encoded by protobufjs (not by the project's
// code): the engine codecs must decode each and write what Python's protobuf writes for it.
//   node generate.js PROTO_DIR COUNT SEED OUT.json
"use strict";
const path = require("path");
const fs = require("fs");
const protobuf = require("protobufjs");

const [protoDir, countArg, seedArg, outPath] = process.argv.slice(2);
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => path.join(protoDir, target);
root.loadSync(["metabrain/v1/metabrain.proto", "testdata/codec_test.proto"], { keepCase: true });
root.resolveAll();

// A small seeded generator (mulberry32): the same seed gives the same messages.
let state = Number(seedArg) >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const chance = (p) => rand() < p;

const Long = protobuf.util.Long;
const STRINGS = ["", "a", "héllo ✓", "🎮 player", "x".repeat(200), "\u00ff\u0100", "line\nbreak", "tab\tq"];
const FLOATS = [0, -0, 1.5, -2.25, 3.4028234663852886e38, -3.4028234663852886e38, 1e-45, Infinity, -Infinity];
const DOUBLES = [0, -0, Math.PI, 1e300, -1e-300, 5e-324, Number.MAX_VALUE, -Infinity, Infinity, 0.1];

function int32() {
  return pick([0, 1, -1, 127, 128, 300, -300, 2147483647, -2147483648, Math.floor(rand() * 1e6) - 5e5]);
}
function uint32() {
  return pick([0, 1, 127, 128, 16383, 16384, 4294967295, Math.floor(rand() * 4294967296)]);
}
function long(unsigned) {
  const edges = unsigned
    ? [Long.UZERO, Long.fromInt(1, true), Long.MAX_UNSIGNED_VALUE, Long.fromString("9007199254740993", true)]
    : [Long.ZERO, Long.fromInt(-1), Long.MAX_VALUE, Long.MIN_VALUE, Long.fromString("-9007199254740993")];
  if (chance(0.5)) return pick(edges);
  return Long.fromBits((rand() * 4294967296) >>> 0, (rand() * 4294967296) >>> 0, unsigned);
}
function float32() {
  return chance(0.5) ? pick(FLOATS) : Math.fround((rand() - 0.5) * 10 ** Math.floor(rand() * 12 - 4));
}
function double() {
  return chance(0.5) ? pick(DOUBLES) : (rand() - 0.5) * 10 ** Math.floor(rand() * 40 - 20);
}
function bytes() {
  const n = pick([0, 1, 3, 17, 300]);
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

function scalar(field) {
  switch (field.type) {
    case "double": return double();
    case "float": return float32();
    case "int32": case "sint32": case "sfixed32": return int32();
    case "uint32": case "fixed32": return uint32();
    case "int64": case "sint64": case "sfixed64": return long(false);
    case "uint64": case "fixed64": return long(true);
    case "bool": return chance(0.5);
    case "string": return pick(STRINGS);
    case "bytes": return bytes();
    default: break;
  }
  if (field.resolvedType instanceof protobuf.Enum) {
    const values = Object.values(field.resolvedType.values);
    return chance(0.9) ? pick(values) : pick([7, 99, 1000]); // open enums: unknown values too
  }
  throw new Error("no generator for " + field.type);
}

function value(field, depth) {
  if (field.resolvedType instanceof protobuf.Type) return message(field.resolvedType, depth + 1);
  return scalar(field);
}

function message(type, depth) {
  const obj = {};
  const fill = depth > 3 ? 0.15 : 0.5;
  const oneofChosen = new Set();
  for (const field of type.fieldsArray) {
    if (field.partOf) {
      if (oneofChosen.has(field.partOf.name) || !chance(0.3)) continue;
      oneofChosen.add(field.partOf.name);
      obj[field.name] = value(field, depth);
      continue;
    }
    if (!chance(fill)) continue;
    if (field.map) {
      const m = {};
      for (let i = 0, n = pick([0, 1, 3]); i < n; i++) {
        const key = field.keyType === "string" ? pick(STRINGS) + i : String(i);
        m[key] = value(field, depth);
      }
      obj[field.name] = m;
    } else if (field.repeated) {
      obj[field.name] = Array.from({ length: pick([0, 1, 2, 5]) }, () => value(field, depth));
    } else {
      obj[field.name] = value(field, depth);
    }
  }
  return type.fromObject(obj);
}

const TYPES = ["metabrain.testdata.AllTypes", "metabrain.v1.SessionRequest", "metabrain.v1.SessionResponse"];
const out = [];
for (let i = 0; i < Number(countArg); i++) {
  const name = TYPES[i % TYPES.length];
  const type = root.lookupType(name);
  const msg = message(type, 0); // not verify(): it refuses enum values the schema does not name (proto3 keeps them)
  out.push({ name: "pbjs_" + i, type: name, hex: Buffer.from(type.encode(msg).finish()).toString("hex") });
}
fs.writeFileSync(outPath, JSON.stringify(out));
console.log("protobufjs " + require("protobufjs/package.json").version + ": " + out.length + " messages");
