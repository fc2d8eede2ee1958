"""Role definitions: the YAML model, the loader, and errors that name file, field and expected value.

A role file is untrusted input: it is size-capped, parsed with `yaml.safe_load`,
must stay inside the folder it was loaded from (no symlink escapes), and is
validated field by field so that the service refuses to start on a bad role
and says exactly why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from rolescope.errors import ConfigError
from rolescope.mirror_policy import MirrorPolicy, mirror_target_problems
from rolescope.release_policy import ReleaseSpec
from rolescope.role_registry import VERSION_PATTERN, VERSION_SEPARATOR, RoleRegistry, version_key
from rolescope.settings import FaultSettings
from rolescope.validation_messages import Location, describe_validation_error

MAX_ROLE_FILE_BYTES = 64 * 1024
ROLE_SUFFIXES = (".yaml", ".yml")
_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
MAX_PERSONA_TEXT_CHARS = 16_000
# What a role says to open a session when its persona names no greeting of its own.
NEUTRAL_GREETING = "Hello. What would you like to talk about?"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(_Strict):
    display_name: str = Field(min_length=1, max_length=120)
    background: str = Field(min_length=1, max_length=4000)
    traits: tuple[str, ...] = Field(min_length=1, max_length=32)
    speaking_style: str = Field(min_length=1, max_length=500)
    interests: tuple[str, ...] = ()
    catchphrases: tuple[str, ...] = ()
    openers: tuple[str, ...] = ()
    closers: tuple[str, ...] = ()
    greeting: str | None = None

    def system_prompt(self) -> str:
        traits = ", ".join(self.traits)
        return (
            f"You are {self.display_name}. {self.background} "
            f"Traits: {traits}. Speaking style: {self.speaking_style}. Stay in character."
        )


def _persona_form(value: object) -> str | None:
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict | Persona):
        return "structured"
    return None  # neither: pydantic reports the custom error below


_PERSONA_FORMS = ("text", "structured")

# A persona is either a system prompt written as plain text (as most role-play platforms take it)
# or the structured form above. The form is chosen by the value's type, so a mistake in a
# structured persona is reported against its own field, not as a failed match with plain text.
PersonaText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PERSONA_TEXT_CHARS)
]
PersonaSpec = Annotated[
    Annotated[PersonaText, Tag("text")] | Annotated[Persona, Tag("structured")],
    Discriminator(
        _persona_form,
        custom_error_type="persona_form",
        custom_error_message=(
            "expected a system prompt (text) or a mapping with display_name, background, traits "
            "and speaking_style"
        ),
    ),
]


class MemoryPolicy(_Strict):
    max_turns: int = Field(default=20, ge=1, le=1000, description="turns (messages) kept per session")
    ttl_seconds: float | None = Field(default=86_400, gt=0, description="session expiry after inactivity")
    decay: float = Field(default=1.0, gt=0, le=1, description="weight kept per older turn in the prompt")


class ResponseConstraints(_Strict):
    max_length: int = Field(default=800, ge=16, le=100_000, description="characters")
    max_tokens: int = Field(default=200, ge=1, le=32_000)
    banned_words: tuple[str, ...] = ()
    min_sentences: int = Field(default=1, ge=1, le=20)
    max_sentences: int = Field(default=6, ge=1, le=50)

    @field_validator("banned_words")
    @classmethod
    def _words_are_single_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for word in value:
            if not re.fullmatch(r"[\w'-]+", word):
                raise ValueError(f"expected single words, got {word!r}")
        return tuple(word.lower() for word in value)

    @model_validator(mode="after")
    def _sentence_bounds(self) -> ResponseConstraints:
        if self.min_sentences > self.max_sentences:
            raise ValueError("expected min_sentences <= max_sentences")
        return self


class SimulatorTiming(_Strict):
    ttft_ms: float = Field(default=120.0, ge=0, le=600_000)
    tokens_per_second: float = Field(default=40.0, gt=0, le=100_000)
    jitter: float = Field(default=0.2, ge=0, le=1, description="relative spread of every delay")
    seed: int = 0


class RoleFaults(_Strict):
    """Regressions planted in this version only (simulator backend), on top of the process-wide
    `Settings.faults`: how a canary with a planted fault is made for a one-run A/B."""

    cpu_per_token_us: float = Field(default=0.0, ge=0, le=1_000_000, description="busy CPU work per token")
    extra_allocations: int = Field(default=0, ge=0, le=10_000_000, description="small objects per request")
    added_latency_ms: float = Field(default=0.0, ge=0, le=600_000, description="delay before the first token")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of requests that fail")

    def as_settings(self) -> FaultSettings:
        return FaultSettings(**self.model_dump())


class InferenceSpec(_Strict):
    backend: Literal["simulator", "openai"] = "simulator"
    model: str = Field(default="rolescope-sim-1", min_length=1, max_length=200)
    timeout_ms: int = Field(default=10_000, ge=1, le=600_000)
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8000"
    )
    api_key_env: str | None = Field(default=None, description="name of the variable holding the API key")
    ca_file: Path | None = Field(default=None, description="PEM CA bundle of the model server's certificate")
    client_cert: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    client_key: Path | None = Field(default=None, description="PEM private key of client_cert")
    temperature: float = Field(default=0.7, ge=0, le=2)
    simulator: SimulatorTiming = SimulatorTiming()
    faults: RoleFaults | None = Field(default=None, description="simulator faults of this version only")

    @model_validator(mode="after")
    def _openai_needs_url(self) -> InferenceSpec:
        if self.backend == "openai" and not re.match(r"^https?://", self.base_url or ""):
            raise ValueError("expected base_url (http:// or https://) when backend is openai")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("expected client_cert and client_key together (one was given without the other)")
        tls_files = self.ca_file is not None or self.client_cert is not None
        if tls_files and not (self.backend == "openai" and (self.base_url or "").startswith("https://")):
            raise ValueError("expected an https:// base_url, backend openai, with ca_file or client_cert")
        return self


class Role(_Strict):
    name: str = Field(pattern=_NAME_PATTERN)
    version: str = Field(pattern=VERSION_PATTERN)
    description: str = ""
    persona: PersonaSpec
    memory_policy: MemoryPolicy = MemoryPolicy()
    response_constraints: ResponseConstraints = ResponseConstraints()
    inference: InferenceSpec = InferenceSpec()
    release: ReleaseSpec | None = Field(
        default=None, description="how requests that pin no version split across the role's versions"
    )
    mirror: MirrorPolicy | None = None  # shadow-mirror a share of requests to a candidate

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        # YAML reads `version: 1.2` as a float; accept it as the text the author wrote.
        return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value

    @property
    def reference(self) -> str:
        """The text that pins this exact version in a request: `name@version`."""
        return f"{self.name}{VERSION_SEPARATOR}{self.version}"

    def system_prompt(self) -> str:
        """What a model is told to be: a plain-text persona verbatim, a structured one spelled out."""
        return self.persona if isinstance(self.persona, str) else self.persona.system_prompt()

    @property
    def display_name(self) -> str:
        if isinstance(self.persona, Persona):
            return self.persona.display_name
        return self.name.replace("_", " ").replace("-", " ").title()

    @property
    def greeting(self) -> str:
        """The words that open a session: the persona's own greeting, or a neutral one."""
        own = self.persona.greeting if isinstance(self.persona, Persona) else None
        return own or NEUTRAL_GREETING


