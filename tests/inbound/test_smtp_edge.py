"""The SMTP listener's edges over real sockets: STARTTLS, what EHLO advertises, an enhanced
status code on every reply, connection caps, deadlines against trickling clients, and long
lines (issue 13, DESIGN section 11)."""

from __future__ import annotations

import re
import select
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import trustme
from sqlalchemy import select as sql_select

from gateway.config import Settings, load_settings
from gateway.errors import ConfigError
from gateway.models import SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import (
    Processes,
    free_port,
    gateway_command,
    gateway_env,
    serve_in_process,
    wait_for,
)
from tests.mail import make_mail, send

ENHANCED = re.compile(rb"\d{3}[ -][245]\.\d{1,3}\.\d{1,3}( |$)")
FEATURES = {"pipelining", "size", "enhancedstatuscodes", "8bitmime", "smtputf8"}


# -- helpers ---------------------------------------------------------------------------


def _address(settings: Settings) -> tuple[str, int]:
    host, port = settings.smtp_listen.rsplit(":", 1)
    return host, int(port)


def _stored(gateway: Gateway) -> list[SpoolEntry]:
    with gateway.db.reading() as session:
        return list(session.scalars(sql_select(SpoolEntry).order_by(SpoolEntry.id)))


def _connect(settings: Settings, source: str = "127.0.0.1", timeout: float = 30) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(_address(settings))
    return sock


class Dialogue:
    """A raw SMTP client: one command, its whole reply (every line), in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.greeting = self.reply()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed by the server; unread: {self.buffer!r}")
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def reply(self) -> list[bytes]:
        lines = [self._line()]
        while lines[-1][3:4] == b"-":
            lines.append(self._line())
        return lines

    def say(self, command: bytes) -> list[bytes]:
        self.sock.sendall(command + b"\r\n")
        return self.reply()


def _code_of(lines: list[bytes]) -> bytes:
    """The reply code and enhanced code of a reply's last line: b"250 2.1.0"."""
    return b" ".join(lines[-1].split(b" ")[:2])


def _healthz(settings: Settings) -> tuple[int, bytes]:
    with urllib.request.urlopen(f"http://{settings.web_listen}/healthz", timeout=30) as answer:
        return answer.status, answer.read()


