"""The checker: the process in which autograding runs graded test cells, apart from the
student's kernel (started by grading/sandbox.py, driven by grading/preprocessors.py).

Run as ``python -m grading.checker SOCKET``. It reads jobs from standard input, one JSON line
each, and writes one JSON line per job to standard output (``{"token", "ok", "stdout",
"stderr", "error"}``). Two kinds of job, sent in the notebook's order:

- ``{"kind": "setup", "token", "source"}``: a locked setup cell of the instructor's source
  notebook (imports, data, given classes), run here in the checker's own namespace. So `np`,
  `checks`, `math` or a lab's given `Value` class are the checker's own, whatever the student's
  kernel binds to those names. A setup cell that fails here is reported, and skipped.
- ``{"kind": "context", "token", "secret", "key", "source", "reference": [code]}``: sent first.
  The course secret and the grading key (lab, notebook, student) the hidden tests draw their
  inputs from, and the code of the source notebook's setup and answer cells, from which the
  hidden tests' `reference` answers are built here, in a namespace of their own (see
  `backprop.labchecks.secret`). Neither reaches the student's kernel.
- ``{"kind": "test", "token", "source", "timeout", "answers": [names]}``: a graded test cell
  (from the source notebook too). The grader builds the cell's outputs, and so its score, from
  the checker's line alone.

The student's kernel never receives a test cell's code. For each test it connects to SOCKET
(its ``%graded_test SOCKET TOKEN`` line, see grading/kernel_startup.py) and answers requests:
the values of the answer names the test (or the setup code it calls) reads, and nothing else
(the names the source's answer cells bind, listed by the grader: any other name comes from the
checker's namespace, or is a NameError), and the calls the test makes to the student's
functions. An answer name whose value in the kernel is a module, or a function or class of
NumPy, the course library or math (an alias such as ``tanh = np.tanh``), is not used: the test
gets an `AliasedAnswer` that fails with a message saying so.

What comes back is data only: this side unpickles nothing but numbers, strings, bytes, None,
lists, tuples, dicts, sets, slices, NumPy arrays and scalars of non-object dtypes and NumPy
random generators (`_DataUnpickler`); every other object stays in the kernel and is used from
here through a `Remote` proxy, whose attribute reads, calls and operators are requests too.
The test's own objects cross the other way pickled; its functions and lambdas stay here and the
kernel calls them back. So the student's code never sees the test's code, its expected values or
this process's memory, and cannot replace the checks, trace the test's frames or patch the
modules it uses: those live here.

Two things are carried with every call, so that a test behaves as it did in one process: NumPy's
error state (``with np.errstate(over="raise"): f(x)``) and the NumPy functions the test has
replaced (a check that counts calls to ``np.tanh``); and arrays, containers and random generators
the call changed in place are changed here too (a check that the input is left unchanged).
"""
import ast
import builtins
import contextlib
import importlib
import io
import json
import operator
import os
import pickle
import socket
import struct
import sys
import types

import numpy as np

try:  # the checks' own failure, so that an aliased answer fails as a check does
    from backprop.checks import LabCheckError, failure_text
except ImportError:  # a course without the library's checks
    class LabCheckError(AssertionError):
        """A lab check failed."""

    def failure_text(ename, message):
        return f"\u2717 {ename}: {message}"

# Modules whose functions, classes and submodules the kernel may name instead of sending a
# reference (the checker then uses its own copy): NumPy, the course library and math. Nothing
# else, so a learner's "function" can never be a built-in such as open or exec run here.
TRUSTED_PACKAGES = frozenset({"numpy", "backprop", "math"})
MAX_MESSAGE = 512 * 2**20  # bytes of one message from the kernel
MAX_TEXT = 200_000  # characters of printed output kept per test cell

