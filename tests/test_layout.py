"""The layout's import rules, read from the AST of every module (ARCHITECTURE.md, "Layout").

Every import counts, also one inside a function and ``importlib.import_module("…")``
with a literal name: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("edge_agent", "stream_processor")
#: Scripts that run against the product without being part of it.
SCRIPTS = ("benchmarks", "docs/verifier")
MAX_FUNCTION_LINES = 80

#: Functions over the limit that are let be (none). The list only shrinks: a new long
#: function fails, and so does a listed one that was split but is still listed.
LONG_FUNCTIONS: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    path: str  # its file, relative to the repository
    target: str  # what it imports, dotted and absolute
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _files(*roots: str) -> Iterator[Path]:
    for root in roots:
        for path in sorted((REPO / root).rglob("*.py")):
            # Build output (deploy/…/target) and virtualenvs hold no code of ours.
            if not {"target", ".venv", "__pycache__"} & set(path.parts):
                yield path


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _dynamic_target(node: ast.Call) -> str | None:
    """The literal module name of ``importlib.import_module("…")``, if that is the call."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name != "import_module" or not node.args:
        return None
    arg = node.args[0]
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None


def imports_in(source: str, rel: str) -> Iterator[Import]:
    """Every import of one module's source; ``rel`` is its path in the repository."""
    module = module_name(Path(rel))
    is_package = Path(rel).name == "__init__.py"
    for node in ast.walk(ast.parse(source, filename=rel)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, rel, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            yield Import(module, rel, base, node.lineno)
            for alias in node.names:
                # ``from pkg import sub`` may name a sub-module: count it too.
                yield Import(module, rel, f"{base}.{alias.name}", node.lineno)
        elif isinstance(node, ast.Call) and (target := _dynamic_target(node)):
            yield Import(module, rel, target, node.lineno)


@cache
def all_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in _files(*PACKAGES, *SCRIPTS):
        found += imports_in(path.read_text(), str(path.relative_to(REPO)))
    return tuple(found)


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# -- the rules: each returns the imports that break it ------------------------------------


def edge_to_cloud(imports: Iterable[Import]) -> list[str]:
    return [
        str(i)
        for i in imports
        if _under(i.module, "edge_agent") and _under(i.target, "stream_processor")
    ]


def wire_beyond_its_codec(imports: Iterable[Import]) -> list[str]:
    # edge_agent.errors is the exception root the contract raises from; it is held
    # to the same rule, so the contract stays as light as its codec.
    light = ("edge_agent.wire", "edge_agent.errors", "msgspec")
    return [
        str(i)
        for i in imports
        if (_under(i.module, "edge_agent.wire") or i.module == "edge_agent.errors")
        and i.target.split(".")[0] not in sys.stdlib_module_names
        and not any(_under(i.target, a) for a in light)
        # ``from edge_agent import errors`` also names the package itself
        and i.target != "edge_agent"
    ]


def stack_outside_stack_and_cli(imports: Iterable[Import]) -> list[str]:
    # Benchmarks start a local stack of their own, as the tests do.
    users = ("stream_processor.stack", "stream_processor.cli", "benchmarks")
    return [
        str(i)
        for i in imports
        if _under(i.target, "stream_processor.stack")
        and not any(_under(i.module, u) for u in users)
    ]


#: Scripts are entry points too: they may share the entry points' error handler.
ENTRY_POINT_SHARED = "stream_processor.cli.handler"


def cli_outside_cli(imports: Iterable[Import]) -> list[str]:
    cli = "stream_processor.cli"
    scripts = tuple(s.replace("/", ".") for s in SCRIPTS)
    return [
        str(i)
        for i in imports
        if _under(i.target, cli)
        and not _under(i.module, cli)
        and not (_under(i.target, ENTRY_POINT_SHARED) and any(_under(i.module, s) for s in scripts))
    ]


def runtime_on_a_process(imports: Iterable[Import]) -> list[str]:
    processes = ("bridge", "processor", "erasure", "audit", "web", "stack", "cli")
    return [
        str(i)
        for i in imports
        if _under(i.module, "stream_processor.runtime")
        and any(_under(i.target, f"stream_processor.{p}") for p in processes)
    ]


POLICY_FORBIDDEN = (
    "kafka", "confluent_kafka", "aiokafka", "faust", "paho", "psycopg", "sqlite3", "aiohttp",
    "prometheus_client", "stream_processor.store", "stream_processor.web",
    "stream_processor.bridge", "stream_processor.processor", "stream_processor.runtime",
)  # fmt: skip


def policy_beyond_pure(imports: Iterable[Import]) -> list[str]:
    return [
        str(i)
        for i in imports
        if _under(i.module, "stream_processor.policy")
        and (any(_under(i.target, f) for f in POLICY_FORBIDDEN) or i.target.endswith(".metrics"))
    ]


#: Which process kinds may use which Kafka client (README, "One Kafka client per role").
KAFKA_CLIENT_ROLES = {
    # The stack upserts SCRAM users (AlterUserScramCredentials: librdkafka has it).
    "confluent_kafka": ("stream_processor.bridge", "stream_processor.stack"),
    "faust": ("stream_processor.processor", "stream_processor.erasure", "stream_processor.cli"),
    "aiokafka": ("stream_processor.processor",),
}
#: Synchronous kafka-python has no place on the bridge's or the workers' hot paths.
KAFKA_PYTHON_BARRED = ("stream_processor.bridge", "stream_processor.processor")


def kafka_client_outside_its_role(imports: Iterable[Import]) -> list[str]:
    bad = []
    for i in imports:
        if not _under(i.module, "stream_processor"):
            continue  # benchmarks compare the clients on purpose
        root = i.target.split(".")[0]
        allowed = KAFKA_CLIENT_ROLES.get(root)
        if allowed is not None and not any(_under(i.module, a) for a in allowed):
            bad.append(str(i))
        if root == "kafka" and any(_under(i.module, b) for b in KAFKA_PYTHON_BARRED):
            bad.append(str(i))
    return bad


def long_functions(source: str, rel: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source, filename=rel)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            if node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                found.add(f"{rel}:{node.name}")
    return found


# -- the code follows them ----------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        edge_to_cloud,
        wire_beyond_its_codec,
        stack_outside_stack_and_cli,
        cli_outside_cli,
        runtime_on_a_process,
        policy_beyond_pure,
        kafka_client_outside_its_role,
    ],
)
def test_import_rule_holds(rule: Callable[[Iterable[Import]], list[str]]) -> None:
    assert rule(all_imports()) == []


