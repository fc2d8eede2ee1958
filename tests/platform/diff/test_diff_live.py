"""End to end: a real service mirrors a primary to a changed candidate and to a copy of itself;
`rolescope diff` on those pairs reports the planted change and nothing of what a copy varies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from rolescope.settings import bundled_roles_path

ServiceFactory = Callable[..., object]
REQUESTS = 40
NEW_OPENERS = ["Well, well.", "Hmm, curious."]


def _role(version: str, name: str = "sherlock", **changes: object) -> dict[str, object]:
    document = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())
    document.update(name=name, version=version)
    document["inference"]["simulator"].update(ttft_ms=5, tokens_per_second=5000)
    document["persona"].update(changes)
    return dict(document)


def test_diff_reports_a_planted_persona_change_beyond_the_noise_of_a_second_primary(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    roles = tmp_path / "roles"
    roles.mkdir()
    files = {
        "sherlock": _role("1.2") | {"mirror": {"to": "sherlock@1.1", "share": 1.0}},
        "sherlock-candidate": _role("1.1", openers=NEW_OPENERS),
        # The same primary under another name, mirrored to an identical copy: the noise.
        "holmes": _role("1.2", name="holmes") | {"mirror": {"to": "holmes@1.0", "share": 1.0}},
        "holmes-copy": _role("1.0", name="holmes"),
    }
    for file, document in files.items():
        (roles / f"{file}.yaml").write_text(yaml.safe_dump(document))
    pairs = tmp_path / "pairs.jsonl"
    service = service_factory(roles_path=roles, extra_args=["--mirror-pairs", str(pairs)])
    url = service.url  # type: ignore[attr-defined]
    with httpx.Client(timeout=10) as client:
        for index in range(REQUESTS):
            for role in ("sherlock", "holmes"):
                answer = client.post(f"{url}/v1/chat", json={"message": f"Case {index}: who?", "role": role})
                assert answer.status_code == 200
    deadline = time.monotonic() + 20
    while not pairs.exists() or len(pairs.read_text().splitlines()) < 2 * REQUESTS:
        assert time.monotonic() < deadline, "the pairs were not all written"
        time.sleep(0.2)
    lines = pairs.read_text().splitlines()
    by_role = {
        role: [line for line in lines if json.loads(line)["role"] == role] for role in ("sherlock", "holmes")
    }
    (tmp_path / "candidate.jsonl").write_text("\n".join(by_role["sherlock"]) + "\n")
    (tmp_path / "noise.jsonl").write_text("\n".join(by_role["holmes"]) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "rolescope", "diff", str(tmp_path / "candidate.jsonl"),
         "--noise", str(tmp_path / "noise.jsonl"), "--roles", str(roles), "--json"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1, done.stderr
    fields = {f["field"]: f for f in json.loads(done.stdout)["fields"]}
    assert fields["opener"]["exceeds"]
    assert fields["opener"]["examples"][0]["candidate"] in NEW_OPENERS
    # What an identical copy varies as much is not reported.
    for unchanged in ("status", "banned_words", "constraint_violations"):
        assert not fields[unchanged]["exceeds"], unchanged
