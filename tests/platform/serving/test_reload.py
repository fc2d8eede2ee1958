"""Role files reload without a restart: validated first, swapped at once, in-flight requests unharmed.

Real `rolescope serve` processes (SIGHUP and `--watch`), real role files, real HTTP traffic.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from rolescope.errors import ConfigError
from rolescope.roles import load_roles
from rolescope.settings import bundled_roles_path
from tests.conftest import metric_value

ServiceFactory = Callable[..., object]
NEW_GREETING = "Version 1.3 here: the game is afoot once more."


def _role_folder(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "roles"
    folder.mkdir()
    for name in names:
        document = yaml.safe_load((bundled_roles_path() / f"{name}.yaml").read_text())
        document["inference"]["simulator"].update(ttft_ms=10, tokens_per_second=400)
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(document))
    return folder


def _write_version(folder: Path, file: str, version: str, **persona: str) -> Path:
    document = yaml.safe_load((folder / "sherlock.yaml").read_text())
    document["version"] = version
    document["persona"].update(persona)
    path = folder / file
    path.write_text(yaml.safe_dump(document))
    return path


def _versions(url: str) -> dict[str, list[str]]:
    roles = httpx.get(f"{url}/v1/roles", timeout=10).json()["roles"]
    return {r["name"]: [v["version"] for v in r["versions"]] for r in roles}


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the reload did not take effect in time"
        time.sleep(0.1)


def _sample(url: str, series: str) -> float:
    return metric_value(url, series)


def _reload_count(url: str, outcome: str) -> float:
    return _sample(url, f'rolescope_role_reloads_total{{outcome="{outcome}"}}')


def _greeting(url: str, role: str) -> str:
    """A new session's opening words (GET without a message streams the role's greeting)."""
    with httpx.stream("GET", f"{url}/v1/chat", params={"role": role}, timeout=10) as response:
        assert response.status_code == 200
        body = response.read().decode()
    done = [line for line in body.splitlines() if line.startswith("data:") and '"content"' in line]
    return str(json.loads(done[-1].removeprefix("data:"))["content"])


class Traffic:
    """Chat requests from a few threads (JSON and SSE, new sessions) until stopped; every failure kept."""

    def __init__(self, url: str, threads: int = 3) -> None:
        self.url = url
        self.statuses: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int) -> None:
        with httpx.Client(timeout=30) as client:
            count = index
            while not self._stop.is_set():
                body = {"message": "Who took the pearl?", "role": "sherlock", "stream": count % 2 == 0}
                try:
                    response = client.post(f"{self.url}/v1/chat", json=body)
                    text = response.text
                    ok = response.status_code == 200 and ("event: error" not in text)
                    self.statuses.append(response.status_code)
                    if not ok:
                        self.failures.append(f"{response.status_code}: {text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                count += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)


def test_a_role_changed_under_load_reloads_on_sighup_with_no_failed_request(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    folder = _role_folder(tmp_path, "sherlock", "curie")
    service = service_factory(roles_path=folder)
    url = service.url  # type: ignore[attr-defined]
    traffic = Traffic(url)
    try:
        time.sleep(1.0)
        _write_version(folder, "sherlock-1.3.yaml", "1.3", greeting=NEW_GREETING)
        os.kill(service.pid, signal.SIGHUP)  # type: ignore[attr-defined]
        _wait_for(lambda: _versions(url)["sherlock"] == ["1.2", "1.3"])
        time.sleep(1.0)
        (folder / "sherlock.yaml").unlink()  # the old version goes: it drains
        os.kill(service.pid, signal.SIGHUP)  # type: ignore[attr-defined]
        _wait_for(lambda: _versions(url)["sherlock"] == ["1.3"])
        time.sleep(1.0)
    finally:
        traffic.stop()
    assert traffic.failures == []
    assert len(traffic.statuses) > 20
    assert _greeting(url, "sherlock") == NEW_GREETING  # new sessions get the new version
    pinned = httpx.post(f"{url}/v1/chat", json={"message": "Hi", "role": "sherlock@1.2"}, timeout=10)
    assert pinned.status_code == 404 and "loaded versions: 1.3" in pinned.text
    assert _reload_count(url, "applied") == 2 and _reload_count(url, "refused") == 0


def test_a_request_in_flight_finishes_on_the_version_a_reload_removes(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    folder = _role_folder(tmp_path, "sherlock")
    slow = yaml.safe_load((folder / "sherlock.yaml").read_text())
    slow["version"] = "1.1"
    slow["inference"]["simulator"].update(ttft_ms=1500, tokens_per_second=40)
    (folder / "sherlock-1.1.yaml").write_text(yaml.safe_dump(slow))
    service = service_factory(roles_path=folder)
    url = service.url  # type: ignore[attr-defined]
    outcome: dict[str, object] = {}

    def slow_request() -> None:
        body = {"message": "Tell me everything.", "role": "sherlock@1.1", "stream": True}
        with httpx.stream("POST", f"{url}/v1/chat", json=body, timeout=30) as response:
            outcome["status"] = response.status_code
            outcome["body"] = response.read().decode()

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)  # the request has resolved sherlock@1.1 and waits for its first token
    (folder / "sherlock-1.1.yaml").unlink()
    os.kill(service.pid, signal.SIGHUP)  # type: ignore[attr-defined]
    _wait_for(lambda: _versions(url)["sherlock"] == ["1.2"])
    thread.join(timeout=30)
    assert outcome["status"] == 200
    assert "event: done" in str(outcome["body"]) and "event: error" not in str(outcome["body"])
    gone = httpx.post(f"{url}/v1/chat", json={"message": "Hi", "role": "sherlock@1.1"}, timeout=10)
    assert gone.status_code == 404


def _startup_error(folder: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_roles(folder)  # what `rolescope serve` loads and prints at start-up
    return str(caught.value)


BAD_ROLE_FILES = {
    "invalid YAML": ("zz-broken.yaml", "name: sherlock\nversion: [1.3\n"),
    "a schema error": ("zz-schema.yaml", "name: Sherlock!\nversion: 1.3\npersona: {display_name: x}\n"),
    "a duplicate version": ("zz-duplicate.yaml", None),
}


def test_every_bad_role_file_is_refused_by_reload_as_by_start_up_and_the_old_roles_keep_serving(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    folder = _role_folder(tmp_path, "sherlock")
    service = service_factory(roles_path=folder, env={"ROLESCOPE_LOG_FORMAT": "text"})
    url = service.url  # type: ignore[attr-defined]
    for refused, (case, (file, text)) in enumerate(BAD_ROLE_FILES.items(), start=1):
        path = folder / file
        if text is None:
            shutil.copy(folder / "sherlock.yaml", path)
        else:
            path.write_text(text)
        expected = _startup_error(folder)
        os.kill(service.pid, signal.SIGHUP)  # type: ignore[attr-defined]
        _wait_for(lambda n=refused: _reload_count(url, "refused") == n)  # type: ignore[misc]
        assert expected in service.log(), case  # type: ignore[attr-defined]
        assert _versions(url) == {"sherlock": ["1.2"]}, case
        answer = httpx.post(f"{url}/v1/chat", json={"message": "Hello", "role": "sherlock"}, timeout=10)
        assert answer.status_code == 200, case
        path.unlink()
    assert "persona" in _startup_error_of_schema(folder)
    assert _reload_count(url, "applied") == 0


def _startup_error_of_schema(folder: Path) -> str:
    """The schema case names every problem at once, with its field path."""
    file, text = BAD_ROLE_FILES["a schema error"]
    assert text is not None
    (folder / file).write_text(text)
    try:
        return _startup_error(folder)
    finally:
        (folder / file).unlink()


def test_watch_reloads_a_role_file_edited_in_place_and_refuses_a_broken_edit(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    folder = _role_folder(tmp_path, "sherlock")
    service = service_factory(roles_path=folder, extra_args=["--watch"])
    url = service.url  # type: ignore[attr-defined]
    _write_version(folder, "sherlock.yaml", "1.2", greeting=NEW_GREETING)
    _wait_for(lambda: _greeting(url, "sherlock") == NEW_GREETING)
    (folder / "sherlock.yaml").write_text("name: sherlock\nversion: 1.2\npersona: [\n")
    _wait_for(lambda: _reload_count(url, "refused") == 1)
    assert _greeting(url, "sherlock") == NEW_GREETING  # the good version keeps serving
    assert _reload_count(url, "applied") == 1


def test_with_several_workers_sighup_reloads_every_worker_in_place(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    folder = _role_folder(tmp_path, "sherlock")
    service = service_factory(roles_path=folder, extra_args=["--workers", "2"])
    url = service.url  # type: ignore[attr-defined]
    # Each worker adds its concurrency limit (256) to the gauge once its lifespan runs.
    _wait_for(lambda: _sample(url, "rolescope_concurrency_limit") == 512, timeout=60)
    _write_version(folder, "sherlock-1.3.yaml", "1.3", greeting=NEW_GREETING)
    os.kill(service.pid, signal.SIGHUP)  # type: ignore[attr-defined]
    # Both workers count into one multiprocess registry: one applied reload each.
    try:
        _wait_for(lambda: _reload_count(url, "applied") == 2, timeout=30)
    except AssertionError:
        raise AssertionError(service.log()) from None  # type: ignore[attr-defined]
    for _ in range(10):
        assert _versions(url)["sherlock"] == ["1.2", "1.3"]
    assert service.process.poll() is None  # type: ignore[attr-defined]
