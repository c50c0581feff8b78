"""The checker process (grading/checker.py) and the kernel's side of its channel
(grading/kernel_startup.py), without Jupyter: the checker runs as it does when grading, a
process of its own, and this test process plays the student's kernel. The grading pipeline test
runs both in the sandbox on a whole hostile class; these are the parts, each fast."""
import ast
import io
import json
import os
import pickle
import socket
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

from notebooks import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from grading.checker import Channel, KernelError  # noqa: E402
from grading.source_cells import bound_names  # noqa: E402

STARTUP = REPO_ROOT / "grading" / "kernel_startup.py"


def _kernel_server(user_ns):
    """serve(SOCKET, TOKEN) of kernel_startup.py, for a kernel whose namespace is user_ns."""
    tree = ast.parse(STARTUP.read_text())
    factory = next(node for node in tree.body
                   if isinstance(node, ast.FunctionDef) and node.name == "_checker_server")
    namespace = {}
    exec(compile(ast.Module([factory], []), str(STARTUP), "exec"), namespace)
    return namespace["_checker_server"](types.SimpleNamespace(user_ns=user_ns))


def _kernel_server_recording(user_ns, asked):
    return _kernel_server(_Recording(user_ns, asked))


class Relay(threading.Thread):
    """Sits between the kernel and the checker and keeps every byte the kernel receives."""

    def __init__(self, path, target):
        super().__init__(daemon=True)
        self.path, self.target, self.received = path, target, bytearray()
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen(1)

    def run(self):
        kernel, _ = self.listener.accept()
        checker = socket.socket(socket.AF_UNIX)
        checker.connect(self.target)

        def pump(source, sink, keep):
            while chunk := source.recv(65536):
                if keep:
                    self.received += chunk
                sink.sendall(chunk)
            sink.shutdown(socket.SHUT_WR)
        to_checker = threading.Thread(target=pump, args=(kernel, checker, False), daemon=True)
        to_checker.start()
        pump(checker, kernel, True)
        to_checker.join()


