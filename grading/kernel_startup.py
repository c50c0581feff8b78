# Run by every grading kernel, sandboxed or not, before the notebook's first cell
# (IPKernelApp.exec_files; see grading/sandbox.py). Everything here is defined inside one function so that the notebook's
# namespace gets nothing but what IPython itself puts there.
def _grading_startup():
    import builtins
    import os
    import shutil
    import sys
    import threading

    import numpy
    import backprop
    import backprop.checks
    try:  # per-lab check modules, where the course has them: restored like checks
        import backprop.labchecks  # noqa: F401
    except ImportError:
        pass

    # The private copy of the student's folder becomes the working directory.
    # (Unsandboxed, there is no copy: the kernel works in the student's folder, as nbgrader's.)
    source, work = "/run/submitted", "/submission"
    if os.path.isdir(source):
        for name in os.listdir(source):
            here, there = os.path.join(source, name), os.path.join(work, name)
            if os.path.isdir(here):
                shutil.copytree(here, there)
            else:
                shutil.copyfile(here, there)
        os.chdir(work)

    ip = get_ipython()  # noqa: F821 (IPython's, in the namespace exec_files runs in)

    # exit() / quit() in a cell would shut the kernel down and fail the whole submission;
    # sys.exit() already only stops its own cell. Both now stop their cell with an error.
    def refuse_exit(*args, **kwargs):
        raise SystemExit("exit() does nothing while grading: this cell stops, the next run")
    ip.ask_exit = refuse_exit

    # The library and NumPy as they were before any student code ran, put back while the
    # checker's test runs (the library functions it sends by name are looked up here). Not a
    # defence: the test itself runs in the checker, which student code cannot reach.
    modules = {name: module for name, module in sys.modules.items()
               if name == "numpy" or name == "backprop" or name.startswith("backprop.")}
    pristine = {name: dict(vars(module)) for name, module in modules.items()}
    pristine_builtins = dict(vars(builtins))
    hooks = {name: list(getattr(ip, name)) for name in
             ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")}

    def restore():
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        # Names replaced get their first value back; names added stay (NumPy adds its lazily
        # imported submodules to its namespace).
        for name, module in modules.items():
            sys.modules[name] = module
            vars(module).update(pristine[name])
        vars(builtins).update(pristine_builtins)
        for name, saved in hooks.items():
            getattr(ip, name)[:] = saved
        ip.CustomTB = None
        ip.custom_exceptions = ()

    def graded_test(line):
        """%graded_test SOCKET TOKEN: the grader runs a test cell in its checker process
        (grading/checker.py), which never sends the test's code here; this kernel answers its
        requests (the values of the answer names it reads, the calls it makes to the
        student's functions) over SOCKET until the test is done. What this cell prints is
        not kept in the graded notebook."""
        socket_path, token = line.split()
        restore()
        try:
            serve_checker(socket_path, token)
        finally:
            restore()

    ip.register_magic_function(graded_test, "line")

    serve_checker = _checker_server(ip)

    # `%graded_test SOCKET TOKEN` goes straight to the magic: an input transformer an answer cell
    # registered cannot blank or rewrite it (it could only cost the student their own tests).
    transform_cell = ip.transform_cell

    def transform_cell_unless_test(raw_cell):
        if raw_cell.startswith("%graded_test ") and "\n" not in raw_cell.strip():
            ip.ast_transformers[:] = hooks["ast_transformers"]  # applied after this
            return f"get_ipython().run_line_magic('graded_test', {raw_cell[13:].strip()!r})\n"
        return transform_cell(raw_cell)
    ip.transform_cell = transform_cell_unless_test

    # A cell still running one second after the grader's interrupt (code that ignores SIGINT
    # or swallows KeyboardInterrupt in a bare `except:`) is stopped by SIGALRM: it raises
    # KeyboardInterrupt in the notebook's own code every 50 ms until the cell ends, so that
    # one stuck cell costs only its own tests, not every cell after it.
    import signal
    limit = float(os.environ.get("BACKPROP_CELL_TIMEOUT") or 0)

    def in_notebook_code(frame):
        name = frame.f_code.co_filename if frame is not None else ""
        return name.startswith(("/tmp/ipykernel_", "<ipython-input"))

    def on_alarm(signum, frame):
        if in_notebook_code(frame):
            raise KeyboardInterrupt("the cell ran past the time limit and ignored the interrupt")

    def arm(*args):
        signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit + 1, 0.05)

    def disarm(*args):
        signal.setitimer(signal.ITIMER_REAL, 0)

    if limit > 0:
        ip.events.register("pre_run_cell", arm)
        ip.events.register("post_run_cell", disarm)


