"""Visible checks of lab 03 (the chain rule): the backward rules of the lab's `Value` (/, **,
exp, log, sigmoid, max), the iterative topological order, the backward pass, and a small MLP of Values trained on the moons.

The deep chains that prove the graph walk iterative are 500 operations past Python's recursion
limit (`deep_chain_length`), enough to make any recursive walk fail and no deeper: when a lab is
graded, every node of a test's graph the learner's code touches is a round trip between the
learner's kernel and the checker (grading/checker.py), so the chains' length is most of the time
of the topological-order and backward tests.

Every rule is checked against a centred finite difference of its forward operation (which
needs no derivative), with an upstream gradient that is not 1, with an operand that already
holds a gradient, and, for the rules of two operands, with one operand used twice. `backward` is checked on graphs of the
library's `backprop.engine.Value`, whose rules are known to be right. The wrong values of the
usual mistakes are computed here, out of the learner's sight.
"""
import math
import sys
import time

import numpy as np

from backprop import checks, data, engine, gradcheck

OVERWRITE = ("did you use = instead of +=? The operand already held a gradient from another "
             "use, and the shares of all uses add up")
UPSTREAM = "multiply the local derivative by the upstream gradient out.grad"
# The held-out target of the build-and-train part (the solution reaches 0.94; a straight line
# between the moons reaches about 0.85).
MOONS_TARGET = 0.90
TRAIN_SECONDS = 60.0  # the solution takes 1 to 3 s


def deep_chain_length():
    """Operations in a chain that a recursive walk cannot order: Python's recursion limit
    (1000 unless raised) plus 500 (a walk recursing once per operation then needs more nested
    calls than the limit allows, wherever it is called from)."""
    return sys.getrecursionlimit() + 500


def _slope(forward, x):
    """The derivative of forward (numbers to a number) at x, by a centred difference."""
    return float(gradcheck.numerical_gradient(lambda v: forward(float(v[0])),
                                              np.array([float(x)]))[0])


def _run_rule(name, rule, out, *operands):
    checks.check_call(name, rule, out, *operands,
                      hint="a rule reads .data and out.grad and adds to the operands' .grad")


def _unary(rule, Value, op, x, upstream, held=0.0, extra=()):
    """Build out = op(Value(x)), give a and out the gradients held and upstream, run the rule
    once (with the extra arguments, such as the exponent); return a.grad."""
    a = Value(x)
    out = op(a)
    a.grad, out.grad = held, upstream
    call = ", ".join(["out", "a"] + [str(e) for e in extra])
    _run_rule(f"{rule.__name__}({call})", rule, out, a, *extra)
    return a.grad


def _check_unary(rule, Value, op, forward, x, *, mistakes, label, extra=()):
    """A unary rule: against the finite difference, with upstream 0.7, and on top of a gradient
    the operand already holds."""
    slope = _slope(forward, x)
    for held, upstream in [(0.0, 0.7), (0.25, -1.5)]:
        grad = _unary(rule, Value, op, x, upstream, held, extra)
        _check_operand("a", grad, slope, held, upstream, mistakes, label,
                       f"a = {checks.format_number(x)}")


def _check_operand(name, grad, slope, held, upstream, mistakes, label, at):
    """One operand's gradient after the rule ran: what it held plus slope * upstream, with the
    mistakes' values (and overwriting what it held) named."""
    where = f"{name}.grad for {label} at {at}, out.grad = {upstream}" + (
        f", {name}.grad = {held} before" if held else "")
    wrong = {hint: held + _wrong(value, kind, upstream) for hint, (value, kind) in mistakes.items()}
    if held:
        wrong[OVERWRITE] = slope * upstream
    checks.check_scalar(where, grad, held + slope * upstream, rtol=1e-7, atol=1e-9, mistakes=wrong)


def _local(value):
    """A wrong local derivative: the check multiplies it by the upstream gradient."""
    return (value, True)


def _exact(value):
    """A wrong final gradient, independent of the upstream gradient (given per call)."""
    return (value, False)


