"""Shared mailboxes over IMAP: one poller thread per mailbox, inside ``gateway serve``.

Each poller holds the database lease ``imap:<name>`` (``gateway/leases.py``), so that
of several ``serve`` processes only one polls a given mailbox.  It logs in (password
or XOAUTH2), then for each folder (the ``sent`` folder first, the ``inbox`` last so
that IDLE watches it) takes every message above the folder's checkpoint:

1. ``UID FETCH RFC822.SIZE`` of a batch (``batch_size``), cut into runs of consecutive
   UIDs of at most ``batch_bytes`` (a bigger message is a run of its own), then
   ``BODY.PEEK[]`` of one run (PEEK: we never set ``\\Seen`` ourselves): the bytes held at
   once stay bounded however large the mail anyone may send; a message over
   ``max_message_size`` (the limit SMTP answers with 552) is not downloaded: only its
   header block (``BODY.PEEK[HEADER]``, its first ``max_header_block_size`` bytes at
   most) is stored, with the option ``too_large``, so that processing quarantines it and
   the message stays on the server, marked like the rest so that it is not fetched again;
2. hand the run to the spool writer and wait until it is **committed**
   (``source = "imap:<mailbox>/<folder>"``; the spool's de-dup key makes a re-fetch
   after a crash or a UIDVALIDITY change a no-op);
3. only then flag or move the messages on the server (``after``), and then advance
   the checkpoint (UIDVALIDITY + last UID in ``imap_folders``) past the run.

A crash between any two of these steps repeats the run, which stores nothing twice.
Between polls the poller IDLEs on the inbox when the server advertises it, and
every other watched folder (``sent``) gets its own connection IDLEing on it
(:class:`_FolderWatcher`; an IMAP connection can IDLE on one selected folder only),
which only wakes the poller: the poller's one connection still does all fetching,
marking and checkpointing, so the lease and UID logic stay as they are.  A new
message in any folder is taken within about a second; without IDLE the poller
sleeps ``poll_interval``.  Any error drops
the connection and retries with exponential backoff; a refused login is recorded
with the server's answer for ``gateway mailboxes status`` and only this mailbox waits.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import imapclient
from imapclient.exceptions import LoginError
from sqlalchemy import select

from gateway import leases
from gateway.config import MailboxConfig
from gateway.db import Database
from gateway.models import ImapFolderState, utcnow
from inbound.limits import Limits
from inbound.spool import StoredMessage

__all__ = [
    "Endpoint", "MailboxPoller", "MailboxPollers", "PollerError", "connect", "endpoint",
    "lease_name", "source_name",
]

log = logging.getLogger(__name__)

StoreFn = Callable[..., "Future[StoredMessage]"]
"""``SpoolWriter.submit``: (raw, source=…, options=…) → future of the committed row."""

STORE_TIMEOUT = 120.0
DELETED = b"\\Deleted"


class PollerError(Exception):
    """A problem of this mailbox that reconnecting alone will not cure (message for status)."""


class _LeaseLost(Exception):
    """Another node holds this mailbox's lease now: stop polling and stand by."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    tls: str  # "implicit" | "starttls" | "none"
    username: str
    password: str


def endpoint(config: MailboxConfig) -> Endpoint:
    """Host, port, TLS mode and credentials from the mailbox URL and its overrides."""
    parts = urlsplit(config.url)
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    implicit = parts.scheme == "imaps"
    starttls = query.get("starttls", "false") in {"true", "1", "yes"}
    return Endpoint(
        host=parts.hostname or "",
        port=parts.port or (993 if implicit else 143),
        tls="implicit" if implicit else "starttls" if starttls else "none",
        username=config.username or unquote(parts.username or ""),
        password=config.password if config.password is not None
        else unquote(parts.password or ""),
    )


def lease_name(config: MailboxConfig) -> str:
    return f"imap:{config.name}"


def source_name(config: MailboxConfig, folder: str) -> str:
    return f"imap:{config.name}/{folder}"


def server_answer(error: BaseException) -> str:
    """The server's text from an imaplib/imapclient error, without Python's b'…' wrapping."""
    text = str(error)
    match = re.fullmatch(r"""b(['"])(.*)\1""", text, re.DOTALL)
    return match.group(2) if match else text


