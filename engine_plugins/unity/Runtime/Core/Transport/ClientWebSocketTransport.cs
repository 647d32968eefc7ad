// The transport on every platform with System.Net.WebSockets (desktop, mobile, consoles, the editor):
// connect, send and receive run on a background task; the game thread only enqueues and dequeues.
#if !UNITY_WEBGL || UNITY_EDITOR
using System;
using System.Collections.Concurrent;
using System.IO;
using System.Net.WebSockets;
using System.Threading;
using System.Threading.Tasks;

namespace MetaBrain.Core
{
    public sealed class ClientWebSocketTransport : IClientTransport
    {
        // Messages handed over but not yet written: beyond this the client keeps (and drops) frames itself.
        const int MaxOutbox = 2;

        readonly ClientWebSocket _ws = new ClientWebSocket();
        readonly CancellationTokenSource _cts = new CancellationTokenSource();
        readonly ConcurrentQueue<byte[]> _inbox = new ConcurrentQueue<byte[]>();
        readonly ConcurrentQueue<byte[]> _outbox = new ConcurrentQueue<byte[]>();
        readonly SemaphoreSlim _outboxSignal = new SemaphoreSlim(0);
        readonly object _closeLock = new object();
        readonly Task _task;
        volatile TransportState _state = TransportState.Connecting;
        volatile string _reason = "";

        public ClientWebSocketTransport(string url, string token, TimeSpan connectTimeout)
        {
            if (!string.IsNullOrEmpty(token)) _ws.Options.SetRequestHeader("Authorization", "Bearer " + token);
            _task = Task.Run(() => RunAsync(url, connectTimeout));
        }

        public TransportState State { get { return _state; } }
        public string CloseReason { get { return _reason; } }
        public bool CanSend { get { return _state == TransportState.Open && _outbox.Count < MaxOutbox; } }

        public void Send(byte[] message)
        {
            if (_state != TransportState.Open) return;
            _outbox.Enqueue(message);
            _outboxSignal.Release();
        }

        public bool TryReceive(out byte[] message) { return _inbox.TryDequeue(out message); }

        public void Close()
        {
            Finish("closed by the client");
            _cts.Cancel();
            _outboxSignal.Release();
        }

        public void Dispose()
        {
            Close();
            try { _task.Wait(2000); } catch (AggregateException) { }
            _ws.Dispose();
        }

        // The reason is written before the state, so a reader that sees Closed sees why.
        void Finish(string reason)
        {
            lock (_closeLock)
            {
                if (_state == TransportState.Closed) return;
                _reason = reason;
                _state = TransportState.Closed;
            }
        }

        async Task RunAsync(string url, TimeSpan connectTimeout)
        {
            try
            {
                using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(_cts.Token))
                {
                    timeout.CancelAfter(connectTimeout);
                    await _ws.ConnectAsync(new Uri(url), timeout.Token).ConfigureAwait(false);
                }
                lock (_closeLock) { if (_state == TransportState.Connecting) _state = TransportState.Open; }
                var sender = SendLoopAsync();
                Finish(await ReceiveLoopAsync().ConfigureAwait(false));
                _outboxSignal.Release();  // wake the sender so it sees the socket closed
                try { await sender.ConfigureAwait(false); } catch (Exception) { }
            }
            catch (OperationCanceledException)
            {
                Finish(_cts.IsCancellationRequested ? "closed by the client"
                    : "no WebSocket handshake from " + url + " within " + connectTimeout.TotalSeconds + " s");
            }
            catch (Exception e)
            {
                Finish("connection to " + url + " failed: " + e.Message);
            }
        }

        async Task SendLoopAsync()
        {
            try
            {
                while (_state == TransportState.Open)
                {
                    await _outboxSignal.WaitAsync(_cts.Token).ConfigureAwait(false);
                    byte[] next;
                    while (_state == TransportState.Open && _outbox.TryDequeue(out next))
                        await _ws.SendAsync(new ArraySegment<byte>(next), WebSocketMessageType.Binary, true, _cts.Token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) { }
            catch (Exception e)
            {
                Finish("send failed: " + e.Message);
                _cts.Cancel();  // ends the receive loop too
            }
        }

        async Task<string> ReceiveLoopAsync()
        {
            var buffer = new byte[1 << 16];
            var message = new MemoryStream();
            while (_ws.State == WebSocketState.Open)
            {
                WebSocketReceiveResult res;
                try { res = await _ws.ReceiveAsync(new ArraySegment<byte>(buffer), _cts.Token).ConfigureAwait(false); }
                catch (OperationCanceledException) { return _reason.Length > 0 ? _reason : "closed by the client"; }
                catch (WebSocketException e) { return "connection lost: " + e.Message; }
                if (res.MessageType == WebSocketMessageType.Close)
                    return "closed by the sidecar (" + (int?)res.CloseStatus + " " + res.CloseStatusDescription + ")";
                message.Write(buffer, 0, res.Count);
                if (!res.EndOfMessage) continue;
                _inbox.Enqueue(message.ToArray());
                message.SetLength(0);
            }
            return "closed";
        }
    }
}
#endif
