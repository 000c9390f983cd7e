"""The one configuration schema.

Every setting is declared once in ``SETTINGS`` (``core/settings.py``) with its type, default and help
text; ``docs/configuration.md`` is checked against this list by a test.

Load order (later wins): defaults → TOML file → ``EDGENODE_*`` environment
variables → explicit overrides (CLI ``--data-dir``, test config).

The TOML file is the first of ``$EDGENODE_CONFIG`` and
``/etc/edgenode/edgenode.toml`` that exists; with neither, the built-in
defaults are the development default.  A wrong key or value stops start-up
with a message naming the file, the key and the reason.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tomllib
from pathlib import Path
from typing import Any

from edgenode.core.errors import ConfigError
from edgenode.core.settings import SETTINGS, Setting

log = logging.getLogger(__name__)
SYSTEM_CONFIG = Path("/etc/edgenode/edgenode.toml")
MASK = "********"


BY_NAME = {s.name: s for s in SETTINGS}
# Old names still read, with a warning, so an existing edgenode.toml keeps working after an upgrade.
RENAMED = {"health.usb_roots": "usb.media_roots"}  # one list of stick folders, not two that could disagree


def _override_name(name: str) -> str:
    """``section__key`` (keyword arguments) → ``section.key``, old names → new ones."""
    name = name.replace("__", ".")
    return RENAMED.get(name, name)


def _coerce(setting: Setting, value: Any, *, from_text: bool) -> Any:
    """Return the value in the setting's type, or raise ValueError with a reason."""
    t = setting.type
    if from_text:
        if t is bool:
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("must be true or false")
        if t is list:
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("must be a JSON list") from None
        else:
            try:
                return t(value)
            except ValueError:
                raise ValueError(f"must be {t.__name__}") from None
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if t is int and isinstance(value, bool) or not isinstance(value, t):
        raise ValueError(f"must be {t.__name__}, not {type(value).__name__}")
    return value


def _validate(setting: Setting, value: Any) -> None:
    if setting.choices and value not in setting.choices:
        raise ValueError("must be one of " + ", ".join(map(str, setting.choices)))
    if setting.check:
        reason = setting.check(value)
        if reason:
            raise ValueError(reason)


def _flatten(doc: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in doc.items():
        name = prefix + key
        if isinstance(value, dict) and name not in BY_NAME:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


class Config:
    """Effective configuration: ``cfg["web.port"]`` or ``cfg.web.port``."""

    def __init__(self, values: dict[str, Any], source: str):
        self._values = values
        self.source = source
        self._sections: dict[str, _Section] = {}  # cfg.web is read on every request: built once

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __getattr__(self, section: str):
        if section.startswith("_"):
            raise AttributeError(section)
        if section in self._values:
            return self._values[section]
        hit = self._sections.get(section)
        if hit is None:
            keys = {n.split(".", 1)[1]: v for n, v in self._values.items() if n.startswith(section + ".")}
            if not keys:
                raise AttributeError(section)
            hit = self._sections[section] = _Section(keys)
        return hit

    def as_dict(self, *, masked: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for s in SETTINGS:
            value = self._values[s.name]
            if masked and s.secret and value:
                value = MASK
            node = out
            *parents, last = s.name.split(".")
            for p in parents:
                node = node.setdefault(p, {})
            node[last] = value
        return out

    def digest(self) -> str:
        """A short fingerprint of the effective config (secrets included, never shown)."""
        blob = json.dumps(self._values, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def secrets(self) -> list[str]:
        return [self._values[s.name] for s in SETTINGS if s.secret and self._values[s.name]]

    # Paths under the data directory, named once here so every area agrees.
    @property
    def data_path(self) -> Path:
        return Path(self._values["data_dir"])

    @property
    def db_path(self) -> Path:
        return self.data_path / "edgenode.db"

    @property
    def volatile_db_path(self) -> Path:
        return self.data_path / "volatile.db"

    @property
    def store_path(self) -> Path:
        return self.data_path / "store"

    def to_json(self) -> str:
        """The effective values, secrets included: only for handing to a child process, never for display."""
        return json.dumps({"source": self.source, "values": self._values}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "Config":
        doc = json.loads(text)
        if set(doc["values"]) != set(BY_NAME):  # a child of another version: refuse rather than guess
            raise ConfigError("config handed over by the parent process does not match this version's settings")
        return cls(doc["values"], doc["source"])

    def replace(self, **overrides: Any) -> "Config":
        values = dict(self._values)
        for name, value in overrides.items():
            name = _override_name(name)
            if name not in BY_NAME:
                raise ConfigError(f"override: unknown key {name!r}")
            values[name] = value
        return Config(values, self.source)


class _Section:
    def __init__(self, keys: dict[str, Any]):
        self.__dict__.update(keys)


def config_file(env: dict | None = None) -> Path | None:
    env = os.environ if env is None else env
    if env.get("EDGENODE_CONFIG"):
        path = Path(env["EDGENODE_CONFIG"])
        if not path.exists():
            raise ConfigError(f"{path}: EDGENODE_CONFIG names a file that does not exist")
        return path
    if SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return None


def load_config(path: Path | str | None = None, *, env: dict | None = None,
                overrides: dict[str, Any] | None = None) -> Config:
    env = os.environ if env is None else env
    values = {s.name: s.default for s in SETTINGS}
    path = Path(path) if path else config_file(env)
    source = str(path) if path else "built-in defaults"

    if path:
        try:
            raw = path.read_bytes()
            doc = tomllib.loads(raw.decode("utf-8"))
        except OSError as e:
            raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        flat = _flatten(doc)
        for old_name, new_name in RENAMED.items():
            if old_name in flat:
                if new_name in flat:
                    raise ConfigError(f"{path}: key {old_name!r} is the old name of {new_name!r}; keep only "
                                      f"{new_name!r}")
                log.warning("W_CONFIG_RENAMED: %s: key %r is now %r; please rename it", path, old_name, new_name)
                flat[new_name] = flat.pop(old_name)
        for name, value in flat.items():
            setting = BY_NAME.get(name)
            if setting is None:
                raise ConfigError(f"{path}: key {name!r}: unknown setting")
            try:
                value = _coerce(setting, value, from_text=False)
                _validate(setting, value)
            except ValueError as e:
                raise ConfigError(f"{path}: key {name!r}: {e}") from None
            values[name] = value

    for old_name, new_name in RENAMED.items():
        old_env, new_env = "EDGENODE_" + old_name.replace(".", "_").upper(), BY_NAME[new_name].env
        if old_env in env and new_env not in env:
            log.warning("W_CONFIG_RENAMED: environment %s is now %s", old_env, new_env)
            env = {**env, new_env: env[old_env]}
    for setting in SETTINGS:
        if setting.env in env:
            try:
                value = _coerce(setting, env[setting.env], from_text=True)
                _validate(setting, value)
            except ValueError as e:
                raise ConfigError(f"environment {setting.env}: {e}") from None
            values[setting.name] = value

    for name, value in (overrides or {}).items():
        name = _override_name(name)
        setting = BY_NAME.get(name)
        if setting is None:
            raise ConfigError(f"override: key {name!r}: unknown setting")
        try:
            value = _coerce(setting, value, from_text=isinstance(value, str) and setting.type is not str)
            _validate(setting, value)
        except ValueError as e:
            raise ConfigError(f"override: key {name!r}: {e}") from None
        values[name] = value

    values["data_dir"] = str(Path(values["data_dir"]).expanduser().resolve())
    return Config(values, source)
