"""Reading run directories into `RunData` (the only file I/O the judgement needs).

Accepts load run directories (holding `samples.jsonl`) and tune directories
(holding `load-1/ … load-N/`), so CI can pass either.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rolescope.errors import ConfigError
from rolescope.gate.model import RunData, Sample

SAMPLES_FILE = "samples.jsonl"
SERVICE_FILE = "service.json"
_LOAD_DIR = re.compile(r"^load-(\d+)$")


def expand_run_dirs(paths: list[Path]) -> list[Path]:
    """Turn each argument into load run directories; a tune directory expands to its `load-*/`."""
    found: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise ConfigError(f"{path}: no such run directory (expected a load run or a tune directory)")
        if (path / SAMPLES_FILE).is_file():
            found.append(path)
            continue
        loads = sorted(
            (p for p in path.iterdir() if p.is_dir() and _LOAD_DIR.match(p.name)),
            key=lambda p: int(_LOAD_DIR.match(p.name).group(1)),  # type: ignore[union-attr]
        )
        loads = [p for p in loads if (p / SAMPLES_FILE).is_file()]
        if not loads:
            raise ConfigError(
                f"{path}: neither a load run ({SAMPLES_FILE}) nor a tune directory (load-*/{SAMPLES_FILE})"
            )
        found.extend(loads)
    return found


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    return data if isinstance(data, dict) else {}


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_sample(record: dict[str, Any]) -> Sample:
    itl = record.get("itl_s") or ()
    return Sample(
        kind=str(record.get("kind", "chat")),
        start=float(record.get("start", record.get("intended_start", 0.0))),
        ok=bool(record.get("ok", False)),
        status=None if record.get("status") is None else int(record["status"]),
        ttft_s=_optional_float(record.get("ttft_s")),
        tpot_s=_optional_float(record.get("tpot_s")),
        itl_s=tuple(float(x) for x in itl),
        e2e_s=_optional_float(record.get("e2e_s")),
        output_tokens=int(record.get("output_tokens") or 0),
        error=record.get("error"),
        name=str(record.get("name", "")),
        session=str(record.get("session", "")),
    )


def read_samples(path: Path) -> list[Sample]:
    samples: list[Sample] = []
    with path.open() as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                samples.append(parse_sample(json.loads(line)))
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                raise ConfigError(f"{path}:{number}: not a valid sample line ({exc})") from exc
    return samples


def load_run(path: Path) -> RunData:
    samples_path = path / SAMPLES_FILE
    if not samples_path.is_file():
        raise ConfigError(f"{path}: no {SAMPLES_FILE} (expected a load run directory)")
    return RunData(
        path=str(path),
        samples=read_samples(samples_path),
        slis=_read_json(path / "slis.json"),
        settings=_read_json(path / "settings.json"),
        service=_read_json(path / SERVICE_FILE),
    )


def load_runs(paths: list[Path]) -> list[RunData]:
    return [load_run(p) for p in expand_run_dirs(paths)]


def read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from a file the user named; missing or malformed files name themselves."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    return _read_json(path)
