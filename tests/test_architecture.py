"""The layering the project promises: the layer table, the frameworks each package may load, and no
import cycles.

Imports are read from the source (every `import`, also those inside functions), and the two
promises that matter at run time are checked in a fresh interpreter too."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("lstm", "trainer", "dann", "bot", "web")


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path, name: str) -> set[str]:
    """The dotted names `path` imports (absolute imports; the project uses no relative ones)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import"
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return names


def project_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {target for target in imports_of(path, name) if target in known and target != name}
            for name, path in known.items()}


def test_the_module_graph_has_no_import_cycle():
    graph = project_graph()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert len(graph) > 30  # the walk saw the whole project, not an empty tree


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The check above can fail: two modules that import each other are reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    monkeypatch.setattr(sys.modules[__name__], "project_graph", lambda: graph)
    with pytest.raises(pytest.fail.Exception, match="a -> b -> c -> a"):
        test_the_module_graph_has_no_import_cycle()


# The layers, lowest first: a module imports only from layers below its own, or from its own
# layer; the front ends only from their own package (bot may not import web). Imports inside
# functions count. docs/architecture.md draws the same table.
LAYERS = (
    ("model", ("lstm",)),  # the model, the sampler, the checkpoint and its schema
    ("settings and state", ("dann.settings", "dann.schedule", "dann.state", "dann.process")),
    ("voice", ("dann.voice",)),  # best-of-n and the filters, synchronous
    ("trainer", ("trainer",)),
    ("service", ("dann.serving",)),  # the running generation service
    ("front ends", ("bot", "web", "dann.poster")),
    ("cli", ("dann.cli", "dann")),
)


def place(module: str) -> tuple[int, str]:
    """(layer number, package) of a project module: the longest prefix the table names."""
    best = None
    for number, (_, packages) in enumerate(LAYERS):
        for package in packages:
            if module == package or module.startswith(package + "."):
                if best is None or len(package) > len(best[1]):
                    best = (number, package)
    assert best is not None, f"{module} is in no layer of LAYERS"
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in sorted(graph.items()):
        layer, package = place(module)
        for target in sorted(targets):
            target_layer, target_package = place(target)
            apart = LAYERS[layer][0] == "front ends" and target_package != package
            if target_layer > layer or (target_layer == layer and apart):
                wrong.append(f"{module} ({LAYERS[layer][0]}) imports {target} ({LAYERS[target_layer][0]})")
    return wrong


def test_every_import_goes_down_the_layers():
    graph = project_graph()
    assert not upward_imports(graph), "\n".join(upward_imports(graph))
    assert {place(m)[0] for m in graph} == set(range(len(LAYERS)))  # every layer holds something


@pytest.mark.parametrize("module, target", [
    ("dann.voice.bestof", "trainer.data"),  # the voice reaching up into the trainer
    ("lstm.checkpoint", "dann.settings"),
    ("bot.commands", "web.app"),  # one front end into another, same layer
    ("trainer.retrain", "dann.serving.service"),
])
def test_the_layer_check_finds_an_upward_import(module, target):
    """The check above can fail: one upward import added to the real graph is reported."""
    graph = project_graph()
    graph.setdefault(module, set()).add(target)
    assert any(line.startswith(f"{module} (") and f" imports {target} (" in line for line in upward_imports(graph))


@pytest.mark.parametrize("package, forbidden", [
    ("lstm", ("discord", "fastapi", "uvicorn", "starlette", "apscheduler", "pydantic_settings", "pydantic")),
    ("dann/voice", ("discord", "fastapi", "uvicorn", "starlette")),
    ("dann/serving", ("discord", "fastapi", "uvicorn", "starlette")),
    ("dann/poster", ("discord", "fastapi", "uvicorn", "starlette")),
    ("trainer", ("discord", "fastapi", "uvicorn")),
    ("web", ("discord",)),
])
def test_a_package_loads_no_framework_it_does_not_serve(package, forbidden):
    for path in (ROOT / package).rglob("*.py"):
        for name in imports_of(path, str(path)):
            assert name.split(".")[0] not in forbidden, f"{path.relative_to(ROOT)} imports {name}"


PROBE = """
import sys
def loaded():
    return sorted({m.split(".")[0] for m in sys.modules})
import lstm.checkpoint, lstm.sample, lstm.copyindex
print(" ".join(loaded()))
import dann.serving.service, dann.serving.status
print(" ".join(loaded()))
from dann.settings import Settings
from web.app import create_app
create_app(Settings(_env_file=None))
print(" ".join(loaded()))
"""


def test_the_model_package_the_serving_layer_and_the_web_app_load_only_what_they_may():
    """In a fresh interpreter, step by step: what each layer loads with everything below it."""
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          check=True, env={"PATH": "", "JAX_PLATFORMS": "cpu"})
    model, serving, web = (set(line.split()) for line in done.stdout.splitlines())
    assert "jax" in model and not model & {"discord", "fastapi", "apscheduler", "pydantic_settings", "dann", "trainer"}
    assert "dann" in serving and not serving & {"discord", "fastapi", "uvicorn"}
    assert "fastapi" in web and "discord" not in web  # `dann web` never loads discord
