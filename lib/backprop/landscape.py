"""The loss as a function of the parameters: lines, 2-D slices and curvature.

Every function sees the model's parameters as one flat vector (`get_flat_params`, in the order
of ``model.params``) and evaluates the FULL-BATCH loss ``loss_fn(model.forward(X), y)[0]`` in
evaluation mode (dropout off), so the loss is a deterministic function of the parameters.
Each call puts the original parameters and train/eval mode back when it returns (the model's
``grads`` are overwritten, though). Use float64 models: curvature comes from differences of
gradients, which float32 rounding would swamp. Curvature also needs a smooth loss: in a ReLU
network a step of ``eps`` moves some units across their kink, the finite-difference Hessian is
not symmetric and its eigenvalues are meaningless (`hessian_extreme_eigenvalues` then raises).
Measure curvature on tanh or sigmoid networks.
"""
from contextlib import contextmanager

import numpy as np

from .data import _generator, is_positive_int
from .layers import require_rng


# -- parameters as one vector ----------------------------------------------------------------
def get_flat_params(model):
    """A copy of all parameters concatenated into one vector, shape (P,), in ``model.params``
    order (each array flattened in C order)."""
    params = list(model.params.values())
    if not params:
        raise ValueError(f"get_flat_params: {model!r} has no parameters")
    return np.concatenate([p.ravel() for p in params])


def set_flat_params(model, vector):
    """Copy a (P,) vector (as `get_flat_params` returns) into the parameters, in place."""
    vector = np.asarray(vector)
    sizes = [p.size for p in model.params.values()]
    if vector.shape != (sum(sizes),):
        raise ValueError(f"set_flat_params: {model!r} has {sum(sizes)} parameters, so expected "
                         f"a vector of shape ({sum(sizes)},), got {vector.shape}")
    for param, chunk in zip(model.params.values(), np.split(vector, np.cumsum(sizes)[:-1])):
        param[...] = chunk.reshape(param.shape)


def _as_flat(model, params, owner):
    """A flat (P,) vector from a flat vector or a state dict ({name: array})."""
    if isinstance(params, dict):
        # a state dict also holds the model's buffers (running statistics): not parameters
        missing = sorted(set(model.params) ^ (set(params) - {n for n, _ in model.named_buffers()}))
        if missing:
            raise KeyError(f"{owner}: the state dict and the model differ in {missing}")
        params = np.concatenate([np.ravel(params[name]) for name in model.params])
    params = np.asarray(params, dtype=np.float64)
    n = model.num_parameters()
    if params.shape != (n,):
        raise ValueError(f"{owner}: expected a state dict or a vector of shape ({n},), "
                         f"got shape {params.shape}")
    return params


@contextmanager
def _restored(model):
    """Evaluation mode inside the block; parameters and mode are restored afterwards."""
    saved, was_training = get_flat_params(model), getattr(model, "training", True)
    model.eval()
    try:
        yield
    finally:
        set_flat_params(model, saved)
        if was_training:
            model.train()


def _loss(model, loss_fn, X, y):
    return float(loss_fn(model.forward(X), y)[0])


def _loss_and_grad(model, loss_fn, X, y):
    out = model.forward(X)
    loss, dout = loss_fn(out, y)
    model.zero_grad()  # a parameter the backward pass does not reach keeps a zero gradient
    model.backward(dout)
    return float(loss), np.concatenate([np.ravel(g) for _, _, g in model.named_parameters()])


def loss_and_grad(model, loss_fn, X, y):
    """The full-batch loss and its gradient as a flat vector: ``(loss: float, grad (P,))``."""
    with _restored(model):
        return _loss_and_grad(model, loss_fn, X, y)


# -- lines and planes through parameter space ------------------------------------------------
def linear_interpolation(model, params_a, params_b, loss_fn, X, y, alphas):
    """Loss along the straight line ``(1 - alpha) * params_a + alpha * params_b``.

    params_a, params_b: flat vectors (P,) or state dicts (``model.state_dict()``).
    alphas: (K,) positions; 0 is params_a, 1 is params_b, others extrapolate.
    Returns the losses, shape (K,).
    """
    a = _as_flat(model, params_a, "linear_interpolation(params_a)")
    b = _as_flat(model, params_b, "linear_interpolation(params_b)")
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    losses = np.empty(len(alphas))
    with _restored(model):
        for i, alpha in enumerate(alphas):
            set_flat_params(model, (1 - alpha) * a + alpha * b)
            losses[i] = _loss(model, loss_fn, X, y)
    return losses


