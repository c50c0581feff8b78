"""The visible checks of each lab, one module per lab (`lab01` ... `lab09`, `lab11`).

A lab's test cell calls one function per answer, on an untouched copy of the module:

    from backprop.checks import fresh
    lab = fresh("lab04")
    lab.check_linear_backward(linear_backward)

Each check compares the learner's function with independent evidence (finite differences,
stored values, invariants, the course library's own layers), prints one line when every check
passes and otherwise raises `backprop.checks.LabCheckError` with a message that names the entry,
the expected and received values and the likely mistake. The learner never sees this code in
the lab. The graded hidden tests stay in the source notebooks (solutions/), not here.
"""
