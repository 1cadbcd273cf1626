"""A TCP proxy on loopback that forwards everything, except the first request whose first line matches a pattern:
its answer is swallowed (`drop="answer"`: the server did the work, the client never hears) or the request itself is
(`drop="request"`: the server never sees it); either way the client's connection closes, as a lost network would."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from gateway.local import LOOPBACK


class LossyProxy:
    def __init__(self, upstream_port: int, pattern: bytes, drop: str) -> None:
        self._upstream, self._pattern, self._drop = upstream_port, pattern, drop
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self.lost = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection((LOOPBACK, self._upstream)) as upstream:
            while True:
                request = self._read_request(client)
                if not request:
                    return
                with self._lock:
                    lose = self.lost == 0 and self._pattern in request.split(b"\r\n", 1)[0]
                    if lose:
                        self.lost += 1
                if lose and self._drop == "request":
                    return
                upstream.sendall(request)
                answer = self._read_answer(upstream)
                if lose:
                    return
                client.sendall(answer)

    @staticmethod
    def _read_request(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += sock.recv(65536)
        return head + b"\r\n\r\n" + body

    @staticmethod
    def _read_answer(sock: socket.socket) -> bytes:
        return LossyProxy._read_request(sock)  # same framing: headers, then Content-Length bytes

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()


@contextlib.contextmanager
def lossy_proxy(upstream_port: int, pattern: bytes, drop: str = "answer") -> Iterator[LossyProxy]:
    proxy = LossyProxy(upstream_port, pattern, drop)
    try:
        yield proxy
    finally:
        proxy.close()
