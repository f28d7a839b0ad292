"""Refuse ``FACEGATE_…`` variables that no setting reads (a misspelling would be ignored).

pydantic-settings reads only the variables of a model's fields, so a typo such
as ``FACEGATE_KAFKA_PROT`` is silently ignored and the default is used. Every
settings class of both packages is collected here, and any other
``FACEGATE_…`` name in the environment is an error that names the closest
known one.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import BaseSettings

from edge_agent.errors import InvalidInput

PREFIX = "FACEGATE_"

#: Where settings classes live: ``edge_agent.config`` and every ``settings.py``
#: of both packages (found on disk, so a new component's settings count at once).
SETTINGS_MODULE_NAMES = ("config", "settings")


def settings_modules() -> list[str]:
    """The importable names of the modules that may define settings classes."""
    import edge_agent
    import stream_processor

    found = []
    for package in (edge_agent, stream_processor):
        for root in package.__path__:
            base = Path(root)
            for path in sorted(base.rglob("*.py")):
                if path.stem in SETTINGS_MODULE_NAMES:
                    parts = path.relative_to(base).with_suffix("").parts
                    found.append(".".join((package.__name__, *parts)))
    return found


#: Variables read by something other than a settings class (an option's
#: ``envvar``, a key read from the environment, the entry point itself).
OTHER_VARIABLES = frozenset(
    {
        "FACEGATE_DEBUG",  # the entry point: show tracebacks
        "FACEGATE_EDGE_CONFIG",  # facegate edge --config
        "FACEGATE_EDGE_ENROLL_PIN",  # facegate edge enroll --pin
        "FACEGATE_EDGE_GALLERY_KEY",  # the gallery key (edge_agent.gallery.keys)
        "FACEGATE_MODELS_DIR",  # facegate edge models fetch --cache
        "FACEGATE_EDGE_BUNDLE_SIGNING_KEY",  # facegate edge bundle: the office's private key
        "FACEGATE_EDGE_BUNDLE_OFFICE_KEY",  # facegate edge bundle: the office's public key
        "FACEGATE_WITNESS_LOG_URL",  # facegate witness --log-url
        "FACEGATE_WITNESS_LOG_KEYS",  # facegate witness --log-key
        "FACEGATE_FUZZ_EXAMPLES",  # the test suite: examples per generated-input test
    }
)

#: The test suite's knobs (``FACEGATE_TEST_OUTAGE_S`` …): read by tests, never by
#: facegate, and passed on to the commands the tests run.
TEST_PREFIX = "FACEGATE_TEST_"


def _settings_classes(modules: Iterable[str]) -> list[type[BaseSettings]]:
    for name in modules:
        importlib.import_module(name)
    found: list[type[BaseSettings]] = []
    todo: list[type[BaseSettings]] = list(BaseSettings.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(("edge_agent", "stream_processor")):
            found.append(cls)
    return found


def _names(cls: type[BaseSettings]) -> tuple[set[str], set[str]]:
    """(exact variable names, prefixes of nested variables) a settings class reads."""
    prefix = str(cls.model_config.get("env_prefix", "")).upper()
    nested = cls.model_config.get("env_nested_delimiter")
    exact: set[str] = set()
    nested_prefixes: set[str] = set()
    for field_name, field in cls.model_fields.items():
        name = f"{prefix}{(field.alias or field_name).upper()}"
        exact.add(name)
        annotation = field.annotation
        if nested and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested_prefixes.add(f"{name}{nested}")
    return exact, nested_prefixes


def known_variables(modules: Iterable[str] | None = None) -> tuple[set[str], set[str]]:
    """Every ``FACEGATE_…`` name read, and the prefixes of nested ones (``…__``)."""
    exact, nested = set(OTHER_VARIABLES), set()
    for cls in _settings_classes(settings_modules() if modules is None else modules):
        e, n = _names(cls)
        exact |= e
        nested |= n
    return exact, nested


def unknown_variables(
    environ: Mapping[str, str], known: tuple[set[str], set[str]]
) -> list[str]:
    exact, nested = known
    return sorted(
        name
        for name in environ
        if name.upper().startswith(PREFIX)
        and not name.upper().startswith(TEST_PREFIX)
        and name.upper() not in exact
        and not name.upper().startswith(tuple(nested))
    )


def check_environment(environ: Mapping[str, str]) -> None:
    """Raise ``InvalidInput`` naming every unknown ``FACEGATE_…`` variable.

    Where a settings module cannot be imported (a gate device without the
    cloud's packages), nothing is checked: what is known cannot be told.
    """
    if not any(name.upper().startswith(PREFIX) for name in environ):
        return
    try:
        known = known_variables()
    except ImportError:
        return
    unknown = unknown_variables(environ, known)
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name.upper(), sorted(known[0]), n=1, cutoff=0.75)
        parts.append(f"{name} (did you mean {close[0]}?)" if close else name)
    raise InvalidInput(
        "unknown environment variable " + ", ".join(parts) + "; unset it or fix its name"
        " (README.md, Settings, lists every variable)"
    )


def variable_for(model: str, loc: tuple[int | str, ...]) -> str | None:
    """The ``FACEGATE_…`` variable behind field ``loc`` of settings class ``model``."""
    if not loc:
        return None
    try:
        classes = _settings_classes(settings_modules())
    except ImportError:
        return None
    for cls in classes:
        if cls.__name__ != model or str(loc[0]) not in cls.model_fields:
            continue
        prefix = str(cls.model_config.get("env_prefix", "")).upper()
        delimiter = str(cls.model_config.get("env_nested_delimiter") or "")
        if delimiter:
            return prefix + delimiter.join(str(p).upper() for p in loc)
        return prefix + str(loc[0]).upper()
    return None