# What a message from the kernel may rebuild: plain data. Anything else is refused.
_DATA_GLOBALS = {
    ("builtins", "complex"), ("builtins", "slice"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "range"),
    ("numpy", "dtype"), ("numpy", "ndarray"),
    ("numpy.random._pickle", "__generator_ctor"),
    ("numpy.random._pickle", "__bit_generator_ctor"),
    ("numpy.random._pickle", "__randomstate_ctor"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
    ("numpy.random.bit_generator", "SeedSequence"),
}
for _core in ("numpy._core", "numpy.core"):
    _DATA_GLOBALS |= {(f"{_core}.multiarray", "_reconstruct"), (f"{_core}.multiarray", "scalar"),
                      (f"{_core}.numeric", "_frombuffer")}
for _bits in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"):
    _DATA_GLOBALS.add((f"numpy.random._{_bits.lower().replace('dxsm', '')}", _bits))
    _DATA_GLOBALS.add(("numpy.random", _bits))


_SCALARS = frozenset({type(None), bool, int, float, complex, str, bytes})


class KernelError(RuntimeError):
    """An exception raised in the student's kernel whose type is not one of Python's own."""


class KernelGone(RuntimeError):
    """The student's kernel stopped answering (it died, or it closed the connection)."""


def _trusted(module_name):
    return isinstance(module_name, str) and module_name.split(".")[0] in TRUSTED_PACKAGES


def _import_trusted(module_name):
    if not _trusted(module_name):
        raise pickle.UnpicklingError(f"module {module_name!r} is not one the tests may use")
    return importlib.import_module(module_name)


def _trusted_global(module_name, qualname):
    obj = _import_trusted(module_name)
    for part in qualname.split("."):
        if part.startswith("<"):
            raise pickle.UnpicklingError(f"{module_name}.{qualname} cannot be looked up")
        obj = getattr(obj, part)
    return obj


class _Ref:
    """A kernel object named in a message, before it becomes a `Remote`."""
    __slots__ = ("kind", "args")

    def __init__(self, kind, args):
        self.kind, self.args = kind, args


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _DATA_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the kernel sent {module}.{name}, which is not data")

    exported = None

    def persistent_load(self, pid):
        if isinstance(pid, tuple) and len(pid) == 2 and pid[0] == "obj":
            if self.exported is not None and pid[1] in self.exported:
                return self.exported[pid[1]]  # one of the test's own objects, back again
        if not (isinstance(pid, tuple) and pid and pid[0] in ("ref", "module", "global")):
            raise pickle.UnpicklingError("unknown reference from the kernel")
        if pid[0] == "global" and tuple(pid[1:]) in _DATA_GLOBALS:  # what rebuilds data
            return super().find_class(*pid[1:])
        return _Ref(pid[0], pid[1:])


def _send(sock, payload):
    sock.sendall(struct.pack("!Q", len(payload)) + payload)


def _recv_exactly(sock, size):
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise KernelGone("the notebook's kernel closed the connection (it died or was "
                             "stopped)")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _recv(sock):
    (size,) = struct.unpack("!Q", _recv_exactly(sock, 8))
    if size > MAX_MESSAGE:
        raise KernelGone(f"the kernel sent a message of {size} bytes (limit {MAX_MESSAGE})")
    return _recv_exactly(sock, size)


class Channel:
    """The connection to one student kernel, for one test cell."""

    def __init__(self, sock):
        self.sock = sock
        self.callbacks = {}  # id -> a function of the test the kernel may call back
        self.exported = {}  # id -> an object of the test the kernel uses by reference
        self.remote_types = {}
        self.remotes = {}  # handle -> its Remote: one object there is one object here
        self.requests = 0  # requests sent: a copy of attributes is good until the next one
        self.arrived = []  # Remotes whose copies came with the latest reply
        self.numpy_as_started = dict(vars(np))

    # -- this side to the kernel: pickled, with proxies and the test's functions by reference
    def dumps(self, value, memo=None):
        """`value` pickled; `memo`, if given, gets the pickle's memo (index -> object), by
        which the kernel names the objects a call changed in place."""
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        pickler.persistent_id = self._persistent_id
        with _deep_recursion():
            pickler.dump(value)
        if memo is not None:
            memo.update({index: obj for index, obj in pickler.memo.copy().values()})
        return buffer.getvalue()

    def _persistent_id(self, obj):
        if type(obj) in _SCALARS or type(obj) is tuple:
            return None
        if isinstance(obj, Remote):
            return ("h", object.__getattribute__(obj, "_bp_id"))
        if isinstance(obj, (types.FunctionType, types.MethodType, types.LambdaType)) and (
                "<" in getattr(obj, "__qualname__", "<")
                or not _trusted(getattr(obj, "__module__", None))):
            self.callbacks[id(obj)] = obj
            return ("cb", id(obj))
        if _by_reference(obj):
            self.exported[id(obj)] = obj
            return ("obj", id(obj), type(obj).__name__)
        return None

    # -- the kernel to this side: data only
    def loads(self, payload):
        try:
            unpickler = _DataUnpickler(io.BytesIO(payload))
            unpickler.exported = self.exported
            value = unpickler.load()
            return self._live(value, 0)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                ImportError, IndexError, KeyError, RecursionError, struct.error) as err:
            raise KernelError(f"the kernel sent something that is not data ({err})") from None

    def _live(self, value, depth):
        kind = type(value)
        if kind in _SCALARS:
            return value
        if depth > 200:
            raise ValueError("nested too deeply")
        if kind is _Ref:
            return self._resolve(value)
        if kind in (list, tuple, set, frozenset):
            return kind(self._live(v, depth + 1) for v in value)
        if kind is dict:
            return {self._live(k, depth + 1): self._live(v, depth + 1) for k, v in value.items()}
        if self.exported.get(id(value)) is value:
            return value  # the test's own object, back by reference
        if isinstance(value, np.ndarray) and value.dtype.hasobject:
            raise ValueError("an array of Python objects")
        if kind not in (bytearray, slice, range) and not isinstance(value, (
                np.ndarray, np.generic, np.dtype, np.random.Generator, np.random.BitGenerator,
                np.random.SeedSequence, np.random.RandomState)):
            raise ValueError(f"a {kind.__name__}")
        return value

    def _resolve(self, ref):
        if ref.kind == "module":
            (name,) = ref.args
            return _import_trusted(name)
        if ref.kind == "global":
            module_name, qualname = ref.args
            return _trusted_global(module_name, qualname)
        handle, type_name, mro, attributes = ref.args
        if not isinstance(handle, int) or not isinstance(type_name, str):
            raise ValueError("a malformed reference")
        if handle not in self.remotes:
            self.remotes[handle] = self._remote_type(type_name, tuple(mro))(self, handle)
        remote = self.remotes[handle]
        if isinstance(attributes, dict):  # as they are now, until the next request
            object.__setattr__(remote, "_bp_copy", (self.requests, self._live(attributes, 1)))
            self.arrived.append(remote)
        return remote

    def _remote_type(self, type_name, mro):
        """A `Remote` subclass named like the kernel object's type, whose __class__ is the
        first class of that type's MRO that this side has (for isinstance, e.g. a learner's
        Layer subclass is a `backprop.base.Layer` here)."""
        key = (type_name, mro)
        if key not in self.remote_types:
            known = Remote
            for module_name, qualname in mro:
                try:
                    candidate = _trusted_global(module_name, qualname)
                except Exception:  # not a module of ours, or not there: the next base
                    continue
                if isinstance(candidate, type) and candidate is not object:
                    known = candidate
                    break
            name = type_name if type_name.isidentifier() else "Remote"
            self.remote_types[key] = type(name, (Remote,), {"_bp_known": known})
        return self.remote_types[key]

    # -- requests
    def request(self, *message):
        if message[0] != "getattr":  # a plain attribute read changes nothing there
            self.requests += 1
        self.arrived = []
        sent = {}
        _send(self.sock, self.dumps(message, sent))
        while True:
            reply = self.loads(_recv(self.sock))
            if not (isinstance(reply, tuple) and reply):
                raise KernelError("the kernel sent a malformed reply")
            if reply[0] == "ok":
                _apply_changes(reply[-1], sent)
                return reply[1:-1]
            if reply[0] == "err":
                raise _rebuilt(reply[1:])
            if reply[0] in _KERNEL_REQUESTS:
                self._answer(reply)
            else:
                raise KernelError("the kernel sent a malformed reply")

    def _answer(self, message):
        """The kernel calls one of the test's functions (a lambda, a replaced NumPy function)
        or uses one of its objects (a library Value the test built): an attribute, a call, an
        operator. Dunder attributes are refused; an error goes back to the kernel."""
        try:
            kind, *rest = message
            if kind == "callback":
                function, args, kwargs = self.callbacks.get(rest[0]), rest[1], rest[2]
                if function is None:
                    raise TypeError("no such function of the test")
                result = function(*args, **kwargs)
            elif kind in ("b_getattr", "b_setattr"):
                obj, name = self.exported[rest[0]], rest[1]
                if not isinstance(name, str) or name.startswith("__"):
                    raise AttributeError(f"{name!r} cannot be used while grading")
                result = (getattr(obj, name) if kind == "b_getattr"
                          else setattr(obj, name, rest[2]))
            elif kind == "b_call":
                obj, args, kwargs = self.exported[rest[0]], rest[1], rest[2]
                result = obj(*args, **kwargs)
            else:
                function, operands = _B_OPERATORS[rest[0]], rest[1]
                result = function(*operands)
            reply = self.dumps(("result", result))
        except Exception as err:
            reply = self.dumps(("raise", type(err).__module__, type(err).__name__, str(err)))
        _send(self.sock, reply)

    def call_context(self):
        """NumPy's error state, and the NumPy functions the test has replaced."""
        patched = {name: value for name, value in vars(np).items()
                   if self.numpy_as_started.get(name, value) is not value}
        return {"errstate": np.geterr(), "numpy": patched}


