"""Visible checks of lab 13 (a VAE with a softplus scale and a prior of any width): the stable
softplus and its derivative, the reparameterised sample and its backward pass, the KL divergence
to the prior N(0, sigma_p^2 I) and its gradients, the negative ELBO's gradient with respect to
the encoder's outputs, and the learner's VAE trained on the digits, measured on held-out digits.

No expected value here is computed the way an answer is: softplus comes from `np.logaddexp`,
the KL divergence from its definition (the expectation of log q - log p under q, by
Gauss-Hermite quadrature, exact for a quadratic), every gradient from finite differences of
those. The values of known mistakes are finite differences of the wrong function a mistake
differentiates, or that function itself.
"""
from backprop import checks
from backprop import gradcheck
import numpy as np

from backprop import data, functional
from backprop.layers import Layer, Linear, ReLU, Sequential

K = 4            # latent dimensions of the build-and-train VAE
SIGMA_P = 0.5    # the build-and-train prior N(0, SIGMA_P^2 I)
KL_RANGE = (0.2, 4.0)  # mean KL per latent dimension (nats) of a VAE whose KL path works

OVERFLOW = ("exp of a large positive number overflows (float64: above 709): write it so that "
            "exp only ever sees numbers <= 0, and mind that np.where computes both branches")
TAILS = ("far below 0 the value is tiny but not 0 (about exp(s): keep its relative precision, "
         "no 1 - something that rounds away), far above 0 it must not overflow")
EXP_SCALE = ("sigma = softplus(s) here, not exp(s): this encoder's s is not a log of sigma")
LESSON_SCALE = ("that is the lesson's exp(logvar / 2): this encoder's s gives sigma = "
                "softplus(s)")
VARIANCE = "eps is scaled by the standard deviation sigma, not by the variance sigma**2"
NO_EPS = "the sample's sigma is multiplied by eps: its gradient carries eps too"
NO_CHAIN = ("s reaches sigma through softplus: multiply by softplus's derivative (the chain "
            "rule's last factor)")
SIGMA_AS_DERIVATIVE = ("d sigma / ds is softplus's derivative, not sigma itself (that holds "
                       "for exp)")
STANDARD_PRIOR = ("the prior is N(0, sigma_p^2), not N(0, 1): sigma_p belongs in the KL "
                  "(the lesson's prior had sigma_p = 1)")
A_SUM = "a sum over the batch, not a mean: average the examples' KL over N"
LOG_RATIO = "the log ratio has its sign flipped: KL(q || p) = E_q[log q - log p]"
NO_HALF = "the -1/2 per dimension is missing: the KL of a distribution to itself is 0"
NO_KL_PATH = ("mu reaches the loss twice, through the sample z AND through the KL term: the "
              "KL path into mu is missing")
NO_KL = "the KL term's gradient is missing: h reaches the loss through the KL term too"
PIXEL_MEAN = ("the reconstruction term sums over the pixels (a Bernoulli log-likelihood per "
              "image), then averages over the images")


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed one of its input arrays in place: compute new arrays "
                      "and return them.")


def _strict(function, *args):
    """``(result, None)``, or ``(None, error)`` when an overflow or invalid-value warning fires."""
    with np.errstate(over="raise", invalid="raise"):
        try:
            return function(*args), None
        except FloatingPointError as err:
            return None, err


def _softplus(s):
    return np.logaddexp(0.0, s)


def _kl_entries(mu, sigma, sigma_p):
    """KL(N(mu, sigma^2) || N(0, sigma_p^2)) of every entry, from its definition: the mean of
    log q(z) - log p(z) over z ~ q, by Gauss-Hermite quadrature (exact: the integrand is a
    quadratic in the standard-normal variable t, z = mu + sigma t)."""
    t, weights = np.polynomial.hermite_e.hermegauss(8)
    weights = weights / np.sqrt(2 * np.pi)
    mu, sigma = np.asarray(mu, dtype=float)[..., None], np.asarray(sigma, dtype=float)[..., None]
    sigma_p = np.asarray(sigma_p, dtype=float)[..., None]
    z = mu + sigma * t
    log_q = -0.5 * t**2 - np.log(sigma)
    log_p = -0.5 * (z / sigma_p)**2 - np.log(sigma_p)
    return ((log_q - log_p) * weights).sum(axis=-1)


