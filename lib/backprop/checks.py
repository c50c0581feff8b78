"""Checks that lab test cells call. A failure says, in words a learner can act on, which entry
is wrong, what was expected and what was received, and what the likely mistake is.

    >>> check_close("dW for x of shape (4, 3)", dW, expected_dW, batch_size=4)
    LabCheckError: dW[2, 1] = 0.41, expected -0.41; 12 of 12 entries differ
      (dW for x of shape (4, 3))
      Hint: every entry has the opposite sign: did you flip a sign (x - y instead of y - x,
        or a missing minus)?

A message's first line says what is wrong, with numbers; what was checked and the hints
follow on lines of their own. Where it is shown (a notebook's error output, and through it
`nbgrader validate` and the Validate dialog), `failure_text` wraps it so that every line fits
`MESSAGE_WIDTH` characters: nbgrader's validator cuts longer lines.

All failures raise `LabCheckError`, a subclass of AssertionError, so nbgrader counts them as a
failed test and shows the message in the learner's feedback. In a notebook, a failed check shows
only its message (no traceback through the test code), and a block of checks run under
`report(name)` prints one line when all pass (``✓ sigmoid: 4 checks passed``).

Each lab's visible checks live in `backprop.labchecks.<lab>`; a test cell gets an untouched copy
with ``fresh("lab04")`` and calls one function, ``lab.check_loss_backward(loss_backward)``.
"""
import contextlib
import pathlib
import re
import textwrap
import time
import types

import numpy as np


class LabCheckError(AssertionError):
    """A lab check failed; the message says what and, when it can tell, why."""


# Below this, a number in a message is round-off (its digits differ between machines and BLAS
# builds), so it is printed as 0.
ROUND_OFF = 1e-12


def _fmt(value):
    value = float(value)
    if abs(value) < ROUND_OFF:
        return "0"
    if 1e-4 <= abs(value) < 1e5:
        return f"{value:.6g}"
    return f"{value:.4e}"


def format_number(value):
    """A number as a message shows it: 6 significant digits, and 0 for round-off (|x| < 1e-12),
    so the same message reads the same on every machine."""
    return _fmt(value)


# Lines of a failure as shown, ``✗ LabCheckError: `` on the first included, are at most this long.
# nbgrader's validator prefixes 4 spaces and cuts a line longer than Validator.width - 3
# characters; nbgrader_config.py sets the width so that these lines fit whole.
MESSAGE_WIDTH = 88
_FIRST_LINE = MESSAGE_WIDTH - len("\u2717 LabCheckError: ")  # what the first line has room for


def _wrapped(line, width, first_prefix=""):
    """One logical line wrapped to `width`; continuation lines indented 2 more than it."""
    indent = line[:len(line) - len(line.lstrip(" "))]
    return textwrap.wrap(line.strip(), width=width, initial_indent=first_prefix + indent,
                         subsequent_indent=indent + "  ", break_on_hyphens=False) \
        or [first_prefix + indent]


def failure_text(ename, message, width=MESSAGE_WIDTH):
    """``✗ ename: message`` as the learner sees it: each line of the message wrapped to `width`
    characters, a line's continuation indented under it. Wrapping again changes nothing."""
    lines = str(message).split("\n")
    shown = _wrapped(lines[0], width, f"\u2717 {ename}: ")
    for line in lines[1:]:
        shown.extend(_wrapped(line, width))
    return "\n".join(shown)


def format_values(values):
    """A short list of numbers as a message shows it, e.g. ``[-2, -1, 0, 0]``."""
    return "[" + ", ".join(_fmt(v) for v in np.ravel(np.asarray(values, dtype=float))) + "]"


# -- counting passed checks, for one line of feedback -----------------------------------------
_passed = [0]


def _count():
    _passed[0] += 1


@contextlib.contextmanager
def report(name):
    """Run a block of checks; when none fails, print ``✓ name: N checks passed``."""
    start = _passed[0]
    yield
    n = _passed[0] - start
    print(f"\u2713 {name}: {n} check{'' if n == 1 else 's'} passed")


def _index(idx):
    return "[" + ", ".join(str(int(i)) for i in idx) + "]" if idx else ""