def _minus_upstream(value):
    """A wrong final gradient: value minus the upstream gradient (an operator-precedence slip,
    `... ** n - 1 * out.grad`)."""
    return (value, "minus upstream")


def _wrong(value, kind, upstream):
    """The gradient a mistake of this kind adds to the operand's .grad."""
    if kind == "minus upstream":
        return value - upstream
    return value * upstream if kind else value


def _binary(rule, Value, op, x, y, upstream, held=(0.0, 0.0)):
    """Build out = op(Value(x), Value(y)), give a, b and out the gradients held and upstream,
    run the rule once; return (a.grad, b.grad)."""
    a, b = Value(x), Value(y)
    out = op(a, b)
    (a.grad, b.grad), out.grad = held, upstream
    _run_rule(f"{rule.__name__}(out, a, b)", rule, out, a, b)
    return a.grad, b.grad


def _check_binary(rule, Value, op, forward, x, y, *, label, mistakes_a, mistakes_b):
    """A rule of two operands: each operand against the finite difference of the forward
    operation in it, with upstream 0.7, and on top of gradients the operands already hold.
    mistakes_a, mistakes_b: {hint: _local(wrong local derivative) or _exact(wrong grad)}."""
    slopes = (_slope(lambda t: forward(t, y), x), _slope(lambda t: forward(x, t), y))
    at = f"a = {checks.format_number(x)}, b = {checks.format_number(y)}"
    for held, upstream in [((0.0, 0.0), 0.7), ((0.25, -0.5), -1.5)]:
        grads = _binary(rule, Value, op, x, y, upstream, held)
        for name, grad, slope, start, mistakes in zip(("a", "b"), grads, slopes, held,
                                                      (mistakes_a, mistakes_b)):
            _check_operand(name, grad, slope, start, upstream, mistakes, label, at)


def _same_operand(rule, Value, op, forward, x, label):
    """out = op(a, a): the rule runs once and a must receive both shares."""
    a = Value(x)
    out = op(a, a)
    out.grad = 0.7
    _run_rule(f"{rule.__name__}(out, a, a)", rule, out, a, a)
    checks.check_scalar(f"a.grad for {label} at a = {checks.format_number(x)}, out.grad = 0.7",
                        a.grad, _slope(lambda t: forward(t, t), x) * 0.7, rtol=1e-7, atol=1e-9,
                        hint="here a and b are the same object: it must receive the share of a "
                        "AND the share of b, so add to .grad (+=) for both operands")


def check_div_backward(div_backward, Value):
    """out = a / b: both operands, upstream not 1, accumulation, a / a."""
    with checks.report("div_backward"):
        for x, y in [(1.5, 0.8), (-0.6, 2.5)]:
            _check_binary(div_backward, Value, lambda a, b: a / b, lambda s, t: s / t, x, y,
                          label="out = a / b", mistakes_a={
                "dividing by b scales a by 1/b: did you multiply by b instead of dividing?":
                    _local(y),
                "the local derivative for a is 1/b, not a/b (out.data)": _local(x / y),
                UPSTREAM: _exact(1 / y)}, mistakes_b={
                "b.grad has the opposite sign: a larger b (of the same sign as a) makes a / b "
                "smaller in size, so the local derivative for b is negative when a / b > 0":
                    _local(x / y ** 2),
                "the local derivative for b has b squared in its denominator: a / b changes "
                "like 1/b, whose slope is -1/b**2": _local(-x / y),
                "did you forget the factor a in the local derivative for b?": _local(-1 / y ** 2),
                "b.grad looks like a's share: each operand has its own local derivative":
                    _local(1 / y),
                UPSTREAM: _exact(-x / y ** 2)})
        _same_operand(div_backward, Value, lambda a, b: a / b, lambda s, t: s / t, 1.7,
                      "out = a / a")


