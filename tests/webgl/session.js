// One session through the jslib, calling it as MetaBrain.Core's BrowserWebSocketTransport and
// MetaBrainClient do from a WebGL player's game loop: open, poll the state, send the hello, then each
// game frame send a frame (when the browser's buffer allows) and take every message that has arrived.
// Messages go back to the test as base64 for the protobuf decoder on the Python side.
window.metabrainSession = async function (url, helloB64, framesB64, hz) {
  "use strict";
  var lib = linkLibrary();
  var bytes = function (b64) { return Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); }); };
  var b64 = function (u8) { var s = ""; for (var i = 0; i < u8.length; i++) s += String.fromCharCode(u8[i]); return btoa(s); };
  var cstring = function (s) {
    var b = new TextEncoder().encode(s), p = _malloc(b.length + 1);
    HEAPU8.set(b, p);
    HEAPU8[p + b.length] = 0;
    return p;
  };
  var send = function (id, data) {
    var p = _malloc(data.length);
    HEAPU8.set(data, p);
    return lib._MetaBrainWs_Send(id, p, data.length);
  };
  var reason = function (id) {
    var n = lib._MetaBrainWs_CloseReason(id, 0, 0), p = _malloc(n + 1);
    lib._MetaBrainWs_CloseReason(id, p, n + 1);
    return UTF8ToString(p);
  };
  var frame = function () { return new Promise(function (r) { setTimeout(r, 1000 / hz); }); };
  var received = [], sent = 0, held = 0;
  var drain = function (id) {
    for (;;) {
      var n = lib._MetaBrainWs_NextLength(id);
      if (n < 0) return;
      var p = _malloc(n);
      if (lib._MetaBrainWs_Receive(id, p, n) !== n) throw new Error("Receive returned another length");
      received.push(b64(HEAPU8.slice(p, p + n)));
    }
  };

  var id = lib._MetaBrainWs_Open(cstring(url));
  var start = performance.now();
  while (lib._MetaBrainWs_State(id) === 0 && performance.now() - start < 5000) await frame();
  if (lib._MetaBrainWs_State(id) !== 1) return { opened: false, reason: reason(id), received: received };
  if (send(id, bytes(helloB64)) !== 0) throw new Error("hello not sent");
  for (var i = 0; i < framesB64.length; i++) {
    await frame();
    drain(id);
    if (lib._MetaBrainWs_Buffered(id) < 65536) { send(id, bytes(framesB64[i])); sent++; } else held++;
  }
  start = performance.now();
  while (received.length < sent + 1 && performance.now() - start < 10000) { await frame(); drain(id); }
  var stateBeforeClose = lib._MetaBrainWs_State(id);
  lib._MetaBrainWs_Close(id, 1000);
  start = performance.now();
  while (lib._MetaBrainWs_State(id) !== 3 && performance.now() - start < 5000) await frame();
  drain(id);
  var result = {
    opened: true, sent: sent, held: held, received: received, stateBeforeClose: stateBeforeClose,
    stateAfterClose: lib._MetaBrainWs_State(id), reason: reason(id)
  };
  lib._MetaBrainWs_Free(id);
  result.stateAfterFree = lib._MetaBrainWs_State(id);
  result.sendAfterFree = lib._MetaBrainWs_Send(id, 0, 0);
  return result;
};

// A sidecar that is not there: the socket closes, with a reason the client can show.
window.metabrainUnreachable = async function (url) {
  "use strict";
  var lib = linkLibrary();
  var b = new TextEncoder().encode(url), p = _malloc(b.length + 1);
  HEAPU8.set(b, p);
  HEAPU8[p + b.length] = 0;
  var id = lib._MetaBrainWs_Open(p), start = performance.now();
  while (lib._MetaBrainWs_State(id) !== 3 && performance.now() - start < 10000) await new Promise(function (r) { setTimeout(r, 10); });
  var n = lib._MetaBrainWs_CloseReason(id, 0, 0), q = _malloc(n + 1);
  lib._MetaBrainWs_CloseReason(id, q, n + 1);
  var out = { state: lib._MetaBrainWs_State(id), reason: UTF8ToString(q), nextLength: lib._MetaBrainWs_NextLength(id) };
  lib._MetaBrainWs_Free(id);
  return out;
};