def _token(config: MailboxConfig) -> str:
    assert config.oauth2_token_command is not None
    try:
        done = subprocess.run(config.oauth2_token_command, capture_output=True, timeout=30,
                              check=False, text=True)
    except (OSError, subprocess.SubprocessError) as error:
        raise PollerError(f"the oauth2 token command could not run: {error}") from error
    token = done.stdout.strip()
    if done.returncode != 0 or not token:
        detail = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise PollerError(f"the oauth2 token command failed: {detail[0]}")
    return token


def connect(config: MailboxConfig) -> imapclient.IMAPClient:
    """An authenticated connection; LoginError carries the server's refusal."""
    point = endpoint(config)
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    client = imapclient.IMAPClient(point.host, point.port, ssl=point.tls == "implicit",
                                   ssl_context=context if point.tls == "implicit" else None,
                                   timeout=config.timeout)
    try:
        if point.tls == "starttls":
            client.starttls(context)  # raises when not offered: never fall back to plaintext
        if config.oauth2_token_command:
            client.oauth2_login(point.username, _token(config))
        else:
            client.login(point.username, point.password)
    except BaseException:
        _close(client)
        raise
    return client


def _close(client: imapclient.IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        with contextlib.suppress(Exception):
            client.shutdown()


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _unmarked_criteria(keyword: str) -> list[str]:
    """SEARCH criteria for messages that do not carry ``keyword`` yet."""
    if keyword.startswith("\\"):
        return [f"UN{keyword[1:].upper()}"]  # \Seen → UNSEEN, \Flagged → UNFLAGGED
    return ["UNKEYWORD", keyword]


def _fetch_part(client: imapclient.IMAPClient, uids: Sequence[int], part: str,
                limit: int | None = None) -> dict[int, bytes]:
    """``UID FETCH BODY.PEEK[part]`` (never sets ``\\Seen``), only its first ``limit`` bytes
    when given (``<0.limit>``); UIDs expunged meanwhile are absent."""
    if not uids:
        return {}
    item, key = f"BODY.PEEK[{part}]", f"BODY[{part}]"
    if limit is not None:
        item, key = f"{item}<0.{limit}>", f"{key}<0>"  # the answer names the origin only
    wanted = set(uids)
    return {uid: bytes(data[key.encode()])[:limit] for uid, data in
            client.fetch(uids, [item.encode()]).items()
            if uid in wanted and data.get(key.encode()) is not None}


def _sizes(client: imapclient.IMAPClient, uids: Sequence[int]) -> dict[int, int]:
    """``RFC822.SIZE`` by UID: cheap, and what the FETCHes of the bytes are planned by."""
    return {uid: int(data[b"RFC822.SIZE"]) for uid, data in
            client.fetch(uids, [b"RFC822.SIZE"]).items() if b"RFC822.SIZE" in data}


def _runs(uids: Sequence[int], costs: dict[int, int], budget: int) -> list[list[int]]:
    """Consecutive runs of ``uids`` whose bytes together stay within ``budget``; a message
    over it is a run of its own.  One FETCH and one commit each: the response parser
    holds about three times the bytes it reads, so a whole batch of 25 MB messages in one
    FETCH took gigabytes.  Runs keep UID order, so the checkpoint can follow each."""
    runs: list[list[int]] = []
    total = 0
    for uid in uids:
        cost = costs.get(uid, 0)
        if runs and total + cost <= budget:
            runs[-1].append(uid)
            total += cost
        else:
            runs.append([uid])
            total = cost
    return runs


def _whole_lines(head: bytes, limit: int) -> bytes:
    """A header block cut at ``limit`` bytes ends inside a field: keep its whole lines and
    end it with a blank line, still within ``limit``, so that it reads as a header block."""
    if len(head) < limit or head.endswith((b"\r\n\r\n", b"\n\n")):
        return head
    kept = head[:head.rfind(b"\n", 0, max(limit - 2, 0)) + 1]
    return (kept + (b"\r\n" if kept.endswith(b"\r\n") or not kept else b"\n"))[:limit]


@dataclass(frozen=True)
class _Folder:
    name: str
    role: str  # inbox | sent


def _connection_gone(responses: list[Any], began: float, step: float) -> bool:
    """imapclient reports a closed connection as "no responses" at once, not after ``step``."""
    return not responses and step > 0.2 and time.monotonic() - began < step / 2


def _said_bye(responses: list[Any]) -> bool:
    return any(len(r) > 1 and r[0] == b"BYE" for r in responses)


def _new_mail(responses: list[Any]) -> bool:
    return any(len(r) > 1 and r[1] in {b"EXISTS", b"RECENT"} for r in responses)


class _FolderWatcher:
    """A second connection that IDLEs on one folder and wakes the poller when mail arrives.

    It never fetches, marks or checkpoints anything (the poller does, on its own
    connection, under its lease); it runs only while the poller's session does.  Each
    time it (re)enters IDLE it wakes the poller once, so a message that arrived before
    the IDLE began is found by that poll.  IDLE is renewed every ``poll_interval`` (at
    most 10 minutes; RFC 2177 asks for less than 29).  A failure is logged and retried
    with backoff; meanwhile the folder is still polled every ``poll_interval``.
    """

    def __init__(self, config: MailboxConfig, folder: str, wake: threading.Event) -> None:
        self.config, self.folder, self.wake = config, folder, wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"imap-{config.name}-idle-{folder}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.config.timeout + 5)

    def _run(self) -> None:
        backoff = self.config.backoff_min
        while not self._stop.is_set():
            try:
                client = connect(self.config)
            except Exception as error:  # noqa: BLE001 - retried; polling covers the gap
                log.warning("mailbox %s: cannot connect to IDLE on %s: %s", self.config.name,
                            self.folder, server_answer(error))
            else:
                try:
                    self._watch(client)
                    backoff = self.config.backoff_min
                except Exception as error:  # noqa: BLE001 - retried; polling covers the gap
                    log.warning("mailbox %s: IDLE on %s failed: %s: %s", self.config.name,
                                self.folder, type(error).__name__, server_answer(error))
                finally:
                    _close(client)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self.config.backoff_max)

    def _watch(self, client: imapclient.IMAPClient) -> None:
        client.select_folder(self.folder, readonly=True)
        renew = min(self.config.poll_interval, 600.0)
        while not self._stop.is_set():
            client.idle()
            self.wake.set()
            try:
                until = time.monotonic() + renew
                while not self._stop.is_set() and time.monotonic() < until:
                    began = time.monotonic()
                    responses = client.idle_check(timeout=1.0)
                    if _said_bye(responses):
                        raise ConnectionError("the server said BYE")
                    if _new_mail(responses):
                        self.wake.set()
                    elif _connection_gone(responses, began, 1.0):
                        break  # idle_done() raises if the server is gone
            finally:
                client.idle_done()