def _first_line(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n", 1)[0]


@contextmanager
def _served(gateway: Gateway, settings: Settings, processes: Processes, *,
            run_web: bool = False) -> Iterator[GatewayServer]:
    """``serve`` in-process with ``settings`` (the ``gateway`` fixture's database)."""
    with serve_in_process(Gateway(settings), settings, processes, run_web=run_web) as server:
        yield server


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_settings(ca: trustme.CA, tmp_path: Path,
                 settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "smtp-cert.pem", tmp_path / "smtp-key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(cert_file, append=True)
    cert.private_key_pem.write_to_path(key_file)

    def make(**overrides: object) -> Settings:
        return settings_factory(smtp_tls_cert=cert_file, smtp_tls_key=key_file, **overrides)

    return make


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def test_starttls_with_a_configured_certificate_then_a_message_is_stored(
    gateway: Gateway, tls_settings: Callable[..., Settings], ca: trustme.CA,
    processes: Processes
) -> None:
    settings = tls_settings()
    raw = make_mail(subject="Over TLS")
    with _served(gateway, settings, processes), smtplib.SMTP(*_address(settings),
                                                             timeout=30) as client:
        client.ehlo("client.example")
        assert set(client.esmtp_features) == FEATURES | {"starttls"}
        code, text = client.starttls(context=_client_context(ca))
        assert (code, text[:5]) == (220, b"2.0.0")
        client.ehlo("client.example")
        assert set(client.esmtp_features) == FEATURES  # STARTTLS is not offered twice
        cipher = client.sock.cipher()  # type: ignore[union-attr]
        assert cipher is not None and cipher[1] in {"TLSv1.2", "TLSv1.3"}
        assert client.sendmail("anna@acme.example", ["support@support.example"], raw) == {}
    entries = _stored(gateway)
    assert [entry.raw for entry in entries] == [raw + b"\r\n"]
    assert entries[0].peer == "127.0.0.1"


def test_required_tls_refuses_mail_before_starttls(
    gateway: Gateway, tls_settings: Callable[..., Settings], ca: trustme.CA,
    processes: Processes
) -> None:
    settings = tls_settings(smtp_require_tls=True)
    with _served(gateway, settings, processes), smtplib.SMTP(*_address(settings),
                                                             timeout=30) as client:
        client.ehlo("client.example")
        code, text = client.mail("anna@acme.example")
        assert (code, text[:5]) == (530, b"5.7.0")
        client.starttls(context=_client_context(ca))
        client.ehlo("client.example")
        assert client.mail("anna@acme.example")[0] == 250
        assert client.rcpt("support@support.example")[0] == 250
        assert client.data(make_mail(subject="Required TLS"))[0] == 250
    assert len(_stored(gateway)) == 1


def test_a_plain_client_cannot_send_while_tls_is_required(
    gateway: Gateway, tls_settings: Callable[..., Settings], processes: Processes
) -> None:
    settings = tls_settings(smtp_require_tls=True)
    with _served(gateway, settings, processes), pytest.raises(
            smtplib.SMTPSenderRefused) as refused:
        send(settings.smtp_listen, make_mail())
    assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (530, b"5.7.0")
    assert _stored(gateway) == []


@pytest.mark.parametrize("problem", ["cert without key", "missing file", "not PEM"])
def test_a_bad_tls_configuration_stops_serve_with_one_sentence(
    problem: str, tls_settings: Callable[..., Settings], settings: Settings, tmp_path: Path
) -> None:
    tls = tls_settings()
    env = gateway_env(settings)
    if problem == "cert without key":
        env["GATEWAY_SMTP_TLS_CERT"] = str(tls.smtp_tls_cert)
    elif problem == "missing file":
        env["GATEWAY_SMTP_TLS_CERT"] = str(tls.smtp_tls_cert)
        env["GATEWAY_SMTP_TLS_KEY"] = str(tmp_path / "absent-key.pem")
    else:
        (tmp_path / "garbage.pem").write_text("not a key\n")
        env["GATEWAY_SMTP_TLS_CERT"] = str(tls.smtp_tls_cert)
        env["GATEWAY_SMTP_TLS_KEY"] = str(tmp_path / "garbage.pem")
    done = subprocess.run(gateway_command("serve"), env=env, capture_output=True, timeout=120,
                          check=False)
    assert done.returncode == 78, done.stderr
    error = done.stderr.decode().strip()
    assert error.startswith("error: ") and "\n" not in error and "Traceback" not in error
    assert "smtp_tls_key" in error.lower()
    with pytest.raises(OSError):  # it never listened
        socket.create_connection(_address(settings), timeout=1).close()


def test_the_transport_settings_default_to_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(None)
    assert (settings.smtp_tls_cert, settings.smtp_tls_key, settings.smtp_require_tls) == (
        None, None, False)
    assert (settings.smtp_max_connections, settings.smtp_max_connections_per_ip) == (200, 20)
    assert (settings.smtp_junk_command_limit, settings.smtp_connection_seconds) == (100, 600)
    monkeypatch.setenv("GATEWAY_SMTP_TLS_CERT", "")  # empty, as in DESIGN: not set
    monkeypatch.setenv("GATEWAY_SMTP_TLS_KEY", "")
    assert load_settings(None).smtp_tls_cert is None
    monkeypatch.setenv("GATEWAY_SMTP_REQUIRE_TLS", "true")
    with pytest.raises(ConfigError, match="smtp_require_tls needs smtp_tls_cert"):
        load_settings(None)


# -- EHLO and reply codes ------------------------------------------------------------


def test_ehlo_advertises_exactly_what_is_done_and_no_auth(running: GatewayServer,
                                                          settings: Settings) -> None:
    with smtplib.SMTP(*_address(settings), timeout=30) as client:
        code, _ = client.ehlo("client.example")
        assert code == 250 and set(client.esmtp_features) == FEATURES
        assert int(client.esmtp_features["size"]) == settings.max_message_size
        code, text = client.docmd("HELP")
        assert code == 250 and b"AUTH" not in text and b"STARTTLS" not in text
        assert b"MAIL" in text
        code, text = client.docmd("AUTH", "PLAIN AGFubmEAc2VjcmV0")
        assert (code, text[:5]) == (500, b"5.5.1")
        code, text = client.docmd("STARTTLS")
        assert (code, text[:5]) == (454, b"4.7.0")


def test_every_reply_carries_an_enhanced_status_code(running: GatewayServer,
                                                     settings: Settings) -> None:
    """A full session with every command and error path; RFC 2034 exempts only the
    greeting, the answers to HELO and EHLO, and 354."""
    expected = [
        (b"MAIL FROM:<anna@acme.example>", b"503 5.5.1"),  # before EHLO
        (b"EHLO client.example", b"250"),
        (b"NOOP", b"250 2.0.0"),
        (b"HELP", b"250 2.0.0"),
        (b"HELP MAIL", b"250 2.0.0"),
        (b"HELP NOSUCH", b"501 5.5.4"),
        (b"VRFY support@support.example", b"252 2.0.0"),
        (b"VRFY", b"501 5.5.4"),
        (b"EXPN staff", b"502 5.5.1"),
        (b"RCPT TO:<support@support.example>", b"503 5.5.1"),  # before MAIL
        (b"DATA", b"503 5.5.1"),  # before RCPT
        (b"MAIL FROM anna", b"501 5.5.4"),
        (b"MAIL FROM:<anna@acme.example> SIZE=999999999999", b"552 5.3.4"),
        (b"MAIL FROM:<anna@acme.example> FOO=BAR", b"555 5.5.4"),
        (b"MAIL FROM:<anna@acme.example> BODY=9BIT", b"501 5.5.4"),
        (b"MAIL FROM:<@>", b"553 5.1.3"),
        (b"MAIL FROM:<anna@acme.example> SIZE=1000 BODY=8BITMIME", b"250 2.1.0"),
        (b"MAIL FROM:<anna@acme.example>", b"503 5.5.1"),  # nested
        (b"RCPT TO:<someone@elsewhere.example>", b"550 5.7.1"),
        (b"RCPT TO:<nobody@support.example>", b"550 5.1.1"),
        (b"RCPT TO:<support@support.example> NOTIFY=NEVER", b"555 5.5.4"),
        (b"RCPT TO support", b"501 5.5.4"),
        (b"RCPT TO:<support@support.example>", b"250 2.1.5"),
        (b"DATA now", b"501 5.5.4"),
        (b"DATA", b"354"),
        (b"Subject: codes\r\nMessage-ID: <codes@client.example>\r\n\r\nbody\r\n.", b"250 2.0.0"),
        (b"RSET", b"250 2.0.0"),
        (b"RSET now", b"501 5.5.4"),
        (b"", b"500 5.5.2"),  # an empty line
        (b"FROBNICATE", b"500 5.5.1"),
        (b"MAIL FROM:<" + b"a" * 2_000 + b"@acme.example>", b"500 5.5.2"),
        (b"STARTTLS", b"454 4.7.0"),
        (b"AUTH LOGIN", b"500 5.5.1"),
        (b"EHLO", b"501 5.5.4"),
        (b"HELO", b"501 5.5.4"),
        (b"HELO client.example", b"250"),
        (b"MAIL FROM:<anna@acme.example> SIZE=10", b"501 5.5.4"),  # no parameters after HELO
        (b"QUIT now", b"501 5.5.4"),
        (b"QUIT", b"221 2.0.0"),
    ]
    with _connect(settings) as sock:
        dialogue = Dialogue(sock)
        assert dialogue.greeting[0].startswith(b"220 ")
        answers = [dialogue.say(command) for command, _ in expected]
    for (command, code), reply in zip(expected, answers, strict=True):
        assert _code_of(reply).startswith(code), (command[:40], reply)
        exempt = command.startswith((b"EHLO ", b"HELO ")) or code == b"354"
        for line in reply:
            assert exempt or ENHANCED.match(line), (command[:40], line)


# -- connection caps --------------------------------------------------------------------


def test_held_connections_from_one_address_leave_room_for_others_and_healthz(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory()  # the defaults: 200 in all, 20 per address
    assert (settings.smtp_max_connections, settings.smtp_max_connections_per_ip) == (200, 20)
    with _served(gateway, settings, processes, run_web=True), ExitStack() as held:
        first_lines = []
        for _ in range(300):
            sock = held.enter_context(_connect(settings, source="127.0.0.2"))
            first_lines.append(_first_line(sock))
        greeted = [line for line in first_lines if line.startswith(b"220 ")]
        refused = [line for line in first_lines if line.startswith(b"421 4.7.0 ")]
        assert (len(greeted), len(refused)) == (20, 280)
        assert first_lines[20].startswith(b"421 4.7.0 ")  # the 21st
        # the others are served meanwhile: SMTP from another address and the web listener
        assert send(settings.smtp_listen, make_mail(subject="Not starved")) == {}
        assert _healthz(settings) == (200, b'{"status":"ok"}')
        held.close()  # every held and refused connection of 127.0.0.2 goes away
        # no slot leaked, from the refused ones least of all: 20 fit again
        wait_for(lambda: _all_greeted(settings, "127.0.0.2", 20), timeout=30,
                 message="20 connections from 127.0.0.2 to be admitted again")
    assert [entry.raw.count(b"Not starved") for entry in _stored(gateway)] == [1]


def _all_greeted(settings: Settings, source: str, count: int) -> bool:
    with ExitStack() as stack:
        socks = [stack.enter_context(_connect(settings, source=source)) for _ in range(count)]
        return all(_first_line(sock).startswith(b"220 ") for sock in socks)


def test_beyond_the_total_cap_every_address_gets_421(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory(smtp_max_connections=30, smtp_max_connections_per_ip=20)
    with _served(gateway, settings, processes), ExitStack() as held:
        lines = []
        for source, count in (("127.0.0.2", 21), ("127.0.0.3", 11)):
            for _ in range(count):
                lines.append(_first_line(held.enter_context(_connect(settings, source))))
        assert all(line.startswith(b"220 ") for line in lines[:20])
        assert lines[20].startswith(b"421 4.7.0 ") and b"your address" in lines[20]
        assert all(line.startswith(b"220 ") for line in lines[21:31])
        assert lines[31].startswith(b"421 4.7.0 ") and b"your address" not in lines[31]
        with pytest.raises(smtplib.SMTPConnectError) as refused:
            send(settings.smtp_listen, make_mail())
        assert refused.value.smtp_code == 421 and refused.value.smtp_error[:5] == b"4.7.0"
        held.close()
        wait_for(lambda: _sends(settings), timeout=30, message="a free slot after closing")
    assert len(_stored(gateway)) == 1


def _sends(settings: Settings) -> bool:
    try:
        return send(settings.smtp_listen, make_mail(message_id="<after-cap@client.example>")) == {}
    except smtplib.SMTPConnectError:
        return False


@contextmanager
def _serve_with_256_open_files(settings: Settings, log_path: Path
                               ) -> Iterator[subprocess.Popen[bytes]]:
    """``gateway serve`` under ``ulimit -n 256`` (util-linux's prlimit, for one command),
    listening; stopped at the end."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["prlimit", "--nofile=256:256", *gateway_command("serve")],
                                   env=gateway_env(settings), stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _listening(settings, process), timeout=60, message="serve to listen")
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_under_a_256_descriptor_limit_a_flood_starves_neither_smtp_nor_healthz(
    settings: Settings, tmp_path: Path, gateway: Gateway
) -> None:
    """The issue's report: ``ulimit -n 256`` and 320 idle connections made SMTP and
    /healthz time out for everyone.  Now the caps fit the limit (logged at start)."""
    log_path = tmp_path / "serve.log"
    with _serve_with_256_open_files(settings, log_path), ExitStack() as held:
        first_lines = []
        for source in range(2, 18):  # 320 connections, 20 from each of 16 addresses
            for _ in range(20):
                sock = held.enter_context(_connect(settings, f"127.0.0.{source}"))
                first_lines.append(_first_line(sock))
        greeted = sum(line.startswith(b"220 ") for line in first_lines)
        refused = sum(line.startswith(b"421 4.7.0 ") for line in first_lines)
        assert greeted + refused == 320 and 0 < greeted < 200
        assert _healthz(settings) == (200, b'{"status":"ok"}')
        with _connect(settings, "127.0.0.99") as late:  # total cap: refused, not hung
            assert _first_line(late).startswith(b"421 4.7.0 ")
        held.close()
        wait_for(lambda: _sends(settings), timeout=30, message="SMTP after the flood")
    output = log_path.read_text(errors="replace")
    assert "open-file limit (256)" in output
    assert "Too many open files" not in output and "out of system resource" not in output


def test_smtp_and_lmtp_share_one_descriptor_budget_under_a_256_limit(
    settings: Settings, tmp_path: Path, gateway: Gateway
) -> None:
    """Each listener used to size its cap to the open-file limit alone: under ``ulimit -n
    256`` SMTP took 75 connections and LMTP 71 more, and a burst of connections to both
    then met ``Too many open files``.  Now the two caps share one budget."""
    settings = settings.model_copy(update={"lmtp_listen": f"127.0.0.1:{free_port()}"})
    lmtp = (settings.lmtp_listen.rsplit(":", 1)[0], int(settings.lmtp_listen.rsplit(":", 1)[1]))
    log_path = tmp_path / "serve.log"
    with _serve_with_256_open_files(settings, log_path):
        with ExitStack() as held:
            greeted = {}
            for name, address in (("smtp", _address(settings)), ("lmtp", lmtp)):
                first_lines = []
                for source in range(2, 14):  # 240 connections to each, 20 from each address
                    for _ in range(20):
                        sock = held.enter_context(_connect_to(address, f"127.0.0.{source}"))
                        first_lines.append(_first_line(sock))
                greeted[name] = sum(line.startswith(b"220 ") for line in first_lines)
                assert all(line.startswith((b"220 ", b"421 4.7.0 ")) for line in first_lines)
            # Both held at once, and a burst of connections to both (asyncio accepts up to
            # its backlog before the caps refuse them): no descriptor runs out.
            for address in (_address(settings), lmtp):
                for n in range(100):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                    sock.setblocking(False)
                    sock.bind((f"127.0.1.{n % 50 + 1}", 0))
                    sock.connect_ex(address)
            time.sleep(2)
            assert _healthz(settings) == (200, b'{"status":"ok"}')
            assert greeted["smtp"] > 0 and greeted["lmtp"] > 0
            assert greeted["smtp"] + greeted["lmtp"] < 100, greeted  # one budget, not two
        wait_for(lambda: _sends(settings), timeout=30, message="SMTP after the flood")
    output = log_path.read_text(errors="replace")
    assert "open-file limit (256)" in output and "(SMTP, LMTP)" in output
    assert "Too many open files" not in output and "out of system resource" not in output


def _connect_to(address: tuple[str, int], source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.bind((source, 0))
    sock.connect(address)
    return sock


def _listening(settings: Settings, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        pytest.fail(f"serve exited with {process.returncode}")
    try:
        socket.create_connection(_address(settings), timeout=1).close()
        return True
    except OSError:
        return False


# -- deadlines --------------------------------------------------------------------------


def _trickle(sock: socket.socket, data: bytes, interval: float) -> tuple[bytes, int]:
    """Send ``data`` a byte every ``interval`` seconds until the server closes; what it
    answered meanwhile and how many bytes went out."""
    answers, sent = b"", 0
    for byte in data:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return answers, sent
        sent += 1
        deadline = time.monotonic() + interval
        while (left := deadline - time.monotonic()) > 0:
            if select.select([sock], [], [], left)[0]:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    return answers, sent
                if not chunk:
                    return answers, sent
                answers += chunk
    return answers, sent


def test_a_trickled_message_is_cut_off_at_the_data_deadline_and_not_stored(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory(smtp_timeout=1.0, smtp_data_timeout=2.0,
                                smtp_transaction_timeout=30.0)
    message = b"Subject: trickle\r\nMessage-ID: <trickle@client.example>\r\n\r\n" + b"x" * 60
    normal: list[object] = []
    with _served(gateway, settings, processes), _connect(settings) as sock:
        dialogue = Dialogue(sock)
        dialogue.say(b"EHLO client.example")
        dialogue.say(b"MAIL FROM:<anna@acme.example>")
        dialogue.say(b"RCPT TO:<support@support.example>")
        assert dialogue.say(b"DATA")[0].startswith(b"354 ")
        sender = threading.Thread(target=lambda: normal.append(
            send(settings.smtp_listen, make_mail(subject="Meanwhile"))))
        sender.start()
        answers, sent = _trickle(sock, message + b"\r\n.\r\n", interval=0.2)
        sender.join(timeout=60)
    # one byte every 0.2 s never leaves the connection idle for the 1 s idle timeout, yet
    # the server closed it long before the 129 bytes were through (they take 26 s)
    assert sent < len(message) and b"421 4.4.2 " in answers
    assert normal == [{}]
    assert [b"Meanwhile" in entry.raw for entry in _stored(gateway)] == [True]


def test_a_transaction_kept_alive_by_commands_is_cut_off_at_its_deadline(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory(smtp_timeout=1.0, smtp_transaction_timeout=2.0)
    with _served(gateway, settings, processes), _connect(settings) as sock:
        dialogue = Dialogue(sock)
        dialogue.say(b"EHLO client.example")
        assert _code_of(dialogue.say(b"MAIL FROM:<anna@acme.example>")) == b"250 2.1.0"
        replies: list[bytes] = []
        for _ in range(40):  # 20 s of RCPTs, each well inside the idle timeout
            if select.select([sock], [], [], 0.5)[0]:  # the server speaks unasked
                replies.append(_code_of(dialogue.reply()))
                break
            replies.append(_code_of(dialogue.say(b"RCPT TO:<support@support.example>")))
            if replies[-1].startswith(b"421"):
                break
        assert replies[-1] == b"421 4.4.2" and set(replies[:-1]) == {b"250 2.1.5"}
        assert len(replies) < 20
        with pytest.raises(ConnectionError):
            dialogue.say(b"NOOP")
    assert _stored(gateway) == []


def test_mail_rset_noop_in_a_loop_is_cut_off_at_the_transaction_deadline(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    """The attack review's slot holder: RSET (or HELO, EHLO, a refused RCPT) used to end
    the transaction and the next MAIL started a fresh deadline, so the connection lived
    for ever.  The first MAIL's deadline now runs until a DATA ends."""
    settings = settings_factory(smtp_timeout=1.0, smtp_transaction_timeout=2.0,
                                smtp_junk_command_limit=1000)
    rounds = [[b"MAIL FROM:<anna@acme.example>", b"RSET", b"NOOP"],
              [b"MAIL FROM:<anna@acme.example>", b"RCPT TO:<nobody@support.example>",
               b"EHLO client.example"],
              [b"MAIL FROM:<anna@acme.example>", b"HELO client.example", b"NOOP"]]
    with _served(gateway, settings, processes), _connect(settings) as sock:
        dialogue = Dialogue(sock)
        dialogue.say(b"EHLO client.example")
        replies: list[bytes] = []
        for number in range(40):  # 20 s of rounds, each well inside the idle timeout
            if select.select([sock], [], [], 0.5)[0]:  # the server speaks unasked
                replies.append(_code_of(dialogue.reply()))
                break
            try:
                replies += [_code_of(dialogue.say(line)) for line in rounds[number % 3]]
            except ConnectionError:
                break
        assert replies[-1] == b"421 4.4.2", replies
        assert len(replies) < 40  # cut off within a few rounds, not after all of them
        with pytest.raises(ConnectionError):
            dialogue.say(b"NOOP")


def test_a_connection_past_its_lifetime_is_closed_but_not_in_the_middle_of_a_message(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory(smtp_timeout=10.0, smtp_connection_seconds=1.5,
                                smtp_data_timeout=30.0, smtp_transaction_timeout=30.0)
    message = b"Subject: lifetime\r\nMessage-ID: <lifetime@client.example>\r\n\r\nslow\r\n"
    with _served(gateway, settings, processes):
        with _connect(settings) as sock:
            dialogue = Dialogue(sock)
            dialogue.say(b"EHLO client.example")
            dialogue.say(b"MAIL FROM:<anna@acme.example>")
            dialogue.say(b"RCPT TO:<support@support.example>")
            assert dialogue.say(b"DATA")[0].startswith(b"354 ")
            for start in range(0, len(message), 8):  # 2.4 s: past the lifetime
                sock.sendall(message[start:start + 8])
                time.sleep(0.3)
            # the message in progress is taken and answered, then the connection closes
            assert _code_of(dialogue.say(b".")) == b"250 2.0.0"
            assert dialogue.reply() == [b"421 4.4.2 Connection open for too long, "
                                        b"closing connection"]
        with _connect(settings) as sock:  # an idle one is closed when its time is up
            dialogue = Dialogue(sock)
            dialogue.say(b"EHLO client.example")
            assert _code_of(dialogue.reply()) == b"421 4.4.2"  # before the idle timeout
            with pytest.raises(ConnectionError):
                dialogue.say(b"NOOP")
    assert [entry.raw for entry in _stored(gateway)] == [message]


def test_a_command_line_trickled_byte_by_byte_is_cut_off_by_the_idle_timeout(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory(smtp_timeout=1.0)
    with _served(gateway, settings, processes), _connect(settings) as sock:
        Dialogue(sock)
        answers, sent = _trickle(sock, b"NOOP" + b" x" * 40 + b"\r\n", interval=0.2)
    assert sent < 84 and answers.startswith(b"421 4.4.2 ")


def test_a_slow_but_steady_message_within_its_deadlines_is_taken(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory(smtp_timeout=1.0, smtp_data_timeout=20.0)
    message = b"Subject: slow\r\nMessage-ID: <slow-steady@client.example>\r\n\r\nok\r\n"
    with _served(gateway, settings, processes), _connect(settings) as sock:
        dialogue = Dialogue(sock)
        dialogue.say(b"EHLO client.example")
        dialogue.say(b"MAIL FROM:<anna@acme.example>")
        dialogue.say(b"RCPT TO:<support@support.example>")
        dialogue.say(b"DATA")
        for start in range(0, len(message), 8):  # 3 s in all, longer than the idle timeout
            sock.sendall(message[start:start + 8])
            time.sleep(0.3)
        assert _code_of(dialogue.say(b".")) == b"250 2.0.0"
    assert [entry.raw for entry in _stored(gateway)] == [message]


# -- junk commands ------------------------------------------------------------------------


def test_junk_commands_past_the_limit_get_421_and_the_connection_is_closed(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    settings = settings_factory(smtp_junk_command_limit=8)
    junk = [(b"NOOP", b"250 2.0.0"), (b"RSET", b"250 2.0.0"),
            (b"VRFY anna@acme.example", b"252 2.0.0"), (b"EXPN staff", b"502 5.5.1"),
            (b"HELP", b"250 2.0.0"), (b"FROBNICATE", b"500 5.5.1"),
            (b"RCPT TO:<support@support.example>", b"503 5.5.1"),  # refused: before MAIL
            (b"EHLO client.example", b"250")]
    with _served(gateway, settings, processes), _connect(settings) as sock:
        dialogue = Dialogue(sock)
        for command, code in junk:  # eight answered as ever
            assert _code_of(dialogue.say(command)).startswith(code), command
        assert dialogue.say(b"NOOP") == [b"421 4.7.0 Too many commands without a message, "
                                         b"closing connection"]
        with pytest.raises(ConnectionError):
            dialogue.say(b"NOOP")
        # a refusal past the limit is answered, then the 421 follows
        with _connect(settings) as other:
            dialogue = Dialogue(other)
            for _ in range(8):
                dialogue.say(b"NOOP")
            assert _code_of(dialogue.say(b"MAIL FROM:<anna@acme.example>")) == b"503 5.5.1"
            assert _code_of(dialogue.reply()) == b"421 4.7.0"


def test_a_client_sending_several_messages_on_one_connection_is_not_affected(
    gateway: Gateway, settings_factory: Callable[..., Settings], processes: Processes
) -> None:
    """Each accepted message clears the junk count and ends its transaction's deadline:
    five messages with a RSET and a NOOP each fit a limit of 3 and a 2 s deadline."""
    settings = settings_factory(smtp_junk_command_limit=3, smtp_transaction_timeout=2.0,
                                smtp_connection_seconds=60.0)
    with _served(gateway, settings, processes), _connect(settings) as sock:
        dialogue = Dialogue(sock)
        dialogue.say(b"EHLO client.example")  # junk 1
        for number in range(5):
            assert _code_of(dialogue.say(b"RSET")) == b"250 2.0.0"
            assert _code_of(dialogue.say(b"NOOP")) == b"250 2.0.0"
            assert _code_of(dialogue.say(b"MAIL FROM:<anna@acme.example>")) == b"250 2.1.0"
            assert _code_of(dialogue.say(b"RCPT TO:<support@support.example>")) == b"250 2.1.5"
            assert dialogue.say(b"DATA")[0].startswith(b"354 ")
            sock.sendall(f"Subject: one of five\r\nMessage-ID: <five-{number}@client.example>"
                         f"\r\n\r\nbody\r\n".encode())
            assert _code_of(dialogue.say(b".")) == b"250 2.0.0"
            time.sleep(0.6)  # five of these outlast one transaction deadline
        assert _code_of(dialogue.say(b"QUIT")) == b"221 2.0.0"
    assert len(_stored(gateway)) == 5


# -- long lines ---------------------------------------------------------------------------


def test_a_message_with_a_5000_octet_line_is_taken_verbatim_and_processed(
    running: GatewayServer, gateway: Gateway, settings: Settings
) -> None:
    line = ("A log line: " + "0123456789" * 500)[:5000].encode()
    wire = (b"From: anna@acme.example\r\nTo: support@support.example\r\nSubject: Long line\r\n"
            b"Message-ID: <long-line-5000@client.example>\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\n" + line
            + b"\r\nthanks\r\n")
    assert send(settings.smtp_listen, wire) == {}
    entries = _stored(gateway)
    assert [entry.raw for entry in entries] == [wire]
    wait_for(lambda: _state(gateway, entries[0].id) is not SpoolState.RECEIVED, timeout=60,
             message="the long-line message to be processed")
    assert _state(gateway, entries[0].id) is SpoolState.PROCESSED


def _state(gateway: Gateway, spool_id: int) -> SpoolState:
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None
        return entry.state


def test_a_2000_octet_command_line_is_still_refused(running: GatewayServer,
                                                    settings: Settings) -> None:
    with _connect(settings) as sock:
        dialogue = Dialogue(sock)
        dialogue.say(b"EHLO client.example")
        long_path = b"<" + b"a" * 1_980 + b"@acme.example>"
        assert _code_of(dialogue.say(b"MAIL FROM:" + long_path)) == b"500 5.5.2"
        assert _code_of(dialogue.say(b"RCPT TO:<support@support.example> " + b"X" * 2_000)
                        ) == b"500 5.5.2"
        # longer than the stream buffer too, and the session goes on
        assert _code_of(dialogue.say(b"NOOP " + b"y" * 30_000)) == b"500 5.5.2"
        assert _code_of(dialogue.say(b"MAIL FROM:<anna@acme.example>")) == b"250 2.1.0"


def test_a_botched_stalled_or_abandoned_tls_handshake_gives_its_slot_back(
    gateway: Gateway, tls_settings: Callable[..., Settings], processes: Processes
) -> None:
    settings = tls_settings(smtp_timeout=1.0, smtp_max_connections_per_ip=3)
    with _served(gateway, settings, processes), ExitStack() as stack:
        botched, stalled, abandoned = (stack.enter_context(_connect(settings, "127.0.0.2"))
                                       for _ in range(3))
        for sock in (botched, stalled, abandoned):
            dialogue = Dialogue(sock)
            dialogue.say(b"EHLO client.example")
            assert _code_of(dialogue.say(b"STARTTLS")) == b"220 2.0.0"
        botched.sendall(b"this is not a TLS client hello\r\n" * 10)
        abandoned.close()
        for sock in (botched, stalled):  # both end: a TLS error, or the idle timeout
            with pytest.raises(OSError):
                while sock.recv(65536):
                    pass
                raise ConnectionError("closed by the server")
        wait_for(lambda: _all_greeted(settings, "127.0.0.2", 3), timeout=30,
                 message="the three slots of 127.0.0.2 to be free again")


def _start_tls(dialogue: Dialogue, ca: trustme.CA, pipelined: bytes = b"") -> None:
    """STARTTLS (with ``pipelined`` plaintext right behind it in the same write), then the
    handshake on the dialogue's socket."""
    dialogue.sock.sendall(b"STARTTLS\r\n" + pipelined)
    assert _code_of(dialogue.reply()) == b"220 2.0.0"
    assert dialogue.buffer == b""
    dialogue.sock = _client_context(ca).wrap_socket(dialogue.sock, server_hostname="localhost")


def test_commands_pipelined_behind_starttls_in_plaintext_are_discarded(
    gateway: Gateway, tls_settings: Callable[..., Settings], ca: trustme.CA,
    processes: Processes
) -> None:
    """The STARTTLS command injection (CVE-2011-0411): whoever sits on the path appends a
    transaction in plaintext behind the client's STARTTLS; it must not run inside TLS."""
    settings = tls_settings()
    injected = (b"MAIL FROM:<mallory@evil.example>\r\nRCPT TO:<support@support.example>\r\n"
                b"DATA\r\nSubject: injected\r\n\r\nforged\r\n.\r\n")
    with _served(gateway, settings, processes), _connect(settings) as sock:
        dialogue = Dialogue(sock)
        dialogue.say(b"EHLO client.example")
        _start_tls(dialogue, ca, pipelined=injected)
        # The first reply inside TLS answers our EHLO: nothing of the injection ran.
        assert dialogue.say(b"EHLO client.example")[0].startswith(b"250-")
        assert _code_of(dialogue.say(b"RCPT TO:<support@support.example>")) == b"503 5.5.1"
        assert _code_of(dialogue.say(b"QUIT")) == b"221 2.0.0"
    assert _stored(gateway) == []


def test_a_second_starttls_is_refused_and_gives_no_slot_away(
    gateway: Gateway, tls_settings: Callable[..., Settings], ca: trustme.CA,
    processes: Processes
) -> None:
    """A second STARTTLS used to start a handshake inside TLS; stalled, the connection's
    slot was never given back, so a few clients locked their addresses (and 200 of them
    everyone) out of SMTP until a restart."""
    settings = tls_settings(smtp_timeout=1.0, smtp_max_connections_per_ip=2)
    with _served(gateway, settings, processes), ExitStack() as stack:
        for _ in range(2):
            dialogue = Dialogue(stack.enter_context(_connect(settings, "127.0.0.4")))
            dialogue.say(b"EHLO client.example")
            _start_tls(dialogue, ca)
            assert b"250 SMTPUTF8" in dialogue.say(b"EHLO client.example")
            assert dialogue.say(b"STARTTLS") == [b"503 5.5.1 Error: TLS already active"]
            assert _code_of(dialogue.say(b"NOOP")) == b"250 2.0.0"  # still in step, in TLS
            # then it stalls: the idle timeout closes it, with a 421 inside TLS
            assert _code_of(dialogue.reply()) == b"421 4.4.2"
        wait_for(lambda: _all_greeted(settings, "127.0.0.4", 2), timeout=30,
                 message="the two slots of 127.0.0.4 to be free again")


def test_clients_that_leave_while_their_message_is_committed_do_not_stop_intake(
    running: GatewayServer, gateway: Gateway, settings: Settings
) -> None:
    """A session cancelled mid-commit (the client closed its side after the terminator)
    used to make the spool writer's thread die on the cancelled future: every later
    message waited forever."""
    for number in range(10):
        with _connect(settings) as sock:
            sock.sendall(b"EHLO client.example\r\nMAIL FROM:<anna@acme.example>\r\n"
                         b"RCPT TO:<support@support.example>\r\nDATA\r\n")
            time.sleep(0.05)
            sock.sendall(f"Subject: leaving\r\nMessage-ID: <leaving-{number}@client.example>"
                         f"\r\n\r\nbye\r\n.\r\nQUIT\r\n".encode())
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
    assert send(settings.smtp_listen, make_mail(subject="After them"), timeout=30) == {}
    assert sum(b"After them" in entry.raw for entry in _stored(gateway)) == 1


def test_an_envelope_address_not_utf8_or_with_nul_is_refused_and_fails_no_one_else(
    running: GatewayServer, gateway: Gateway, settings: Settings
) -> None:
    """A Latin-1 ``MAIL FROM`` or ``RCPT TO`` (in PostgreSQL also one with a NUL) used to be
    taken, then fail the spool's commit, and with it every other client's message in the
    same group commit: 451 for all, while the sender retried for days.  Now it is refused
    at its command."""
    latin, nul = b"j\xe9r\xf4me@acme.example", b"j\x00rome@acme.example"
    count = 6
    ready = threading.Barrier(2 * count)
    answers: dict[str, list[bytes]] = {"good": [], "bad": []}

    def client(kind: str, number: int) -> None:
        with _connect(settings) as sock:
            dialogue = Dialogue(sock)
            dialogue.say(b"EHLO client.example")
            if kind == "bad":
                for sender in (latin, nul):
                    answers[kind].append(_code_of(dialogue.say(b"MAIL FROM:<" + sender + b">")))
                dialogue.say(b"MAIL FROM:<anna@acme.example>")
                for local in (b"support+\xe9", b"support+\x00"):
                    answers[kind].append(_code_of(
                        dialogue.say(b"RCPT TO:<" + local + b"@support.example>")))
                ready.wait(timeout=30)
                return
            answers[kind].append(_code_of(dialogue.say(b"MAIL FROM:<anna@acme.example>")))
            dialogue.say(b"RCPT TO:<support@support.example>")
            dialogue.say(b"DATA")
            ready.wait(timeout=30)  # every message ends at once: one group commit
            sock.sendall(make_mail(message_id=f"<good-{number}@acme.example>")
                         + b"\r\n.\r\n")
            answers[kind].append(_code_of(dialogue.reply()))

    threads = [threading.Thread(target=client, args=(kind, number))
               for number in range(count) for kind in ("good", "bad")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answers["bad"]) == sorted([b"553 5.1.7"] * 2 * count
                                            + [b"553 5.1.3"] * 2 * count)
    assert sorted(answers["good"]) == sorted([b"250 2.1.0", b"250 2.0.0"] * count)
    assert sorted(entry.message_id or "" for entry in _stored(gateway)) == sorted(
        f"good-{number}@acme.example" for number in range(count))
