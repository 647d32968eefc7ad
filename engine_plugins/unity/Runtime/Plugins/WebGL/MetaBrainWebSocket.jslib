// The browser's WebSocket for MetaBrain.Core's BrowserWebSocketTransport in a Unity WebGL player.
// Polled, never calling back into C#: the browser receives into a per-socket inbox, the game thread
// takes messages from it (no dynCall, no threads). Emscripten copies these functions into the build by
// their source text, so they share state only through $MetaBrainWs.
var MetaBrainWebSocketLibrary = {
  $MetaBrainWs: { next: 1, sockets: {} },

  // Returns the socket's handle at once; it connects in the background.
  MetaBrainWs_Open: function (urlPtr) {
    var url = UTF8ToString(urlPtr);
    var id = MetaBrainWs.next++;
    var s = { ws: null, inbox: [], state: 0, reason: "", closing: false };
    MetaBrainWs.sockets[id] = s;
    try {
      s.ws = new WebSocket(url);
    } catch (e) {
      s.state = 3;
      s.reason = "cannot open " + url + ": " + e.message;
      return id;
    }
    s.ws.binaryType = "arraybuffer";
    s.ws.onopen = function () { s.state = 1; };
    s.ws.onmessage = function (e) {
      if (e.data instanceof ArrayBuffer) s.inbox.push(new Uint8Array(e.data));
    };
    s.ws.onerror = function () { if (!s.reason) s.reason = "WebSocket error (the browser gives no detail)"; };
    s.ws.onclose = function (e) {
      s.state = 3;
      var why = s.closing ? "closed by the client" : e.code === 1006 ? "connection lost" : "closed by the sidecar";
      s.reason = why + " (" + e.code + (e.reason ? " " + e.reason : "") + ")" + (s.reason ? "; " + s.reason : "");
    };
    return id;
  },

  // 0 connecting, 1 open, 2 closing, 3 closed (the WebSocket's readyState; 3 for an unknown handle).
  MetaBrainWs_State: function (id) {
    var s = MetaBrainWs.sockets[id];
    if (!s) return 3;
    return s.state === 3 || !s.ws ? 3 : s.ws.readyState;
  },

  MetaBrainWs_Buffered: function (id) {
    var s = MetaBrainWs.sockets[id];
    return s && s.ws ? s.ws.bufferedAmount : 0;
  },

  // Copies the bytes out of the heap before sending (the heap may grow and move). 0, or -1 if not open.
  MetaBrainWs_Send: function (id, ptr, length) {
    var s = MetaBrainWs.sockets[id];
    if (!s || !s.ws || s.ws.readyState !== 1) return -1;
    s.ws.send(HEAPU8.slice(ptr, ptr + length));
    return 0;
  },

  // The next message's length in bytes, or -1 when none is waiting.
  MetaBrainWs_NextLength: function (id) {
    var s = MetaBrainWs.sockets[id];
    return s && s.inbox.length ? s.inbox[0].length : -1;
  },

  // Moves the next message into the buffer; its length, or -1 (and it stays) if it does not fit.
  MetaBrainWs_Receive: function (id, ptr, capacity) {
    var s = MetaBrainWs.sockets[id];
    if (!s || !s.inbox.length || s.inbox[0].length > capacity) return -1;
    var m = s.inbox.shift();
    HEAPU8.set(m, ptr);
    return m.length;
  },

  // Writes the reason (UTF-8, NUL-terminated, cut to capacity) and returns its full length in bytes.
  MetaBrainWs_CloseReason: function (id, ptr, capacity) {
    var s = MetaBrainWs.sockets[id];
    var reason = s ? s.reason : "unknown socket";
    if (capacity > 0) stringToUTF8(reason, ptr, capacity);
    return lengthBytesUTF8(reason);
  },

  MetaBrainWs_Close: function (id, code) {
    var s = MetaBrainWs.sockets[id];
    if (!s || !s.ws || s.ws.readyState >= 2) return;
    s.closing = true;
    s.ws.close(code);
  },

  MetaBrainWs_Free: function (id) {
    var s = MetaBrainWs.sockets[id];
    if (!s) return;
    if (s.ws) {
      s.ws.onopen = s.ws.onmessage = s.ws.onerror = s.ws.onclose = null;
      if (s.ws.readyState < 2) s.ws.close(1000);
    }
    delete MetaBrainWs.sockets[id];
  }
};

autoAddDeps(MetaBrainWebSocketLibrary, "$MetaBrainWs");
mergeInto(LibraryManager.library, MetaBrainWebSocketLibrary);
