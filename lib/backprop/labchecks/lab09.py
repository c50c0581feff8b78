"""Visible checks of lab 09 (local minima): the Hessian-vector product, classifying critical
points, power iteration, ensembles, and a saddle found, certified and escaped.

Expected values come from closed-form Hessians, the course library (`backprop.landscape`),
`np.linalg.eigh` and `scipy.stats.mode`; the values of known mistakes are computed here.
Near-zero numbers are printed with `checks.format_values` (round-off prints as 0).
"""
from backprop import checks
from backprop import gradcheck  # noqa: F401 (fresh() provides it to every lab's checks)
import numpy as np

from backprop.landscape import hessian_extreme_eigenvalues, loss_and_grad
from backprop.landscape import hessian_vector_product as library_hvp
from backprop.landscape import set_flat_params
from backprop.layers import Linear, Sequential, Tanh
from backprop.losses import mse_loss


def check_hessian_vector_product(hessian_vector_product):
    with checks.report("hessian_vector_product"):
        rng = np.random.default_rng(1)
        # A quadratic loss 0.5 w.A.w + b.w has gradient A w + b and Hessian A, everywhere.
        B = rng.standard_normal((5, 5))
        A, b = B + B.T, rng.standard_normal(5)
        w, v = rng.standard_normal(5), rng.standard_normal(5)
        w_before, v_before = w.copy(), v.copy()
        Hv = checks.check_call("hessian_vector_product(grad_fn, w, v)", hessian_vector_product,
                               lambda x: A @ x + b, w, v)
        checks.check_close("hessian_vector_product for a quadratic", Hv, A @ v, mistakes={
            "you return the difference of the two gradients: divide it by the distance "
            "between the two points": 2e-5 * (A @ v),
            "the two points are 2 * eps apart, not eps": 2 * (A @ v),
            "you returned the gradient, not the change of the gradient": A @ w + b})
        checks.check_true(np.array_equal(w, w_before) and np.array_equal(v, v_before),
                          "hessian_vector_product changed w or v in place: build the two points "
                          "as new arrays, never w += ...")
        # A cubic term: the gradient is quadratic, so the centred difference is still exact
        # (at any eps), while a one-sided difference is off by O(eps).
        c = np.array([1.0, -2.0, 0.5, 3.0, -1.0])

        def cubic_grad(x):      # gradient of sum(c * x**3) + 0.5 x.A.x
            return 3 * c * x**2 + A @ x
        H_cubic = np.diag(6 * c * w) + A
        eps = 0.1
        received = checks.check_call("hessian_vector_product(cubic_grad, w, v, eps=0.1)",
                                     hessian_vector_product, cubic_grad, w, v, eps=eps)
        checks.check_close("hessian_vector_product for a cubic loss, eps = 0.1", received,
                           H_cubic @ v, mistakes={
            "use the centred difference of the lab: a one-sided difference (from w to one side) "
            "is only first-order accurate": (cubic_grad(w + eps * v) - cubic_grad(w)) / eps,
            "use the centred difference of the lab, not the one-sided one from w - eps v":
                (cubic_grad(w) - cubic_grad(w - eps * v)) / eps,
})
        # A loss of degree 4: now eps matters, so the step must be the eps argument.
        received = checks.check_call("hessian_vector_product(lambda x: x**3, ...)",
                                     hessian_vector_product, lambda x: x**3,
                                     np.array([1.0, 2.0]), np.array([0.6, 0.8]), eps=0.1)
        checks.check_close("hessian_vector_product of sum(w**4)/4 at w = (1, 2), v = (0.6, 0.8), "
                           "eps = 0.1", received, [1.80216, 9.60512], rtol=1e-9, atol=1e-12,
                           mistakes={"use the eps argument, not a step fixed inside the function":
                                     [1.8, 9.6]})
        # The gradient of a real network, as in the lesson: compare with the library.
        net = Sequential(Linear(2, 3, rng=rng), Tanh(), Linear(3, 1, rng=rng))
        X_net, y_net = rng.standard_normal((8, 2)), rng.standard_normal((8, 1))
        theta = rng.standard_normal(net.num_parameters())
        direction = rng.standard_normal(net.num_parameters())
        direction /= np.linalg.norm(direction)  # unit length: the library's step is then eps
        set_flat_params(net, theta)
        expected = library_hvp(net, mse_loss, X_net, y_net, direction)

        def network_gradient(parameters):
            set_flat_params(net, parameters)
            return loss_and_grad(net, mse_loss, X_net, y_net)[1]
        received = checks.check_call("hessian_vector_product(network_gradient, theta, v)",
                                     hessian_vector_product, network_gradient, theta, direction)
        checks.check_close("hessian_vector_product for a 2-3-1 tanh network", received, expected,
                           rtol=1e-5, atol=1e-8)