@pytest.fixture
def checker(tmp_path):
    """A running checker process; `run(answers, test)` runs one test cell against a kernel
    namespace made by executing `answers` (the names it defines, not those it imports, are the
    answer names, unless `answer_names` says otherwise), after the setup cell `setup`
    (default: NumPy imported as np), and returns the checker's report. The kernel's requests
    are in report["asked"]; `run.setup(code)` sends a setup cell alone."""
    socket_path = str(tmp_path / "checker.sock")
    process = subprocess.Popen(
        [sys.executable, "-m", "grading.checker", socket_path], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, cwd=str(tmp_path),
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert json.loads(process.stdout.readline()) == {"ready": True}
    jobs = []

    def send(job):
        token = f"token{len(jobs)}"
        jobs.append(token)
        process.stdin.write(json.dumps(dict(job, token=token)) + "\n")
        process.stdin.flush()
        return token

    def report_of(token):
        report = json.loads(process.stdout.readline())
        assert report["token"] == token
        return report

    def run(answers, test, timeout=20, relay=False, connect=True, setup="import numpy as np\n",
            answer_names=None, user_ns=None):
        if setup is not None:
            setup_report = report_of(send({"kind": "setup", "source": setup}))
            assert setup_report["ok"], setup_report["error"]
        user_ns = {"__name__": "__main__"} if user_ns is None else user_ns
        exec(answers, user_ns)
        names = sorted(bound_names(answers, imports=False) if answer_names is None
                       else answer_names)
        token = send({"kind": "test", "source": test, "timeout": timeout, "answers": names})
        path, spy = socket_path, None
        if relay:
            spy = Relay(str(tmp_path / f"relay{len(jobs)}.sock"), socket_path)
            spy.start()
            path = spy.path
        asked = []
        if connect:  # in a thread of its own, whose frames hold nothing of the test
            kernel = threading.Thread(target=_kernel_server_recording(user_ns, asked),
                                      args=(path, token))
            kernel.start()
            kernel.join()
        report = report_of(token)
        report["kernel_received"] = bytes(spy.received) if spy else b""
        report["asked"] = asked
        return report

    run.setup = lambda source: report_of(send({"kind": "setup", "source": source}))
    # the hidden tests' course secret, grading key and reference cells (grading/checker.py)
    run.context = lambda **job: report_of(send(dict(job, kind="context")))
    yield run
    process.kill()
    process.wait()


class _Recording(dict):
    """A kernel's namespace that records every name the checker reads from it."""

    def __init__(self, user_ns, asked):
        super().__init__(user_ns)
        self.asked = asked

    def __getitem__(self, name):
        self.asked.append(name)
        return super().__getitem__(name)

    def __contains__(self, name):
        self.asked.append(name)
        return super().__contains__(name)


SIGMOID = ("import numpy as np\nfrom backprop import functional\n"
           "def sigmoid(x):\n    return functional.sigmoid(np.asarray(x, float))\n")
WRONG_SIGMOID = "import numpy as np\ndef sigmoid(x):\n    return np.tanh(x)\n"
LAB01_TEST = ("from backprop.checks import fresh\nlab = fresh('lab01')\nlab.check_sigmoid(sigmoid)\n"
              "checks = fresh()\n"
              "checks.check_close('sigmoid(0.25)', sigmoid(np.array([0.25])), "
              "[0.5621765008857981], rtol=1e-12)\n")


def test_a_right_answer_passes_and_a_wrong_one_fails_with_the_checks_message(checker):
    passed = checker(SIGMOID, LAB01_TEST)
    assert passed["ok"], passed["error"]
    assert "sigmoid: " in passed["stdout"] and "passed" in passed["stdout"]
    failed = checker(WRONG_SIGMOID, LAB01_TEST)
    assert not failed["ok"]
    assert failed["error"]["ename"] == "LabCheckError"
    assert "sigmoid" in failed["error"]["evalue"]


def test_the_kernel_receives_nothing_of_the_tests_code_or_expected_values(checker):
    report = checker(SIGMOID, LAB01_TEST, relay=True)
    assert report["ok"], report["error"]
    received = report["kernel_received"]
    assert received, "the relay saw no traffic"
    for secret in (b"0.5621765008857981", b"check_close", b"fresh", b"sigmoid(0.25)",
                   np.float64(0.5621765008857981).tobytes()):
        assert secret not in received


def test_patching_the_checks_from_inside_the_call_does_not_help(checker):
    hostile = WRONG_SIGMOID.replace("    return np.tanh(x)\n", (
        "    import sys, backprop.checks\n"
        "    for module in list(sys.modules.values()):\n"
        "        if getattr(module, '__name__', '').startswith('backprop'):\n"
        "            for name in dir(module):\n"
        "                if name.startswith('check_'):\n"
        "                    setattr(module, name, lambda *a, **k: None)\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None:\n"
        "        frame.f_globals['checks'] = None\n"
        "        frame = frame.f_back\n"
        "    return np.tanh(x)\n"))
    library = {name: dict(vars(module)) for name, module in sys.modules.items()
               if name.startswith("backprop")}
    try:  # this process plays the kernel: its own library is what the student patches
        report = checker(hostile, LAB01_TEST)
    finally:
        for name, saved in library.items():
            vars(sys.modules[name]).update(saved)
    assert not report["ok"] and report["error"]["ename"] == "LabCheckError"


def test_the_callers_frames_hold_no_test(checker):
    spying = SIGMOID.replace("def sigmoid(x):\n", (
        "SEEN = []\n"
        "def sigmoid(x):\n"
        "    import sys\n"
        "    frame = sys._getframe(1)\n"
        "    while frame is not None:\n"
        "        SEEN.append(repr(frame.f_code.co_consts) + repr(frame.f_locals))\n"
        "        frame = frame.f_back\n"))
    report = checker(spying + "\nimport builtins\nbuiltins.SEEN_BY_STUDENT = SEEN\n", LAB01_TEST)
    assert report["ok"], report["error"]
    import builtins
    seen = "".join(builtins.__dict__.pop("SEEN_BY_STUDENT"))
    assert seen and "0.5621765008857981" not in seen and "check_close" not in seen


def test_numpy_error_state_and_replaced_numpy_functions_reach_the_call(checker):
    answers = "import numpy as np\ndef grow(x):\n    return np.exp(x)\n"
    test = ("import numpy as np\n"
            "with np.errstate(over='raise'):\n"
            "    try:\n"
            "        grow(np.array([1000.0]))\n"
            "        raised = False\n"
            "    except FloatingPointError:\n"
            "        raised = True\n"
            "assert raised, 'errstate did not reach the kernel'\n"
            "calls, real = [], np.exp\n"
            "np.exp = lambda *a: calls.append(a) or real(*a)\n"
            "try:\n"
            "    grow(np.array([1.0]))\n"
            "finally:\n"
            "    np.exp = real\n"
            "assert len(calls) == 1, calls\n")
    report = checker(answers, test)
    assert report["ok"], report["error"]


def test_in_place_changes_to_arguments_come_back(checker):
    answers = ("import numpy as np\n"
               "def scale(x, params, rng):\n"
               "    x *= 2\n"
               "    params['W'] += 1\n"
               "    params['new'] = 3\n"
               "    rng.random(5)\n"
               "def backward(root):\n"
               "    root.grad = 1.0\n"
               "    root._backward()\n")
    test = ("import numpy as np\n"
            "from backprop.engine import Value\n"
            "x, params = np.ones(3), {'W': np.zeros(2)}\n"
            "rng, twin = np.random.default_rng(0), np.random.default_rng(0)\n"
            "scale(x, params, rng)\n"
            "twin.random(5)\n"
            "assert np.array_equal(x, [2, 2, 2]) and np.array_equal(params['W'], [1, 1])\n"
            "assert params['new'] == 3\n"
            "assert rng.random() == twin.random(), 'the generator did not advance here'\n"
            "a, b = Value(2.0), Value(3.0)\n"
            "out = a * b\n"
            "backward(out)\n"
            "assert (a.grad, b.grad) == (3.0, 2.0), (a.grad, b.grad)\n")
    report = checker(answers, test)
    assert report["ok"], report["error"]


def test_kernel_objects_are_proxies_that_pass_for_their_library_class(checker):
    answers = ("from backprop.layers import Linear, Sequential, ReLU\n"
               "import numpy as np\n"
               "class Mine(ReLU):\n"
               "    pass\n"
               "model = Sequential(Linear(2, 3, rng=np.random.default_rng(0)), Mine())\n")
    test = ("from backprop.base import Layer\n"
            "from backprop.layers import ReLU, Sequential\n"
            "assert isinstance(model, Sequential) and isinstance(model.layers[1], ReLU)\n"
            "assert type(model.layers[1]).__name__ == 'Mine'\n"
            "out = model.forward(np.ones((4, 2)))\n"
            "assert isinstance(out, np.ndarray) and out.shape == (4, 3)\n"
            "assert model.layers[0] is model.layers[0]\n")
    report = checker(answers, "import numpy as np\n" + test)
    assert report["ok"], report["error"]


def test_a_kernel_that_never_connects_fails_the_test_in_time(checker):
    report = checker(SIGMOID, LAB01_TEST, timeout=1, connect=False)
    assert not report["ok"]
    assert "did not connect" in report["error"]["evalue"]


def _naming(*pid):
    """A pickle whose only object is a reference the kernel names (persistent id `pid`)."""
    class Naming(pickle.Pickler):
        def persistent_id(self, obj):
            return pid if obj == "it" else None
    buffer = io.BytesIO()
    Naming(buffer).dump("it")
    return buffer.getvalue()


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'touch /tmp/backprop-checker-pwned'\ntR.",
    _naming("global", "builtins", "open"),
    _naming("global", "os", "system"),
    _naming("module", "subprocess"),
    pickle.dumps(types.SimpleNamespace(a=1)),
    pickle.dumps(np.array([object()], dtype=object)),
    pickle.dumps(len),
])
def test_the_checker_unpickles_nothing_but_data(payload):
    with pytest.raises(KernelError, match="not data"):
        Channel(None).loads(payload)
    assert not os.path.exists("/tmp/backprop-checker-pwned")


