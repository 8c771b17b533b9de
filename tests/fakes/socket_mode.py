"""A local fake of Slack's Socket Mode websocket: hello, envelopes out, acks in.

Slack's side of the protocol (api.slack.com/apis/socket-mode), over plain `ws://127.0.0.1`:
the app opens the URL `apps.connections.open` gave it, Slack says `hello`, then sends each
request as an envelope (`{"envelope_id", "type", "payload", "accepts_response_payload"}`)
and the app acks it with `{"envelope_id", "payload"?}` within 3 seconds. The websocket
itself (RFC 6455: the handshake, masked client frames, ping/pong, close) is written out here
so the real `slack_sdk` Socket Mode client, the one Bolt uses, talks to it unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Any, Self

# RFC 6455, section 1.3: what a server hashes the client's key with.
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


class FakeSocketMode:
    """One Socket Mode connection at a time; records every ack the app sends."""

    def __init__(self, *, app_id: str = "A0DEALBOT") -> None:
        self.app_id = app_id
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connection: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._changed = threading.Condition()
        self._acks: dict[str, dict[str, Any]] = {}
        self._handshakes: list[str] = []
        self._ids = itertools.count(1)
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="fake-socket-mode", daemon=True)

    @property
    def url(self) -> str:
        """Return the `ws://` URL to hand out from `apps.connections.open`."""
        port = self._listener.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket=fake-ticket"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._listener.close()
        if self._connection is not None:
            self._connection.close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- what the test does -------------------------------------------------------------

    def wait_for_connection(self, timeout: float = 30.0) -> str:
        """Return the request line of the app's websocket handshake, once it has said hello."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._handshakes, timeout=timeout):
                raise TimeoutError("the app never opened the Socket Mode connection")
            return self._handshakes[-1]

    def send(self, kind: str, payload: dict[str, Any]) -> str:
        """Send one envelope of `kind` (slash_commands, interactive, events_api); return its id."""
        envelope_id = f"envelope-{next(self._ids)}"
        self._send_text(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": kind != "events_api",
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    def ack_for(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Return the app's ack of `envelope_id`, waiting for it up to `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: envelope_id in self._acks, timeout=timeout):
                raise TimeoutError(f"no ack for {envelope_id} within {timeout} s")
            return self._acks[envelope_id]

    # --- Slack's side ---------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stopping:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                self._connection = connection
                try:
                    request_line = self._handshake(connection)
                    self._send_text(
                        {
                            "type": "hello",
                            "num_connections": 1,
                            "debug_info": {
                                "host": "fake-socket-mode",
                                "approximate_connection_time": 3600,
                            },
                            "connection_info": {"app_id": self.app_id},
                        }
                    )
                    with self._changed:
                        self._handshakes.append(request_line)
                        self._changed.notify_all()
                    self._read_frames(connection)
                except OSError:
                    pass  # the app went away, or stop() closed the socket
                finally:
                    self._connection = None

    @staticmethod
    def _handshake(connection: socket.socket) -> str:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                raise OSError("closed during the handshake")
            request += chunk
        lines = request.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        accept = base64.b64encode(
            hashlib.sha1((headers["sec-websocket-key"] + WEBSOCKET_GUID).encode()).digest()
        ).decode()
        connection.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        return lines[0]

    def _read_frames(self, connection: socket.socket) -> None:
        while True:
            opcode, data = _read_frame(connection)
            if opcode == TEXT:
                message = json.loads(data)
                with self._changed:
                    self._acks[message["envelope_id"]] = message
                    self._changed.notify_all()
            elif opcode == PING:
                self._send_frame(PONG, data)
            elif opcode == CLOSE:
                self._send_frame(CLOSE, data[:2])
                return

    def _send_text(self, message: dict[str, Any]) -> None:
        self._send_frame(TEXT, json.dumps(message).encode())

    def _send_frame(self, opcode: int, data: bytes) -> None:
        # Server frames are final and unmasked.
        if len(data) < 126:
            header = struct.pack("!BB", 0x80 | opcode, len(data))
        elif len(data) < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, len(data))
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, len(data))
        deadline = time.monotonic() + 10
        while self._connection is None:
            if time.monotonic() > deadline:
                raise TimeoutError("no Socket Mode connection to send on")
            time.sleep(0.01)
        with self._send_lock:
            self._connection.sendall(header + data)


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("the app closed the connection")
        data += chunk
    return data


def _read_frame(connection: socket.socket) -> tuple[int, bytes]:
    """Return one whole message's opcode and payload, continuation frames joined."""
    opcode = 0
    payload = b""
    while True:
        first, second = _read_exactly(connection, 2)
        opcode = opcode or first & 0x0F
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", _read_exactly(connection, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", _read_exactly(connection, 8))
        # Client frames are always masked (RFC 6455, section 5.3).
        mask = _read_exactly(connection, 4) if second & 0x80 else b"\0\0\0\0"
        chunk = _read_exactly(connection, length)
        payload += bytes(byte ^ mask[index % 4] for index, byte in enumerate(chunk))
        if first & 0x80:
            return opcode, payload