def _checker_server(ip):
    """The kernel's side of grading/checker.py's channel: a function serve(SOCKET, TOKEN) that
    answers the checker's requests until it says the test is done. This side can be changed
    at will by the student's code (it runs in their process); the checker trusts nothing it
    sends but data."""
    import builtins
    import contextlib
    import io
    import operator
    import pickle
    import socket
    import struct
    import sys
    import time
    import types

    import numpy

    trusted_packages = {"numpy", "backprop", "math"}  # as TRUSTED_PACKAGES in checker.py
    plain = (type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple, dict,
             set, frozenset, slice, range, pickle.PickleBuffer)
    bit_generators = {"PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"}
    functions = {"operator": dict(vars(operator)), "builtins": dict(vars(builtins)),
                 "numpy": {"asarray": numpy.asarray}}
    handles = {}  # id -> an object of this kernel the checker holds a proxy of
    type_info = {}  # type -> (name, MRO as (module, qualname) pairs, plain attribute names)
    scalars = (type(None), bool, int, float, complex, str)
    containers = (tuple, list, set, frozenset)
    described, depth_of = set(), {}  # per message: objects whose attributes went with them
    describing = False
    clock = time.perf_counter

    def by_name(module_name, qualname):
        """The object `module.qualname` names, if that module is one of the trusted and
        already imported; None otherwise."""
        if module_name.split(".")[0] not in trusted_packages or "<" in qualname:
            return None
        obj = sys.modules.get(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        return obj

    def persistent_id(obj):
        kind = type(obj)
        if kind in plain:
            return None
        if isinstance(kind, type) and issubclass(kind, TestObject):
            return ("obj", object.__getattribute__(obj, "_bp_number"))
        if kind is numpy.ndarray or isinstance(obj, (numpy.generic, numpy.dtype)):
            if not (obj.hasobject if isinstance(obj, numpy.dtype) else obj.dtype.hasobject):
                return None
        elif (isinstance(obj, numpy.random.Generator)
              and type(obj.bit_generator).__name__ in bit_generators):
            return None
        elif isinstance(obj, types.ModuleType):
            if obj.__name__.split(".")[0] in trusted_packages:
                return ("module", obj.__name__)
        elif isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, type,
                              numpy.ufunc)):
            module_name = getattr(obj, "__module__", None)
            qualname = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", "")
            if isinstance(module_name, str) and by_name(module_name, qualname) is obj:
                return ("global", module_name, qualname)
        handles[id(obj)] = obj
        if kind not in type_info:
            type_info[kind] = (kind.__name__, tuple(
                (str(getattr(c, "__module__", "")), str(getattr(c, "__qualname__", "")))
                for c in kind.__mro__), plain_attributes(kind))
        name, mro, attribute_names = type_info[kind]
        return ("ref", id(obj), name, mro, attributes(obj, attribute_names))

    def plain_attributes(kind):
        """Whether reading an attribute of a `kind` object is reading its __dict__ or slots
        (no __getattribute__ or __getattr__ of its own): the slot names, "dict", or None."""
        if (kind.__getattribute__ is not object.__getattribute__
                or getattr(kind, "__getattr__", None) is not None):
            return None
        slots = [name for c in kind.__mro__ for name in c.__dict__.get("__slots__", ())
                 if isinstance(name, str) and name not in ("__dict__", "__weakref__")]
        return tuple(slots) if not hasattr(kind, "__dictoffset__") or not kind.__dictoffset__ \
            else ("dict", *slots)

    def plain_read(obj, name):
        """Whether getattr(obj, name) ran none of the student's code: an instance attribute
        (not behind a property) or a function of its class, on a type without
        __getattribute__ or __getattr__ of its own."""
        kind = type(obj)
        if plain_attributes(kind) is None:
            return False
        for c in kind.__mro__:
            if name in c.__dict__:
                found = c.__dict__[name]
                if isinstance(found, types.FunctionType):
                    return True
                if hasattr(found, "__set__"):  # a property, or a slot (a member descriptor)
                    return type(found).__name__ == "member_descriptor"
                break
        return name in getattr(obj, "__dict__", {})

    def attributes(obj, names):
        """A copy of the object's plain attributes (numbers, strings, None, and small tuples,
        lists and sets of them or of other objects), sent with its reference so that the
        checker can walk a graph of the learner's objects (a chain of 5000 Values) without a
        request per attribute. Objects nested in them get theirs too, 100 levels deep at most, once per
        message."""
        depth = depth_of.pop(id(obj), 0)
        if (not describing or names is None or depth >= 100 or id(obj) in described
                or len(described) > 20_000):
            return None
        described.add(id(obj))
        found = {}
        if names and names[0] == "dict":
            found.update(getattr(obj, "__dict__", {}))
            names = names[1:]
        for name in names:
            try:
                found[name] = object.__getattribute__(obj, name)
            except AttributeError:
                pass
        kept = {}
        for name, value in found.items():
            if type(value) in scalars or (type(value) in containers and len(value) <= 64):
                kept[name] = value
                for item in value if type(value) in containers else ():
                    if type(item) not in plain:
                        depth_of[id(item)] = depth + 1
        for c in type(obj).__mro__:  # a property (data descriptor) wins over the instance
            for name in [n for n in kept if n in c.__dict__]:
                if hasattr(c.__dict__[name], "__set__") and name not in names:
                    kept.pop(name)
        return kept

    def dumps(value, describe=False):
        """`value` pickled; with `describe`, objects go with a copy of their plain
        attributes (see attributes())."""
        nonlocal describing
        describing = describe
        described.clear()
        depth_of.clear()
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        pickler.persistent_id = persistent_id
        depth = sys.getrecursionlimit()
        sys.setrecursionlimit(max(depth, 50_000))  # deep graphs: a chain of 5000 Values
        try:
            pickler.dump(value)
        finally:
            sys.setrecursionlimit(depth)
        return buffer.getvalue()

    def send(sock, payload):
        sock.sendall(struct.pack("!Q", len(payload)) + payload)

    def recv(sock):
        def exactly(size):
            data = b""
            while len(data) < size:
                chunk = sock.recv(min(size - len(data), 1 << 20))
                if not chunk:
                    raise ConnectionError("the grader closed the connection")
                data += chunk
            return data
        return exactly(struct.unpack("!Q", exactly(8))[0])

    def rebuilt(module_name, name, message):
        kind = functions["builtins"].get(name) if module_name == "builtins" else None
        if isinstance(kind, type) and issubclass(kind, Exception):
            return kind(message)
        return RuntimeError(f"{name}: {message}")

    def loads(payload, sock):
        """The message, and its pickle's memo (index -> object) by which the checker knows
        the objects it sent."""
        unpickler = pickle.Unpickler(io.BytesIO(payload))
        def persistent_load(pid):
            if pid[0] == "h":
                return handles[pid[1]]
            if pid[0] == "obj":
                return test_object(sock, pid[1], pid[2])
            return test_function(sock, pid[1])
        unpickler.persistent_load = persistent_load
        message = unpickler.load()
        return message, unpickler.memo.copy()

    def snapshot(memo):
        """What the objects of a request are before a call, to tell what it changed."""
        kept = []
        for index, obj in memo.items():
            kind = type(obj)
            if kind is numpy.ndarray:
                kept.append((index, obj, "array", obj.tobytes()))
            elif kind is list or kind is dict:
                kept.append((index, obj, kind.__name__, kind(obj)))
            elif isinstance(obj, numpy.random.Generator):
                kept.append((index, obj, "rng", obj.bit_generator.state))
            elif hasattr(obj, "__dict__") and not isinstance(obj, (
                    type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)):
                kept.append((index, obj, "attrs", dict(vars(obj))))
        return kept

    def changes(kept):
        """index -> (kind, new contents) for each object of the request the call changed."""
        changed = {}
        for index, obj, kind, before in kept:
            if kind == "array":
                if obj.tobytes() != before:
                    changed[index] = ("array", obj)
            elif kind == "rng":
                if obj.bit_generator.state != before:
                    changed[index] = ("rng", obj.bit_generator.state)
            elif kind == "list":
                if len(obj) != len(before) or any(a is not b for a, b in zip(obj, before)):
                    changed[index] = ("list", list(obj))
            else:
                now = obj if kind == "dict" else vars(obj)
                new = {k: v for k, v in now.items() if k not in before or before[k] is not v}
                if new or len(now) != len(before):
                    changed[index] = ((kind, dict(now)) if kind == "dict" else ("attrs", new))
        return changed

    def ask(sock, message):
        """Send the checker a request about the test's objects; serve its requests until it
        answers."""
        send(sock, dumps(message))
        while True:
            reply, memo = loads(recv(sock), sock)
            if reply[0] == "result":
                return reply[1]
            if reply[0] == "raise":
                raise rebuilt(*reply[1:])
            if reply[0] == "done":
                raise RuntimeError("the test that gave this object is over")
            send(sock, answer(reply, memo))

    def test_function(sock, number):
        """A function of the test (a lambda, a replaced NumPy function): calling it here
        calls it in the checker."""
        def call_the_test(*args, **kwargs):
            return ask(sock, ("callback", number, args, kwargs))
        return call_the_test

    class TestObject:
        """An object of the test (a library Value it built) that stays in the checker: its
        attributes, calls and operators are requests there."""
        __slots__ = ("_bp_number", "_bp_sock", "__weakref__")

        def __getattr__(self, name):
            return ask(object.__getattribute__(self, "_bp_sock"),
                       ("b_getattr", object.__getattribute__(self, "_bp_number"), name))

        def __setattr__(self, name, value):
            ask(object.__getattribute__(self, "_bp_sock"),
                ("b_setattr", object.__getattribute__(self, "_bp_number"), name, value))

        def __call__(self, *args, **kwargs):
            return ask(object.__getattribute__(self, "_bp_sock"),
                       ("b_call", object.__getattribute__(self, "_bp_number"), args, kwargs))

    def _operator(name, swapped=False):
        def apply(self, *args):
            operands = (args[0], self) if swapped else (self, *args)
            return ask(object.__getattribute__(self, "_bp_sock"), ("b_apply", name, operands))
        return apply

    for name in ("add", "sub", "mul", "truediv", "pow"):
        setattr(TestObject, f"__{name}__", _operator(name))
        setattr(TestObject, f"__r{name}__", _operator(name, swapped=True))
    for name in ("neg", "pos", "abs", "lt", "le", "gt", "ge", "getitem", "contains", "index",
                 "len", "iter", "next", "float", "int", "bool", "repr", "str", "format"):
        setattr(TestObject, f"__{name}__", _operator(name))
    test_objects = {}  # (connection, number) -> its TestObject: one object there, one here
    test_types = {}  # type name -> a TestObject subclass of that name

    def test_object(sock, number, type_name):
        key = (id(sock), number)
        if key not in test_objects:
            name = str(type_name) if str(type_name).isidentifier() else "TestObject"
            if name not in test_types:
                test_types[name] = type(name, (TestObject,), {"__slots__": ()})
            obj = object.__new__(test_types[name])
            object.__setattr__(obj, "_bp_number", number)
            object.__setattr__(obj, "_bp_sock", sock)
            test_objects[key] = obj
        return test_objects[key]

    @contextlib.contextmanager
    def as_in_the_test(context):
        """NumPy's error state and the NumPy functions the test replaced, during a call."""
        old_state = numpy.seterr(**context.get("errstate", {}))
        replaced = context.get("numpy", {})
        saved = {name: vars(numpy).get(name) for name in replaced}
        vars(numpy).update(replaced)
        try:
            yield
        finally:
            vars(numpy).update(saved)
            numpy.seterr(**old_state)

    def handle(message, memo):
        kind = message[0]
        if kind == "get":
            return ("ok", {name: ip.user_ns[name] for name in message[1] if name in ip.user_ns})
        if kind in ("call", "time"):
            number, args, kwargs = message[1:4]
            function, kept, times = handles[number], snapshot(memo), []
            with as_in_the_test(message[-1]):
                if kind == "call":
                    result = function(*args, **kwargs)
                else:  # backprop.checks.best_time: the call timed here, not the round trip
                    wanted, first = max(1, min(int(message[4]), 100)), clock()
                    # at least `wanted` calls, and more for 0.1 s: the fastest is one that other
                    # work on the machine did not slow down
                    while len(times) < wanted or (clock() - first < 0.1 and len(times) < 100):
                        start = clock()
                        function(*args, **kwargs)
                        times.append(clock() - start)
                    result = float(min(times))
            return ("ok", result, changes(kept))
        if kind == "getattr":  # the object itself goes back too, with its plain attributes
            obj, name = handles[message[1]], message[2]
            return ("ok", getattr(obj, name), obj, plain_read(obj, name))
        if kind == "setattr":
            return ("ok", setattr(handles[message[1]], message[2], message[3]))
        if kind == "delattr":
            return ("ok", delattr(handles[message[1]], message[2]))
        if kind == "apply":
            module_name, name = message[1].split(".")
            return ("ok", functions[module_name][name](*message[2]))
        raise ValueError(f"unknown request {kind!r}")

    def answer(message, memo):
        try:
            reply = handle(message, memo)
            if reply[0] == "ok" and message[0] not in ("call", "time"):
                reply += ({},)  # nothing changed in place
        except BaseException as err:  # the student's code raised (or was interrupted)
            # (a KeyError's str() is the repr of its key: send the key, as the checker
            # rebuilds it with KeyError(message))
            text = (err.args[0] if isinstance(err, KeyError) and len(err.args) == 1
                    and isinstance(err.args[0], str) else str(err))
            reply = ("err", type(err).__module__, type(err).__name__, text[:10_000])
        try:
            return dumps(reply, describe=message[0] == "getattr")
        except Exception as err:
            return dumps(("err", "builtins", "TypeError",
                          f"the result could not be sent to the grader: {err}"))

    def serve(socket_path, token):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(socket_path)
            send(sock, b"hello " + token.encode())
            while True:
                message, memo = loads(recv(sock), sock)
                if message[0] == "done":
                    return
                send(sock, answer(message, memo))
        finally:
            sock.close()
            test_objects.clear()
    return serve


