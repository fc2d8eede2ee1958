"""`--roles`: which of the traffic's roles to replay, and as which role of the target.

`--roles sherlock` keeps only sherlock's traffic; `--roles curie=sherlock`
keeps curie's traffic and sends it to sherlock; both may be combined
(`--roles sherlock,curie=sherlock`). No selection keeps every role as it is.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from rolescope.errors import ConfigError
from rolescope.loadtests.traffic_format import TrafficRecord

_ROLE = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


def parse_role_selection(values: Sequence[str]) -> dict[str, str]:
    """`["sherlock", "curie=sherlock"]` (or comma-separated) as {traffic role: role sent}."""
    selection: dict[str, str] = {}
    problems: list[str] = []
    for item in (part.strip() for value in values for part in value.split(",")):
        if not item:
            continue
        source, sep, target = (text.strip() for text in item.partition("="))
        target = target if sep else source
        if not _ROLE.match(source) or not _ROLE.match(target):
            problems.append(f"--roles {item!r}: expected ROLE or TRAFFIC_ROLE=TARGET_ROLE")
        elif selection.get(source, target) != target:
            problems.append(f"--roles: {source} is mapped twice ({selection[source]} and {target})")
        else:
            selection[source] = target
    if problems:
        raise ConfigError("\n".join(problems))
    return selection


def unknown_selected(selection: dict[str, str], traffic_roles: Iterable[str]) -> list[str]:
    """Roles the selection names that the traffic never does."""
    present = set(traffic_roles)
    return sorted(role for role in selection if role not in present)


def select_roles(records: Iterable[TrafficRecord], selection: dict[str, str]) -> list[TrafficRecord]:
    """The records whose role is selected, each with the role it is sent to."""
    if not selection:
        return list(records)
    return [
        record
        if selection[record.role] == record.role
        else record.model_copy(update={"role": selection[record.role]})
        for record in records
        if record.role in selection
    ]


def role_counts(records: Iterable[TrafficRecord]) -> Counter[str]:
    return Counter(record.role for record in records)
