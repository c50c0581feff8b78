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
