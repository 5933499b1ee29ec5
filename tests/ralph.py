"""A real Ralph LRS for the xAPI connector's tests.

Ralph (``ralph-malph[cli,lrs]`` from PyPI, with ``requests``) pins FastAPI and uvicorn versions
that clash with lmsgate's, so it lives in its own virtualenv, ``.venv-ralph/`` at the repository
root. ``scripts/test.sh`` creates it; :func:`ensure_venv` creates it too when a test needs it
and it is missing (a few minutes, once).

The LRS is started as its documentation says, with the file-system backend::

    RALPH_APP_DIR=<dir> RALPH_AUTH_FILE=<dir>/auth.json RALPH_RUNSERVER_BACKEND=fs
    ralph auth -u <user> -p <pw> -s all -M mailto:<svc> -w
    ralph runserver -b fs --fs-default-directory-path <dir> -h 127.0.0.1 -p <port>

Ralph 5.1's ``fs`` backend writes each user's statements to one file, created by the first
write and never appended to: a second write to the same target fails with 500. So every test
that writes gets a user of its own, with its own target directory. Those users are copies of
the one ``ralph auth`` created (same password hash, other name and target), added to the auth
file before the server starts, because Ralph reads the file once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-ralph"
RALPH = VENV / "bin" / "ralph"
REQUIREMENTS = ["ralph-malph[cli,lrs]>=5.1,<6", "requests>=2.31,<3"]
XAPI_VERSION = {"X-Experience-API-Version": "1.0.3"}


def ensure_venv() -> Path:
    """The ``ralph`` command in ``.venv-ralph``, installing it first when it is missing."""
    if RALPH.exists():
        return RALPH
    lock = ROOT / ".venv-ralph.lock"
    with open(lock, "w") as fh:
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX)  # pytest-xdist workers or two sessions at once
        if not RALPH.exists():
            shutil.rmtree(VENV, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
            subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
                           check=True, timeout=1200)
    return RALPH


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LrsUser:
    username: str
    password: str
    target: str | None


@dataclass
class RalphLRS:
    directory: Path
    port: int = field(default_factory=_free_port)
    password: str = field(default_factory=lambda: "ralph-" + secrets.token_hex(12))
    service_mbox: str = "mailto:lmsgate-tests@example.com"
    writers: list[LrsUser] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/xAPI/"

    @property
    def reader(self) -> LrsUser:
        """The user ``ralph auth`` created; it reads and writes the default target."""
        return LrsUser("lmsgate", self.password, None)

    def env(self) -> dict[str, str]:
        return {**os.environ, "RALPH_APP_DIR": str(self.directory),
                "RALPH_AUTH_FILE": str(self.directory / "auth.json"), "RALPH_RUNSERVER_BACKEND": "fs"}

    def start(self, writers: int) -> None:
        ralph = ensure_venv()
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(ralph), "auth", "-u", self.reader.username, "-p", self.password, "-s", "all",
                        "-M", self.service_mbox, "-w"], env=self.env(), cwd=self.directory, check=True,
                       capture_output=True, timeout=120)
        auth_file = self.directory / "auth.json"
        users = json.loads(auth_file.read_text())
        for n in range(writers):
            user = LrsUser(f"writer-{n:02d}", self.password, f"t{n:02d}")
            (data / user.target).mkdir()
            users.append({**users[0], "username": user.username, "target": user.target})
            self.writers.append(user)
        auth_file.write_text(json.dumps(users))
        self.log = open(self.directory / "ralph.log", "wb")
        self.process = subprocess.Popen(
            [str(ralph), "runserver", "-b", "fs", "--fs-default-directory-path", str(data),
             "-h", "127.0.0.1", "-p", str(self.port)],
            env=self.env(), cwd=self.directory, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the reloader and its worker stop together
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ralph runserver exited: {(self.directory / 'ralph.log').read_text()[-2000:]}")
            try:
                if httpx.get(self.endpoint + "statements", auth=(self.reader.username, self.password),
                             headers=XAPI_VERSION, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("Ralph did not answer within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None

    def take_writer(self) -> LrsUser:
        if not self.writers:
            raise RuntimeError("no Ralph writer left; raise WRITERS in the test module")
        return self.writers.pop(0)

    # ------------------------------------------------------------ reading the LRS directly

    def client(self, user: LrsUser) -> httpx.Client:
        return httpx.Client(base_url=self.endpoint, auth=(user.username, user.password), headers=XAPI_VERSION,
                            timeout=10)

    def statements(self, user: LrsUser, **params: str) -> list[dict]:
        with self.client(user) as c:
            resp = c.get("statements", params=params)
            resp.raise_for_status()
            return resp.json()["statements"]


def running(directory: Path, writers: int) -> Iterator[RalphLRS]:
    lrs = RalphLRS(directory)
    lrs.start(writers)
    try:
        yield lrs
    finally:
        lrs.stop()
