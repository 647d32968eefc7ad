// The seam between the session client and the network: one binary WebSocket message at a time, polled
// from the game thread and never blocking it. The client chooses the implementation at build time
// (ClientTransports.Connect): System.Net.WebSockets everywhere it exists, the browser's WebSocket through
// a .jslib in a WebGL player (which has neither ClientWebSocket nor threads).
using System;

namespace MetaBrain.Core
{
    public enum TransportState { Connecting, Open, Closed }

    /// <summary>A WebSocket connection as the client drives it: started connecting by its constructor,
    /// then polled. Every member returns at once.</summary>
    public interface IClientTransport : IDisposable
    {
        TransportState State { get; }
        /// <summary>Why it closed, for people (set before State turns Closed).</summary>
        string CloseReason { get; }
        /// <summary>Whether a Send now would go out without queueing behind earlier messages.</summary>
        bool CanSend { get; }
        /// <summary>Send one binary message (ignored unless Open).</summary>
        void Send(byte[] message);
        /// <summary>The next message received, in order. Messages received before the close are still
        /// returned after State turns Closed.</summary>
        bool TryReceive(out byte[] message);
        /// <summary>Close the connection (State turns Closed).</summary>
        void Close();
    }

    /// <summary>Opens a connection to a sidecar's WebSocket URL with a bearer token (empty: none).</summary>
    public delegate IClientTransport TransportFactory(string url, string token, TimeSpan connectTimeout);

    public static class ClientTransports
    {
        /// <summary>The platform's transport: chosen when the player is built.</summary>
        public static IClientTransport Connect(string url, string token, TimeSpan connectTimeout)
        {
#if UNITY_WEBGL && !UNITY_EDITOR
            return new BrowserWebSocketTransport(url, token, connectTimeout);
#else
            return new ClientWebSocketTransport(url, token, connectTimeout);
#endif
        }
    }
}