def test_data_arrives_as_sent():
    value = {"x": np.arange(6.0).reshape(2, 3), "n": [1, 2.5, None, "s", (True, b"b")],
             "f32": np.float32(1.5), "rng": np.random.default_rng(3), "s": slice(1, 5)}
    back = Channel(None).loads(pickle.dumps(value, protocol=5))
    assert np.array_equal(back["x"], value["x"]) and back["n"] == value["n"]
    assert back["f32"] == np.float32(1.5) and back["f32"].dtype == np.float32
    assert back["rng"].random() == np.random.default_rng(3).random()


# -- the checker's namespace is its own: setup cells run there, only answers come from the kernel
LYING_NUMPY = ("import numpy\n"
               "class _Lying:\n"
               "    def __getattr__(self, name):\n"
               "        return getattr(numpy, name)\n"
               "    def array_equal(self, *args, **kwargs):\n"
               "        return True\n"
               "    def allclose(self, *args, **kwargs):\n"
               "        return True\n"
               "np = _Lying()\n"
               "checks = np\n")


def test_a_test_reading_np_uses_the_checkers_numpy_not_the_kernels(checker):
    report = checker(LYING_NUMPY + "def double(x):\n    return np.asarray(x) * 2\n",
                     "assert not np.array_equal(double([1.0]), [3.0]), 'the lying np'\n"
                     "assert checks.__name__ == 'backprop.checks'\n",
                     setup="import numpy as np\nfrom backprop import checks\n",
                     answer_names=["double"])
    assert report["ok"], report["error"]
    assert report["asked"] and set(report["asked"]) == {"double"}