def check_pow_backward(pow_backward, Value):
    """out = a ** n for integer, negative and fractional n."""
    with checks.report("pow_backward"):
        for x, n in [(1.3, 3), (-0.7, -2), (2.6, 0.5)]:
            _check_unary(pow_backward, Value, lambda a, n=n: a ** n, lambda t, n=n: t ** n, x,
                         label=f"out = a**{n}", extra=(n,), mistakes={
                "did you forget the factor n (the exponent comes down)?": _local(x ** (n - 1)),
                "lower the exponent by one: the derivative of a**n is not n times a**n":
                    _local(n * x ** n),
                "write the exponent with parentheses: a.data ** n-1 is (a.data ** n) - 1":
                    _local(n * x ** n - 1),
                "mind the precedence: ** binds tighter than * and -, so a.data ** n - 1 * "
                "out.grad subtracts out.grad; put the exponent (n - 1) in parentheses":
                    _minus_upstream(n * x ** n),
                "the factor n multiplies the power, n * a.data ** (n - 1): "
                "(n * a.data) ** (n - 1) raises n to the power too": _local((n * x) ** (n - 1)),
                UPSTREAM: _exact(n * x ** (n - 1))})


def check_exp_backward(exp_backward, Value):
    """out = exp(a)."""
    with checks.report("exp_backward"):
        for x in (0.4, -3.0):
            _check_unary(exp_backward, Value, lambda a: a.exp(), math.exp, x,
                         label="out = exp(a)", mistakes={
                "the derivative of e^x is e^x (that is out.data), not x": _local(x),
                "the derivative of e^x is e^x, not 1": _local(1.0),
                "out.data is already e^x: math.exp(out.data) is e^(e^x)":
                    _local(math.exp(math.exp(x))),
                UPSTREAM: _exact(math.exp(x))})


def check_log_backward(log_backward, Value):
    """out = log(a), the natural logarithm."""
    with checks.report("log_backward"):
        for x in (2.5, 0.4):
            _check_unary(log_backward, Value, lambda a: a.log(), math.log, x,
                         label="out = log(a)", mistakes={
                "out.data is log(a) itself, not its derivative": _local(math.log(x)),
                "divide by the input a.data, not by the output out.data": _local(1 / math.log(x)),
                "the derivative of log(a) is a reciprocal: did you multiply by a instead of "
                "dividing?": _local(x),
                UPSTREAM: _exact(1 / x)})


def check_sigmoid_backward(sigmoid_backward, Value):
    """out = sigmoid(a)."""
    with checks.report("sigmoid_backward"):
        for x in (1.2, -2.0):
            s = 1 / (1 + math.exp(-x))
            _check_unary(sigmoid_backward, Value, lambda a: a.sigmoid(),
                         lambda t: 1 / (1 + math.exp(-t)), x, label="out = sigmoid(a)", mistakes={
                "you used the input x = a.data where the output s = out.data belongs":
                    _local(x * (1 - x)),
                "that is the derivative of tanh (1 - t**2), not of the sigmoid": _local(1 - s ** 2),
                "the local derivative is not s itself: you lost a factor": _local(s),
                "the local derivative is not 1 - s alone: you lost a factor": _local(1 - s),
                "your result has the opposite sign: the sigmoid is increasing, so its "
                "derivative is positive": _local(-s * (1 - s)),
                UPSTREAM: _exact(s * (1 - s))})


