"""The scalar autograd engine: every local derivative, the graph walk, and agreement with the
vectorized layers on the same tiny network."""
import gc
import math
import sys

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from backprop.engine import Value, topological_order  # noqa: E402
from backprop.gradcheck import numerical_gradient, rel_error  # noqa: E402
from backprop.graph_plot import BOX_PAD, FONT_SIZE, draw_graph, node_text  # noqa: E402
from backprop.layers import Linear, Sequential, Tanh  # noqa: E402
from backprop.losses import mse_loss, softmax_cross_entropy  # noqa: E402

TOL = 1e-7


def _grads_and_numeric(fn, inputs):
    """Backprop through ``fn(*Values)`` and finite differences of the same function of floats."""
    values = [Value(x) for x in inputs]
    fn(*values).backward()
    analytic = np.array([v.grad for v in values])
    numeric = numerical_gradient(lambda arr: fn(*(Value(x) for x in arr)).data,
                                 np.array(inputs, dtype=np.float64))
    return analytic, numeric


# (name, function of Values, a point where it is smooth)
OPS = [
    ("add", lambda a, b: a + b, (1.3, -0.7)),
    ("sub", lambda a, b: a - b, (1.3, -0.7)),
    ("mul", lambda a, b: a * b, (1.3, -0.7)),
    ("truediv", lambda a, b: a / b, (1.3, -0.7)),
    ("pow 2", lambda a: a**2, (-1.3,)),
    ("pow 3", lambda a: a**3, (0.8,)),
    ("pow -1", lambda a: a**-1, (-1.7,)),
    ("pow 0.5", lambda a: a**0.5, (2.2,)),
    ("pow -2.5", lambda a: a**-2.5, (1.4,)),
    ("neg", lambda a: -a, (0.6,)),
    ("add number", lambda a: a + 2.5, (0.6,)),
    ("sub number", lambda a: a - 2.5, (0.6,)),
    ("mul number", lambda a: a * 2.5, (0.6,)),
    ("div number", lambda a: a / 2.5, (0.6,)),
    ("radd", lambda a: 2.5 + a, (0.6,)),
    ("rsub", lambda a: 2.5 - a, (0.6,)),
    ("rmul", lambda a: 2.5 * a, (0.6,)),
    ("rtruediv", lambda a: 2.5 / a, (0.6,)),
    ("exp", lambda a: a.exp(), (0.9,)),
    ("log", lambda a: a.log(), (0.4,)),
    ("tanh", lambda a: a.tanh(), (0.7,)),
    ("sigmoid positive", lambda a: a.sigmoid(), (1.2,)),
    ("sigmoid negative", lambda a: a.sigmoid(), (-2.3,)),
    ("relu positive", lambda a: a.relu(), (0.8,)),
    ("relu negative", lambda a: a.relu(), (-0.8,)),
    ("expression", lambda a, b: ((a * b).tanh() + (b / a).exp() - a**2).sigmoid() * (b - 3),
     (0.9, -0.4)),
]


@pytest.mark.parametrize("name,fn,point", OPS, ids=[op[0] for op in OPS])
def test_every_op_gradient_matches_finite_differences(name, fn, point):
    analytic, numeric = _grads_and_numeric(fn, point)
    assert rel_error(analytic, numeric) < TOL, (name, analytic, numeric)
    if name != "relu negative":
        assert np.all(analytic != 0)  # a zero gradient would pass the check vacuously


def test_forward_values_and_graph_bookkeeping():
    a, b = Value(3.0, label="a"), Value(-2.0, label="b")
    product = a * b
    assert product.data == -6.0 and product._op == "*" and product._prev == (a, b)
    assert (a - b).data == 5.0 and (a / b).data == -1.5 and (2 - a).data == -1.0
    assert (6 / b).data == -3.0 and (a**2).data == 9.0 and (-a).data == -3.0
    assert Value(-1.0).relu().data == 0.0 and a.label == "a" and product.label == ""
    assert math.isclose(Value(0.0).sigmoid().data, 0.5) and math.isclose(a.exp().log().data, 3.0)


def test_a_node_used_twice_accumulates_both_contributions():
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0  # 2a; with = instead of += it would be 3
    b = Value(3.0)
    (b + b).backward()
    assert b.grad == 2.0


def test_diamond_graph_sums_the_gradient_over_both_paths():
    a = Value(1.5)
    left, right = a * 2, a + 3  # two paths from a to the output
    out = left * right
    out.backward()
    assert out.data == 3.0 * 4.5
    assert a.grad == 2 * right.data + 1 * left.data  # 9 + 3
    assert left.grad == right.data and right.grad == left.data


def test_topological_order_lists_each_node_once_after_its_operands():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    out = (c + a) * c
    order = topological_order(out)
    assert len(order) == len(set(order)) == 5  # a, b, c, c + a, out
    position = {node: i for i, node in enumerate(order)}
    assert order[-1] is out
    assert all(position[child] < position[node] for node in order for child in node._prev)