def test_no_name_but_an_answer_is_ever_asked_of_the_kernel(checker):
    answers = SIGMOID + "secret_helper = 3\nchecks = None\nfresh = None\n"
    report = checker(answers, LAB01_TEST + "x = secret_helper\n", answer_names=["sigmoid"])
    assert not report["ok"] and report["error"]["ename"] == "NameError"
    assert "secret_helper" in report["error"]["evalue"]
    assert set(report["asked"]) == {"sigmoid"}, report["asked"]


def test_setup_cells_run_in_the_checker_and_their_functions_use_the_answers(checker):
    setup = ("import numpy as np\n"
             "GIVEN = np.arange(3.0)\n"
             "def given_pipeline(x):\n"
             "    return 10 * learner_step(x)   # an answer, read when called\n")
    answers = "def learner_step(x):\n    return x + 1\nGIVEN = 'the kernel's own'\n"
    report = checker(answers.replace("kernel's", "kernel"),
                     "assert list(given_pipeline(GIVEN)) == [10.0, 20.0, 30.0]\n",
                     setup=setup, answer_names=["learner_step"])
    assert report["ok"], report["error"]
    assert set(report["asked"]) == {"learner_step"}


def test_a_failing_setup_cell_is_reported_and_grading_goes_on(checker):
    failed = checker.setup("import numpy as np\nPREPARED = learner_step(1)\nAFTER = 1\n")
    assert not failed["ok"] and failed["error"]["ename"] == "NameError"
    report = checker("def learner_step(x):\n    return x + 1\n",
                     "assert learner_step(1) == 2\n"
                     "assert 'AFTER' not in globals()\n")
    assert report["ok"], report["error"]


def test_setup_output_is_not_reported_and_plots_are_never_shown(checker):
    report = checker.setup("import matplotlib\nimport matplotlib.pyplot as plt\n"
                           "print('loading data')\nplt.plot([1, 2])\nplt.show()\n"
                           "BACKEND = matplotlib.get_backend()\n")
    assert report["ok"], report["error"]
    assert report["stdout"] == report["stderr"] == ""
    test = checker("", "assert BACKEND.lower() == 'agg', BACKEND\n"
                   "import matplotlib.pyplot as plt\nassert not plt.get_fignums()\n", setup=None)
    assert test["ok"], test["error"]


@pytest.mark.parametrize("alias, used", [
    ("tanh = np.tanh", "NumPy's own numpy.tanh"),
    ("import math\ntanh = math.tanh", "Python's own math.tanh"),
    ("tanh = np", "the module numpy"),
])
def test_an_answer_that_is_the_librarys_own_fails_with_a_message_naming_it(checker, alias, used):
    test = ("from backprop.checks import fresh\nlab = fresh('lab01')\nlab.check_tanh(tanh)\n")
    report = checker("import numpy as np\n" + alias + "\n", test, answer_names=["tanh"])
    assert not report["ok"] and report["error"]["ename"] == "LabCheckError"
    assert f"`tanh` in your notebook is {used}" in report["error"]["evalue"]
    assert "implement it" in report["error"]["evalue"]