class MailboxPoller:
    """Polls one mailbox in its own thread until ``stop()``."""

    def __init__(self, config: MailboxConfig, database: Database, store: StoreFn,
                 on_stored: Callable[[int], None], *, max_message_size: int,
                 max_header_block_size: int = Limits.max_header_block_bytes,
                 holder: str | None = None) -> None:
        self.config = config
        self.max_message_size = max_message_size
        self.header_limit = min(max_header_block_size, max_message_size)
        """Bytes of header kept of a message over ``max_message_size``: the analysis reads
        no more of a header block, and a message all header must not defeat the limit."""
        self.database = database
        self.store = store
        self.on_stored = on_stored
        self.holder = holder or leases.holder_name()
        self.account = endpoint(config).username
        self.folders = ([_Folder(config.sent, "sent")] if config.sent else []) + [
            _Folder(config.inbox, "inbox")]
        action, _, argument = config.after.partition(":")
        self.after_action, self.after_argument = action, argument
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"imap-{config.name}",
                                        daemon=True)
        self._lease_held = False
        self._lease_renewed = 0.0
        self._wake = threading.Event()
        """Set by a folder watcher: new mail in a folder other than the inbox."""

    # -- life cycle -----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        backoff = self.config.backoff_min
        try:
            while not self._stop.is_set():
                try:
                    if not self._renew_lease():
                        self._stop.wait(self.config.lease_ttl / 3)
                        continue
                    client = connect(self.config)
                except LoginError as error:
                    self._record_error(f"login as {endpoint(self.config).username} refused: "
                                       f"{server_answer(error)}")
                except Exception as error:  # noqa: BLE001 - every failure is retried
                    self._record_error(f"cannot connect: {type(error).__name__}: "
                                       f"{server_answer(error)}")
                else:
                    log.info("mailbox %s: connected to %s", self.config.name,
                             endpoint(self.config).host)
                    backoff = self.config.backoff_min
                    try:
                        self._session(client)
                    except _LeaseLost:
                        log.warning("mailbox %s: lease lost to another node; standing by",
                                    self.config.name)
                    except Exception as error:  # noqa: BLE001 - reconnect after any failure
                        self._record_error(f"polling failed: {type(error).__name__}: "
                                           f"{server_answer(error)}")
                    finally:
                        _close(client)
                    if self._stop.is_set():
                        break
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.config.backoff_max)
        finally:
            if self._lease_held:
                try:
                    leases.release(self.database, lease_name(self.config), self.holder)
                except Exception:  # noqa: BLE001 - it lapses by itself
                    log.exception("mailbox %s: could not release the lease", self.config.name)
            log.info("mailbox %s: poller stopped", self.config.name)

    def _renew_lease(self) -> bool:
        """Take or renew the single-poller lease; False (standby) when another node has it."""
        held = leases.try_acquire(self.database, lease_name(self.config), self.holder,
                                  self.config.lease_ttl)
        if held != self._lease_held:
            log.info("mailbox %s: %s", self.config.name, "lease taken, polling" if held else
                     "another node polls this mailbox; standing by")
        self._lease_held = held
        self._lease_renewed = time.monotonic()
        return held

    def _lease_due(self) -> bool:
        return time.monotonic() - self._lease_renewed >= self.config.lease_ttl / 3

    # -- one connection ---------------------------------------------------------------
    def _session(self, client: imapclient.IMAPClient) -> None:
        if self.after_action == "move" and not client.folder_exists(self.after_argument):
            client.create_folder(self.after_argument)
        use_idle = self.config.idle and client.has_capability("IDLE")
        watchers = [_FolderWatcher(self.config, folder.name, self._wake)
                    for folder in self.folders[:-1]] if use_idle else []
        for watcher in watchers:
            watcher.start()
        try:
            while not self._stop.is_set():
                self._wake.clear()
                for folder in self.folders:
                    self._poll_folder(client, folder)
                self._wait(client, use_idle)
        finally:
            for watcher in watchers:
                watcher.stop()

    def _keep_lease(self) -> None:
        if self._lease_due() and not self._renew_lease():
            raise _LeaseLost

    def _wait(self, client: imapclient.IMAPClient, use_idle: bool) -> None:
        """Wait for new mail or the poll interval; renew the lease meanwhile."""
        deadline = time.monotonic() + self.config.poll_interval
        if use_idle:
            # A message that arrived during the last commands was announced in their
            # responses, which imapclient drops; IDLE would not announce it again.
            inbox = self.folders[-1]
            if self._wake.is_set() or self._candidates(client, inbox, self._state(inbox)):
                return
            client.idle()
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                self._keep_lease()
                step = min(1.0, max(0.0, deadline - time.monotonic()))
                if not use_idle:
                    self._stop.wait(step)
                    continue
                began = time.monotonic()
                responses = client.idle_check(timeout=step)
                if _said_bye(responses):
                    raise ConnectionError("the server said BYE")
                if _new_mail(responses) or self._wake.is_set():
                    break  # new mail in the inbox, or a watcher saw some in another folder
                if _connection_gone(responses, began, step):
                    break  # leave IDLE, which raises if the server is gone
        finally:
            if use_idle:
                client.idle_done()

    # -- one folder -------------------------------------------------------------------
    def _state(self, folder: _Folder) -> ImapFolderState:
        query = select(ImapFolderState).where(ImapFolderState.mailbox == self.config.name,
                                              ImapFolderState.folder == folder.name)
        with self.database.reading() as session:
            row = session.scalar(query)
        if row is not None:
            return row
        with self.database.transaction() as session:
            row = session.scalar(query)
            if row is None:
                row = ImapFolderState(mailbox=self.config.name, folder=folder.name,
                                      role=folder.role, last_uid=0, window_uid=0, history_uid=0,
                                      taken=0, last_error="")
                session.add(row)
            return row

    def _checkpoint(self, folder: _Folder, **values: Any) -> None:
        with self.database.transaction() as session:
            row = session.scalar(select(ImapFolderState).where(
                ImapFolderState.mailbox == self.config.name,
                ImapFolderState.folder == folder.name).with_for_update())
            assert row is not None
            taken = values.pop("taken", 0)
            for key, value in values.items():
                setattr(row, key, value)
            row.taken += taken

    def _poll_folder(self, client: imapclient.IMAPClient, folder: _Folder) -> None:
        if folder.role == "sent" and not client.folder_exists(folder.name):
            self._record_error(f"folder {folder.name!r} does not exist", folder=folder)
            return
        info = client.select_folder(folder.name)
        uidvalidity = int(info[b"UIDVALIDITY"])
        uidnext = info.get(b"UIDNEXT")
        if uidnext is None:
            uidnext = max(client.search(["ALL"]) or [0]) + 1
        state = self._state(folder)
        if state.uidvalidity is None:
            self._first_contact(folder, uidvalidity, int(uidnext) - 1)
        elif state.uidvalidity != uidvalidity:
            log.warning("mailbox %s folder %s: UIDVALIDITY changed from %s to %s; re-scanning "
                        "(messages already stored are recognised and not stored again)",
                        self.config.name, folder.name, state.uidvalidity, uidvalidity)
            self._checkpoint(folder, uidvalidity=uidvalidity, last_uid=0,
                             window_uid=int(uidnext) - 1, history_uid=0)
        state = self._state(folder)
        uids = self._candidates(client, folder, state)
        for batch in _chunks(uids, self.config.batch_size):
            sizes = _sizes(client, batch)
            for run in _runs(batch, self._costs(sizes), self.config.batch_bytes):
                if self._stop.is_set():
                    return
                self._keep_lease()
                taken = self._take(client, folder, state, run, sizes)
                self._checkpoint(folder, last_uid=max(run), taken=taken,
                                 last_poll_at=utcnow(), last_error="")
        self._checkpoint(folder, last_poll_at=utcnow(), last_error="")

    def _costs(self, sizes: dict[int, int]) -> dict[int, int]:
        """The bytes each message's FETCH downloads: all of it, or its bounded header."""
        return {uid: size if size <= self.max_message_size else min(size, self.header_limit)
                for uid, size in sizes.items()}

    def _first_contact(self, folder: _Folder, uidvalidity: int, newest: int) -> None:
        """The start mode: take only new mail, or the backlog since a date as history."""
        mode, _, since = self.config.start.partition(":")
        if mode == "new":
            self._checkpoint(folder, uidvalidity=uidvalidity, last_uid=newest, window_uid=0,
                             history_uid=0, since=utcnow().date())
            log.info("mailbox %s folder %s: starting after UID %s (existing mail left alone)",
                     self.config.name, folder.name, newest)
        else:
            self._checkpoint(folder, uidvalidity=uidvalidity, last_uid=0, window_uid=newest,
                             history_uid=newest, since=date.fromisoformat(since))
            log.info("mailbox %s folder %s: importing the backlog since %s (UIDs up to %s) "
                     "as history", self.config.name, folder.name, since, newest)

    def _candidates(self, client: imapclient.IMAPClient, folder: _Folder,
                    state: ImapFolderState) -> list[int]:
        unmarked = (_unmarked_criteria(self.after_argument)
                    if self.after_action == "flag" else [])
        found: set[int] = set()
        start = state.last_uid + 1
        if state.last_uid < state.window_uid:
            window: list[Any] = ["UID", f"{start}:{state.window_uid}", *unmarked]
            if state.since is not None:
                window += ["SINCE", state.since]
            found.update(client.search(window))
            start = state.window_uid + 1
        found.update(client.search(["UID", f"{start}:*", *unmarked]))
        return sorted(uid for uid in found if uid > state.last_uid)

    def _take(self, client: imapclient.IMAPClient, folder: _Folder, state: ImapFolderState,
              batch: Sequence[int], sizes: dict[int, int]) -> int:
        """Fetch, commit to the spool, then mark; returns how many were new to the spool."""
        fetched, too_large = self._fetch(client, folder, batch, sizes)
        pending: list[tuple[int, Future[StoredMessage]]] = []
        source = source_name(self.config, folder.name)
        for uid in batch:
            raw = fetched.get(uid)
            if raw is None:
                continue  # expunged meanwhile by someone else
            options: dict[str, Any] = {"imap": {
                "mailbox": self.config.name, "account": self.account, "folder": folder.name,
                "uid": uid, "uidvalidity": state.uidvalidity}}
            if uid in too_large:
                options["too_large"] = {"size": too_large[uid], "limit": self.max_message_size}
            if folder.role == "sent":
                options["sent"] = True
            if uid <= state.history_uid:
                options["history"] = True
            pending.append((uid, self.store(raw, source=source, options=options)))
        stored = [(uid, future.result(timeout=STORE_TIMEOUT)) for uid, future in pending]
        # Committed: from here on a crash only repeats work the spool recognises.
        new = [result for _uid, result in stored if not result.duplicate]
        for result in new:
            self.on_stored(result.spool_id)
        self._mark(client, folder, [uid for uid, _ in stored])
        if len(new) != len(stored):
            log.info("mailbox %s folder %s: %s of %s messages were already stored",
                     self.config.name, folder.name, len(stored) - len(new), len(stored))
        return len(new)

    def _fetch(self, client: imapclient.IMAPClient, folder: _Folder, batch: Sequence[int],
               sizes: dict[int, int]) -> tuple[dict[int, bytes], dict[int, int]]:
        """The raw bytes by UID, and the sizes of those over ``max_message_size``, whose
        bytes are only their header block, cut at ``header_limit``: SMTP would refuse them
        with 552, and a 200 MB message (all header or not) must not be read into memory
        nor stored."""
        too_large = {uid: sizes[uid] for uid in batch
                     if sizes.get(uid, 0) > self.max_message_size}
        raws = _fetch_part(client, [u for u in batch if u in sizes and u not in too_large], "")
        heads = _fetch_part(client, list(too_large), "HEADER", self.header_limit)
        raws.update({uid: _whole_lines(head, self.header_limit) for uid, head in heads.items()})
        for uid, size in too_large.items():
            log.warning("mailbox %s folder %s: UID %s has %s bytes, over max_message_size "
                        "(%s): only its header block (at most %s bytes) is stored, and it is "
                        "quarantined", self.config.name, folder.name, uid, size,
                        self.max_message_size, self.header_limit)
        return raws, too_large

    def _mark(self, client: imapclient.IMAPClient, folder: _Folder, uids: list[int]) -> None:
        if not uids:
            return
        if self.after_action == "flag":
            client.add_flags(uids, [self.after_argument.encode()], silent=True)
        elif folder.role == "inbox":  # agents' Sent folder is never emptied by us
            if client.has_capability("MOVE"):
                client.move(uids, self.after_argument)
            else:
                client.copy(uids, self.after_argument)
                client.add_flags(uids, [DELETED], silent=True)
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge(uids)
                else:
                    client.expunge()

    # -- status -------------------------------------------------------------------------
    def _record_error(self, message: str, folder: _Folder | None = None) -> None:
        log.error("mailbox %s: %s", self.config.name, message)
        try:
            for each in [folder] if folder else self.folders:
                self._state(each)
                self._checkpoint(each, last_error=message[:2000], last_error_at=utcnow())
        except Exception:  # noqa: BLE001 - the database may be the problem
            log.exception("mailbox %s: could not record the error", self.config.name)


class MailboxPollers:
    """The pollers of every configured mailbox, started and stopped together."""

    def __init__(self, configs: Sequence[MailboxConfig], database: Database, store: StoreFn,
                 on_stored: Callable[[int], None], *, max_message_size: int,
                 max_header_block_size: int = Limits.max_header_block_bytes) -> None:
        self.pollers = [MailboxPoller(c, database, store, on_stored,
                                      max_message_size=max_message_size,
                                      max_header_block_size=max_header_block_size)
                        for c in configs]

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller._stop.set()
        for poller in self.pollers:
            poller.stop()