def _rebuilt(error):
    module, name, message = (str(part) for part in error)
    kind = getattr(builtins, name, None) if module == "builtins" else None
    if isinstance(kind, type) and issubclass(kind, BaseException) and kind not in (
            SystemExit, GeneratorExit):
        try:
            return kind(message)
        except Exception:  # an exception type that needs other arguments
            pass
    return KernelError(f"{name}: {message}")


def _by_reference(obj):
    """Objects of the test that go to the kernel as references, not copies: instances of
    classes other than Python's and NumPy's (a library Value whose gradient the learner's
    backward sets, a layer), so that what the learner's code does to them happens here."""
    kind = type(obj)
    module_name = getattr(kind, "__module__", "") or ""
    if _named_global(obj):  # a function or class pickle saves by its name (Cython's too)
        return False
    return not (module_name == "builtins" or module_name.split(".")[0] == "numpy"
                or isinstance(obj, (type, types.ModuleType, types.FunctionType, pickle.PickleBuffer,
                                    types.BuiltinFunctionType, types.MethodType, Remote,
                                    BaseException)))


def _named_global(obj):
    module_name, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (isinstance(module_name, str) and isinstance(qualname, str)) or "<" in qualname:
        return False
    found = sys.modules.get(module_name)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found is obj


_KERNEL_REQUESTS = ("callback", "b_getattr", "b_setattr", "b_call", "b_apply")
_B_OPERATORS = {name: getattr(operator, name) for name in (
    "add", "sub", "mul", "truediv", "pow", "neg", "pos", "abs", "lt", "le", "gt", "ge",
    "getitem", "contains", "index")}