def _kl(mu, s, sigma_p, per_batch=True):
    """The lab's KL term: summed over the latent dimensions, averaged over the batch."""
    total = _kl_entries(mu, _softplus(s), sigma_p).sum()
    return total / len(mu) if per_batch else total


# -- 1. softplus and its derivative ---------------------------------------------------------------
EXTREME = np.array([-1000.0, -750.0, -40.0, -1.0, 0.0, 1.0, 40.0, 750.0, 1000.0])


def _check_extremes(name, function, expected):
    """`function` at s = EXTREME: the values (inf or nan named first), then no overflow."""
    with np.errstate(over="ignore", invalid="ignore"):
        big = checks.check_call(f"{name}(s_big)", function, EXTREME.copy())
    checks.check_close(f"{name}(s_big) for s_big = {checks.format_values(EXTREME)}", big,
                       expected, rtol=1e-7, atol=1e-300, hint=TAILS)
    _, problem = _strict(function, EXTREME.copy())
    checks.check_true(problem is None, f"{name}(s) raised '{problem}' for "
                      f"s = {checks.format_values(EXTREME)}.\n  Hint: {OVERFLOW}.")


def check_softplus(softplus):
    """Values against np.logaddexp(0, s), the identity softplus(s) - softplus(-s) = s, no
    overflow for |s| up to 1000, the input left as it was."""
    with checks.report("softplus"):
        rng = np.random.default_rng(1)
        s = rng.normal(scale=3.0, size=(3, 4))
        saved = s.copy()
        out = checks.check_call("softplus(s)", softplus, s)
        _unchanged("softplus", [s], [saved])
        checks.check_close("softplus(s) for s of shape (3, 4)", out, _softplus(s), mistakes={
            "that is softplus(-s): check the sign of the exponent": _softplus(-s),
            "that is exp(s): softplus is log(1 + exp(s))": np.exp(s),
            "that is log(exp(s)) = s without the 1: softplus is log(1 + exp(s))": s})
        checks.check_close("softplus(0)", checks.check_call("softplus(0)", softplus,
                                                            np.zeros(1)), [np.log(2.0)])
        checks.check_close("softplus(s) - softplus(-s) (it should be s)",
                           np.asarray(out, dtype=float) - np.asarray(softplus(-s), dtype=float),
                           s)
        _check_extremes("softplus", softplus, _softplus(EXTREME))


def check_softplus_grad(softplus_grad):
    """Against finite differences of softplus (np.logaddexp), the symmetry g(s) + g(-s) = 1, the
    limits at s = +-1000, no overflow."""
    with checks.report("softplus_grad"):
        rng = np.random.default_rng(2)
        s = rng.normal(scale=3.0, size=(4, 3))
        saved = s.copy()
        out = checks.check_call("softplus_grad(s)", softplus_grad, s)
        _unchanged("softplus_grad", [s], [saved])
        expected = gradcheck.numerical_gradient(_softplus, s.copy(), np.ones_like(s))
        with np.errstate(over="ignore"):
            exp_over = np.exp(s) / (1 + np.exp(s)) ** 2
        checks.check_close("softplus_grad(s) for s of shape (4, 3)", out, expected, mistakes={
            "that is sigmoid(-s): check the sign (softplus grows with s, and faster for "
            "larger s: its derivative increases)": 1 - expected,
            "that is softplus(s) itself: differentiate log(1 + exp(s))": _softplus(s),
            "that is the derivative of sigmoid, not of softplus": exp_over,
            "that is exp(s), the derivative of exp: differentiate log(1 + exp(s))": np.exp(s)})
        # far from 0 the derivative is 1 (s >= 40) or exp(s) (s <= -40) to 17 digits
        moderate = np.abs(EXTREME) < 40
        limits = np.where(EXTREME >= 40, 1.0, np.exp(np.minimum(EXTREME, 0)))
        limits[moderate] = gradcheck.numerical_gradient(_softplus, EXTREME[moderate].copy(),
                                                        np.ones(moderate.sum()))
        _check_extremes("softplus_grad", softplus_grad, limits)
        both = np.asarray(out, dtype=float) + np.asarray(softplus_grad(-s), dtype=float)
        checks.check_close("softplus_grad(s) + softplus_grad(-s) (it should be 1)", both,
                           np.ones_like(s))


# -- 2. the reparameterised sample ----------------------------------------------------------------
def _sample(mu, s, eps):
    return mu + _softplus(s) * eps


