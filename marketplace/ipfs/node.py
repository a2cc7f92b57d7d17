"""A private, offline js-ipfs node on loopback, for tests and the demo.

Each node gets its own repo (`IPFS_PATH`), a kernel-chosen API port and no network at all
(no bootstrap peers, discovery, DHT, preload, gateway or gRPC), so several can run side by side
and none of them leaks content or waits on the internet.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from marketplace.errors import IpfsError, ToolchainError
from marketplace.ipfs.client import IpfsClient, api_url_from_multiaddr
from marketplace.paths import JSIPFS_BIN, PROJECT_ROOT

LOG_NAME = "daemon.log"
CONFIG_NAME = "fedmarket-ipfs-config.json"
PID_NAME = "daemon.pid"
POLL_SECONDS = 0.05

# Merged into the repo config on every start (js-ipfs re-applies `--init-config` to existing repos).
OFFLINE_LOOPBACK_CONFIG: dict[str, Any] = {
    "Addresses": {
        "API": "/ip4/127.0.0.1/tcp/0",
        "Gateway": "",
        "RPC": "",
        "Swarm": [],
        "Announce": [],
        "NoAnnounce": [],
        "Delegates": [],
    },
    "Bootstrap": [],
    "Discovery": {"MDNS": {"Enabled": False, "Interval": 10}, "webRTCStar": {"Enabled": False}},
    "Routing": {"Type": "none"},
}


class LocalIpfsNode:
    """Runs `jsipfs daemon --offline` in its own repo; stop it (or leave the `with` block) to end it."""

    def __init__(
        self,
        repo_dir: Path | str | None = None,
        *,
        start_timeout: float = 30.0,
        jsipfs_bin: Path = JSIPFS_BIN,
    ) -> None:
        """Without `repo_dir` the repo lives in a temporary directory that `stop()` deletes."""
        self.owns_repo_dir = repo_dir is None
        self.repo_dir = Path(repo_dir) if repo_dir is not None else None
        self.start_timeout = start_timeout
        self.jsipfs_bin = jsipfs_bin
        self.startup_seconds: float | None = None
        self._api_url: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        state = f"api={self._api_url}, pid={self.pid}" if self.is_running() else "stopped"
        return f"LocalIpfsNode(repo={self.repo_dir}, {state})"

    def __enter__(self) -> LocalIpfsNode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def api_url(self) -> str:
        """The node's RPC API base URL, e.g. http://127.0.0.1:40123."""
        if self._api_url is None:
            raise ToolchainError("the local IPFS node is not running", "call start() first")
        return self._api_url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        return self.repo_dir / LOG_NAME if self.repo_dir is not None else None

    def client(self, **options: Any) -> IpfsClient:
        """An IpfsClient for this node; the caller closes it."""
        return IpfsClient(self.api_url, **options)

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- start ------------------------------------------------------------------------------

    def start(self) -> LocalIpfsNode:
        """Start the daemon and wait until its API answers; raise ToolchainError with the log tail if not."""
        if self._process is not None:
            return self
        if not self.jsipfs_bin.exists():
            raise ToolchainError(
                f"js-ipfs is not installed ({self.jsipfs_bin} is missing)",
                f"run `npm install` in {PROJECT_ROOT}",
            )
        if self.repo_dir is None:
            self.repo_dir = Path(tempfile.mkdtemp(prefix="fedmarket-ipfs-"))
        self.repo_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            self._launch(self.repo_dir)
            self._api_url = self._wait_until_ready(self.repo_dir, started + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        atexit.register(self.stop)
        return self

    def _launch(self, repo_dir: Path) -> None:
        _clear_stale_lock(repo_dir)
        (repo_dir / "api").unlink(missing_ok=True)
        config_path = repo_dir / CONFIG_NAME
        config_path.write_text(json.dumps(OFFLINE_LOOPBACK_CONFIG, indent=2))
        command = [
            str(self.jsipfs_bin),
            "daemon",
            "--offline",
            "--enable-preload=false",
            "--init-profile",
            "test",
            "--init-config",
            str(config_path),
        ]
        self._log = (repo_dir / LOG_NAME).open("ab")
        try:
            self._process = subprocess.Popen(
                command,
                cwd=repo_dir,
                env={**os.environ, "IPFS_PATH": str(repo_dir)},
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolchainError(f"could not run {self.jsipfs_bin}: {exc}", "is Node.js on PATH?") from exc
        (repo_dir / PID_NAME).write_text(f"{self._process.pid}\n")

    def _wait_until_ready(self, repo_dir: Path, deadline: float) -> str:
        """Poll until the daemon has published its API address and answers `version`."""
        assert self._process is not None
        api_file = repo_dir / "api"
        with httpx.Client(timeout=2.0) as http:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    code = self._process.returncode
                    tail = self._log_tail()
                    raise ToolchainError(f"the IPFS node exited with code {code} while starting:\n{tail}")
                if api_file.exists() and (address := api_file.read_text().strip()):
                    # The file may be caught half-written: a bad address or refused call just means "poll again".
                    with contextlib.suppress(IpfsError, httpx.HTTPError):
                        url = api_url_from_multiaddr(address)
                        if http.post(f"{url}/api/v0/version").status_code == 200:
                            return url
                time.sleep(POLL_SECONDS)
        raise ToolchainError(
            f"the IPFS node did not answer within {self.start_timeout:.0f} s:\n{self._log_tail()}",
            f"full log: {repo_dir / LOG_NAME}",
        )

    def _log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- stop -------------------------------------------------------------------------------

    def stop(self, timeout: float = 5.0) -> None:
        """End the daemon (SIGTERM so js-ipfs releases its repo lock, SIGKILL after `timeout`).

        A temporary repo is deleted afterwards; a given one is kept for the next start.
        """
        atexit.unregister(self.stop)
        process, self._process, self._api_url = self._process, None, None
        if process is not None:
            clean_exit = _end_process(process, timeout)
            if self.repo_dir is not None:
                if not clean_exit:
                    # The daemon held the lock and is gone for sure: without this, js-ipfs refuses
                    # the repo for 20 s.
                    shutil.rmtree(self.repo_dir / "repo.lock", ignore_errors=True)
                (self.repo_dir / PID_NAME).unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.owns_repo_dir and self.repo_dir is not None:
            shutil.rmtree(self.repo_dir, ignore_errors=True)
            self.repo_dir = None


def _end_process(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Stop a daemon this module started: SIGTERM, wait, then SIGKILL its process group.

    Returns whether it exited cleanly (js-ipfs exits 0 once it has released its repo).
    """
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    if process.poll() is None:
        # The daemon leads its own session (start_new_session), so its group holds only what it spawned;
        # while it is unreaped its PID cannot have been reused.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait() == 0


def _clear_stale_lock(repo_dir: Path) -> None:
    """Remove the repo lock a killed daemon left behind (js-ipfs honours it for 20 s otherwise).

    The lock is only removed when the daemon that recorded its PID here no longer exists;
    a live one is reported instead, since two daemons must never share a repo.
    """
    lock, pid_file = repo_dir / "repo.lock", repo_dir / PID_NAME
    if not lock.exists():
        return
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return  # not started by LocalIpfsNode: leave it to js-ipfs
    if _process_alive(pid):
        raise ToolchainError(
            f"an IPFS daemon (pid {pid}) already uses the repo {repo_dir}", "stop it or use another directory"
        )
    shutil.rmtree(lock, ignore_errors=True)
    pid_file.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