_B_OPERATORS.update(len=len, iter=iter, next=next, float=float, int=int, bool=bool,
                    repr=repr, str=str, format=format)


# Operators and built-in functions applied to a kernel object, by the Remote method's name:
# (the function the kernel applies, whether the Remote is its second argument).
_OPERATORS = {}
for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or",
              "xor", "lshift", "rshift"):
    _fn = "and_" if _name == "and" else "or_" if _name == "or" else _name
    _OPERATORS[f"__{_name}__"] = (f"operator.{_fn}", False)
    _OPERATORS[f"__r{_name}__"] = (f"operator.{_fn}", True)
for _name in ("lt", "le", "gt", "ge", "eq", "ne", "getitem", "setitem", "delitem", "contains",
              "neg", "pos", "abs", "invert", "index"):
    _OPERATORS[f"__{_name}__"] = (f"operator.{_name}", False)
for _name in ("len", "iter", "next", "bool", "float", "int", "complex", "str", "format",
              "reversed", "round"):
    _OPERATORS[f"__{_name}__"] = (f"builtins.{_name}", False)
_OPERATORS["__array__"] = ("numpy.asarray", False)
# Attributes of functions and classes a check may read for its messages.
_REMOTE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__", "__module__",
                             "__defaults__", "__kwdefaults__", "__wrapped__"})