def test_no_function_is_longer_than_80_lines_beyond_the_known_list() -> None:
    found: set[str] = set()
    for path in _files(*PACKAGES, *SCRIPTS):
        found |= long_functions(path.read_text(), str(path.relative_to(REPO)))
    assert sorted(found - LONG_FUNCTIONS) == [], "new functions over 80 lines"
    assert sorted(LONG_FUNCTIONS - found) == [], "split: take them off LONG_FUNCTIONS"


# -- each rule catches what it is for ----------------------------------------------------

SP = "stream_processor"
VIOLATIONS = [
    (edge_to_cloud, "edge_agent/uplink/x.py", "from stream_processor.errors import BrokerError"),
    (wire_beyond_its_codec, "edge_agent/wire/x.py", "import yaml"),
    (wire_beyond_its_codec, "edge_agent/wire/x.py", "from edge_agent.pseudonym import pseudonym"),
    (wire_beyond_its_codec, "edge_agent/errors.py", "import numpy"),
    (stack_outside_stack_and_cli, f"{SP}/bridge/service.py", "from ..stack import accounts"),
    (stack_outside_stack_and_cli, f"{SP}/runtime/x.py", f"from {SP} import stack"),
    (stack_outside_stack_and_cli, f"{SP}/web/x.py", f"from {SP}.stack.system import f"),
    (cli_outside_cli, f"{SP}/erasure/wiring.py", f"def f():\n    from {SP}.cli.processor import g"),
    (
        cli_outside_cli,
        "benchmarks/x.py",
        f"import importlib\nimportlib.import_module('{SP}.cli.x')",
    ),
    (runtime_on_a_process, f"{SP}/runtime/x.py", f"from {SP}.bridge import settings"),
    (policy_beyond_pure, f"{SP}/policy/x.py", "from kafka import KafkaConsumer"),
    (policy_beyond_pure, f"{SP}/policy/x.py", "from ..store.base import EventStore"),
    (policy_beyond_pure, f"{SP}/policy/x.py", f"from {SP}.processor.metrics import M"),
    (kafka_client_outside_its_role, f"{SP}/audit/x.py", "from confluent_kafka import Producer"),
    (kafka_client_outside_its_role, f"{SP}/web/x.py", "import faust"),
    (kafka_client_outside_its_role, f"{SP}/erasure/x.py", "from aiokafka import AIOKafkaConsumer"),
    (kafka_client_outside_its_role, f"{SP}/processor/x.py", "from kafka import KafkaConsumer"),
    (kafka_client_outside_its_role, f"{SP}/bridge/x.py", "from kafka import KafkaProducer"),
    (cli_outside_cli, f"{SP}/bridge/x.py", f"from {SP}.cli.handler import translate"),
]