def test_a_chain_of_100000_operations_needs_no_recursion():
    assert sys.getrecursionlimit() < 100_000  # a recursive walk would fail here
    # The cyclic garbage collector would walk the ~800,000 objects of the pytest process several
    # times while the chain grows: its cost, not the engine's, and most of this test's time.
    gc.disable()
    try:
        x = Value(2.0)
        y = x
        for _ in range(100_000):
            y = y.relu()  # one node per step; relu'(2) = 1
        y = y * 1.5
        y.backward()
        assert len(topological_order(y)) == 100_003
        assert x.grad == 1.5
    finally:
        gc.enable()


def test_backward_twice_gives_the_same_gradients_as_once():
    a, b = Value(0.5), Value(-1.5)
    out = (a * b).tanh() + a * a
    out.backward()
    once = (a.grad, b.grad, out.grad)
    out.backward()
    assert (a.grad, b.grad, out.grad) == once  # micrograd would double a.grad and b.grad


def test_backward_resets_stale_gradients_left_in_the_graph():
    a = Value(2.0)
    out = a * 3
    a.grad = 100.0  # e.g. left over from another loss
    out.backward()
    assert a.grad == 3.0


def test_zero_grad_clears_the_whole_graph():
    a, b = Value(0.5), Value(-1.5)
    hidden = a * b
    out = hidden.exp() + b
    out.backward()
    assert a.grad != 0 and hidden.grad != 0
    out.zero_grad()
    assert all(node.grad == 0.0 for node in topological_order(out))


def test_log_of_a_non_positive_value_raises_naming_the_value():
    for bad in (0.0, -2.5):
        with pytest.raises(ValueError, match=f"positive numbers only, got {bad}"):
            Value(bad).log()


def test_bad_operands_raise_clear_errors():
    with pytest.raises(TypeError, match="data must be a real number"):
        Value("2.0")
    with pytest.raises(TypeError, match="exponent must be a constant"):
        Value(2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="not a real number"):
        Value(-8.0) ** (1 / 3)
    with pytest.raises(ZeroDivisionError, match="undefined"):
        Value(1.0) / Value(0.0)
    with pytest.raises(TypeError):
        Value(1.0) + "1"


def test_sigmoid_is_stable_for_large_inputs():
    for x, expected in ((-1000.0, 0.0), (1000.0, 1.0)):
        v = Value(x)
        out = v.sigmoid()
        out.backward()
        assert out.data == expected and v.grad == 0.0


def test_x_to_the_power_0_at_0_has_gradient_0():
    a = Value(0.0)
    (a**0).backward()
    assert a.grad == 0.0


def test_repr_shows_data_and_grad():
    assert repr(Value(0.5)) == "Value(data=0.5000, grad=0.0000)"


# -- two-way check: the vectorized layers and the scalar engine on the same tiny network -----
def _value_matrix(array):
    return [[Value(float(x)) for x in row] for row in array]


def _value_matmul_add(x_rows, W_rows, b_row):
    """x @ W + b on nested lists of Values: x (N, D), W (D, M), b (M,)."""
    return [[sum((x_row[k] * W_rows[k][j] for k in range(len(W_rows))), b_row[j])
             for j in range(len(b_row))] for x_row in x_rows]


def _value_cross_entropy(logits, labels):
    losses = []
    for row, label in zip(logits, labels):
        shift = max(z.data for z in row)  # a constant: softmax does not change when shifted
        log_sum = sum((z - shift).exp() for z in row).log()
        losses.append(log_sum - (row[label] - shift))
    return sum(losses) / len(losses)


def _value_mse(pred, target):
    squares = [(p - t) ** 2 for row, trow in zip(pred, target) for p, t in zip(row, trow)]
    return sum(squares) / len(squares)


def _grads(values):
    """The ``grad`` of a nested list of Values, as an array of the same shape."""
    if isinstance(values, Value):
        return values.grad
    return np.array([_grads(v) for v in values])


