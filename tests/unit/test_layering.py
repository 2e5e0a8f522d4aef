"""The library's import graph: no cycles, and imports run one way through its layers.

Every import counts, at module level or inside a function (only ``if TYPE_CHECKING:`` blocks are
left out), so a function-local import cannot hide a cycle. The layers, lowest first::

    domain                       pydantic models; imports nothing else of medialens
    errors, ids, settings, aws, observability
    media, adapters              decoding and signal work; storage, registry and index backends
    ml                           model runtimes (may import media, never the reverse)
    pipeline, services, search, voice, admission, revisions, operations, orchestration, reporting,
    uploads, timeline, insight
    handlers, worker, api        what Lambda and the container deploy
    local, cli                   the embedded runtime and the command line (never deployed)

A module may import its own layer and the layers below it; media and adapters do not import each
other.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import medialens

pytestmark = pytest.mark.unit

PACKAGE = Path(medialens.__file__).resolve().parent
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"domain"}),
    frozenset({"errors", "ids", "settings", "aws", "observability"}),
    frozenset({"media", "adapters"}),
    frozenset({"ml"}),
    frozenset(
        {
            "pipeline",
            "services",
            "search",
            "voice",
            "admission",
            "revisions",
            "operations",
            "orchestration",
            "reporting",
            "uploads",
            "timeline",
            "insight",
        }
    ),
    frozenset({"handlers", "worker", "api"}),
    frozenset({"local", "cli"}),
)
# The light Lambda's layer has none of these (tests/infra/test_bundling.py builds it): what it
# imports must load without them.
MEDIA_EXTRA = (
    "av",
    "cv2",
    "PIL",
    "scenedetect",
    "faster_whisper",
    "ctranslate2",
    "rapidocr",
    "imagehash",
    "jiwer",
)
DEPLOYED_ENTRY_POINTS = (
    "medialens.handlers.ingest",
    "medialens.handlers.light",
    "medialens.handlers.dlq",
    "medialens.handlers.api",
    "medialens.handlers.insight",
    "medialens.pipeline.catalog",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    resolved = {_resolve(target) for target in found if target == "medialens" or target.startswith("medialens.")}
    return {target for target in resolved if target is not None and target != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int | None:
    """The layer of a module (None for the package root, which holds only the version)."""
    top = module.split(".")[1] if "." in module else ""
    for number, members in enumerate(LAYERS):
        if top in members:
            return number
    return None


def test_every_module_is_in_a_layer() -> None:
    unplaced = sorted(m for m in MODULES if m != "medialens" and _layer(m) is None)
    assert not unplaced, f"place these in LAYERS (and in docs/architecture.md's diagram): {unplaced}"


def test_no_import_cycles() -> None:
    # A package's __init__ that imports its own submodules would be a cycle too: they hold docstrings.
    try:
        TopologicalSorter(GRAPH).prepare()
    except CycleError as error:
        pytest.fail(f"import cycle: {' -> '.join(error.args[1])}")


def test_imports_run_down_the_layers() -> None:
    upward = []
    for module, targets in GRAPH.items():
        here = _layer(module)
        for target in targets:
            there = _layer(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports against the layering:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize(("importer", "forbidden"), [("media", "adapters"), ("adapters", "media")])
def test_peers_stay_apart(importer: str, forbidden: str) -> None:
    crossing = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.startswith(f"medialens.{importer}")
        for target in targets
        if target.startswith(f"medialens.{forbidden}")
    ]
    assert not crossing


def test_every_module_imports_on_its_own() -> None:
    """Each module imported first, in a fresh set of medialens modules: an order-dependent cycle
    (a partially initialised module) fails here even where the graph looks clean."""
    script = (
        "import importlib, sys\n"
        f"for name in {sorted(MODULES)!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'medialens' or m.startswith('medialens.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_deployed_entry_points_load_without_the_media_extra() -> None:
    """The light Lambda imports the whole step catalogue; decoders load only in the steps that
    decode (on the heavy worker, which has them)."""
    script = (
        "import importlib, sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.partition('.')[0] in {MEDIA_EXTRA!r}:\n"
        "            raise ImportError(f'{name} is not installed here')\n"
        "sys.meta_path.insert(0, Absent())\n"
        f"for name in {DEPLOYED_ENTRY_POINTS!r}:\n"
        "    importlib.import_module(name)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
