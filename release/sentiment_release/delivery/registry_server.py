"""The local OCI registry: Debian's docker-registry (CNCF distribution) on 127.0.0.1.

Started on demand when the configured registry is local and nothing answers there; it
keeps running (detached) until `sentiment registry stop`.
"""

import os
import shutil
import signal
from pathlib import Path

import requests
import yaml

from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.support.process import start, stop
from sentiment_release.support.waiting import WaitTimeout, wait_until

BINARIES = ("docker-registry", "registry")
START_TIMEOUT_SECONDS = 15


class LocalRegistry:
    def __init__(self, address: str, state_dir: Path):
        self.address = address
        self.directory = state_dir / "registry"
        self.pid_file = self.directory / "registry.pid"
        self.log_file = self.directory / "registry.log"

    @property
    def url(self) -> str:
        return f"http://{self.address}/v2/"

    def is_up(self) -> bool:
        """True when an OCI distribution registry answers at the address."""
        try:
            response = requests.get(self.url, timeout=2)
        except requests.RequestException:
            return False
        return "Docker-Distribution-Api-Version" in response.headers

    def ensure_running(self) -> str:
        """Starts the registry unless one answers already; says which happened, and whose
        it is: a registry another checkout started keeps its images in that checkout, and
        they go when it does."""
        if self.is_up():
            owner = self.pid()
            if owner is None:
                return (
                    f"registry answers at {self.address} (not started from this checkout: "
                    "its images live wherever it was started)"
                )
            return f"registry answers at {self.address} (pid {owner}, {self.directory / 'data'})"
        if not self.address.startswith(("127.0.0.1:", "localhost:")):
            raise DeliveryError(
                f"no registry answers at {self.address}; a local registry can only be "
                "started on 127.0.0.1 (set registry.address, or registry.local_server: false "
                "for a remote one)"
            )
        binary = next(filter(None, map(shutil.which, BINARIES)), None)
        if binary is None:
            raise DeliveryError(
                "no registry answers at "
                f"{self.address} and docker-registry is not installed "
                "(apt-get install docker-registry, or scripts/install-podman.sh)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "config.yml"
        config.write_text(yaml.safe_dump(self._config()), encoding="utf-8")
        with self.log_file.open("ab") as log:
            process = start([binary, "serve", str(config)], stdout=log, detached=True)
        self.pid_file.write_text(f"{process.pid}\n", encoding="utf-8")

        def answering() -> bool | None:
            if self.is_up():
                return True
            if process.poll() is not None:
                raise DeliveryError(f"the registry exited at start:\n{self._log_tail()}")
            return None

        try:
            wait_until(answering, timeout=START_TIMEOUT_SECONDS, interval=0.2,
                       what=f"the registry at {self.address} answers")  # fmt: skip
        except WaitTimeout as error:
            stop(process)
            raise DeliveryError(f"{error}:\n{self._log_tail()}") from None
        return f"started registry at {self.address} (pid {process.pid})"

    def pid(self) -> int | None:
        """The registry this checkout started, if it still runs."""
        try:
            pid = int(self.pid_file.read_text(encoding="utf-8"))
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def stop(self) -> bool:
        """Stops a registry this tool started; False if there was none."""
        pid = self.pid()
        self.pid_file.unlink(missing_ok=True)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True

    def _log_tail(self) -> str:
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-10:])

    def _config(self) -> dict:
        return {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str((self.directory / "data").resolve())},
                "delete": {"enabled": True},
            },
            "http": {"addr": self.address.replace("localhost:", "127.0.0.1:")},
        }