def check_reparam_sample(reparam_sample):
    """z = mu + softplus(s) * eps on several shapes (s up to +-50), z = mu when eps = 0."""
    with checks.report("reparam_sample"):
        rng = np.random.default_rng(3)
        for N, k in [(3, 2), (1, 4), (5, 3)]:
            where = f"(N, k) = {(N, k)}"
            mu, s, eps = (rng.normal(scale=2.0, size=(N, k)) for _ in range(3))
            saved = [a.copy() for a in (mu, s, eps)]
            z = checks.check_call(f"reparam_sample for {where}", reparam_sample, mu, s, eps)
            _unchanged("reparam_sample", (mu, s, eps), saved)
            checks.check_close(f"z for {where}", z, _sample(mu, s, eps), mistakes={
                EXP_SCALE: mu + np.exp(s) * eps,
                LESSON_SCALE: mu + np.exp(s / 2) * eps,
                VARIANCE: mu + _softplus(s) ** 2 * eps,
                "the sample is mu plus noise: mu is missing": _softplus(s) * eps})
        mu, s = rng.normal(size=(2, 3)), np.array([[-50.0, 0.0, 50.0], [3.0, -3.0, 0.5]])
        checks.check_close("z when eps = 0 (it should be mu)",
                           reparam_sample(mu, s, np.zeros((2, 3))), mu)
        eps = rng.normal(size=(2, 3))
        checks.check_close("z for s = [[-50, 0, 50], [3, -3, 0.5]]",
                           _strict(reparam_sample, mu, s, eps)[0], _sample(mu, s, eps),
                           hint=OVERFLOW)


def check_reparam_backward(reparam_backward):
    """dmu and ds against finite differences of z = mu + softplus(s) * eps, with eps held at the
    forward pass's draw."""
    with checks.report("reparam_backward"):
        rng = np.random.default_rng(4)
        for N, k in [(3, 2), (1, 4), (5, 3)]:
            where = f"(N, k) = {(N, k)}"
            mu, s, eps, dz = (rng.normal(scale=2.0, size=(N, k)) for _ in range(4))
            saved = [a.copy() for a in (dz, s, eps)]
            result = checks.check_call(f"reparam_backward for {where}", reparam_backward,
                                       dz, s, eps)
            checks.check_tuple("reparam_backward", result, ["dmu", "ds"])
            _unchanged("reparam_backward", (dz, s, eps), saved)
            dmu, ds = result
            expected_dmu = gradcheck.numerical_gradient(lambda m: _sample(m, s, eps),
                                                        mu.copy(), dz)
            expected_ds = gradcheck.numerical_gradient(lambda v: _sample(mu, v, eps),
                                                       s.copy(), dz)
            dsigma = gradcheck.numerical_gradient(lambda v: mu + v * eps, _softplus(s),
                                                  dz)  # the gradient reaching sigma
            slope = gradcheck.numerical_gradient(_softplus, s.copy(), np.ones_like(s))
            checks.check_close(f"dmu for {where}", dmu, expected_dmu, rtol=1e-6, atol=1e-8,
                               batch_size=N, mistakes={
                "mu enters z with weight 1: dmu is dz, with no eps": dz * eps,
                "mu enters z with weight 1: dmu is dz, with no softplus": dz * slope})
            checks.check_close(f"ds for {where}", ds, expected_ds, rtol=1e-6, atol=1e-8,
                               batch_size=N, mistakes={
                NO_EPS: dz * slope,
                NO_CHAIN: dsigma,
                SIGMA_AS_DERIVATIVE: dsigma * _softplus(s),
                EXP_SCALE: dz * eps * np.exp(s)})


