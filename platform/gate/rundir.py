"""Reading run directories into `RunData` (the only file I/O the judgement needs).

Accepts load run directories (holding `samples.jsonl`) and tune directories
(holding `load-1/ … load-N/`), so CI can pass either. The names and the sample
record are the run directory's contract in `rolescope.rundir`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rolescope.errors import ConfigError
from rolescope.gate.model import RunData
from rolescope.rundir import (
    LOAD_DIR_PATTERN,
    SAMPLES_FILE,
    SERVICE_FILE,
    SETTINGS_FILE,
    SLIS_FILE,
    SampleFileError,
    read_samples,
)


def _load_index(path: Path) -> int:
    match = LOAD_DIR_PATTERN.match(path.name)
    return int(match.group(1)) if match else -1


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
            (p for p in path.iterdir() if p.is_dir() and LOAD_DIR_PATTERN.match(p.name)), key=_load_index
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


def load_run(path: Path) -> RunData:
    samples_path = path / SAMPLES_FILE
    if not samples_path.is_file():
        raise ConfigError(f"{path}: no {SAMPLES_FILE} (expected a load run directory)")
    try:
        samples = read_samples(samples_path)
    except SampleFileError as exc:
        raise ConfigError(str(exc)) from exc
    return RunData(
        path=str(path),
        samples=samples,
        slis=_read_json(path / SLIS_FILE),
        settings=_read_json(path / SETTINGS_FILE),
        service=_read_json(path / SERVICE_FILE),
    )


def load_runs(paths: list[Path]) -> list[RunData]:
    return [load_run(p) for p in expand_run_dirs(paths)]


def read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from a file the user named; missing or malformed files name themselves."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    return _read_json(path)