TOLERANCE_HINT = ("an eigenvalue within tol of 0 counts as 0: a tiny value like -1e-12 is "
                  "round-off, not curvature")
SWAPPED = "did you swap minimum and maximum?"


def _check_kind(classify_point, eigenvalues, expected, hints=None, **kwargs):
    call = (f"classify_point({checks.format_values(eigenvalues)}"
            + "".join(f", {k}={v!r}" for k, v in kwargs.items()) + ")")
    received = checks.check_call(call, classify_point, eigenvalues, **kwargs,
                                 hint="eigenvalues may be a list or a tuple: make an array of "
                                      "them first (np.asarray)")
    hint = (hints or {}).get(received)
    checks.check_true(received == expected, f"{call} returned {received!r} but should return "
                      f"{expected!r}." + (f"\n  Hint: {hint}" if hint else ""))


def product_hessian(w1, w2):
    """The Hessian of Lesson 09's L = (w1 w2 - 1)**2."""
    return 2 * np.array([[w2**2, 2 * w1 * w2 - 1], [2 * w1 * w2 - 1, w1**2]])


def check_classify_point(classify_point):
    with checks.report("classify_point"):
        _check_kind(classify_point, np.linalg.eigvalsh(product_hessian(0.0, 0.0)), "saddle",
                    {"minimum": "one eigenvalue is negative: the loss curves down along it",
                     "maximum": "one eigenvalue is positive: the loss curves up along it"})
        _check_kind(classify_point, np.linalg.eigvalsh(product_hessian(1.0, 1.0)), "minimum",
                    {"saddle": TOLERANCE_HINT,
                     "maximum": "no eigenvalue is negative, so the loss curves up or stays flat "
                                "in every direction: " + SWAPPED,
                     "flat": "a minimum may have flat directions (zero eigenvalues) as long as "
                             "none is negative"})
        rng = np.random.default_rng(2)
        Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))   # a random rotation
        hints = {"maximum": "all eigenvalues positive means the loss curves UP in every "
                            "direction: " + SWAPPED,
                 "minimum": "all eigenvalues negative means the loss curves DOWN in every "
                            "direction: " + SWAPPED,
                 "saddle": TOLERANCE_HINT,
                 "flat": "an eigenvalue beyond tol decides: only all-zero eigenvalues are flat"}
        for values, expected in [([1.0, 2.0, 0.5, 3.0], "minimum"),
                                 ([-1.0, -2.0, -0.5, -3.0], "maximum"),
                                 ([2.0, -1.0, 0.5, 1.0], "saddle"), ([0.0, 0.0, 0.0, 0.0], "flat"),
                                 ([0.0, -1.0, -2.0, 0.0], "maximum")]:  # zeros: +-1e-17
            _check_kind(classify_point, np.linalg.eigvalsh(Q @ np.diag(values) @ Q.T), expected,
                        hints)
        tol_hints = {"saddle": "use the tol argument, do not fix the tolerance inside the "
                               "function", "minimum": "use the tol argument, do not fix the "
                               "tolerance inside the function"}
        _check_kind(classify_point, [0.5, -1e-4], "minimum", tol_hints, tol=1e-3)
        _check_kind(classify_point, [0.5, -1e-4], "saddle", tol_hints, tol=1e-5)
        _check_kind(classify_point, (-3.0, 2e-7), "maximum", hints)   # a tuple, default tol


