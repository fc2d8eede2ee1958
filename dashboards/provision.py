"""Publish the dashboards to a Grafana with grafana-client: folder created if missing, overwrite by uid.

grafana-client is the optional extra `rolescope[grafana]` (its HTTP stack replaces urllib3 for the
whole environment), so it is imported only here, when publishing.

Calls, in order: `GET /api/folders/<uid>` (and `POST /api/folders` when that
answers 404), then one `POST /api/dashboards/db` per dashboard with
`overwrite: true` and the folder's uid. Upserting by uid keeps links and
bookmarks to the dashboards stable across releases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rolescope.errors import ConfigError, EnvironmentProblem

DEFAULT_FOLDER = "rolescope"
COMMIT_MESSAGE = "provisioned by rolescope dashboards provision"
INSTALL_HINT = "pip install 'rolescope[grafana]'"


@dataclass(frozen=True, slots=True)
class Provisioned:
    uid: str
    title: str
    url: str
    version: int | None


def folder_uid(title: str) -> str:
    """A stable folder uid from its title (Grafana uids: at most 40 of [a-zA-Z0-9_-])."""
    slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", title.strip()).strip("-").lower()
    if not slug:
        raise ConfigError(f"folder title {title!r} has no letters or digits to build a uid from")
    return slug[:40]


def require_grafana_client() -> None:
    """Fail with what to install when grafana-client (the `grafana` extra) is missing or broken."""
    try:
        import grafana_client.api  # noqa: F401
    except ImportError as exc:
        raise EnvironmentProblem(
            f"publishing to Grafana needs grafana-client (the optional `grafana` extra; importing it "
            f"failed: {exc}); install it with: {INSTALL_HINT}"
        ) from exc


def credential_from(token: str | None, user: str | None, password: str | None) -> str | tuple[str, str]:
    if token:
        if user or password:
            raise ConfigError("pass either --token or --user/--password, not both")
        return token
    if user and password:
        return (user, password)
    raise ConfigError("Grafana needs credentials: --token (service account token) or --user and --password")


def _translate(exc: Exception, url: str) -> Exception:
    # grafana-client lets connection failures of its HTTP library (niquests) through untranslated.
    from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError
    from niquests.exceptions import RequestException

    if isinstance(exc, GrafanaUnauthorizedError):
        return ConfigError(f"Grafana at {url} rejected the credentials (401)")
    if isinstance(exc, GrafanaClientError):
        return ConfigError(f"Grafana at {url} refused the request: {exc}")
    if isinstance(exc, GrafanaException | RequestException):
        return EnvironmentProblem(f"cannot reach Grafana at {url}: {exc}")
    return exc


def ensure_folder(api: Any, title: str) -> str:
    from grafana_client.client import GrafanaClientError

    uid = folder_uid(title)
    try:
        api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(title, uid=uid)
    return uid


def provision(
    dashboards: dict[str, dict[str, Any]],
    url: str,
    credential: str | tuple[str, str],
    folder: str = DEFAULT_FOLDER,
    timeout_s: float = 10.0,
) -> list[Provisioned]:
    """Upsert every dashboard into `folder` on the Grafana at `url`."""
    require_grafana_client()
    from grafana_client.api import GrafanaApi

    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout_s)
    done: list[Provisioned] = []
    try:
        uid = ensure_folder(api, folder)
        for dashboard in dashboards.values():
            # `id` must be null so Grafana matches on uid, whatever the instance's numeric ids are.
            body = {
                "dashboard": {**dashboard, "id": None},
                "folderUid": uid,
                "overwrite": True,
                "message": COMMIT_MESSAGE,
            }
            answer = api.dashboard.update_dashboard(body) or {}
            done.append(
                Provisioned(
                    uid=str(dashboard["uid"]),
                    title=str(dashboard.get("title", "")),
                    url=str(answer.get("url", "")),
                    version=answer.get("version"),
                )
            )
    except Exception as exc:
        translated = _translate(exc, url)
        if translated is exc:
            raise
        raise translated from exc
    return done