# -- 3. the KL term -------------------------------------------------------------------------------
def check_kl_to_prior(kl_to_prior):
    """The loss against the definition of KL (quadrature), its gradients against finite
    differences of it; KL = 0 with zero gradients when q is the prior, KL >= 0."""
    with checks.report("kl_to_prior"):
        rng = np.random.default_rng(5)
        for N, k, sigma_p in [(3, 2, 0.5), (1, 4, 2.0), (5, 3, 0.3)]:
            where = f"(N, k) = {(N, k)}, sigma_p = {sigma_p}"
            mu, s = rng.normal(size=(N, k)), rng.normal(size=(N, k))
            saved = [mu.copy(), s.copy()]
            result = checks.check_call(f"kl_to_prior for {where}", kl_to_prior, mu, s, sigma_p)
            checks.check_tuple("kl_to_prior", result, ["loss", "dmu", "ds"])
            _unchanged("kl_to_prior", (mu, s), saved)
            loss, dmu, ds = result
            sigma = _softplus(s)
            expected = _kl(mu, s, sigma_p)
            log_ratio = np.log(sigma_p / sigma).sum() / N
            checks.check_scalar(f"loss for {where}", loss, expected, batch_size=N, mistakes={
                STANDARD_PRIOR: _kl(mu, s, 1.0),
                A_SUM: _kl(mu, s, sigma_p, per_batch=False),
                LOG_RATIO: expected - 2 * log_ratio,
                NO_HALF: expected + k / 2,
                EXP_SCALE: _kl_entries(mu, np.exp(s), sigma_p).sum() / N})

            def gradients(sp):
                return (gradcheck.numerical_gradient(lambda m: _kl(m, s, sp), mu.copy()),
                        gradcheck.numerical_gradient(lambda v: _kl(mu, v, sp), s.copy()))

            expected_dmu, expected_ds = gradients(sigma_p)
            standard_dmu, standard_ds = gradients(1.0)
            dsigma = gradcheck.numerical_gradient(
                lambda v: _kl_entries(mu, v, sigma_p).sum() / N, sigma.copy())
            checks.check_close(f"dmu for {where}", dmu, expected_dmu, batch_size=N, mistakes={
                STANDARD_PRIOR: standard_dmu})
            checks.check_close(f"ds for {where}", ds, expected_ds, rtol=1e-6, atol=1e-8,
                               batch_size=N, mistakes={
                STANDARD_PRIOR: standard_ds,
                NO_CHAIN: dsigma,
                SIGMA_AS_DERIVATIVE: dsigma * sigma,
                LOG_RATIO: expected_ds + 2 * gradcheck.numerical_gradient(
                    lambda v: np.log(_softplus(v)).sum() / N, s.copy())})
        # q equal to the prior: KL 0, no gradient; sigma_p per dimension works too
        sigma_p = np.array([0.5, 1.0, 2.0])
        s = np.log(np.expm1(sigma_p)) * np.ones((4, 1))  # softplus(s) = sigma_p
        loss, dmu, ds = kl_to_prior(np.zeros((4, 3)), s, sigma_p)
        checks.check_scalar("loss when q is the prior (it should be 0)", loss, 0.0,
                            atol=1e-12, mistakes={NO_HALF: 1.5})
        checks.check_close("ds when q is the prior (it should be 0)", ds, np.zeros((4, 3)),
                           atol=1e-12)
        mu, s = 3 * rng.normal(size=(6, 3)), 3 * rng.normal(size=(6, 3))
        loss = float(np.asarray(kl_to_prior(mu, s, 0.7)[0], dtype=float))
        checks.check_true(loss >= 0, f"the KL loss = {checks.format_number(loss)}, expected "
                          "at least 0 (a KL divergence is never negative): check the signs.")


# -- 4. the negative ELBO's gradient with respect to the encoder's outputs -----------------------
def _recon(x, h, eps, W, b, per_pixel_mean=False):
    """The reconstruction term: Bernoulli cross-entropy of the decoder's logits, summed over the
    pixels (or averaged, a mistake), averaged over the images."""
    k = h.shape[1] // 2
    logits = _sample(h[:, :k], h[:, k:], eps) @ W + b
    total = (np.logaddexp(0.0, logits) - x * logits).sum() / len(x)
    return total / x.shape[1] if per_pixel_mean else total


def _elbo_inputs(rng, N, k, D):
    x = rng.random((N, D))
    h = np.concatenate([rng.normal(size=(N, k)), rng.normal(scale=0.7, size=(N, k))], axis=1)
    return x, h, rng.normal(size=(N, k)), rng.normal(size=(k, D)), rng.normal(size=D)


