"""The visible checks of each lab, one module per lab (`lab01` ... `lab09`, `lab11` ...
`lab13`).

A lab's test cell calls one function per answer, on an untouched copy of the module:

    from backprop.checks import fresh
    lab = fresh("lab04")
    lab.check_loss_backward(loss_backward)

Each check compares the learner's function with independent evidence (finite differences,
stored values, invariants, the course library's own layers), prints one line when every check
passes and otherwise raises `backprop.checks.LabCheckError` with a message that names the entry,
the expected and received values and the likely mistake. The learner never sees this code in
the lab. The graded hidden tests stay in the source notebooks (solutions/), not here.

Hidden tests draw their inputs with `secret_rng(test_id)` and compute their expected values with
`reference` (`backprop.labchecks.secret`), so that the public source notebooks do not let an
answer special-case them.
"""
from .secret import reference, secret_rng  # noqa: E402,F401