class Remote:
    """An object that lives in the student's kernel; using it sends a request there."""
    __slots__ = ("_bp_channel", "_bp_id", "_bp_copy", "__weakref__")
    _bp_known = None

    def __init__(self, channel, handle):
        object.__setattr__(self, "_bp_channel", channel)
        object.__setattr__(self, "_bp_id", handle)

    def _bp_request(self, *message):
        (value,) = object.__getattribute__(self, "_bp_channel").request(*message)
        return value

    @property
    def __class__(self):
        known = type(self)._bp_known
        return known if known is not None and known is not Remote else type(self)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__") and name not in _REMOTE_DUNDERS:
            raise AttributeError(name)
        try:  # the plain attributes that came with the reference, if nothing ran since
            requests, copy = object.__getattribute__(self, "_bp_copy")
            if requests == object.__getattribute__(self, "_bp_channel").requests and name in copy:
                return copy[name]
        except AttributeError:
            pass
        return self._bp_get(name)

    def _bp_get(self, name):
        channel = object.__getattribute__(self, "_bp_channel")
        value, _, plain = channel.request("getattr", object.__getattribute__(self, "_bp_id"),
                                          name)
        if plain is not True:  # the learner's code ran (a property): older copies are stale
            channel.requests += 1
            for remote in channel.arrived:  # (those of this reply are as of after it)
                requests, copy = object.__getattribute__(remote, "_bp_copy")
                object.__setattr__(remote, "_bp_copy", (channel.requests, copy))
        return value

    def __setattr__(self, name, value):
        self._bp_request("setattr", object.__getattribute__(self, "_bp_id"), name, value)

    def __delattr__(self, name):
        self._bp_request("delattr", object.__getattribute__(self, "_bp_id"), name)

    def __call__(self, *args, **kwargs):
        channel = object.__getattribute__(self, "_bp_channel")
        (result,) = channel.request("call", object.__getattribute__(self, "_bp_id"), args,
                                    kwargs, channel.call_context())
        return result

    def _bp_best_time(self, args, kwargs, repeats):
        """The fastest of `repeats` calls, timed in the kernel (backprop.checks.best_time)."""
        channel = object.__getattribute__(self, "_bp_channel")
        (seconds,) = channel.request("time", object.__getattribute__(self, "_bp_id"), args,
                                     kwargs, repeats, channel.call_context())
        if not isinstance(seconds, float) or not seconds >= 0:
            raise KernelError(f"the kernel timed the call as {seconds!r}")
        return seconds

    def __dir__(self):
        return self._bp_request("apply", "builtins.dir", (self,))

    def __repr__(self):
        # Local, not a request: checks' messages format what they received eagerly, and a
        # list of 5000 of the learner's Values would cost 5000 requests.
        return f"<{type(self).__name__} object of your notebook>"

    def __enter__(self):
        return self._bp_get("__enter__")()

    def __exit__(self, *exc):
        return self._bp_get("__exit__")(*(None if e is None else repr(e) for e in exc))


def _make_operator(method, function, swapped):
    def apply(self, *args):
        operands = (args[0], self, *args[1:]) if swapped else (self, *args)
        return self._bp_request("apply", function, operands)
    apply.__name__ = method
    return apply


for _method, (_function, _swapped) in _OPERATORS.items():
    setattr(Remote, _method, _make_operator(_method, _function, _swapped))
# One Remote per kernel object (Channel.remotes), so identity here is identity there: sets and
# dicts of kernel objects (a walk over a learner's graph of Values) need no request per hash.
Remote.__hash__ = lambda self: hash(("Remote", object.__getattribute__(self, "_bp_id")))