def check_max_backward(max_backward, Value):
    """out = max(a, b): each side, a tie, accumulation, max(a, a)."""
    wrong_side = ("the gradient goes to the operand that was chosen (the larger one), not to "
                  "the other: did you get the comparison the wrong way round?")
    both = ("only the operand that was chosen gets the gradient; the other one does not change "
            "out at all")
    value = "the local derivative is 1 or 0, not the value out.data"
    with checks.report("max_backward"):
        # a > b first: a wrong side fails at a.grad, a gradient for both operands at b.grad
        _check_binary(max_backward, Value, lambda a, b: a.max(b), max, 1.3, -0.4,
                      label="out = max(a, b)", mistakes_a={
            wrong_side: _local(0.0), value: _local(1.3), UPSTREAM: _exact(1.0)}, mistakes_b={
            both: _local(1.0)})
        _check_binary(max_backward, Value, lambda a, b: a.max(b), max, -2.0, 0.5,
                      label="out = max(a, b)", mistakes_a={
            wrong_side + " Or did you give both operands the gradient?": _local(1.0)},
                      mistakes_b={wrong_side: _local(0.0), value: _local(0.5),
                                  UPSTREAM: _exact(1.0)})
        tie = ("at a tie (a == b) the whole gradient goes to b: a gets it only where a > b (so "
               "relu(a) = max(a, 0) passes nothing at a = 0, like PyTorch)")
        a_grad, b_grad = _binary(max_backward, Value, lambda a, b: a.max(b), 0.5, 0.5, 0.7)
        where = "for out = max(a, b) at a tie, a = b = 0.5, out.grad = 0.7"
        checks.check_scalar(f"a.grad {where}", a_grad, 0.0, mistakes={tie: 0.7})
        checks.check_scalar(f"b.grad {where}", b_grad, 0.7, mistakes={tie: 0.0})
        _same_operand(max_backward, Value, lambda a, b: a.max(b), max, -0.3, "out = max(a, a)")


def _describe(node):
    return node.label or f"the {node._op or 'leaf'} node with data {checks.format_number(node.data)}"


def _check_order(order, root, graph):
    checks.check_true(isinstance(order, list),
                      f"{graph}: topological_order should return a list, got {order!r:.60}.")
    ids = [id(node) for node in order]
    checks.check_true(len(set(ids)) == len(ids),
                      f"{graph}: some node appears more than once ({len(ids)} entries for "
                      f"{len(set(ids))} nodes).\n  Hint: remember visited nodes in a set and skip "
                      "a node you have already seen.")
    reachable = engine.topological_order(root)  # the library's, for WHICH nodes to expect
    checks.check_true(set(ids) == {id(node) for node in reachable},
                      f"{graph}: your order has {len(ids)} nodes but {len(reachable)} are "
                      "reachable.\n  Hint: follow node._prev from the root down to the leaves.")
    position = {node_id: i for i, node_id in enumerate(ids)}
    reversed_hint = (" Your list starts with the root: did you reverse it? backward() "
                     "reverses it; topological_order itself lists the root last."
                     if order and order[0] is root and len(order) > 1 else "")
    late = next(((child, node) for node in order for child in node._prev
                 if position[id(child)] > position[id(node)]), None)
    checks.check_true(late is None, late and (
        f"{graph}: {_describe(late[0])} comes after {_describe(late[1])}, which uses it. Every "
        "node must come after all of its operands." + reversed_hint))


def check_topological_order(topological_order, Value):
    """A neuron, a single leaf, a diamond, a * a and a chain of `deep_chain_length()`
    additions."""
    with checks.report("topological_order"):
        x1, w1 = Value(2.0, label="x1"), Value(-3.0, label="w1")
        x2, w2 = Value(0.0, label="x2"), Value(1.0, label="w2")
        bias = Value(0.5, label="b")
        neuron = (x1 * w1 + x2 * w2 + bias).tanh()
        neuron.label = "o"
        call = "topological_order(root)"
        _check_order(checks.check_call(call, topological_order, neuron), neuron, "a neuron")
        leaf = Value(3.0, label="leaf")
        _check_order(checks.check_call(call, topological_order, leaf), leaf, "a single Value")
        a = Value(2.0, label="a")
        diamond = (a * 3) * (a + 1)
        _check_order(checks.check_call(call, topological_order, diamond), diamond,
                     "a diamond graph, (a * 3) * (a + 1)")
        square = a * a
        _check_order(checks.check_call(call, topological_order, square), square, "a * a")
        length = deep_chain_length()
        chain = Value(0.0, label="start")
        for _ in range(length):
            chain = chain + 1.0
        try:
            order, problem = topological_order(chain), None
        except RecursionError as err:
            order, problem = None, err
        checks.check_true(problem is None,
                          f"a chain of {length} additions raised RecursionError ({problem})."
                          f"\n  Hint: Python allows about {sys.getrecursionlimit()} nested calls; "
                          "walk the graph with an explicit stack (a list of nodes still to visit) "
                          "instead of recursion.")
        _check_order(order, chain, f"a chain of {length} additions")