def check_negative_elbo(negative_elbo):
    """The loss against its definition, dh against finite differences of it."""
    with checks.report("negative_elbo"):
        rng = np.random.default_rng(6)
        for N, k, D, sigma_p in [(3, 2, 5, 0.5), (1, 3, 4, 2.0), (4, 2, 6, 1.5)]:
            where = f"(N, k, D) = {(N, k, D)}, sigma_p = {sigma_p}"
            x, h, eps, W, b = _elbo_inputs(rng, N, k, D)
            saved = [a.copy() for a in (x, h, eps, W, b)]
            result = checks.check_call(f"negative_elbo for {where}", negative_elbo,
                                       x, h, eps, W, b, sigma_p)
            checks.check_tuple("negative_elbo", result, ["loss", "dh"])
            _unchanged("negative_elbo", (x, h, eps, W, b), saved)
            loss, dh = result
            recon, kl = _recon(x, h, eps, W, b), _kl(h[:, :k], h[:, k:], sigma_p)
            checks.check_scalar(f"loss for {where}", loss, recon + kl, batch_size=N, mistakes={
                PIXEL_MEAN: recon / D + kl,
                "the loss is the reconstruction term PLUS the KL term": recon - kl,
                "the KL term is missing from the loss": recon,
                STANDARD_PRIOR: recon + _kl(h[:, :k], h[:, k:], 1.0)})

            def grad(f):
                return gradcheck.numerical_gradient(f, h.copy())

            d_recon = grad(lambda h_: _recon(x, h_, eps, W, b))
            d_kl = grad(lambda h_: _kl(h_[:, :k], h_[:, k:], sigma_p))
            kl_into_s = np.concatenate([np.zeros((N, k)), d_kl[:, k:]], axis=1)
            checks.check_close(f"dh for {where}", dh, d_recon + d_kl, rtol=1e-6, atol=1e-8,
                               batch_size=N, mistakes={
                NO_KL_PATH: d_recon + kl_into_s,
                NO_KL: d_recon,
                PIXEL_MEAN: d_recon / D + d_kl,
                STANDARD_PRIOR: d_recon + grad(lambda h_: _kl(h_[:, :k], h_[:, k:], 1.0)),
                "the gradient of the reconstruction term is missing: h reaches it through "
                "the sample z": d_kl})


# -- 5. build and train ---------------------------------------------------------------------------
def digits_pixels():
    """The digits' pixels in [0, 1], split as every lab splits them (seed 0):
    ``(X_train, X_val, X_test)``."""
    X, y = data.load_digits()
    splits = data.train_val_test_split(X, y, seed=0)
    return splits.X_train, splits.X_val, splits.X_test


def vae_reference(hidden, k=K):
    """The lab's encoder and decoder from the library's layers (weights to be replaced):
    Linear(64, hidden), ReLU, Linear(hidden, 2k) and Linear(k, hidden), ReLU, Linear(hidden, 64)."""
    rng = np.random.default_rng(0)
    return (Sequential(Linear(64, hidden, rng=rng), ReLU(), Linear(hidden, 2 * k, rng=rng)),
            Sequential(Linear(k, hidden, rng=rng), ReLU(), Linear(hidden, 64, rng=rng)))


def pca_error(k=K):
    """The mean squared error per pixel of PCA with k components (scikit-learn, fitted on the
    training digits) on the test digits."""
    from sklearn.decomposition import PCA

    X_train, _, X_test = digits_pixels()
    pca = PCA(n_components=k).fit(X_train)
    return float(((pca.inverse_transform(pca.transform(X_test)) - X_test) ** 2).mean())