def _unit_axes(param):
    """Axes to sum over for the norm of each output unit: Linear-style matrices W (in, out)
    have one unit per column; filters (F, C, kh, kw) one per slice along the first axis."""
    return (0,) if param.ndim == 2 else tuple(range(1, param.ndim))


def random_direction(model, rng, filter_normalize=True):
    """A random direction in parameter space, shape (P,), for plotting loss slices.

    Entries are standard normal. With filter_normalize (Li et al., 2018, "Visualizing the Loss
    Landscape of Neural Nets"), the direction is rescaled unit by unit so that each output
    unit's part has the norm of that unit's weights: a column of a (in, out) weight matrix, a
    filter of a (F, C, kh, kw) convolution. Then a step of 1 along it is equally large for every
    unit relative to its weights, whatever the layers' scales, and slices of different networks
    become comparable. Biases and other 1-D parameters get 0, as in the paper. Without
    filter_normalize, every entry (biases included) stays standard normal.
    """
    rng = require_rng(rng, "random_direction")
    parts = []
    for param in model.params.values():
        direction = rng.standard_normal(param.shape)
        if filter_normalize:
            if param.ndim < 2:
                direction = np.zeros(param.shape)
            else:
                axes = _unit_axes(param)
                weight_norm = np.sqrt(np.sum(param.astype(np.float64) ** 2, axis=axes,
                                             keepdims=True))
                dir_norm = np.sqrt(np.sum(direction**2, axis=axes, keepdims=True))
                direction = direction * weight_norm / np.maximum(dir_norm, 1e-12)
        parts.append(direction.ravel())
    return np.concatenate(parts)


def loss_surface_2d(model, loss_fn, X, y, dir1, dir2, alphas, betas):
    """Loss on the plane through the current parameters theta spanned by two directions.

    dir1, dir2: (P,) directions (e.g. from `random_direction`); alphas: (A,), betas: (B,).
    Returns Z of shape (B, A) with ``Z[i, j] = loss(theta + alphas[j] dir1 + betas[i] dir2)``,
    the layout of ``plt.contour(alphas, betas, Z)``.
    """
    theta = get_flat_params(model).astype(np.float64)
    dir1 = _as_flat(model, dir1, "loss_surface_2d(dir1)")
    dir2 = _as_flat(model, dir2, "loss_surface_2d(dir2)")
    alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    betas = np.atleast_1d(np.asarray(betas, dtype=np.float64))
    surface = np.empty((len(betas), len(alphas)))
    with _restored(model):
        for i, beta in enumerate(betas):
            for j, alpha in enumerate(alphas):
                set_flat_params(model, theta + alpha * dir1 + beta * dir2)
                surface[i, j] = _loss(model, loss_fn, X, y)
    return surface


# -- curvature -------------------------------------------------------------------------------
def _hvp(model, loss_fn, X, y, theta, v, eps):
    """H v by centred differences of gradients, parameters left perturbed (callers restore)."""
    norm = np.linalg.norm(v)
    if norm == 0:
        return np.zeros_like(theta)
    step = eps / norm  # the parameters move by eps, whatever the length of v
    set_flat_params(model, theta + step * v)
    _, grad_plus = _loss_and_grad(model, loss_fn, X, y)
    set_flat_params(model, theta - step * v)
    _, grad_minus = _loss_and_grad(model, loss_fn, X, y)
    return (grad_plus - grad_minus) / (2 * step)