def test_library_instances_and_data_stay_allowed_as_answers(checker):
    answers = ("import numpy as np\nfrom backprop.layers import Linear\n"
               "model = Linear(2, 3, rng=np.random.default_rng(0))\nweights = np.ones(3)\n")
    report = checker(answers, "assert model.forward(np.ones((1, 2))).shape == (1, 3)\n"
                              "assert weights.sum() == 3\n")
    assert report["ok"], report["error"]


def _lab03_cells(*grade_ids):
    source = REPO_ROOT / "solutions" / "lab03_chain_rule" / "lab03_chain_rule.ipynb"
    cells = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
             for c in json.loads(source.read_text())["cells"]}
    return [cells[g] for g in grade_ids]


def test_the_labs_given_value_class_is_the_checkers_and_calls_the_learners_rules(checker):
    """Lab 03: the test's Values are the checker's own (from the setup cells); the learner's
    rule, in the kernel, changes their gradients by reference."""
    setup, value_class, rule, test = _lab03_cells("setup", "value_class", "exp_backward",
                                                  "test_exp_backward")
    assert checker.context(secret="a course secret", key="lab03/lab03/ada",
                           reference=[setup, value_class, rule])["ok"]
    assert checker.setup(setup)["ok"]
    # the kernel's Value is the library's: it must not be the one the test uses
    report = checker("from backprop import engine\nValue = engine.Value\n" + rule, test,
                     setup=value_class, answer_names=["exp_backward"])
    assert report["ok"], report["error"]
    wrong = rule.replace("+=", "=")
    failed = checker("from backprop import engine\nValue = engine.Value\n" + wrong, test,
                     setup=None, answer_names=["exp_backward"])
    assert not failed["ok"] and failed["error"]["ename"] == "LabCheckError"


def test_hidden_tests_draw_from_the_graders_secret_and_use_the_reference(checker):
    """The context job: a test's secret_rng draws depend on the secret the grader sent (not
    on the checker's environment), and `reference` is the source's answer, not the kernel's."""
    test = ("from backprop.labchecks import reference, secret_rng\n"
            "print(secret_rng('test_f').integers(10**9), reference.f(), f())\n")
    printed = []
    for secret in ("secret A", "secret A", "secret B"):
        assert checker.context(secret=secret, key="lab/nb/ada",
                               reference=["def f():\n    return 'reference'\n"])["ok"]
        report = checker("def f():\n    return 'kernel'\n", test, setup=None)
        assert report["ok"], report["error"]
        printed.append(report["stdout"].split())
    assert printed[0] == printed[1] and printed[0][0] != printed[2][0]
    assert printed[0][1:] == ["reference", "kernel"]
    broken = checker.context(secret="", key="k", reference=["import no_such_module\n"])
    assert not broken["ok"] and "no_such_module" in broken["error"]["evalue"]
    report = checker("def f():\n    return 1\n", test, setup=None)
    assert report["error"]["ename"] == "CourseSecretMissing"


def test_the_source_notebook_says_which_cells_are_setup_tests_and_answers():
    from grading.source_cells import read_source_notebook
    lab03 = read_source_notebook(REPO_ROOT / "solutions" / "lab03_chain_rule"
                                 / "lab03_chain_rule.ipynb")
    assert list(lab03.setup) == ["setup", "value_class", "moons_data"]
    assert "test_div_backward" in lab03.tests and "div_backward" not in lab03.tests
    assert {"div_backward", "backward", "train_moons_classifier"} <= lab03.answers
    assert not {"Value", "np", "checks", "engine", "X_moons"} & lab03.answers
    assert lab03.setup_before("test_div_backward") == ["setup", "value_class"]
    assert "BEGIN HIDDEN TESTS" in lab03.tests["test_backward"]


