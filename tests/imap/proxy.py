"""A relay between the gateway and the test's Dovecot that sees every IMAP command.

What an operator reads in Dovecot's rawlog: which ``UID FETCH`` and ``UID STORE`` commands
the poller sent, and in which order.  ``on_command`` runs before a command is passed on,
so a test can look at the database at the very moment the server is asked to mark.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable

__all__ = ["Command", "ImapProxy", "uid_set"]

_COMMAND = re.compile(rb"^\S+ UID (FETCH|STORE) (\S+) (.*)$", re.IGNORECASE)


class Command:
    """One ``UID FETCH`` or ``UID STORE``: its name, its UIDs and the rest of the line."""

    def __init__(self, name: str, uids: list[int], rest: str) -> None:
        self.name, self.uids, self.rest = name, uids, rest

    def __repr__(self) -> str:
        return f"{self.name} {self.uids} {self.rest}"


def uid_set(text: str) -> list[int]:
    """``1:3,7`` → [1, 2, 3, 7]."""
    uids: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition(":")
        uids.extend(range(int(first), int(last or first) + 1))
    return uids


class ImapProxy:
    """Listens on a free loopback port and relays each connection to ``upstream``."""

    def __init__(self, upstream: tuple[str, int],
                 on_command: Callable[[Command], None] | None = None) -> None:
        self.upstream = upstream
        self.on_command = on_command
        self.commands: list[Command] = []
        self.errors: list[BaseException] = []
        """What ``on_command`` raised (the relay thread cannot fail the test itself)."""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="imap-proxy").start()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
            threading.Thread(target=self._commands, args=(client, server), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _commands(self, client: socket.socket, server: socket.socket) -> None:
        """Client to server, a line at a time: each line is seen before it is passed on."""
        pending = b""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                pending += data
                *lines, pending = pending.split(b"\r\n")
                for line in lines:
                    self._seen(line)
                    server.sendall(line + b"\r\n")
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)

    def _seen(self, line: bytes) -> None:
        match = _COMMAND.match(line)
        if match is None:
            return
        name, uids, rest = (group.decode() for group in match.groups())
        command = Command(name.upper(), uid_set(uids), rest)
        self.commands.append(command)
        if self.on_command is not None:
            try:
                self.on_command(command)
            except BaseException as error:  # noqa: BLE001 - reported to the test
                self.errors.append(error)