def check_power_iteration(power_iteration):
    with checks.report("power_iteration"):
        rng = np.random.default_rng(3)
        Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
        for values in ([5.0, 2.0, 1.0, 0.5, -1.0], [-6.0, 3.0, 1.0, 0.5, 0.0]):
            H = Q @ np.diag(values) @ Q.T
            eigenvalues, eigenvectors = np.linalg.eigh(H)
            top = np.argmax(np.abs(eigenvalues))
            result = checks.check_call("power_iteration(hvp, 5, rng)", power_iteration,
                                       lambda v: H @ v, 5, np.random.default_rng(4))
            checks.check_tuple("power_iteration", result, ["eigenvalue", "vector"])
            value, vector = result
            checks.check_true(np.ndim(value) == 0 and np.ndim(vector) == 1,
                              "power_iteration should return (eigenvalue, vector) in this order: "
                              f"a number, then an array of shape (5,); got shapes "
                              f"{np.shape(value)} and {np.shape(vector)}.")
            checks.check_shape("the vector power_iteration returns", vector, (5,))
            norm = np.linalg.norm(vector)
            checks.check_true(np.isclose(norm, 1.0, rtol=1e-9),
                              f"the vector power_iteration returns has norm "
                              f"{checks.format_number(norm)}, not 1: keep v at unit length "
                              "after every product (else v grows or shrinks like "
                              "|lambda|**iters).")
            checks.check_scalar(f"eigenvalue of largest magnitude of a matrix with "
                                f"eigenvalues {checks.format_values(values)}", value,
                                eigenvalues[top], rtol=1e-6, atol=1e-9, mistakes={
                "the norm of H v is only the eigenvalue's magnitude: compute a number from v "
                "and H v that keeps its sign": abs(eigenvalues[top])})
            checks.check_scalar("|v . u| between your vector and the true eigenvector u",
                                abs(vector @ eigenvectors[:, top]), 1.0, rtol=1e-6)
        first = power_iteration(lambda v: H @ v, 5, np.random.default_rng(7), iters=3)[1]
        again = power_iteration(lambda v: H @ v, 5, np.random.default_rng(7), iters=3)[1]
        checks.check_true(np.array_equal(first, again),
                          "two calls with equally seeded rngs gave different vectors: draw the "
                          "start vector from rng (rng.standard_normal(dim)), not from np.random.")
        value, vector = checks.check_call(
            "power_iteration for the zero operator", power_iteration, lambda v: np.zeros_like(v),
            4, np.random.default_rng(2),
            hint="when H v is exactly zero, its norm is 0: stop before dividing by it")
        checks.check_true(np.isfinite(value) and np.all(np.isfinite(vector)),
                          "power_iteration returned nan for the zero operator: when H v is "
                          "exactly zero, stop and return 0.0 and the current v (dividing by the "
                          "norm 0 gives nan).")


def _random_probabilities(rng, N, C):
    scores = 2 * rng.standard_normal((N, C))
    exp = np.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


# Stored answers (the labels of the averaged probabilities and the majority votes of the
# cases below, computed once): the check does not compute them the way an answer would.
ENSEMBLE_EXPECTED = [1, 0, 0, 1, 2, 2, 0]
MAJORITY_EXPECTED = [1, 2, 2, 1, 2, 2, 3, 0, 0, 0, 0, 0]