def _close(a, b, rtol, atol):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _as_array(name, received):
    if received is None:
        raise LabCheckError(
            f"{name} is None\n"
            "  Hint: did you forget the `return` statement at the end of your function?"
        )
    if isinstance(received, (tuple, list)) and received and isinstance(received[0], np.ndarray):
        raise LabCheckError(
            f"{name} is a {type(received).__name__} of {len(received)} arrays, expected one array\n"
            "  Hint: return a single array (did you return extra values?)"
        )
    try:
        arr = np.asarray(received, dtype=float)
    except (TypeError, ValueError):
        raise LabCheckError(
            f"{name} should be a numeric array, got {type(received).__name__}: {received!r:.60}"
        ) from None
    return arr


def _shape_hints(received, expected):
    """Hints for a result of the wrong shape."""
    r, e = received.shape, expected.shape
    hints = []
    if r == e[::-1] and len(e) == 2:
        hints.append("the shape is the transpose of the expected one: did you transpose a matrix "
                     "(x.T @ W instead of x @ W, or W @ x instead of x @ W)?")
    if r != () and len(r) == len(e) - 1 and any(r == e[:i] + e[i + 1:] for i in range(len(e))):
        hints.append("one axis is missing: did you sum or average over an axis that should stay "
                     "(or forget keepdims=True)?")
    if len(r) == len(e) and sum(a != b for a, b in zip(r, e)) == 1 and 1 in r:
        hints.append("an axis has length 1 where it should not: did you sum over the wrong axis "
                     "(axis=0 sums over the batch, axis=1 over features)?")
    if len(r) == len(e) + 1 and 1 in r:
        hints.append("there is an extra axis of length 1: use keepdims=False or reshape the result.")
    if r == () and e != ():
        hints.append("you returned a single number: did you sum or average everything "
                     "instead of keeping one value per entry?")
    if not hints and received.size == expected.size:
        hints.append("the sizes agree but the layout does not: check your reshape/transpose.")
    return hints


def _simple(ratio):
    """Whether `ratio` is k or 1/k for a whole k from 2 to 10."""
    return any(abs(abs(r) - round(abs(r))) < 1e-6 and 2 <= round(abs(r)) <= 10
               for r in (ratio, 1 / ratio))


def _value_hints(received, expected, rtol, atol, batch_size):
    """Hints for a result of the right shape with wrong values."""
    if np.isnan(received).any():
        return ["your result contains NaN: an overflow in exp (subtract the maximum first) or a "
                "log of zero or of a negative number?"]
    if np.isinf(received).any():
        return ["your result contains inf: did exp overflow (use the stable form)?"]
    hints = []
    if not np.any(received) and np.any(expected):
        hints.append("every entry is zero: did you forget to fill in or return the result?")
    if _close(received, -expected, rtol, atol):
        hints.append("every entry has the opposite sign: did you flip a sign "
                     "(x - y instead of y - x, or a missing minus)?")
    if received.ndim == 2 and received.shape[0] == received.shape[1] and _close(
            received, expected.T, rtol, atol):
        hints.append("your result is the transpose of the expected one: did you transpose a matrix?")
    if batch_size and batch_size > 1:
        if _close(received, expected * batch_size, rtol, atol):
            hints.append(f"your result is {batch_size} times too large: did you divide by the "
                         f"batch size N = {batch_size} (the 1/N of the mean)?")
        elif _close(received, expected / batch_size, rtol, atol):
            hints.append(f"your result is {batch_size} times too small: did you divide by the "
                         f"batch size N = {batch_size} twice, or where the upstream gradient "
                         "already holds the 1/N?")
    if not hints:
        mask = np.abs(expected) > 1e-12
        if mask.any():
            ratio = received[mask] / expected[mask]
            # (a ratio within 0.1% of 1 is a rounding difference, not a missing factor; one
            # number is always some multiple of another, so for one number only a simple
            # factor, 2 or 1/3, hints at a missing or extra one)
            if np.allclose(ratio, ratio[0], rtol=1e-6) and abs(ratio[0]) > 1e-12 \
                    and abs(ratio[0] - 1) >= 1e-3 and (ratio.size > 1 or _simple(ratio[0])):
                hints.append(f"your result is {_fmt(ratio[0])} times the expected value: a missing "
                             "or extra constant factor (such as the 2 in the derivative of x**2)?")
        offset = received - expected
        if not hints and offset.size > 1 and np.allclose(offset, offset.flat[0], rtol=0,
                                                          atol=max(atol, 1e-9)) \
                and abs(offset.flat[0]) > atol:
            hints.append(f"every entry is off by the same amount ({_fmt(offset.flat[0])}): "
                         "a missing or extra bias or constant term?")
    return hints


