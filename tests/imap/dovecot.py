"""A private Dovecot IMAP server for the tests: own config, own port, own maildirs.

Started in the foreground (``dovecot -F -c CONF``) as a child process, so the
system's Dovecot service is neither needed nor touched.  Users live in a
passwd-file with plaintext passwords (loopback only); mail is Maildir under the
test's temporary directory.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import imapclient
import pytest

from tests.conftest import free_port

__all__ = ["Dovecot"]


class Dovecot:
    """One Dovecot instance; ``stop()``/``start()`` may be called repeatedly (same port)."""

    def __init__(self, root: Path, *, cert: Path | None = None, key: Path | None = None,
                 capabilities: str | None = None) -> None:
        """``capabilities`` replaces what Dovecot advertises after login (e.g. no MOVE/IDLE)."""
        binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
        if not Path(binary).exists():
            pytest.fail("dovecot is not installed (Debian package dovecot-imapd; "
                        "`make system-deps` installs it)", pytrace=False)
        self.binary = binary
        self.root = root
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port() if cert else 0
        self.cert, self.key = cert, key
        self.capabilities = capabilities
        self.users: dict[str, str] = {}
        self.process: subprocess.Popen[bytes] | None = None
        (root / "state").mkdir(parents=True, exist_ok=True)
        # Dovecot's sockets live in base_dir, and a socket path has at most 107 bytes: the
        # test's temporary directory (longer under pytest-xdist) would not leave room.
        self.run_dir = Path(tempfile.mkdtemp(prefix="gwtest-dovecot-"))
        # Dovecot never gives mail access to uid 0: as root, the maildirs belong to
        # "nobody" and live in their own directory that this user can reach.
        self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
        if self.mail_uid == 0:
            nobody = pwd.getpwnam("nobody")
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
            self.mail_root = Path(tempfile.mkdtemp(prefix="gwtest-maildirs-"))
            os.chown(self.mail_root, self.mail_uid, self.mail_gid)
        else:
            self.mail_root = root / "mail"
            self.mail_root.mkdir(exist_ok=True)
        self.passwd = root / "passwd"
        self.passwd.write_text("")
        self.config = root / "dovecot.conf"
        self.log = root / "dovecot.log"
        self.config.write_text(self._config())

    def _config(self) -> str:
        me = pwd.getpwuid(os.getuid())
        # The auth and internal processes must read files under the test's private
        # temporary directory: they run as the test's own user.
        group = grp.getgrgid(os.getgid()).gr_name
        users = (f"default_internal_user = {me.pw_name}\ndefault_internal_group = {group}\n")
        if os.getuid() != 0:
            users += f"default_login_user = {me.pw_name}\n"
        tls = "ssl = no\n"
        tls_listener = "  inet_listener imaps {\n    port = 0\n  }\n"
        if self.cert and self.key:
            tls = f"ssl = yes\nssl_cert = <{self.cert}\nssl_key = <{self.key}\n"
            tls_listener = (f"  inet_listener imaps {{\n    address = {self.host}\n"
                            f"    port = {self.tls_port}\n    ssl = yes\n  }}\n")
        return f"""\
base_dir = {self.run_dir}
state_dir = {self.root / 'state'}
log_path = {self.log}
instance_name = gwtest-{self.port}
protocols = imap
listen = {self.host}
{users}first_valid_uid = 0
first_valid_gid = 0
disable_plaintext_auth = no
auth_mechanisms = plain login
{tls}mail_location = maildir:{self.mail_root}/%u
mailbox_idle_check_interval = 1 secs
{f"imap_capability = {self.capabilities}" if self.capabilities else ""}
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={self.mail_root}/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
{tls_listener}}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""

    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password
        self.passwd.write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n"
                                       for u, p in self.users.items()))

    def start(self, timeout: float = 20.0) -> None:
        assert self.process is None or self.process.poll() is not None
        with open(self.root / "stdout.log", "ab") as out:
            # Its own process group: stop() ends the sessions too, as a real restart does.
            self.process = subprocess.Popen([self.binary, "-F", "-c", str(self.config)],
                                            stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"dovecot exited with {self.process.returncode}:\n"
                            f"{self.logs()[-3000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    if sock.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dovecot did not answer on port {self.port}:\n{self.logs()[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the master and every process of this instance (open IMAP sessions too)."""
        if self.process is None:
            return
        group = self.process.pid  # the master leads its own process group
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)  # sessions the master left behind
        self.process = None

    def remove(self) -> None:
        """Stop and delete the maildirs and the sockets (outside the test's tmp dir)."""
        self.stop()
        shutil.rmtree(self.mail_root, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def logs(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.log, self.root / "stdout.log")
                 if p.exists()]
        return "\n".join(parts)

    def url(self, user: str, *, password: str | None = None, scheme: str = "imap",
            query: str = "") -> str:
        secret = self.users[user] if password is None else password
        port = self.tls_port if scheme == "imaps" else self.port
        quoted = user.replace("@", "%40")
        return f"{scheme}://{quoted}:{secret}@{self.host}:{port}" + (f"?{query}" if query else "")

    def client(self, user: str) -> imapclient.IMAPClient:
        """A logged-in client, for the test to play the mail provider and the agents."""
        client = imapclient.IMAPClient(self.host, self.port, ssl=False, timeout=30)
        client.login(user, self.users[user])
        return client
