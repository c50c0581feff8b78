"""The import graph of the library: no module imports another that imports it back, even
inside a function (a cycle works only by the accident of import order)."""
import ast
from pathlib import Path

import backprop

PACKAGE = Path(backprop.__file__).parent
MODULES = {path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__"}


def _imported_modules(source, known=MODULES):
    """The backprop modules (of `known`) that `source` imports, at any depth (module level or in
    functions)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 0 and not (base == "backprop" or base.startswith("backprop.")):
                continue
            base = base.removeprefix("backprop").lstrip(".") if node.level == 0 else base
            if base:
                found.add(base.split(".")[0])
            else:  # from . import a, b
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("backprop."))
    return found & set(known)


def _graph():
    return {name: _imported_modules((PACKAGE / f"{name}.py").read_text()) for name in MODULES}


def _find_cycle(graph):
    """One cycle as a list of modules [a, b, ..., a], or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import():
    inner = _imported_modules("def f():\n    from .a import x\n", known={"a", "b", "c"})
    graph = {"a": {"b"}, "b": inner, "c": set()}
    assert _find_cycle(graph) == ["a", "b", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_parser_sees_every_import_form():
    source = ("from . import functional as F\nfrom .layers import Layer\n"
              "import backprop.init\nfrom backprop.data import minibatches\nimport numpy\n")
    assert _imported_modules(source) == {"functional", "layers", "init", "data"}


def test_backprop_modules_import_each_other_without_cycles():
    graph = _graph()
    assert graph["rnn"] >= {"recurrent", "gated", "sequence"}  # the parser sees the real imports
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_rnn_and_gated_do_not_import_each_other_nor_init_and_layers():
    graph = _graph()
    assert "gated" not in graph["recurrent"] and "rnn" not in graph["gated"]
    assert "layers" not in graph["init"]