# A label such as "dx for (N, D) = (3, 4)" or "sigmoid(x) of shape (3, 4)": the value's code
# name ("dx", "sigmoid(x)", "params['W1']"), then what was checked. Prose labels ("the path of
# momentum") have no code name.
_CODE_NAME = re.compile(r"[A-Za-z_][\w.]*(?:\([^()]*\)|\[[^\[\]]*\])*")
_CONTEXT_START = ("for ", "of ", "at ", "after ", "in ", "with ", "on ", "when ", "compared ", "(")


def _subject(name):
    """``(code name, what was checked)`` of a label: ``("dx", "(dx for (N, D) = (3, 4))")``,
    ``("h", "")``; the code name is None for a prose label."""
    match = _CODE_NAME.match(name)
    if match and match.end() == len(name):
        return name, ""
    if match and name[match.end():match.end() + 1] == " " and match.group() not in (
            "the", "a", "an", "your") and name[match.end() + 1:].startswith(_CONTEXT_START):
        rest = name[match.end() + 1:]
        return match.group(), rest if rest.startswith("(") and rest.endswith(")") \
            and rest.count("(") == 1 else f"({name})"
    return None, ""


def _failure(name, what, hints):
    """A failure's message: what is wrong (`what`, said of the value's code name, or of a
    prose label), then what was checked, then one line per hint."""
    code, context = _subject(name)
    if code and code.endswith(")") and len(code + what) > _FIRST_LINE:
        # "conv_forward_naive(...)[1, 0] = ...": the numbers stay on the first line shown
        code, context = code[:code.index("(")] + "(...)", context or f"({name})"
    return ((code or name) + what + (f"\n  {context}" if context else "")
            + "".join(f"\n  Hint: {h}" for h in hints))


def check_close(name, received, expected, *, rtol=1e-6, atol=1e-8, batch_size=None, mistakes=None,
                hint=None):
    """Check that array ``received`` equals ``expected`` up to tolerance.

    name: what the learner calls the value (``"dW"``, ``"sigmoid(x)"``), optionally followed
    by what was checked (``"dW for x of shape (4, 3)"``): the message's first line names the
    entry by the value's name (``dW[2, 1] = 0.41, expected -0.41; ...``).
    batch_size: when given, a result N times too large or small is named as a missing 1/N.
    mistakes: optional ``{hint: wrong_value}``; when ``received`` matches one of these values
    (the result of a known mistake, computed in the test), that hint is shown.
    hint: shown when wrong values match no known mistake and no general hint applies (what
    this case tests that earlier ones did not, such as stride and padding).
    """
    expected = np.asarray(expected, dtype=float)
    received = _as_array(name, received)
    if received.shape != expected.shape:
        hints = _known_mistakes(received, mistakes, rtol, atol) or _shape_hints(received, expected)
        raise LabCheckError(_failure(
            name, f" has shape {received.shape}, expected {expected.shape}", hints))
    if np.allclose(received, expected, rtol=rtol, atol=atol, equal_nan=False):
        _count()
        return
    bad = ~np.isclose(received, expected, rtol=rtol, atol=atol)
    err = np.where(bad, np.abs(np.nan_to_num(received, nan=np.inf) - expected), 0.0)
    idx = np.unravel_index(np.argmax(err), err.shape) if err.ndim else ()
    values = f"{_fmt(received[idx])}, expected {_fmt(expected[idx])}"
    if _subject(name)[0]:
        what = f"{_index(idx)} = {values}"
    else:  # "the path of sgd, entry [3, 1] = ...", "the loss is ..."
        what = f", entry {_index(idx)} = {values}" if idx else f" is {values}"
    if bad.size > 1:
        what += f"; {int(bad.sum())} of {bad.size} entries differ"
    hints = _known_mistakes(received, mistakes, rtol, atol) or _value_hints(
        received, expected, rtol, atol, batch_size) or ([hint] if hint else [])
    raise LabCheckError(_failure(name, what, hints))