def hessian_vector_product(model, loss_fn, X, y, v, eps=1e-5):
    """The Hessian of the loss times a vector v (P,), without forming the (P, P) Hessian.

    ``H v ~ (grad(theta + h v) - grad(theta - h v)) / (2 h)`` with ``h = eps / ||v||``, so the
    parameters move by eps. The error is O(eps**2) (exact, up to rounding, for a quadratic
    loss). Returns (P,).
    """
    v = _as_flat(model, v, "hessian_vector_product(v)")
    theta = get_flat_params(model).astype(np.float64)
    with _restored(model):
        return _hvp(model, loss_fn, X, y, theta, v, eps)


def _power_iteration(apply, dim, rng, iters, tol, found=(), estimate="rayleigh"):
    """Dominant eigenpair of a symmetric operator restricted to the complement of `found`.

    estimate "rayleigh": the eigenvalue v.Av; "norm": ||Av||, the spectral radius, which also
    converges when the two largest eigenvalues are +r and -r (then v.Av need not converge).
    Stops when the estimate changes by less than `tol` (an absolute tolerance).
    """
    def deflate(w):
        for u in found:  # Gram-Schmidt: stay orthogonal to the eigenvectors already found
            w = w - (u @ w) * u
        return w

    v = deflate(rng.standard_normal(dim))
    v /= np.linalg.norm(v)
    value = None
    for _ in range(iters):
        w = deflate(apply(v))
        norm = np.linalg.norm(w)
        new_value = norm if estimate == "norm" else float(v @ w)
        if norm == 0:  # the operator is zero here: any vector is an eigenvector
            return 0.0, v
        v = w / norm
        if value is not None and abs(new_value - value) <= tol:
            return new_value, v
        value = new_value
    return new_value, v


def _validate(owner, model, k, which, iters):
    if which not in ("largest", "smallest"):
        raise ValueError(f"{owner}: which must be 'largest' or 'smallest', got {which!r}")
    dim = model.num_parameters()
    if not (is_positive_int(k) and k <= dim):
        raise ValueError(f"{owner}: k must be an integer in 1..{dim} (the number of "
                         f"parameters), got {k!r}")
    if not is_positive_int(iters):
        raise ValueError(f"{owner}: iters must be an integer >= 1, got {iters!r}")


def _eigen_run(apply, k, dim, rng, iters, tol):
    """k dominant eigenpairs of a positive semidefinite operator, by deflated power iteration."""
    values, vectors = [], []
    for _ in range(k):
        value, vector = _power_iteration(apply, dim, rng, iters, tol, vectors)
        values.append(value)
        vectors.append(vector)
    return np.array(values), np.column_stack(vectors)


def _hessian_eigen(hvp, dim, rng, iters, tol, k_largest, k_smallest):
    """(largest values, vectors), (smallest values, vectors) with k_largest / k_smallest pairs
    (k_smallest may be 0), from the shifted operators described in `top_hessian_eigenvalues`."""
    radius, _ = _power_iteration(hvp, dim, rng, iters, 0.0, estimate="norm")
    if radius == 0:  # H = 0: every eigenvalue is 0 and every vector an eigenvector
        def basis(k):
            return np.zeros(k), np.linalg.qr(rng.standard_normal((dim, k)))[0]
        return basis(k_largest), basis(k_smallest)
    shifted_up, up_vectors = _eigen_run(lambda v: hvp(v) + radius * v, k_largest, dim, rng,
                                        iters, tol * radius)
    largest = (shifted_up - radius, up_vectors)
    if k_smallest == 0:
        return largest, (np.zeros(0), np.zeros((dim, 0)))
    lambda_max = largest[0][0]
    shifted_down, down_vectors = _eigen_run(lambda v: lambda_max * v - hvp(v), k_smallest, dim,
                                            rng, iters, tol * radius)
    return largest, (lambda_max - shifted_down, down_vectors)