@pytest.mark.parametrize(("rule", "rel", "source"), VIOLATIONS)
def test_each_rule_catches_its_violation(
    rule: Callable[[Iterable[Import]], list[str]], rel: str, source: str
) -> None:
    assert rule(imports_in(source, rel)) != []


ALLOWED = [
    (wire_beyond_its_codec, "edge_agent/wire/x.py", "import msgspec, json\nfrom . import ids"),
    (wire_beyond_its_codec, "edge_agent/wire/x.py", "from edge_agent.errors import WireError"),
    (stack_outside_stack_and_cli, f"{SP}/cli/stack.py", f"from {SP}.stack.stack import Stack"),
    (stack_outside_stack_and_cli, f"{SP}/stack/x.py", "from .procs import start_detached"),
    (stack_outside_stack_and_cli, "benchmarks/x.py", f"from {SP}.stack.stack import Stack"),
    (runtime_on_a_process, f"{SP}/runtime/x.py", f"from {SP}.errors import ConfigError"),
    (policy_beyond_pure, f"{SP}/policy/x.py", "from edge_agent.wire import GateEvent"),
    (
        cli_outside_cli,
        f"{SP}/cli/root.py",
        f"import importlib\nimportlib.import_module('{SP}.cli.x')",
    ),
    (cli_outside_cli, "benchmarks/x.py", f"from {SP}.cli.handler import translate"),
    (kafka_client_outside_its_role, f"{SP}/bridge/x.py", "from confluent_kafka import Producer"),
    (kafka_client_outside_its_role, f"{SP}/runtime/x.py", "from kafka import KafkaAdminClient"),
    (kafka_client_outside_its_role, "benchmarks/x.py", "from kafka import KafkaProducer"),
]


@pytest.mark.parametrize(("rule", "rel", "source"), ALLOWED)
def test_rules_allow_what_the_layout_allows(
    rule: Callable[[Iterable[Import]], list[str]], rel: str, source: str
) -> None:
    assert rule(imports_in(source, rel)) == []


def test_relative_imports_resolve_against_the_importing_package() -> None:
    got = {
        i.target
        for i in imports_in(
            "from ..stack import x\nfrom . import y", "stream_processor/bridge/service.py"
        )
    }
    assert got == {
        "stream_processor.stack", "stream_processor.stack.x",
        "stream_processor.bridge", "stream_processor.bridge.y",
    }  # fmt: skip
    init = {
        i.target
        for i in imports_in("from .session import z", "stream_processor/bridge/__init__.py")
    }
    assert init == {"stream_processor.bridge.session", "stream_processor.bridge.session.z"}


def test_a_long_function_is_found_and_a_short_one_is_not() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = f"def long():\n{body}\n\nasync def short():\n    return 1\n"
    assert long_functions(source, "m.py") == {"m.py:long"}
    short = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES - 1))
    assert long_functions(f"def fits():\n{short}\n", "m.py") == set()


def test_the_readme_folder_table_names_every_package() -> None:
    readme = (REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    named = {m.rstrip("/") for row in rows for m in row.split("|")[1].replace("`", " ").split()}
    packages = {
        str(init.parent.relative_to(REPO))
        for root in PACKAGES
        for init in (REPO / root).rglob("__init__.py")
        if "node_modules" not in init.parts
    }
    assert sorted(packages - named) == []
    for folder in ("deploy", "docs", "benchmarks", "tests"):
        assert folder in named


# -- the tests mirror the code -------------------------------------------------------------


def test_no_test_module_imports_another_test_module() -> None:
    """Shared helpers live in ``tests/support/`` or a folder's own modules, never in a
    ``test_*.py`` another test imports (it would run that module's tests twice)."""
    bad = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        for i in imports_in(path.read_text(), rel):
            if i.target.startswith("tests.") and i.target.split(".")[-1].startswith("test_"):
                bad.append(str(i))
    assert bad == []


def test_every_test_folder_is_a_package() -> None:
    """``tests/a/test_x.py`` and ``tests/b/test_x.py`` may share a name only as packages."""
    folders = {p.parent for p in (REPO / "tests").rglob("test_*.py")}
    assert (
        sorted(str(f.relative_to(REPO)) for f in folders if not (f / "__init__.py").exists()) == []
    )
