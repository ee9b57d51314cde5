"""A throw-away OpenSSH server on 127.0.0.1, for tests and benches that start engines over SSH.

:class:`ThrowawaySSHD` writes a host key, a user key and a config file into a
folder of its own, starts ``sshd`` on a free high port of the loopback
interface, and stops it (and every session it forked) by the PID in its PID
file. Nothing outside that folder is touched, except ``/run/sshd``, the
privilege separation directory that sshd insists on.

:func:`find_sshd` returns the ``sshd`` binary. When it is missing it installs
Debian's ``openssh-server``, but only where that is safe: as root, with
``apt-get``, and with a ``policy-rc.d`` that stops the package from starting
the system's own sshd (as in Docker images and CI containers). Elsewhere it
returns None and why, which the tests hand to ``system_tools.unavailable("sshd", why)``:
a skip, or a failure where sshd is required (CI).

Used by ``tests/`` (through ``tests/sshd.py``) and ``bench/startup.py``; not by the lessons.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from course_lib import _processes

SSHD = "/usr/sbin/sshd"
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def _services_blocked():
    """True when installing a Debian package cannot start its service (policy-rc.d exits 101)."""
    if not os.access(POLICY_RC, os.X_OK):
        return False
    return subprocess.run([str(POLICY_RC), "ssh", "start"], check=False).returncode == 101


def find_sshd(install=True, timeout=300):
    """The path of ``sshd``, installing ``openssh-server`` if that is safe; else None.

    Returns
    -------
    (str or None, str)
        The binary, and why there is none.
    """
    if os.geteuid() != 0:
        return None, "not root: sshd must read its host key and log a user in"
    path = shutil.which("sshd") or (SSHD if os.access(SSHD, os.X_OK) else None)
    if path:
        return path, ""
    if not install:
        return None, "sshd is not installed"
    if shutil.which("apt-get") is None:
        return None, "sshd is not installed and there is no apt-get to install it"
    if not _services_blocked():
        return None, (
            "sshd is not installed, and installing it here could start the system's sshd "
            "on port 22 (no policy-rc.d blocks services)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install_cmd = ["apt-get", "install", "-y", "-q", "openssh-server"]
    log = ""
    for commands in ([install_cmd], [["apt-get", "update", "-q"], install_cmd]):
        try:
            for command in commands:
                done = subprocess.run(
                    command, env=env, capture_output=True, text=True, timeout=timeout, check=True
                )
                log = done.stdout[-500:]
        except (subprocess.SubprocessError, OSError) as error:
            log = f"{error}: {getattr(error, 'stderr', '') or ''}"[-500:]
            continue
        if os.access(SSHD, os.X_OK):
            return SSHD, ""
    return None, f"installing openssh-server failed: {log}"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThrowawaySSHD:
    """An sshd on 127.0.0.1 that lets one user in with one throw-away key.

    Parameters
    ----------
    folder : path
        Created; holds keys, config, log and PID file. Removed by :meth:`stop`.
    sshd : str
        The sshd binary.

    Attributes
    ----------
    port : int
    user : str
        The user this process runs as: the only one allowed in.
    user_key : Path
        Private key of that user.
    options : list of str
        ``ssh``/``scp`` options that use the key and trust this server
        without a known_hosts file.
    """

    def __init__(self, folder, sshd):
        self.folder = Path(folder)
        self.sshd = sshd
        self.port = None
        self.user = getpass.getuser()
        self.user_key = self.folder / "user_key"
        self.pid_file = self.folder / "sshd.pid"
        self.log_file = self.folder / "sshd.log"
        self.pid = None
        self.startup_seconds = None
        self.options = [
            "-i",
            str(self.user_key),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=5",
        ]

    def ssh_command(self, *remote):
        """An ``ssh`` command line that runs ``remote`` on this server."""
        return ["ssh", "-p", str(self.port), *self.options, f"{self.user}@127.0.0.1", *remote]

    def _write_config(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in ("host_key", "user_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"throwaway-{name}"]
                + ["-f", str(self.folder / name)],
                check=True,
                capture_output=True,
            )
        authorized = self.folder / "authorized_keys"
        shutil.copy(self.folder / "user_key.pub", authorized)
        authorized.chmod(0o600)
        self.port = _free_port()
        config = self.folder / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.folder / 'host_key'}",
                    f"AuthorizedKeysFile {authorized}",
                    f"AllowUsers {self.user}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "UsePAM no",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "PrintMotd no",
                    f"PidFile {self.pid_file}",
                    # OpenSSH 9's scp speaks SFTP: the SSH launcher copies connection
                    # files with scp, which fails without this subsystem.
                    "Subsystem sftp internal-sftp",
                    "",
                ]
            )
        )
        return config

    def start(self, timeout=30):
        """Start sshd and wait until a first ``ssh`` gets through."""
        started = time.monotonic()
        config = self._write_config()
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation dir
        subprocess.run([self.sshd, "-t", "-f", str(config)], check=True, capture_output=True)
        # sshd forks into the background; its parent returns at once.
        subprocess.run([self.sshd, "-f", str(config), "-E", str(self.log_file)], check=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.pid is None and self.pid_file.exists():
                with contextlib.suppress(ValueError):
                    self.pid = int(self.pid_file.read_text().split()[0])
            if self.pid is not None:
                probe = subprocess.run(self.ssh_command("true"), capture_output=True, timeout=15)
                if probe.returncode == 0:
                    break
            if time.monotonic() > deadline:
                log = self.log_file.read_text() if self.log_file.exists() else ""
                self.stop()
                raise RuntimeError(f"sshd did not let us in within {timeout} s; its log:\n{log}")
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - started
        return self

    def processes(self):
        """The sshd listener and every session it forked, alive."""
        if self.pid is None:
            return []
        return _processes.process_tree(self.pid)

    def stop(self, grace=5.0):
        """SIGTERM the listener and its sessions by PID, SIGKILL what stays; remove the folder.

        Returns the PIDs that were running (all gone when this returns).
        """
        stopped = _processes.stop_or_raise(self.processes(), "sshd", grace)
        shutil.rmtree(self.folder, ignore_errors=True)
        return stopped

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