@contextlib.contextmanager
def _deep_recursion(limit=50_000):
    """Room for pickle to walk deep object graphs (a chain of 5000 Values)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _apply_changes(changes, sent):
    """Make here the in-place changes a call made to the objects it was sent: `changes` maps
    an object's index in the request's pickle memo to its new contents (data only)."""
    if not isinstance(changes, dict):
        return
    for index, change in changes.items():
        original = sent.get(index)
        if original is None or not (isinstance(change, tuple) and len(change) == 2):
            continue
        kind, value = change
        try:
            if kind == "array" and isinstance(original, np.ndarray):
                if original.shape == np.shape(value) and original.flags.writeable:
                    np.copyto(original, value, casting="unsafe")
            elif kind == "list" and type(original) is list and isinstance(value, list):
                original[:] = value
            elif kind == "dict" and type(original) is dict and isinstance(value, dict):
                original.clear()
                original.update(value)
            elif kind == "rng" and isinstance(original, np.random.Generator):
                original.bit_generator.state = value
            elif kind == "attrs" and _plain_instance(original) and isinstance(value, dict):
                for name, item in value.items():
                    if isinstance(name, str) and not name.startswith("__"):
                        setattr(original, name, item)
        except (TypeError, ValueError, AttributeError):
            continue


def _plain_instance(obj):
    """An instance of an ordinary class (the test's own objects, e.g. library Values), not a
    class, module or function, whose attributes a call may have set."""
    return hasattr(obj, "__dict__") and not isinstance(
        obj, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
              types.MethodType, Remote))


# -- running a test cell -----------------------------------------------------------------------
def names_read(tree):
    """The names a cell's code reads and does not bind itself."""
    read, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return read - bound


def names_to_fetch(tree, answers, setup_reads=frozenset()):
    """The answer names the test reads, or the setup code's functions and classes it calls may
    read (lab 03's given Value calls the learner's rules): the only names asked of the kernel.
    An answer name wins over the checker's own (the kernel's value is the learner's answer)."""
    return sorted((names_read(tree) | set(setup_reads)) & set(answers))


_OWNERS = {"numpy": "NumPy's own", "backprop": "the course library's own",
           "math": "Python's own"}


def _library_object(value):
    """How to name `value` if it is a module, or a function or class of NumPy, the course
    library or math (all that a kernel's answer can be besides data and its own objects,
    which arrive as `Remote`s); None otherwise."""
    if isinstance(value, Remote) or not (isinstance(value, types.ModuleType) or callable(value)):
        return None
    if isinstance(value, types.ModuleType):
        return f"the module {value.__name__}"
    module = str(getattr(value, "__module__", None) or "numpy")  # (as the kernel named it)
    qualname = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
    owner = _OWNERS.get(module.split(".")[0], "a library's")
    public = "numpy" if owner == _OWNERS["numpy"] and "._" in module else module
    return f"{owner} {public}.{qualname}"


class AliasedAnswer:
    """Stands for an answer name whose value in the student's kernel is the library's or
    NumPy's own object, not the learner's: using it in any way fails the test with a message
    saying so."""
    __slots__ = ("_bp_message",)

    def __init__(self, name, what):
        last = what.rsplit(".", 1)[-1]
        kind = ("something" if what.startswith("the module") else
                "a class" if last[:1].isupper() else "a function")
        object.__setattr__(self, "_bp_message", (
            f"`{name}` in your notebook is {what}, not {kind} you wrote: the lab asks you to "
            f"implement it (an answer that hands over the library's own earns nothing)."))

    def _bp_fail(self, *args, **kwargs):
        raise LabCheckError(object.__getattribute__(self, "_bp_message"))

    def __getattr__(self, name):
        self._bp_fail()

    def __setattr__(self, name, value):
        self._bp_fail()

    __call__ = _bp_fail

    def __repr__(self):
        return "<an alias of the library's own, not an answer>"


for _method in set(_OPERATORS) - {"__str__", "__format__"}:
    setattr(AliasedAnswer, _method, AliasedAnswer._bp_fail)
AliasedAnswer.__hash__ = object.__hash__


def _answers_from(values, wanted):
    """The kernel's answer values the test may use: aliases of the library's own objects are
    replaced by `AliasedAnswer`s."""
    found = {}
    for name in wanted:
        if isinstance(values, dict) and name in values:
            what = _library_object(values[name])
            found[name] = values[name] if what is None else AliasedAnswer(name, what)
    return found


_UNSET = object()


def _error_output(err):
    name, message = type(err).__name__, str(err)
    if type(err).__module__ != "builtins" and name == "LabCheckError":
        return {"ename": name, "evalue": message, "traceback": [failure_text(name, message)]}
    return {"ename": name, "evalue": message,
            "traceback": [f"\x1b[0;31m{name}\x1b[0m: {message}",
                          "(raised while the grader ran this test cell)"]}


def _accept(server, token, timeout):
    server.settimeout(timeout)
    while True:
        conn, _ = server.accept()
        conn.settimeout(10)
        try:
            hello = _recv(conn)
        except (OSError, KernelGone):
            conn.close()
            continue
        if hello == b"hello " + token.encode():
            return conn
        conn.close()


@contextlib.contextmanager
def _captured(out, err):
    """The code's printed output into `out` and `err`, and an empty standard input (the
    checker's own is the grader's job stream)."""
    saved = sys.stdout, sys.stderr, sys.stdin
    sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO()
    try:
        yield
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved


def run_setup(namespace, job, setup_reads):
    """Run a setup cell of the source notebook in the checker's namespace. Its output is not
    kept (the kernel runs the same cell and shows its own); the names its code reads join
    `setup_reads`, and matplotlib's figures are closed."""
    result = {"token": job["token"], "ok": True, "stdout": "", "stderr": "", "error": None}
    try:
        tree = ast.parse(job["source"], "<setup cell>")
        setup_reads.update(names_read(tree))
        with _captured(io.StringIO(), io.StringIO()):
            exec(compile(tree, "<setup cell>", "exec"), namespace)
    except BaseException as error:  # reported: the grader logs it, grading goes on
        result.update(ok=False, error=_error_output(error))
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")
    return result


def run_context(job):
    """Install the course secret, the grading key and the reference answers for the hidden
    tests (`backprop.labchecks.secret`). Fails, with what went wrong, when the library is
    missing or a cell of the reference raised."""
    result = {"token": job["token"], "ok": True, "stdout": "", "stderr": "", "error": None}
    try:
        from backprop.labchecks import secret as course_secret
        reference, problems = None, []
        if job.get("reference") is not None:
            with _captured(io.StringIO(), io.StringIO()):
                reference, problems = course_secret.reference_from_cells(job["reference"])
        course_secret.use_grading_context(job.get("secret"), job.get("key", ""), reference,
                                          job.get("source", ""))
        if problems:
            raise RuntimeError("the reference answers are incomplete: " + "; ".join(problems))
    except BaseException as error:  # reported: the grader logs it
        result.update(ok=False, error=_error_output(error))
    return result


def run_job(server, namespace, job, setup_reads=frozenset()):
    if job.get("kind") == "setup":
        return run_setup(namespace, job, setup_reads)
    if job.get("kind") == "context":
        return run_context(job)
    out, err = io.StringIO(), io.StringIO()
    result = {"token": job["token"], "ok": True, "stdout": "", "stderr": "", "error": None}
    shadowed = {}  # answer name -> the checker's value it hides during this test
    try:
        tree = ast.parse(job["source"], "<test cell>")
        code = compile(tree, "<test cell>", "exec")
    except SyntaxError as error:
        result.update(ok=False, error=_error_output(error))
        return result
    conn = None
    try:
        try:
            conn = _accept(server, job["token"], min(job["timeout"], 30))
        except OSError:
            raise KernelGone("the notebook's kernel did not connect to the grader") from None
        conn.settimeout(job["timeout"] + 10)
        channel = Channel(conn)
        wanted = names_to_fetch(tree, job.get("answers", ()), setup_reads)
        if wanted:
            (values,) = channel.request("get", wanted)
            for name, value in _answers_from(values, wanted).items():
                # the checker's own value of that name (if setup bound it) comes back after
                shadowed.setdefault(name, namespace.get(name, _UNSET))
                namespace[name] = value
        with _captured(out, err):
            exec(code, namespace)
    except BaseException as error:  # the test failed: that is its outcome, not ours
        result.update(ok=False, error=_error_output(error))
    finally:
        for name, value in shadowed.items():
            if value is _UNSET:
                namespace.pop(name, None)
            else:
                namespace[name] = value
        if conn is not None:
            try:
                _send(conn, pickle.dumps(("done",)))
            except OSError:
                pass
            conn.close()
    result["stdout"] = out.getvalue()[:MAX_TEXT]
    result["stderr"] = err.getvalue()[:MAX_TEXT]
    return result


def main(argv):
    (socket_path,) = argv
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(socket_path)
    os.chmod(socket_path, 0o666)
    server.listen(8)
    report = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout = sys.stderr
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    setup_reads = set()  # names the setup cells' code reads (their functions, when called)
    report.write(json.dumps({"ready": True}) + "\n")
    report.flush()
    # What every lab's tests import, loaded while the kernel starts and runs the first cells.
    os.environ["MPLBACKEND"] = "Agg"  # setup cells import pyplot: nothing is ever shown
    for module_name in ("backprop.checks", "backprop.gradcheck", "backprop.data",
                        "backprop.layers", "backprop.engine", "backprop.train",
                        "matplotlib.pyplot"):  # (every lab's setup cell imports pyplot)
        try:
            importlib.import_module(module_name)
        except ImportError:  # a course without one of them: its tests import what they use
            pass
    try:  # grading: hidden tests draw from the secret the grader sends, never the environment
        from backprop.labchecks import secret as course_secret
        course_secret.use_grading_context(None)
    except ImportError:  # a course without the library
        pass
    for line in sys.stdin:
        job = json.loads(line)
        report.write(json.dumps(run_job(server, namespace, job, setup_reads)) + "\n")
        report.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