def _known_mistakes(received, mistakes, rtol, atol):
    hits = []
    for hint, wrong in (mistakes or {}).items():
        try:
            if _close(received, np.asarray(wrong, dtype=float), rtol, atol):
                hits.append(hint)
        except (TypeError, ValueError):
            continue
    return hits


def check_scalar(name, received, expected, *, rtol=1e-6, atol=1e-8, batch_size=None,
                 mistakes=None, hint=None):
    """Check a single number (a loss, a norm); same hints as `check_close`."""
    arr = _as_array(name, received)
    if arr.size != 1:
        raise LabCheckError(_failure(
            name, f" should be a single number, got an array of shape {arr.shape}",
            ["did you forget to sum or average (np.mean / np.sum)?"]))
    check_close(name, arr.reshape(()), expected, rtol=rtol, atol=atol, batch_size=batch_size,
                mistakes=mistakes, hint=hint)  # (counts as one check)


def check_shape(name, received, expected_shape):
    """Check that ``received`` is an array of shape ``expected_shape``."""
    expected_shape = tuple(expected_shape)
    arr = _as_array(name, received)
    if arr.shape != expected_shape:
        hints = _shape_hints(arr, np.empty(expected_shape))
        raise LabCheckError(_failure(name, f" has shape {arr.shape}, expected {expected_shape}",
                                     hints))
    _count()


def check_tuple(name, received, parts):
    """Check that ``received`` is a tuple of ``len(parts)`` items, as ``name`` should return:
    ``check_tuple("linear_backward", result, ["dx", "dW", "db"])``."""
    check_true(isinstance(received, tuple) and len(received) == len(parts),
               f"{name} should return the tuple ({', '.join(parts)}), got "
               f"{type(received).__name__}: {received!r:.80}")


def check_true(condition, message):
    """Fail with ``message`` unless ``condition`` holds."""
    if not bool(condition):
        raise LabCheckError(message)
    _count()


def check_call(name, function, *args, hint=None, **kwargs):
    """Return ``function(*args, **kwargs)``; if the call raises, fail with a message naming the
    call, the error and ``hint`` (what usually causes that error there).

    For learners' functions that crash on a mistake (a window running past the edge of an
    array, a shape mismatch): the bare NumPy error does not say which mistake it was. The
    original error stays chained, so the traceback still shows the line that raised.
    """
    try:
        return function(*args, **kwargs)
    except LabCheckError:
        raise
    except NotImplementedError as err:  # the release's stub, `raise NotImplementedError()`
        raise LabCheckError(f"{name} is not written yet: fill in the cell that says "
                            "# YOUR CODE HERE (and delete its raise NotImplementedError()), "
                            "then run it before this check.") from err
    except Exception as err:  # noqa: BLE001 (any error of the learner's code is reported)
        raise LabCheckError(f"{name} raised {type(err).__name__}: {err}"
                            + (f"\n  Hint: {hint}" if hint else "")) from err


def best_time(function, *args, repeats=3, **kwargs):
    """The fastest of at least `repeats` calls ``function(*args, **kwargs)``, in seconds: what
    the speed checks compare (a learner's loop against a vectorized reference). A fast function
    is called again until 0.1 s have passed (100 calls at most), so the fastest call is one that
    other work on the machine did not slow down.

    Under the autograder, test cells run in a checker process apart from the learner's kernel
    (grading/checker.py) and a learner's function is a proxy to it; such a function is timed
    where it runs, in the kernel, so the round trip to it is not counted.
    """
    timed_there = getattr(type(function), "_bp_best_time", None)
    if timed_there is not None:
        return timed_there(function, args, kwargs, repeats)
    times, first = [], time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - first < 0.1 and len(times) < 100):
        start = time.perf_counter()
        function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