POINT = [0.5, -1.5, 0.3, 2.0]
GRADS = "[a.grad, b.grad, c.grad, f.grad]"
ZERO_FIRST = ("set every node's grad to 0 before seeding the root: gradients left from an "
              "earlier backward pass must not be added to")


def _graph(values):
    """A small graph of library Values in which a is used twice; the root and the leaves."""
    a, b, c, f = (engine.Value(v) for v in values)
    return ((a * b + c).tanh() + a ** 2) * f, [a, b, c, f]


def _grads(leaves):
    return np.array([leaf.grad for leaf in leaves])


def _numeric_grads():
    return np.array([_slope(lambda t, i=i: _graph(POINT[:i] + [t] + POINT[i + 1:])[0].data,
                            POINT[i]) for i in range(4)])


def _without_zeroing(runs, stale=0.0):
    """The leaf gradients after `runs` backward passes that never reset grad (a mistake)."""
    root, leaves = _graph(POINT)
    order = engine.topological_order(root)
    for node in order:
        node.grad = stale
    for _ in range(runs):
        root.grad = 1.0
        for node in reversed(order):
            node._backward()
    return _grads(leaves)


def _forward_order():
    """The leaf gradients when _backward runs leaves first (a mistake)."""
    root, leaves = _graph(POINT)
    root.grad = 1.0
    for node in engine.topological_order(root):
        node._backward()
    return _grads(leaves)


def check_backward(backward):
    """backward on library Values: against finite differences, twice, with stale gradients,
    on a diamond and on a chain of `deep_chain_length()` multiplications."""
    with checks.report("backward"):
        root, leaves = _graph(POINT)
        checks.check_call("backward(root)", backward, root)
        numeric = _numeric_grads()
        checks.check_close(f"grads after backward(root), {GRADS}", _grads(leaves), numeric,
                           rtol=1e-7, atol=1e-9, mistakes={
            "root.grad must be 1.0 when the loop over the nodes starts (d root / d root = 1): "
            "seed it after zeroing the grads": np.zeros(4),
            "call _backward in REVERSED topological order (root first): a node may pass its "
            "gradient on only after every node that uses it has passed theirs to it":
                _forward_order()})
        checks.check_call("backward(root)", backward, root)  # a second call must not add up
        checks.check_close(f"grads after a second backward(root), {GRADS}", _grads(leaves),
                           numeric, rtol=1e-7, atol=1e-9,
                           mistakes={ZERO_FIRST: _without_zeroing(2)})
        stale, stale_leaves = _graph(POINT)
        for node in engine.topological_order(stale):
            node.grad = 5.0                         # left over from somewhere else
        checks.check_call("backward(root)", backward, stale)
        checks.check_close(f"grads with every grad 5.0 before backward, {GRADS}",
                           _grads(stale_leaves), numeric, rtol=1e-7, atol=1e-9,
                           mistakes={ZERO_FIRST: _without_zeroing(1, stale=5.0)})
        a = engine.Value(2.0)
        diamond = (a * 3) * (a + 1)
        checks.check_call("backward(root)", backward, diamond)
        checks.check_scalar("a.grad in the diamond (a * 3) * (a + 1) at a = 2", a.grad,
                            _slope(lambda t: (t * 3) * (t + 1), 2.0), rtol=1e-7, mistakes={
            "the two paths must add up, not overwrite each other": 9.0})
        length = deep_chain_length()
        x, factor = engine.Value(0.5), engine.Value(0.999)  # one factor node for every step
        chain = x
        for _ in range(length):
            chain = chain * factor
        try:
            backward(chain)
            problem = None
        except RecursionError as err:
            problem = err
        checks.check_true(problem is None,
                          f"backward on a chain of {length} multiplications raised RecursionError "
                          f"({problem}).\n  Hint: make topological_order use an explicit stack.")
        checks.check_scalar(f"x.grad at the start of a chain of {length} multiplications by "
                            "0.999", x.grad, 0.999 ** length, rtol=1e-9)


