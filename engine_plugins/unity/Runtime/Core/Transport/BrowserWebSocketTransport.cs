// The transport in a WebGL player: the browser's WebSocket through Runtime/Plugins/WebGL/MetaBrainWebSocket.jslib.
// A WebGL player has no threads and no ClientWebSocket; the browser receives on its own, the jslib keeps
// the messages, and the client polls them from the game thread like any other transport. Browsers
// cannot set headers on a WebSocket, so the token travels as the URL's `token` query parameter (the
// sidecar accepts either), and the sidecar must allow the page's origin (`--allowed-origin`) when it
// restricts origins.
#if UNITY_WEBGL && !UNITY_EDITOR
using System;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace MetaBrain.Core
{
    public sealed class BrowserWebSocketTransport : IClientTransport
    {
        // The jslib's functions (tests/webgl drives the same ones in headless Chromium).
        [DllImport("__Internal")] static extern int MetaBrainWs_Open(string url);
        [DllImport("__Internal")] static extern int MetaBrainWs_State(int socket);
        [DllImport("__Internal")] static extern int MetaBrainWs_Buffered(int socket);
        [DllImport("__Internal")] static extern int MetaBrainWs_Send(int socket, IntPtr data, int length);
        [DllImport("__Internal")] static extern int MetaBrainWs_NextLength(int socket);
        [DllImport("__Internal")] static extern int MetaBrainWs_Receive(int socket, IntPtr buffer, int capacity);
        [DllImport("__Internal")] static extern int MetaBrainWs_CloseReason(int socket, IntPtr buffer, int capacity);
        [DllImport("__Internal")] static extern void MetaBrainWs_Close(int socket, int code);
        [DllImport("__Internal")] static extern void MetaBrainWs_Free(int socket);

        // Bytes the browser may hold unsent before the client keeps (and drops) frames itself.
        const int MaxBuffered = 1 << 16;
        const int Connecting = 0, Open = 1;

        readonly int _socket;
        readonly string _url;
        readonly TimeSpan _connectTimeout;
        readonly Stopwatch _since = Stopwatch.StartNew();
        string _reason = "";
        bool _closed, _freed;

        public BrowserWebSocketTransport(string url, string token, TimeSpan connectTimeout)
        {
            _url = url;
            _connectTimeout = connectTimeout;
            if (!string.IsNullOrEmpty(token))
                url += (url.IndexOf('?') >= 0 ? "&" : "?") + "token=" + Uri.EscapeDataString(token);
            _socket = MetaBrainWs_Open(url);
        }

        public TransportState State
        {
            get
            {
                if (_closed) return TransportState.Closed;
                int s = MetaBrainWs_State(_socket);
                if (s == Open) return TransportState.Open;
                if (s == Connecting)
                {
                    if (_since.Elapsed < _connectTimeout) return TransportState.Connecting;
                    Finish("no WebSocket handshake from " + _url + " within " + _connectTimeout.TotalSeconds + " s");
                    MetaBrainWs_Close(_socket, 1000);
                    return TransportState.Closed;
                }
                Finish(ReadCloseReason());
                return TransportState.Closed;
            }
        }

        public string CloseReason { get { return _reason; } }
        public bool CanSend { get { return State == TransportState.Open && MetaBrainWs_Buffered(_socket) < MaxBuffered; } }

        public void Send(byte[] message)
        {
            if (State != TransportState.Open) return;
            var pin = GCHandle.Alloc(message, GCHandleType.Pinned);
            try { MetaBrainWs_Send(_socket, pin.AddrOfPinnedObject(), message.Length); }
            finally { pin.Free(); }
        }

        public bool TryReceive(out byte[] message)
        {
            message = null;
            if (_freed) return false;
            int length = MetaBrainWs_NextLength(_socket);
            if (length < 0) return false;
            message = new byte[length];
            var pin = GCHandle.Alloc(message, GCHandleType.Pinned);
            try { MetaBrainWs_Receive(_socket, pin.AddrOfPinnedObject(), length); }
            finally { pin.Free(); }
            return true;
        }

        public void Close()
        {
            if (_closed) return;
            Finish("closed by the client");
            MetaBrainWs_Close(_socket, 1000);
        }

        public void Dispose()
        {
            Close();
            if (!_freed) { _freed = true; MetaBrainWs_Free(_socket); }
        }

        void Finish(string reason)
        {
            if (_closed) return;
            _reason = reason;
            _closed = true;
        }

        string ReadCloseReason()
        {
            int length = MetaBrainWs_CloseReason(_socket, IntPtr.Zero, 0);
            var bytes = new byte[length + 1];  // and the NUL the jslib writes
            var pin = GCHandle.Alloc(bytes, GCHandleType.Pinned);
            try { MetaBrainWs_CloseReason(_socket, pin.AddrOfPinnedObject(), bytes.Length); }
            finally { pin.Free(); }
            var reason = Encoding.UTF8.GetString(bytes, 0, length);
            return reason.Length > 0 ? reason : "the WebSocket is closing";
        }
    }
}
#endif