def check_ensemble_vote(ensemble_vote):
    with checks.report("ensemble_vote"):
        rng = np.random.default_rng(5)
        probabilities = [_random_probabilities(rng, 7, 4) for _ in range(3)]
        probabilities[0][0], probabilities[1][0], probabilities[2][0] = \
            [0.51, 0.49, 0, 0], [0.51, 0.49, 0, 0], [0, 1, 0, 0]   # the example of the text
        stacked = np.stack(probabilities)                                     # (K, N, C)
        labels = stacked.argmax(axis=2)                                       # (K, N)
        votes = np.stack([np.bincount(row, minlength=4) for row in labels.T])  # (N, C)
        saved = [p.copy() for p in probabilities]
        received = checks.check_call("ensemble_vote(probabilities)", ensemble_vote,
                                     probabilities)
        checks.check_close("ensemble_vote(probabilities)", received, ENSEMBLE_EXPECTED, mistakes={
            "average the probabilities, not the predicted labels: labels are names, not numbers":
                np.round(labels.mean(axis=0)),
            "(labels averaged and cut off) average the probabilities, then take the argmax":
                np.floor(labels.mean(axis=0)),
            "that is a majority vote; here the probabilities are averaged": votes.argmax(axis=1),
            "the argmax picks a class for each example: over axis 1 of the (N, C) average, not "
            "over the examples": stacked.mean(axis=0).argmax(axis=0),
            "average over the models (axis 0 of the stacked (K, N, C) array), not the examples":
                stacked.mean(axis=1).argmax(axis=1),
            "multiplying the probabilities lets one confident model overrule all the others: "
            "average them": np.prod(stacked, axis=0).argmax(axis=1)})
        checks.check_true(np.asarray(received).dtype.kind in "iu",
                          f"ensemble_vote returned dtype {np.asarray(received).dtype}: return "
                          "integer labels (np.argmax gives them).")
        checks.check_true(all(np.array_equal(p, s) for p, s in zip(probabilities, saved)),
                          "ensemble_vote changed its input arrays.")
        veto = (np.array([[0.9, 0.1]]), np.array([[0.9, 0.1]]), np.array([[0.001, 0.999]]))
        received = checks.check_call("ensemble_vote of a tuple of 3 models", ensemble_vote, veto)
        checks.check_close("ensemble_vote of (0.9, 0.1), (0.9, 0.1), (0.001, 0.999)",
                           received, [0], mistakes={
            "multiplying the probabilities lets one confident model overrule all the others: "
            "average them": [1]})


def check_majority_vote(majority_vote):
    with checks.report("majority_vote"):
        rng = np.random.default_rng(6)
        labels = [rng.integers(0, 4, size=12) for _ in range(4)]   # K = 4: ties happen
        stacked = np.array(labels)
        counts = np.stack([np.bincount(column, minlength=4) for column in stacked.T])
        received = checks.check_call("majority_vote(labels)", majority_vote, labels)
        checks.check_close("majority_vote(labels)", received, MAJORITY_EXPECTED, mistakes={
            "count the votes per label; the mean of the labels is not a vote":
                np.round(stacked.mean(axis=0)),
            "count the votes per label; the median of the labels is not a vote":
                np.median(stacked, axis=0),
            "on a tie, return the smallest label (np.argmax returns the first maximum)":
                3 - counts[:, ::-1].argmax(axis=1)})
        checks.check_true(np.asarray(received).dtype.kind in "iu",
                          f"majority_vote returned dtype {np.asarray(received).dtype}: return "
                          "integer labels.")
        received = checks.check_call("majority_vote of a tuple", majority_vote,
                                     (np.array([3]), np.array([3]), np.array([1]), np.array([1])))
        checks.check_close("majority_vote with a tie [3, 3, 1, 1]", received, [1], mistakes={
            "on a tie, return the smallest label (np.argmax returns the first maximum)": [3]})


# -- build and train: find a saddle of another network, certify it, escape it --------------
TARGET_MSE = 0.1


def targets(x):
    """The two outputs to fit at the inputs x (N, 2): 0.8 sin(1.5 x1) and 0.6 tanh(2 x2) + 0.2."""
    x = np.asarray(x, dtype=float)
    return np.column_stack([0.8 * np.sin(1.5 * x[:, 0]), 0.6 * np.tanh(2 * x[:, 1]) + 0.2])


def saddle_problem():
    """The lab's problem: ``(net, x, y, x_test, y_test)``, a 2-3-2 tanh network (17 parameters,
    flat order ``0.W`` (2, 3), ``0.b`` (3,), ``2.W`` (3, 2), ``2.b`` (2,)), the 36 points of a
    6 x 6 grid of [-2, 2]^2 with their `targets`, and 25 held-out points, the centres of the
    grid's squares."""
    grid = np.linspace(-2, 2, 6)
    centres = (grid[:-1] + grid[1:]) / 2
    x = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)
    x_test = np.stack(np.meshgrid(centres, centres, indexing="ij"), axis=-1).reshape(-1, 2)
    net = Sequential(Linear(2, 3, rng=np.random.default_rng(0)), Tanh(),
                     Linear(3, 2, rng=np.random.default_rng(0)))
    return net, x, targets(x), x_test, targets(x_test)