def _without_form_tags(loc: Location) -> Location:
    """`persona.structured.traits` → `persona.traits`: the form is pydantic's bookkeeping, not a field."""
    if len(loc) > 1 and loc[0] == "persona" and loc[1] in _PERSONA_FORMS:
        return (loc[0], *loc[2:])
    return loc


def load_role_file(path: Path, *, root: Path | None = None) -> Role:
    """Parse and validate one role file; raise ConfigError naming the file and the field."""
    resolved = path.resolve()
    if root is not None and not resolved.is_relative_to(root.resolve()):
        raise ConfigError(f"{path}: role files must stay inside {root}; this one resolves to {resolved}")
    if not resolved.is_file():
        raise ConfigError(f"{path}: expected a role file (.yaml), found nothing there")
    size = resolved.stat().st_size
    if size > MAX_ROLE_FILE_BYTES:
        raise ConfigError(f"{path}: role file is {size} bytes; expected at most {MAX_ROLE_FILE_BYTES}")
    try:
        document = yaml.safe_load(resolved.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: expected UTF-8 text ({exc.reason})") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path}: expected a mapping with name, version, persona; got {type(document).__name__}"
        )
    try:
        return Role.model_validate(document)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(str(path), exc, location=_without_form_tags)) from exc


def _role_files(folder: Path) -> Iterable[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in ROLE_SUFFIXES and not p.name.startswith("."))


def load_roles(path: Path, *, defaults: Mapping[str, str] | None = None) -> RoleRegistry[Role]:
    """Load a role file or every role file in a folder, in file-name order.

    One name may be loaded in several versions (one file each); a name and version
    must be unique. `defaults` picks a role's default version (else the highest).
    """
    if path.is_dir():
        files = list(_role_files(path))
        root: Path | None = path
        if not files:
            raise ConfigError(f"{path}: expected at least one role file (*.yaml) in this folder")
    elif path.exists():
        files, root = [path], None
    else:
        raise ConfigError(f"{path}: no such role file or folder")
    roles: list[Role] = []
    origin: dict[tuple[str, tuple[int, ...]], Path] = {}
    for file in files:
        role = load_role_file(file, root=root)
        key = (role.name, version_key(role.version))
        if key in origin:
            raise ConfigError(
                f"{file}: role `{role.name}` version {role.version} is already defined in {origin[key]}"
            )
        roles.append(role)
        origin[key] = file
    release_defaults = _check_releases(roles, origin)
    try:
        registry = RoleRegistry(roles, defaults={**release_defaults, **(defaults or {})})
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    problems = mirror_target_problems(registry)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return registry


def _check_releases(roles: list[Role], origin: Mapping[tuple[str, tuple[int, ...]], Path]) -> dict[str, str]:
    """Each role has at most one `release:` section, naming loaded versions only; every problem at
    once. Returns each released role's primary version, which becomes its default."""
    loaded: dict[str, dict[tuple[int, ...], str]] = {}
    for role in roles:
        loaded.setdefault(role.name, {})[version_key(role.version)] = role.version
    problems: list[str] = []
    owner: dict[str, Path] = {}
    primaries: dict[str, str] = {}
    for role in roles:
        if role.release is None:
            continue
        file = origin[(role.name, version_key(role.version))]
        if role.name in owner:
            problems.append(
                f"{file}: release: role `{role.name}` already has a release policy in {owner[role.name]}; "
                "expected one `release:` section per role"
            )
            continue
        owner[role.name] = file
        versions = loaded[role.name]
        for version in role.release.named_versions():
            parsed = re.fullmatch(VERSION_PATTERN, version) and version_key(version)
            if not parsed or parsed not in versions:
                problems.append(
                    f"{file}: release: version {version!r} of role `{role.name}` is not loaded; "
                    f"loaded versions: {', '.join(versions[k] for k in sorted(versions))}"
                )
        primary = role.release.primary
        if re.fullmatch(VERSION_PATTERN, primary) and version_key(primary) in versions:
            primaries[role.name] = versions[version_key(primary)]
    if problems:
        raise ConfigError("\n".join(problems))
    return primaries
