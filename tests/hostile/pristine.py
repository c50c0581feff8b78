"""Hostile students against what a graded test reads from the notebook (issue 19): the tests'
`np`, `checks` and given classes are the checker's own, from the source's setup cells, and an
answer that is the library's own object earns nothing. Registered in submissions.STUDENTS by
the import at the end of hostile/students.py.

`LABS` names the labs a student is made for besides the first (the grading pipeline test grades
them there too); a student raises NotApplicable for a lab it cannot be made for.
"""
from hostile.students import _on_right_answers, _on_wrong_answers
from submissions import NotApplicable, Submission, student

LAB03 = "lab03_chain_rule"
LABS = {"hostile_value_library": (LAB03,)}  # student -> labs besides the first
SPY_MARK = "np spy saw:"  # what hostile_np_spy prints before each array it sees


@student
def hostile_np_spy(lab):
    """Right answers; after the setup cell, `np` is rebound to a wrapper that prints and
    records every small array passed to a NumPy function (the test's inputs, if the test used
    the notebook's `np`)."""
    return _on_right_answers(lab, (
        "import numpy\n"
        "SEEN = []\n"
        "class _Spy:\n"
        "    def __getattr__(self, name):\n"
        "        real = getattr(numpy, name)\n"
        "        if isinstance(real, type) or not callable(real):\n"
        "            return real\n"
        "        def spied(*args, **kwargs):\n"
        "            for arg in args:\n"
        "                small = isinstance(arg, numpy.ndarray) and arg.size <= 64\n"
        "                if small and len(SEEN) < 400:\n"
        "                    SEEN.append(arg.copy())\n"
        f"                    print({SPY_MARK!r}, name, repr(arg))\n"
        "            return real(*args, **kwargs)\n"
        "        return spied\n"
        "np = _Spy()\n"))


@student
def hostile_np_lying_equal(lab):
    """Wrong answers; after the setup cell, `np` is rebound to a wrapper whose array_equal,
    allclose and isclose always agree (turning the tests' failing comparisons into passes, if
    the test used the notebook's `np`)."""
    return _on_wrong_answers(lab, (
        "import numpy\n"
        "class _Lying:\n"
        "    def __getattr__(self, name):\n"
        "        return getattr(numpy, name)\n"
        "    def array_equal(self, *args, **kwargs):\n"
        "        return True\n"
        "    allclose = array_equal\n"
        "    def isclose(self, a, b, *args, **kwargs):\n"
        "        return numpy.ones(numpy.broadcast(numpy.asarray(a), numpy.asarray(b)).shape,\n"
        "                          dtype=bool)\n"
        "np = _Lying()\n"))


@student
def hostile_alias_tanh(lab):
    """Every answer right but tanh, which is NumPy's own: `tanh = np.tanh` (it loses tanh's
    points and keeps the rest)."""
    if "tanh" not in lab.answer_ids or not lab.path.startswith("lab01"):
        raise NotApplicable("only lab 01 asks for tanh built from np.exp")
    return Submission(lab.answered(tanh="tanh = np.tanh  # bound now: np.tanh itself\n"),
                      lab.points_without("tanh"))


_RULES = ("div_backward", "pow_backward", "exp_backward", "log_backward", "sigmoid_backward",
          "max_backward")


@student
def hostile_value_library(lab):
    """Lab 03: the first answer cell rebinds the lab's given `Value` to the library's
    (`Value = engine.Value`), and every backward rule only calls the library Value's own rule
    (`out._backward()`); topological_order and backward are the learner's own (right), the
    training is left undone. Earns what the real work earns: the tests of topological_order and
    backward, whose checks never run a rule of the lab's Value (Lab.tests_using would count
    them as failing, since the Value class reads every rule)."""
    if not lab.path.startswith(f"{LAB03}/"):
        raise NotApplicable("only lab 03 gives a Value class to rebind")
    sources = {rule: f"def {rule}(out, *operands):\n    out._backward()  # the library's rule\n"
               for rule in _RULES}
    sources[_RULES[0]] = "from backprop import engine\nValue = engine.Value\n\n" + sources[
        _RULES[0]]
    sources["build_and_train"] = None  # left as released
    real_work = [f"test_{answer}" for answer in ("topological_order", "backward")]
    return Submission(lab.answered(**sources), sum(lab.test_points[t] for t in real_work))