@pytest.mark.parametrize("loss_name", ["softmax_cross_entropy", "mse_loss"])
def test_layers_and_engine_agree_on_a_tiny_network(loss_name):
    rng = np.random.default_rng(3)
    model = Sequential(Linear(3, 4, rng=rng), Tanh(), Linear(4, 2, rng=rng))
    for layer in (model[0], model[2]):
        layer.params["b"][:] = rng.standard_normal(layer.out_features)  # nonzero biases
    x = rng.standard_normal((2, 3))  # batch of 2
    labels, target = np.array([1, 0]), rng.standard_normal((2, 2))
    losses = {  # name: (vectorized loss of the output, the same loss on Values)
        "softmax_cross_entropy": (lambda out: softmax_cross_entropy(out, labels),
                                  lambda out: _value_cross_entropy(out, labels)),
        "mse_loss": (lambda out: mse_loss(out, target), lambda out: _value_mse(out, target)),
    }
    array_loss_fn, value_loss_fn = losses[loss_name]

    loss, dout = array_loss_fn(model.forward(x))
    dx = model.backward(dout)

    xs = _value_matrix(x)
    params = {name: (_value_matrix(p) if p.ndim == 2 else [Value(float(v)) for v in p])
              for name, p in model.params.items()}
    hidden = [[h.tanh() for h in row]
              for row in _value_matmul_add(xs, params["0.W"], params["0.b"])]
    value_loss = value_loss_fn(_value_matmul_add(hidden, params["2.W"], params["2.b"]))
    value_loss.backward()

    def loss_of(_):
        return array_loss_fn(model.forward(x))[0]

    assert math.isclose(value_loss.data, loss, rel_tol=1e-12)
    numeric_dx = numerical_gradient(loss_of, x)
    assert rel_error(dx, numeric_dx) < TOL
    assert rel_error(_grads(xs), numeric_dx) < TOL
    for name, param in model.params.items():
        numeric = numerical_gradient(loss_of, param)
        assert rel_error(model.grads[name], numeric) < TOL, name
        assert rel_error(_grads(params[name]), numeric) < TOL, name
        assert np.abs(numeric).max() > 1e-3, name  # a vanishing gradient would prove nothing


# -- drawing -------------------------------------------------------------------------------
def _neuron():
    x1, w1, x2, w2 = Value(2.0, label="x1"), Value(-3.0, label="w1"), Value(0.0, label="x2"), \
        Value(1.0, label="w2")
    bias = Value(6.8813735870195432, label="b")
    n = x1 * w1 + x2 * w2 + bias
    n.label = "n"
    out = n.tanh()
    out.label = "o"
    out.backward()
    return out


def test_draw_graph_draws_one_box_per_value_with_its_numbers():
    out = _neuron()
    nodes = topological_order(out)
    ax = draw_graph(out)
    try:
        boxes = [t for t in ax.texts if t.get_gid() == "value"]
        assert len(boxes) == len(nodes) == 10
        assert sorted(t.get_text() for t in boxes) == sorted(node_text(n) for n in nodes)
        assert "o | data 0.71 | grad 1.00" in {t.get_text() for t in boxes}
        assert "w1 | data -3.00 | grad 1.00" in {t.get_text() for t in boxes}
        n_ops = sum(1 for n in nodes if n._prev)
        assert len([line for line in ax.lines if line.get_gid() == "op"]) == n_ops == 5
        edges = {(child, n) for n in nodes for child in n._prev}
        assert len(ax.patches) == len(edges) + n_ops  # operand -> op, op -> result
    finally:
        plt.close(ax.figure)


def _small_mlp():
    """2 inputs, 3 tanh units, 1 output: 36 values, about the largest graph a lesson draws."""
    rng = np.random.default_rng(0)
    xs = [Value(1.0, label="x1"), Value(-2.0, label="x2")]
    hidden = []
    for j in range(3):
        weights = [Value(float(rng.normal()), label=f"w{j}{i}") for i in range(2)]
        hidden.append(sum((w * x for w, x in zip(weights, xs)), Value(0.1, label=f"b{j}")).tanh())
    out = sum((Value(float(rng.normal())) * h for h in hidden), Value(0.5, label="c"))
    out.backward()
    return out


@pytest.mark.parametrize("make_graph", [_neuron, _small_mlp])
def test_draw_graph_boxes_do_not_overlap(make_graph):
    out = make_graph()
    ax = draw_graph(out)
    try:
        renderer = ax.figure.canvas.get_renderer()  # lays the text out without drawing it
        pad = BOX_PAD * FONT_SIZE * ax.figure.dpi / 72  # the box around the text, in pixels
        boxes = [t.get_window_extent(renderer).padded(pad)
                 for t in ax.texts if t.get_gid() == "value"]
        assert len(boxes) == len(topological_order(out))
        overlaps = [(i, j) for i in range(len(boxes)) for j in range(i) if boxes[i].overlaps(boxes[j])]
        assert overlaps == []
        figure_box = ax.figure.bbox
        assert all(figure_box.contains(b.x0, b.y0) and figure_box.contains(b.x1, b.y1) for b in boxes)
    finally:
        plt.close(ax.figure)


def test_draw_graph_uses_a_given_axes_and_a_single_value():
    fig, ax = plt.subplots()
    try:
        assert draw_graph(Value(1.25, label="w"), ax=ax) is ax
        assert [t.get_text() for t in ax.texts] == ["w | data 1.25 | grad 0.00"]
    finally:
        plt.close(fig)


def test_draw_graph_refuses_a_huge_graph():
    y = Value(1.0)
    for _ in range(400):
        y = y.tanh()
    with pytest.raises(ValueError, match="401 values"):
        draw_graph(y)