def _check_sampler(sampler):
    """The learner's sampling layer: the sample from the noise it kept, the backward pass with
    that same noise, no parameters, and z = mu in evaluation mode."""
    checks.check_true(isinstance(sampler, Layer),
                      f"sampler should be your SoftplusGaussian layer (a Layer), got "
                      f"{type(sampler).__name__}.")
    checks.check_true(not sampler.params, "SoftplusGaussian has no parameters: its params "
                      f"should be empty, got {sorted(sampler.params)}.")
    rng = np.random.default_rng(7)
    was_training = sampler.training
    sampler.train()
    for N, k in [(5, 3), (1, 2)]:
        where = f"(N, k) = {(N, k)}"
        h, dz = rng.normal(size=(N, 2 * k)), rng.normal(size=(N, k))
        mu, s = h[:, :k], h[:, k:]
        z = checks.check_call(f"sampler.forward for {where}", sampler.forward, h.copy())
        eps = np.array(getattr(sampler, "eps", None), dtype=float)
        checks.check_true(eps.shape == (N, k), f"sampler.eps has shape {eps.shape}, expected "
                          f"{(N, k)}: keep the noise of the forward pass in self.eps.")
        checks.check_close(f"sampler.forward(h) for {where}", z, _sample(mu, s, eps),
                           hint="z = mu + softplus(s) * self.eps, with h = [mu | s] (mu the "
                           "first k columns)")
        second = checks.check_call(f"sampler.forward for {where}", sampler.forward, h.copy())
        checks.check_true(not np.allclose(second, z), "two training-mode forward passes gave "
                          "the same z: draw new noise from self.rng at every forward pass.")
        eps = np.array(sampler.eps, dtype=float)
        dh = checks.check_call(f"sampler.backward for {where}", sampler.backward, dz.copy())
        expected = gradcheck.numerical_gradient(
            lambda h_: _sample(h_[:, :k], h_[:, k:], eps), h.copy(), dz)
        checks.check_close(f"sampler.backward(dz) for {where}", dh, expected,
                           hint="the backward pass uses the noise of ITS forward pass (the "
                           "eps kept in self.eps): a new draw is the gradient of another "
                           "sample")
    sampler.eval()
    h = rng.normal(size=(4, 6))
    z = checks.check_call("sampler.forward in evaluation mode", sampler.forward, h.copy())
    checks.check_close("z in evaluation mode (it should be mu, no noise)", z, h[:, :3])
    if was_training:
        sampler.train()


def check_build_and_train(encoder, sampler, decoder):
    """The learner's sampling layer, then the trained encoder and decoder, their weights loaded
    into the same networks of the library's layers, measured on the test digits with z = mu:
    the reconstruction error against PCA's with as many components, and the mean KL per latent
    dimension (a VAE whose KL path works keeps it in KL_RANGE)."""
    with checks.report("build_and_train"):
        _check_sampler(sampler)
        for name, net in [("encoder", encoder), ("decoder", decoder)]:
            checks.check_true(isinstance(net, Layer), f"{name} should be the trained network "
                              f"made by vae_networks, got {type(net).__name__}.")
        state = {f"e.{n}": v for n, v in encoder.state_dict().items()}
        state.update((f"d.{n}", v) for n, v in decoder.state_dict().items())
        hidden = np.shape(state.get("e.0.W", np.zeros((64, 0))))[1]
        reference_encoder, reference_decoder = vae_reference(max(hidden, 1))
        for name, net, reference in [("encoder", encoder, reference_encoder),
                                     ("decoder", decoder, reference_decoder)]:
            shapes = {n: np.shape(v) for n, v in net.state_dict().items()}
            expected = {n: np.shape(v) for n, v in reference.state_dict().items()}
            checks.check_true(hidden > 0 and shapes == expected,
                              f"{name} should be vae_networks(k={K}, ...)'s {name}: parameters "
                              f"{expected}, got {shapes}.")
            reference.load_state_dict(net.state_dict())
        reference_encoder.eval()
        reference_decoder.eval()
        _, _, X_test = digits_pixels()
        h = reference_encoder.forward(X_test)
        mu, s = h[:, :K], h[:, K:]
        error = float(((functional.sigmoid(reference_decoder.forward(mu)) - X_test) ** 2).mean())
        target = pca_error()
        checks.check_true(np.isfinite(error) and error < target,
                          f"the test reconstruction error is {checks.format_number(error)}, "
                          f"expected below {checks.format_number(target)} (PCA with {K} "
                          "components)\n  Hint: is the reconstruction term summed over the 64 "
                          "pixels (binary_cross_entropy_with_logits averages over all entries: "
                          "rescale its gradient)? Is the loss falling? Train longer.")
        kl_per_dim = float(_kl(mu, s, SIGMA_P) / K)
        low, high = KL_RANGE
        bound, why = (f"at least {low}", "the codes carry almost nothing: is the KL term "
                      f"averaged over the batch, with sigma_p = {SIGMA_P}?") \
            if kl_per_dim < low else (f"at most {high}", "does the KL term's gradient reach "
                                      "the encoder (both mu and s)?")
        checks.check_true(low <= kl_per_dim <= high,
                          f"the mean KL per latent dimension is {checks.format_number(kl_per_dim)}"
                          f", expected {bound} (nats, on the test digits)\n  Hint: {why}")
    print(f"  test reconstruction error {error:.4f} (PCA with {K} components: {target:.4f}); "
          f"mean KL per dimension {kl_per_dim:.2f} nats (sane: {low} to {high})")
