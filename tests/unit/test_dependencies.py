"""Dependencies point one way: a domain reaches another only through its service (functions
or exported query pieces), never its models, and no two domains import each other.

A *domain* is a folder under ``backend/xinyi`` (auth, citizens, records, scoring, ...). The
shared core (``subjects/`` and the top-level modules such as ``db.py``, ``uow.py``) may be
imported by every domain and imports no domain; the composition root (``app.py``, ``cli.py``,
``wiring.py``, ...) wires everything and may import anything. Every import counts, those
inside functions too: a cycle dodged by a function-level import is still a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "backend" / "xinyi"
CORE_PACKAGES = frozenset({"subjects"})
# Entry points and wiring: they stand above every domain.
COMPOSITION = frozenset({"app", "cli", "worker", "seed", "wiring", "web", "deps"})
# The metadata registry that Alembic reads: the one module that sees every domain's models.
MODELS_REGISTRY = "models"


@dataclass(frozen=True)
class Import:
    source: str  # dotted module that imports, e.g. xinyi.records.service
    target: str  # dotted module (or module.name) imported
    line: int


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str) -> list[Import]:
    """Every ``xinyi`` import in ``source``, at any depth; ``from a import b`` yields both
    ``a`` and ``a.b`` (b may be a module)."""
    found: list[Import] = []
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, a.name, node.lineno) for a in node.names
                      if a.name.startswith("xinyi")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if not base.startswith("xinyi"):
                continue
            found.append(Import(module, base, node.lineno))
            found += [Import(module, f"{base}.{a.name}", node.lineno) for a in node.names]
    return found


def domain_of(module: str, domains: frozenset[str]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[1] in domains else None


@dataclass(frozen=True)
class Report:
    models_imports: list[str]
    private_imports: list[str]
    core_imports: list[str]
    cycles: list[list[str]]


def check(sources: Mapping[str, str], domains: frozenset[str]) -> Report:
    """Judge a package given as ``{dotted module: source}``."""
    graph: dict[str, set[str]] = {d: set() for d in domains}
    models_imports, private_imports, core_imports = [], [], []
    for module, source in sorted(sources.items()):
        own = domain_of(module, domains)
        top = module.split(".")[1] if module.count(".") >= 1 else ""
        for imp in imports_of(module, source):
            parts = imp.target.split(".")
            if (own is not None and parts[1:2] and parts[1] in CORE_PACKAGES
                    and parts[2:3] == ["models"]):
                # The core's tables too are reached through its service's pieces.
                models_imports.append(f"{module}:{imp.line} imports {'.'.join(parts[:3])}")
                continue
            other = domain_of(imp.target, domains)
            if other is None or other == own:
                continue
            named = ".".join(imp.target.split(".")[:3])  # the module, not each name from it
            where = f"{module}:{imp.line} imports {named}"
            if own is None and top in COMPOSITION | {MODELS_REGISTRY}:
                if imp.target.split(".")[2:3] == ["models"] and top != MODELS_REGISTRY:
                    models_imports.append(where)
                continue
            if own is None:  # the shared core
                core_imports.append(where)
                continue
            graph[own].add(other)
            rest = imp.target.split(".")[2:]
            if rest[:1] == ["models"]:
                models_imports.append(where)
            if any(part.startswith("_") for part in rest):
                private_imports.append(f"{module}:{imp.line} imports {imp.target}")
    return Report(sorted(set(models_imports)), sorted(set(private_imports)),
                  sorted(set(core_imports)), _cycles(graph))


def _cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one domain (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _package() -> tuple[dict[str, str], frozenset[str]]:
    sources = {_module_name(p, PACKAGE): p.read_text(encoding="utf-8")
               for p in PACKAGE.rglob("*.py")}
    domains = frozenset(p.name for p in PACKAGE.iterdir()
                        if p.is_dir() and (p / "__init__.py").exists()
                        and p.name not in CORE_PACKAGES)
    return sources, domains


# ---- the package as it is ------------------------------------------------------------------

def test_no_domain_imports_another_domains_models() -> None:
    report = check(*_package())
    assert report.models_imports == []


def test_no_domain_imports_another_domains_private_names() -> None:
    assert check(*_package()).private_imports == []


def test_the_shared_core_imports_no_domain() -> None:
    assert check(*_package()).core_imports == []


def test_no_two_domains_depend_on_each_other() -> None:
    assert check(*_package()).cycles == []


def test_the_walk_sees_the_domains_and_their_imports() -> None:
    """Guards the guard: a walk that found nothing would pass everything above."""
    sources, domains = _package()
    assert {"auth", "citizens", "records", "scoring", "credentials", "consents"} <= domains
    assert "subjects" not in domains
    assert any(i.target.startswith("xinyi.records.service")
               for i in imports_of("xinyi.scoring.service", sources["xinyi.scoring.service"]))


# ---- the checker catches what it is for ----------------------------------------------------

DOMAINS = frozenset({"alpha", "beta", "gamma"})


def test_a_reintroduced_cross_domain_models_import_is_caught() -> None:
    report = check({"xinyi.alpha.service": "from xinyi.beta.models import Thing\n",
                    "xinyi.beta.models": ""}, DOMAINS)
    assert report.models_imports == ["xinyi.alpha.service:1 imports xinyi.beta.models"]
    report = check({"xinyi.alpha.service": "from xinyi.beta import models\n"}, DOMAINS)
    assert report.models_imports == ["xinyi.alpha.service:1 imports xinyi.beta.models"]


def test_a_domain_importing_the_cores_models_is_caught() -> None:
    report = check({"xinyi.alpha.service": "from xinyi.subjects.models import Subject\n"},
                   DOMAINS)
    assert report.models_imports == ["xinyi.alpha.service:1 imports xinyi.subjects.models"]


def test_a_cycle_dodged_by_a_function_level_import_is_caught() -> None:
    report = check({
        "xinyi.alpha.service": "from xinyi.beta.service import f\n",
        "xinyi.beta.service": "def g():\n    from xinyi.gamma.service import h\n",
        "xinyi.gamma.service": "import xinyi.alpha.service\n",
    }, DOMAINS)
    assert report.cycles == [["alpha", "beta", "gamma"]]


def test_one_way_imports_and_the_composition_root_are_allowed() -> None:
    report = check({
        "xinyi.alpha.service": "from xinyi.beta.service import f\nfrom xinyi.db import Base\n",
        "xinyi.beta.service": "from xinyi.subjects.service import s\n",
        "xinyi.wiring": "from xinyi.alpha.service import x\nfrom xinyi.beta.service import y\n",
        "xinyi.models": "from xinyi.alpha import models\nfrom xinyi.beta import models\n",
    }, DOMAINS)
    assert report == Report([], [], [], [])


def test_private_names_and_core_reaching_up_are_caught() -> None:
    report = check({
        "xinyi.alpha.service": "from xinyi.beta.service import _secret\n",
        "xinyi.pii": "from xinyi.gamma.service import anything\n",
    }, DOMAINS)
    assert report.private_imports == ["xinyi.alpha.service:1 imports xinyi.beta.service._secret"]
    assert report.core_imports == ["xinyi.pii:1 imports xinyi.gamma.service"]


# ---- one transaction boundary ------------------------------------------------------------

UNIT = "uow"  # what every entry point calls its UnitOfWork


def transaction_calls(module: str, source: str) -> list[str]:
    """Every ``.commit()`` / ``.rollback()`` not made on a unit of work named ``uow``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("commit", "rollback")
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id == UNIT)):
            found.append(f"{module}:{node.lineno} calls .{node.func.attr}()")
    return found


def test_only_the_unit_of_work_commits_or_rolls_back() -> None:
    sources, _ = _package()
    found = [call for module, source in sorted(sources.items()) if module != "xinyi.uow"
             for call in transaction_calls(module, source)]
    assert found == []


def test_a_service_committing_its_callers_work_is_caught() -> None:
    source = "def f(session, uow):\n    session.flush()\n    session.commit()\n    uow.commit()\n"
    assert transaction_calls("xinyi.alpha.service", source) == [
        "xinyi.alpha.service:3 calls .commit()"]
    assert transaction_calls("m", "conn.rollback()\nself.session.rollback()\n") == [
        "m:1 calls .rollback()", "m:2 calls .rollback()"]
