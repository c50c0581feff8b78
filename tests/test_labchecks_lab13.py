"""Lab 13's visible checks: the KL divergence they compute by quadrature is the closed form, the
checks pass right answers and name wrong ones, the sampling layer's check refuses a layer that
redraws its noise or samples in evaluation mode, and the build-and-train targets separate a VAE
whose KL path works from one whose KL gradient never reaches the encoder."""
import re

import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.labchecks import lab13
from backprop.layers import Layer, Sequential
from backprop.losses import binary_cross_entropy_with_logits
from backprop.optim import Adam


# -- right answers, written here independently of the solution notebook ---------------------------
def softplus(s):
    return np.logaddexp(0.0, s)


def softplus_grad(s):
    return np.exp(-np.logaddexp(0.0, -s))  # the logistic function, exp(-softplus(-s))


def closed_form_kl(mu, s, sigma_p):
    """Entrywise KL(N(mu, sigma^2) || N(0, sigma_p^2)), sigma = softplus(s): the textbook form."""
    var, var_p = softplus(s) ** 2, np.asarray(sigma_p, dtype=float) ** 2
    return 0.5 * (np.log(var_p / var) + (var + mu**2) / var_p - 1)


def kl_to_prior(mu, s, sigma_p):
    n, sigma, var_p = len(mu), softplus(s), np.asarray(sigma_p, dtype=float) ** 2
    dsigma = (sigma / var_p - 1 / sigma) / n
    return closed_form_kl(mu, s, sigma_p).sum() / n, mu / var_p / n, dsigma * softplus_grad(s)


class Sampler(Layer):
    """A SoftplusGaussian; redraw=True draws new noise in backward, always_sample=True samples
    in evaluation mode too (two mistakes)."""

    def __init__(self, rng, redraw=False, always_sample=False):
        super().__init__()
        self.rng, self.redraw, self.always_sample = rng, redraw, always_sample

    def forward(self, h):
        k = h.shape[1] // 2
        self.s = h[:, k:]
        if not self.training and not self.always_sample:
            return h[:, :k]
        self.eps = self.rng.standard_normal((len(h), k))
        return h[:, :k] + softplus(self.s) * self.eps

    def backward(self, dz):
        if self.redraw:
            self.eps = self.rng.standard_normal(dz.shape)
        return np.concatenate([dz, dz * self.eps * softplus_grad(self.s)], axis=1)


def test_the_quadrature_kl_is_the_closed_form():
    rng = np.random.default_rng(0)
    mu, s = 2 * rng.standard_normal((5, 3)), 4 * rng.standard_normal((5, 3))
    for sigma_p in (0.5, 2.0, np.array([0.3, 1.0, 3.0])):
        sigma = softplus(s)
        np.testing.assert_allclose(lab13._kl_entries(mu, sigma, sigma_p),
                                   closed_form_kl(mu, s, sigma_p), rtol=1e-12, atol=1e-12)


def test_the_checks_pass_right_answers():
    lab = fresh("lab13")
    lab.check_softplus(softplus)
    lab.check_softplus_grad(softplus_grad)
    lab.check_reparam_sample(lambda mu, s, eps: mu + softplus(s) * eps)
    lab.check_reparam_backward(lambda dz, s, eps: (dz, dz * eps * softplus_grad(s)))
    lab.check_kl_to_prior(kl_to_prior)


@pytest.mark.parametrize("function, named", [
    (lambda s: np.log(1 + np.exp(s)), "did exp overflow"),
    (lambda s: np.where(s > 30, s, np.log1p(np.exp(s))), "np.where computes both branches"),
    (np.exp, "that is exp(s)"),
])
def test_the_softplus_check_names_unstable_and_wrong_forms(function, named):
    with np.errstate(over="ignore"), pytest.raises(LabCheckError, match=re.escape(named)):
        fresh("lab13").check_softplus(function)