_grading_startup()
del _grading_startup, _checker_server


def _cap_outputs(ip, limit=200_000):
    """Cut, in the kernel, the text of each cell's printed output and of an error's message and
    traceback to `limit` characters, before it crosses to the grader. nbgrader's cut
    (LimitOutputBytes.max_bytes, 100,000 characters per cell) applies only once the grader
    has received and decoded the whole message: one answer raising an exception with a 200 MB
    message held 1.77 GB in the grader. Twice that cut is kept here, so that the grader's own
    cut, and its note, is what feedback shows. (Not a defence against code that knows this
    grader: such code can undo it; the sandbox bounds the kernel's memory, not the grader's.)"""
    import sys

    note = f"\n... output cut in the kernel: more than {limit:,} characters in this cell ...\n"
    written = [0]  # characters printed by the running cell

    def cut(text):
        return text if len(text) <= limit else text[:limit] + note

    def new_cell(*args):
        written[0] = 0

    def within_limit(write):
        def write_within_limit(text):
            if not isinstance(text, str):
                return write(text)  # OutStream's own error
            left = limit - written[0]
            written[0] += len(text)
            if left > 0:
                write(text if len(text) <= left else text[:left] + note)
            return len(text)
        return write_within_limit

    for stream in (sys.stdout, sys.stderr):
        stream.write = within_limit(stream.write)
    ip.events.register("pre_run_cell", new_cell)

    def message(error):
        try:
            return str(error)
        except BaseException:  # a __str__ that raises: the error's name is still sent
            return "(the error's message could not be read)"

    # The error output: ipykernel sends str(evalue) and every line of the traceback.
    send_traceback = ip._showtraceback

    def send_traceback_within_limit(etype, evalue, stb):
        lines, used = [], 0
        for line in stb:
            if used + len(line) > limit:
                lines.append(cut(line[:max(limit - used, 0)]))
                break
            lines.append(line)
            used += len(line)
        send_traceback(etype, cut(message(evalue)), lines)
    ip._showtraceback = send_traceback_within_limit

    # The execute reply: ipykernel sends str() of the cell's exception again, read after
    # post_run_cell, so an exception with a longer message is replaced by one of the same
    # name with the message cut.
    def reply_within_limit(result):
        for attribute in ("error_before_exec", "error_in_exec"):
            error = getattr(result, attribute, None)
            text = message(error) if error is not None else ""
            if len(text) > limit or text.startswith("(the error's message"):
                stand_in = type(type(error).__name__, (Exception,), {})(cut(text))
                setattr(result, attribute, stand_in)
    ip.events.register("post_run_cell", reply_within_limit)


_cap_outputs(get_ipython())  # noqa: F821 (IPython's, in the namespace exec_files runs in)
del _cap_outputs
