// What Unity's WebGL runtime (Emscripten) gives a .jslib, enough to link and call one in a plain page:
// LibraryManager, mergeInto, autoAddDeps, a heap (HEAPU8 over wasm memory, _malloc) and the string
// helpers. Linking follows Emscripten: "$"-prefixed entries become globals, each function is re-created
// from its source text (so a jslib that closes over its own file's scope fails here as in a real
// build) and is exported with a leading underscore; "__deps" and other "__" entries are metadata.
(function () {
  "use strict";
  var memory = new WebAssembly.Memory({ initial: 256 }); // 16 MiB
  var top = 16;
  window.HEAPU8 = new Uint8Array(memory.buffer);
  window._malloc = function (n) {
    var p = top;
    top = (top + n + 7) & ~7;
    if (top > HEAPU8.length) throw new Error("harness heap exhausted");
    return p;
  };
  window.UTF8ToString = function (ptr) {
    var end = ptr;
    while (HEAPU8[end]) end++;
    return new TextDecoder().decode(HEAPU8.subarray(ptr, end));
  };
  window.lengthBytesUTF8 = function (s) { return new TextEncoder().encode(s).length; };
  window.stringToUTF8 = function (s, ptr, maxBytes) {
    var b = new TextEncoder().encode(s), n = Math.min(b.length, maxBytes - 1);
    HEAPU8.set(b.subarray(0, n), ptr);
    HEAPU8[ptr + n] = 0;
    return n;
  };
  window.LibraryManager = { library: {} };
  window.mergeInto = function (target, lib) { for (var k in lib) target[k] = lib[k]; };
  window.autoAddDeps = function (lib, name) {
    for (var k in lib) {
      if (typeof lib[k] === "function" && k.indexOf("__") < 0) (lib[k + "__deps"] = lib[k + "__deps"] || []).push(name);
    }
  };
  window.linkLibrary = function () {
    var lib = LibraryManager.library, exports = {};
    for (var k in lib) {
      if (k.indexOf("__") >= 0) continue;
      if (k[0] === "$") window[k.slice(1)] = JSON.parse(JSON.stringify(lib[k]));
      else exports["_" + k] = (0, eval)("(" + lib[k].toString() + ")");
    }
    for (var f in exports) {
      var deps = lib[f.slice(1) + "__deps"] || [];
      deps.forEach(function (d) { if (!(d.slice(1) in window)) throw new Error(f + " depends on missing " + d); });
    }
    return exports;
  };
})();