def top_hessian_eigenvalues(model, loss_fn, X, y, k=1, *, which="largest", iters=100,
                            tol=1e-6, rng=None, eps=1e-5):
    """The k largest (or smallest) eigenvalues of the loss's Hessian, by power iteration.

    Power iteration finds the eigenvalue of largest MAGNITUDE, so the Hessian is shifted
    first to make the wanted end of the spectrum the dominant one: with r the spectral radius
    (itself found by power iteration), ``H + r I`` has eigenvalues ``lambda + r >= 0``, largest
    for the largest lambda; ``lambda_max I - H`` has ``lambda_max - lambda >= 0``, largest for
    the smallest lambda. The next eigenvalues come by deflation: each iteration stays
    orthogonal to the eigenvectors already found. Each product with H costs two gradients
    (`hessian_vector_product`).

    which: "largest" (sorted descending) or "smallest" (ascending). iters: the maximum number
    of products per eigenvalue; tol: stop when an estimate changes by less than
    ``tol * spectral radius``; rng: start vectors (None: seed 0).
    Returns ``(eigenvalues (k,), eigenvectors (P, k))``, unit eigenvectors in columns like
    ``np.linalg.eigh``. The smallest eigenvalues converge slowly when they sit close to the
    rest of the spectrum; an estimate never lies below the true smallest eigenvalue.
    """
    _validate("top_hessian_eigenvalues", model, k, which, iters)
    rng = _generator(rng, "top_hessian_eigenvalues")
    theta = get_flat_params(model).astype(np.float64)
    with _restored(model):
        largest, smallest = _hessian_eigen(
            lambda v: _hvp(model, loss_fn, X, y, theta, v, eps), len(theta), rng, iters, tol,
            k if which == "largest" else 1, k if which == "smallest" else 0,
        )
    return largest if which == "largest" else smallest


def hessian_extreme_eigenvalues(model, loss_fn, X, y, *, iters=100, tol=1e-6, rng=None,
                                eps=1e-5):
    """``(lambda_min, lambda_max)``: the smallest and the largest Hessian eigenvalue (see
    `top_hessian_eigenvalues`, whose work this shares)."""
    _validate("hessian_extreme_eigenvalues", model, 1, "largest", iters)
    rng = _generator(rng, "hessian_extreme_eigenvalues")
    theta = get_flat_params(model).astype(np.float64)
    with _restored(model):
        (largest, _), (smallest, _) = _hessian_eigen(
            lambda v: _hvp(model, loss_fn, X, y, theta, v, eps), len(theta), rng, iters, tol,
            1, 1,
        )
    lambda_min, lambda_max = float(smallest[0]), float(largest[0])
    if lambda_min > lambda_max + 1e-6 * max(1.0, abs(lambda_max)):
        raise ValueError(
            f"hessian_extreme_eigenvalues: the smallest eigenvalue estimate ({lambda_min:.3g}) "
            f"lies above the largest ({lambda_max:.3g}), so the finite-difference Hessian is not "
            "a symmetric matrix here: the loss is not smooth at this point (ReLU units at their "
            "kink). Use a tanh or sigmoid network to measure curvature."
        )
    return lambda_min, lambda_max


def classify_critical_point(model, loss_fn, X, y, *, grad_tol=1e-5, curvature_tol=1e-5,
                            iters=200, tol=1e-8, rng=None, eps=1e-5):
    """What kind of point the current parameters are, from the gradient and the curvature.

    Returns "not critical" when the gradient norm exceeds grad_tol; otherwise, with
    ``lambda_min`` and ``lambda_max`` the extreme Hessian eigenvalues (`top_hessian_eigenvalues`)
    and eigenvalues within ``curvature_tol`` of 0 counted as 0:
    "saddle" (curvature of both signs), "minimum" (none negative, some positive; flat
    directions allowed, as networks have many), "maximum" (none positive, some negative) or
    "flat" (all zero: the second derivative cannot decide). Power iteration only approaches
    lambda_min from above, so "minimum" means no negative curvature showed up within `iters`.
    """
    _, grad = loss_and_grad(model, loss_fn, X, y)
    if np.linalg.norm(grad) > grad_tol:
        return "not critical"
    lambda_min, lambda_max = hessian_extreme_eigenvalues(model, loss_fn, X, y, iters=iters,
                                                         tol=tol, rng=rng, eps=eps)
    positive, negative = lambda_max > curvature_tol, lambda_min < -curvature_tol
    if positive and negative:
        return "saddle"
    if positive:
        return "minimum"
    if negative:
        return "maximum"
    return "flat"