# -- a copy that answer cells cannot have changed ----------------------------------------------
# When a learner validates a lab, its answer cells run in the same Python process as its test
# cells (under autograde they do not: grading/checker.py runs the tests), so an answer can
# replace these functions (checks.check_close = ...) or NumPy's comparisons (np.allclose = ...).
# This module, `backprop.gradcheck` and every lab's checks (`backprop.labchecks.<lab>`) are
# compiled from their files when the lab's setup cell first imports this module, before any
# answer cell runs, and NumPy's namespace is copied; `fresh()` rebuilds modules from them. That
# stops tampering from an answer cell that does not know about this defence;
# docs/instructors.md lists what it cannot stop.
_HERE = pathlib.Path(__file__).resolve().parent


def _compiled(path):
    return compile(path.read_text(encoding="utf-8"), str(path), "exec")


_FIRST_IMPORT = "_AS_IMPORTED" not in globals()  # not a copy made by fresh()
if _FIRST_IMPORT:
    from . import gradcheck as _gradcheck  # noqa: F401 (imported, so its dataclasses resolve)

    _AS_IMPORTED = types.SimpleNamespace(
        checks=_compiled(_HERE / "checks.py"), gradcheck=_compiled(_HERE / "gradcheck.py"),
        labs={path.stem: _compiled(path) for path in sorted((_HERE / "labchecks").glob("lab*.py"))},
        numpy=dict(vars(np)), error_class=LabCheckError)


def _module(name, code, **names):
    module = types.ModuleType(name)
    module.__dict__.update(__file__=code.co_filename, __package__=name.rpartition(".")[0],
                           _AS_IMPORTED=_AS_IMPORTED)
    exec(code, module.__dict__)
    module.__dict__.update(names)  # functions look their globals up when they run
    return module


def fresh(lab=None):
    """A new copy, as first imported and using NumPy's functions as they were then, of this
    module (``fresh()``) or of a lab's checks (``fresh("lab04")``: `backprop.labchecks.lab04`,
    which then uses fresh copies of this module and of `backprop.gradcheck`).
    Lab test cells start with one of these.

    Failures still raise the one `LabCheckError` class, so ``except LabCheckError`` works.
    """
    numpy_as_imported = types.ModuleType(np.__name__, np.__doc__)
    numpy_as_imported.__dict__.update(_AS_IMPORTED.numpy)
    checks = _module(__name__, _AS_IMPORTED.checks, np=numpy_as_imported,
                     LabCheckError=_AS_IMPORTED.error_class)
    if lab is None:
        return checks
    if lab not in _AS_IMPORTED.labs:
        raise ValueError(f"fresh: no lab checks named {lab!r}; there are "
                         f"{sorted(_AS_IMPORTED.labs)}")
    gradcheck = _module("backprop.gradcheck", _AS_IMPORTED.gradcheck, np=numpy_as_imported)
    return _module(f"backprop.labchecks.{lab}", _AS_IMPORTED.labs[lab], np=numpy_as_imported,
                   checks=checks, gradcheck=gradcheck)


# -- in a notebook, a failed check shows its message, not a traceback ----------------------------
def _show_message_only(shell, etype, value, tb, tb_offset=None):
    """IPython handler for LabCheckError: the message is the whole report (the test code and
    the checks' internals around it would only hide it, and can show hidden tests)."""
    lines = [failure_text(etype.__name__, value)]
    where = _learners_line(shell, value.__cause__)
    if where:
        lines.append("\n".join(_wrapped(f"  (raised at {where})", MESSAGE_WIDTH)))
    shell._showtraceback(etype, value, lines)  # an error output, so the cell counts as failed
    return lines


def _learners_line(shell, error):
    """``Cell In[5], line 7: x[i:i + k]``: the last line of a notebook cell in `error`'s
    traceback (the learner's code, when a check's call of their function raised), or None."""
    import traceback

    found = None
    for frame in traceback.extract_tb(getattr(error, "__traceback__", None)):
        label = shell.compile.format_code_name(frame.filename)
        if label:
            found = f"{label[0]} {label[1]}, line {frame.lineno}: {(frame.line or '').strip()}"
    return found


def _install_notebook_display():
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "_showtraceback"):
        shell.set_custom_exc((_AS_IMPORTED.error_class,), _show_message_only)


if _FIRST_IMPORT:
    _install_notebook_display()