def test_the_derivative_must_keep_its_relative_precision_far_below_zero():
    """1 + tanh(s / 2) rounds to 0 at s = -40, where the KL term's ds needs exp(s) / sigma ~ 1."""
    with pytest.raises(LabCheckError, match="tiny but not 0"):
        fresh("lab13").check_softplus_grad(lambda s: 0.5 * (1 + np.tanh(s / 2)))


def test_the_kl_check_names_the_standard_normal_prior_and_the_sum_over_the_batch():
    def standard(mu, s, sigma_p):
        return kl_to_prior(mu, s, 1.0)

    def summed(mu, s, sigma_p):
        loss, dmu, ds = kl_to_prior(mu, s, sigma_p)
        return loss * len(mu), dmu * len(mu), ds * len(mu)

    with pytest.raises(LabCheckError, match=r"not N\(0, 1\)"):
        fresh("lab13").check_kl_to_prior(standard)
    with pytest.raises(LabCheckError, match="a sum over the batch, not a mean"):
        fresh("lab13").check_kl_to_prior(summed)


@pytest.mark.parametrize("mistake, named", [
    (dict(redraw=True), "the noise of ITS forward pass"),
    (dict(always_sample=True), "it should be mu, no noise"),
])
def test_the_sampler_check_refuses_new_noise_in_backward_and_noise_in_evaluation(mistake,
                                                                                    named):
    lab = fresh("lab13")
    lab._check_sampler(Sampler(np.random.default_rng(0)))
    with pytest.raises(LabCheckError, match=named):
        lab._check_sampler(Sampler(np.random.default_rng(0), **mistake))


def train_vae(kl_path=True, seed=0, hidden=128, epochs=40, lr=3e-3):
    """The lab's solution, written again: its encoder, sampler and decoder after training."""
    X_train, _, _ = lab13.digits_pixels()
    encoder, decoder = lab13.vae_reference(hidden)
    rng = np.random.default_rng(seed)
    for net in (encoder, decoder):  # fresh weights from this seed
        for name, value in net.params.items():
            if name.endswith("W"):
                net.params[name] = rng.standard_normal(value.shape) / np.sqrt(value.shape[0])
    sampler, order_rng, K = Sampler(np.random.default_rng(seed + 1)), \
        np.random.default_rng(seed + 2), lab13.K
    optimizer = Adam(Sequential(encoder, sampler, decoder), lr=lr)
    for _ in range(epochs):
        order = order_rng.permutation(len(X_train))
        for start in range(0, len(order), 32):
            xb = X_train[order[start:start + 32]]
            h = encoder.forward(xb)
            _, dlogits = binary_cross_entropy_with_logits(decoder.forward(sampler.forward(h)),
                                                          xb)
            dh = sampler.backward(decoder.backward(dlogits * xb.shape[1]))
            if kl_path:
                _, dmu, ds = kl_to_prior(h[:, :K], h[:, K:], lab13.SIGMA_P)
                dh = dh + np.concatenate([dmu, ds], axis=1)
            encoder.backward(dh)
            optimizer.step()
    return encoder, sampler, decoder


def test_the_solution_beats_pca_with_margin_and_its_kl_lies_inside_the_range(capsys):
    encoder, sampler, decoder = train_vae(seed=3)
    fresh("lab13").check_build_and_train(encoder, sampler, decoder)
    printed = capsys.readouterr().out
    error = float(printed.split("test reconstruction error ")[1].split()[0])
    kl = float(printed.split("mean KL per dimension ")[1].split()[0])
    assert error < 0.85 * lab13.pca_error(), printed
    low, high = lab13.KL_RANGE
    assert 2 * low < kl < high / 2, printed


def test_without_the_kl_path_the_kl_per_dimension_leaves_the_range():
    encoder, sampler, decoder = train_vae(kl_path=False, epochs=15)
    with pytest.raises(LabCheckError, match="does the KL term's gradient reach the encoder"):
        fresh("lab13").check_build_and_train(encoder, sampler, decoder)