def moons_data():
    """The moons of the lab: 130 points, standardized with the statistics of the first 30
    (the training points); the last 100 are held out."""
    X, y = data.make_moons(n=130, noise=0.1, rng=np.random.default_rng(0))
    X = (X - X[:30].mean(axis=0)) / X[:30].std(axis=0)
    return X[:30], y[:30], X[30:], y[30:]


def _score(score, point):
    value = score([float(v) for v in point])
    return float(getattr(value, "data", value))


def check_build_and_train(train_moons_classifier, target=MOONS_TARGET):
    """Train the learner's MLP of Values on the 30 training moons, then measure its accuracy on
    the 100 held-out points. Returns the trained score function (for further tests)."""
    with checks.report("build_and_train"):
        X_train, y_train, X_test, y_test = moons_data()
        start = time.perf_counter()
        score = checks.check_call("train_moons_classifier(X_train, y_train)",
                                  train_moons_classifier, X_train.copy(), y_train.copy())
        seconds = time.perf_counter() - start
        checks.check_true(callable(score), "train_moons_classifier should return a function "
                          f"score(point) -> Value, got {type(score).__name__}.")
        checks.check_true(seconds < TRAIN_SECONDS, f"train_moons_classifier took "
                          f"{seconds:.1f} s; keep it under {TRAIN_SECONDS:.0f} s (fewer steps "
                          "or hidden units).")
        scores = np.array([checks.check_call("score(point)", _score, score, point)
                           for point in X_test])
        checks.check_true(np.all(np.isfinite(scores)), "score(point) returned NaN or inf on a "
                          "held-out point.\n  Hint: a smaller learning rate?")
        train_accuracy = float(np.mean((np.array([_score(score, p) for p in X_train]) > 0)
                                       == y_train))
        accuracy = float(np.mean((scores > 0) == y_test))
        if np.all(scores > 0) or np.all(scores <= 0):
            hint = ("it puts every point in one class: do the targets of your loss match the "
                    "score's sign convention (score > 0 means class 1, so class 0 needs a "
                    "target below 0)?")
        elif train_accuracy < 0.8:
            hint = ("it does not even fit the training points: is your loss going down? Check "
                    "the sign of your step (against the gradient) and the learning rate.")
        elif train_accuracy - accuracy > 0.1:
            hint = ("it fits the training points far better than the new ones: fewer hidden "
                    "units or fewer steps?")
        else:
            hint = ("did you train long enough? With the max-margin loss, 60 steps need a "
                    "learning rate near 1.0; at 0.3 take about 200 steps, at 0.1 about 500.")
        checks.check_true(accuracy >= target, (
            f"your classifier labels {accuracy:.2f} of the {len(y_test)} held-out moons "
            f"correctly (and {train_accuracy:.2f} of the training points); the target is "
            f"{target:.2f}.\n  Hint: {hint}"))
        print(f"held-out accuracy {accuracy:.2f} (target {target:.2f}), training accuracy "
              f"{train_accuracy:.2f}")
    return score


def grads_after_rule(rule, Value, build, data, held, upstream, extra=()):
    """For hidden tests: the gradients of out's operands after ONE call of a backward rule.

    The operands are Value(d) for d in data; out = build(*operands) (which may use an operand
    twice, or a constant); every operand holds its gradient from `held` before, out.grad is
    `upstream`, and the rule is called as rule(out, *out._prev, *extra). Run once with the
    learner's rule and Value and once with the reference's, the two results must agree."""
    operands = [Value(d) for d in data]
    for operand, start in zip(operands, held):
        operand.grad = start
    out = build(*operands)
    out.grad = upstream
    rule(out, *out._prev, *extra)
    return [node.grad for node in out._prev]
