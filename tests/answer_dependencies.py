"""Which graded test cells fail when an answer of a lab is broken, read from the code of its
source notebook without running it (used by submissions.py to know what a submission earns).

A broken answer breaks every name it defines, every function or class that uses one of those
names (whatever cell defines it: functions look their globals up when called), and every name
a later statement computes from a broken name; a graded test cell fails when it reads a broken
name. A name bound again from working code works again. Reading is per statement, in the order
Python evaluates it, so `except E as err: ... err` or `x = f(x)` are read correctly.
"""
import ast

from IPython.core.inputtransformer2 import TransformerManager


def statements(source):
    """The top-level statements of a cell's code (IPython %magics become ordinary calls)."""
    return ast.parse(TransformerManager().transform_cell(source)).body


def defined_names(source):
    """Names a cell's code binds at the top level."""
    return set().union(*map(_binds, statements(source)))


def names_read(source):
    """Names a cell's code takes from the notebook's namespace."""
    return set().union(*map(_reads, statements(source)))


def names_classes_use(sources):
    """Names read by the methods of classes the cells define. Whether breaking one of them
    fails a test depends on which methods run (operators call them implicitly), which reading
    the code cannot tell, so an answer defining such a name is not a predictable target."""
    return set().union(set(), *(_free_names(s) for source in sources for s in statements(source)
                                if isinstance(s, ast.ClassDef)))


def failing_cells(code_cells, broken_cells):
    """``{cell id}`` of the cells after the first of `broken_cells` that read a broken name.

    code_cells: ``[(cell id, source)]`` of every code cell, in notebook order.
    broken_cells: ids of the cells (answers) whose names are broken.
    """
    parsed = [(cell_id, statements(source)) for cell_id, source in code_cells]
    broken = set().union(*(defined_names(source) for cell_id, source in code_cells
                           if cell_id in broken_cells))
    broken |= _functions_using(broken, [s for _, body in parsed for s in body])
    first = min(i for i, (cell_id, _) in enumerate(parsed) if cell_id in broken_cells)
    failing = set()
    for cell_id, body in parsed[first + 1:]:
        if cell_id in broken_cells:  # a later broken answer: what it defines stays broken
            continue
        for statement in body:
            if _reads(statement) & broken:
                failing.add(cell_id)
                broken |= _binds(statement)
            else:
                broken -= _binds(statement)
    return failing


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
# Fields in the order Python evaluates them, where that differs from the order of `_fields`.
_EVALUATION_ORDER = {ast.Assign: ("value", "targets"), ast.AnnAssign: ("value", "target"),
                     ast.NamedExpr: ("value", "target"), ast.For: ("iter", "target", "body",
                                                                    "orelse")}


def _events(node):
    """``[(name, binds)]``: the names a statement reads (binds False) and binds (True) in the
    scope it runs in, in the order it does so; a function or class it defines reads the
    names its body takes from outside."""
    if isinstance(node, ast.Name):
        return [(node.id, not isinstance(node.ctx, ast.Load))]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [((a.asname or a.name).split(".")[0], True) for a in node.names]
    if isinstance(node, _SCOPES):
        return [(name, False) for name in sorted(_free_names(node))] + [(node.name, True)]
    if isinstance(node, (ast.Lambda,) + _COMPREHENSIONS):
        return [(name, False) for name in sorted(_free_names(node))]
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        return [(node.target.id, False)] + _events(node.value) + [(node.target.id, True)]
    if isinstance(node, ast.ExceptHandler) and node.name:  # `except E as err` binds err
        return _events_of([node.type]) + [(node.name, True)] + _events_of(node.body)
    events = []
    for field in _EVALUATION_ORDER.get(type(node), node._fields):
        value = getattr(node, field, None)
        events += _events_of(value if isinstance(value, list) else [value])
    return events


def _events_of(nodes):
    return [event for node in nodes if isinstance(node, ast.AST) for event in _events(node)]


def _reads(statement):
    """Names a statement reads from its scope before binding them itself."""
    bound, reads = set(), set()
    for name, binds in _events(statement):
        if binds:
            bound.add(name)
        elif name not in bound:
            reads.add(name)
    return reads


def _binds(statement):
    return {name for name, binds in _events(statement) if binds}


def _free_names(scope):
    """Names a function, lambda, class or comprehension takes from the enclosing scope."""
    if isinstance(scope, _COMPREHENSIONS):
        targets = set().union(*(_binds(g.target) for g in scope.generators))
        inner = [n for n in ast.iter_child_nodes(scope) if not isinstance(n, ast.comprehension)]
        inner += [part for g in scope.generators for part in (g.iter, *g.ifs)]
        return {name for name, binds in _events_of(inner) if not binds} - targets
    outer = getattr(scope, "decorator_list", []) + getattr(scope, "bases", [])
    if isinstance(scope, ast.ClassDef):
        body_reads = set().union(set(), *map(_reads, scope.body))
        return body_reads | {name for name, binds in _events_of(outer) if not binds}
    args = scope.args
    outer += args.defaults + [d for d in args.kw_defaults if d]
    params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs
              + [args.vararg, args.kwarg] if a}
    body = scope.body if isinstance(scope.body, list) else [scope.body]
    events = _events_of(body)
    local = params | {name for name, binds in events if binds}  # local wherever assigned
    return ({name for name, binds in events if not binds} - local
            | {name for name, binds in _events_of(outer) if not binds})


def _functions_using(names, statements):
    """Functions and classes defined anywhere that use `names`, however indirectly (a
    function looks its globals up when it is called, so the order of cells does not matter)."""
    definitions = [s for s in statements if isinstance(s, _SCOPES)]
    found = set()
    while True:
        new = {d.name for d in definitions if _free_names(d) & (names | found)} - found
        if not new:
            return found
        found |= new