def new_points(rng, side=15):
    """``(x, y)``: side**2 points of [-2, 2]^2 with their `targets`, drawn with `rng` (the
    grading test draws them anew on every run), one uniformly in each square of a side x side
    grid, shuffled. The solution's trained network scored 0.0136 on average over 2000 draws
    (standard deviation 0.0003, at most 0.0147, for each of 8 escape directions), far below
    TARGET_MSE = 0.1; the saddle scores 0.30."""
    cells = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"),
                     axis=-1).reshape(-1, 2)
    x = -2 + 4 * (cells + rng.uniform(size=cells.shape)) / side
    x = rng.permutation(x)
    return x, targets(x)


def _mse(net, x, y):
    return float(np.mean((net.forward(x) - y) ** 2))


def check_build_and_train(saddle, lambda_max, lambda_min, kind, escape, trained):
    with checks.report("build_and_train"):
        net, x, y, x_test, y_test = saddle_problem()
        P = net.num_parameters()
        for name, value in [("saddle", saddle), ("escape", escape), ("trained", trained)]:
            checks.check_shape(name, value, (P,))
        saddle, escape, trained = (np.asarray(a, dtype=float) for a in (saddle, escape, trained))
        set_flat_params(net, saddle)
        _, grad = loss_and_grad(net, mse_loss, x, y)
        grad_norm = float(np.linalg.norm(grad))
        checks.check_true(grad_norm < 1e-6,
                          f"the gradient's norm at your saddle is {checks.format_number(grad_norm)}"
                          ", expected 0 (below 1e-6): it is not a critical point."
                          "\n  Hint: with every weight zero, what does each output of the network "
                          "give, and which output biases minimise the squared error then?")
        low, high = hessian_extreme_eigenvalues(net, mse_loss, x, y, iters=300, tol=1e-10,
                                                rng=np.random.default_rng(0))
        checks.check_scalar("lambda_max at the saddle",
                            lambda_max, high, rtol=1e-3, atol=1e-4, hint=(
            "power_iteration on hessian_vector_product at saddle gives the eigenvalue of "
            "largest magnitude, here the largest one"))
        checks.check_scalar("lambda_min at the saddle",
                            lambda_min, low, rtol=1e-3, atol=1e-4, mistakes={
            "that is lambda_max again: power iteration finds the eigenvalue of largest "
            "magnitude; shift the operator so that the smallest one has it": high,
            "that is the shifted operator's eigenvalue: undo the shift to get H's": low - high,
            "that is the shifted operator's eigenvalue with its sign flipped: undo the shift "
            "to get H's": high - low})
        checks.check_true(kind == "saddle", f"your classify_point calls your saddle a {kind!r}; "
                          "the library's check calls it a saddle.\n  Hint: pass it "
                          "the two extreme eigenvalues, lambda_min and lambda_max, with the "
                          "tolerance 1e-5.")
        norm = float(np.linalg.norm(escape))
        checks.check_true(norm > 0, "escape is the zero vector, expected a direction of "
                          "negative curvature.\n  Hint: the eigenvector power_iteration returns "
                          "with lambda_min.")
        set_flat_params(net, saddle)
        curvature = float(escape @ library_hvp(net, mse_loss, x, y, escape)) / norm**2
        checks.check_true(curvature < 0.95 * low,
                          f"the curvature along escape, v.Hv / v.v, is "
                          f"{checks.format_number(curvature)}, expected {checks.format_number(low)}"
                          " (lambda_min).\n  Hint: escape is the vector of the shifted power "
                          "iteration that gave lambda_min, not the one of lambda_max.")
        saddle_mse = _mse(net, x_test, y_test)
        set_flat_params(net, trained)
        mse = _mse(net, x_test, y_test)
        checks.check_true(np.isfinite(mse) and mse < TARGET_MSE,
                          f"held-out MSE is {checks.format_number(mse)}, expected below "
                          f"{TARGET_MSE} (your trained network on the 25 held-out points; the "
                          f"saddle scores {checks.format_number(saddle_mse)}).\n  Hint: did "
                          "you start training from the saddle moved along escape, and did the "
                          "training loss fall?")
        print(f"held-out MSE {mse:.3f} after the escape (target < {TARGET_MSE}; at the saddle: "
              f"{saddle_mse:.3f})")