def test_answer_names_are_what_an_answer_defines_not_what_it_imports():
    code = ("import numpy as np\nfrom backprop.layers import Linear\n"
            "def f(x):\n    inner = 1\n    return x\n"
            "class Model:\n    pass\n"
            "a, (b, c) = 1, (2, 3)\nfor epoch in range(2):\n    last = epoch\n"
            "squares = [k * k for k in range(3)]\nwith open(__file__) as handle:\n    pass\n")
    assert bound_names(code, imports=False) == {
        "f", "Model", "a", "b", "c", "epoch", "last", "squares", "handle"}
    assert bound_names(code) >= {"np", "Linear"}


# -- what the grader sends the checker: the source's cells, never the submission's --------------
class _FakeChecker:
    """Records the jobs SandboxedExecute sends; every job passes."""
    socket_path = "/nowhere"

    def __init__(self):
        self.jobs = []

    def alive(self):
        return True

    def submit(self, token, source, timeout, kind="test", answers=()):
        self.jobs.append({"token": token, "kind": kind, "source": source,
                          "answers": sorted(answers)})

    def submit_context(self, token, secret, key, source, reference):
        self.jobs.append({"token": token, "kind": "context", "secret": secret, "key": key,
                          "source": source, "reference": reference})

    def result(self, token, timeout):
        return {"token": token, "ok": True, "stdout": "", "stderr": "", "error": None}


def _graded_in_order(cells):
    """Run SandboxedExecute's routing on lab 01's source over `cells`; the jobs the checker
    got and the sources the kernel got."""
    import asyncio

    import nbformat
    from grading import preprocessors
    from grading.source_cells import read_source_notebook

    kernel = []

    async def in_the_kernel(self, cell, cell_index, execution_count=None, store_history=True):
        kernel.append(cell.source)
        return cell

    execute = preprocessors.SandboxedExecute()
    execute.km = types.SimpleNamespace(checker=_FakeChecker())
    execute._source = read_source_notebook(REPO_ROOT / "solutions" / "lab01_forward_pass"
                                           / "lab01_forward_pass.ipynb")
    parent = preprocessors.Execute.async_execute_cell
    preprocessors.Execute.async_execute_cell = in_the_kernel
    try:
        for index, (source, meta) in enumerate(cells):
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata["nbgrader"] = dict(meta, schema_version=3)
            asyncio.run(execute.async_execute_cell(cell, index))
    finally:
        preprocessors.Execute.async_execute_cell = parent
    return execute.km.checker.jobs, kernel


def test_only_the_sources_setup_and_test_cells_reach_the_checker():
    source = json.loads((REPO_ROOT / "solutions" / "lab01_forward_pass"
                         / "lab01_forward_pass.ipynb").read_text())
    code = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
            for c in source["cells"]}
    test = {"grade": True, "solution": False, "locked": True, "points": 2}
    jobs, kernel = _graded_in_order([
        ("print('my own setup')", {"grade_id": "setup", "locked": True}),
        ("mine = 1", {"grade_id": "my_setup", "locked": True}),  # a locked cell of the student
        ("assert True  # my own test", dict(test, grade_id="my_test")),  # a graded stray cell
        (code["test_sigmoid"], dict(test, grade_id="test_sigmoid")),
        (code["test_sigmoid"] + "\n# copied", dict(test, grade_id="test_sigmoid")),  # a copy
        ("pass", dict(test, grade_id="test_tanh")),  # not restored: the source's code runs
    ])
    context, jobs = jobs[0], jobs[1:]
    assert context["kind"] == "context"  # first: the hidden tests' secret and reference
    assert context["reference"] == [code[g] for g in ("setup", "sigmoid", "tanh", "relu",
                                                      "dense_forward", "mlp_forward", "predict",
                                                      "digits_data", "digits_split",
                                                      "build_and_train")]
    assert [(job["kind"], job["source"]) for job in jobs] == [
        ("setup", code["setup"]), ("test", code["test_sigmoid"]), ("test", code["test_tanh"])]
    assert "np" not in jobs[1]["answers"] and "sigmoid" in jobs[1]["answers"]
    assert kernel[:3] == ["print('my own setup')", "mine = 1", "assert True  # my own test"]
    assert kernel[4] == code["test_sigmoid"] + "\n# copied"  # the student's code, in the kernel
    assert kernel[3].startswith("%graded_test ") and kernel[5].startswith("%graded_test ")
    assert len(kernel) == 6
