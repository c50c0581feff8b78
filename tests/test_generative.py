"""The generative models' pieces: the reparameterised Gaussian sample, the KL term and the GAN
losses, against finite differences in float64, their statistics and invariants, float32, bad
input, and PyTorch when it is installed."""
import copy

import numpy as np
import pytest

from backprop.generative import (GaussianSample, gan_discriminator_loss, gan_generator_loss,
                                 gaussian_kl)
from backprop.gradcheck import check_layer, numerical_gradient, rel_error
from backprop.layers import Linear, Sequential, Tanh
from backprop.losses import binary_cross_entropy_with_logits

TOL = 1e-7
# (N, k): batch size 1, odd sizes, one latent number
SHAPES = [(1, 1), (1, 3), (4, 2), (5, 7), (3, 16)]


def _encoding(shape, seed):
    """Means and log-variances (N, 2k) with log-variances in [-2, 1]: sigma from 0.37 to 1.6."""
    rng = np.random.default_rng(seed)
    n, k = shape
    return np.hstack([rng.standard_normal((n, k)) * 2, rng.uniform(-2, 1, (n, k))])


# -- GaussianSample -----------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_sample_gradient_matches_finite_differences(shape):
    layer = GaussianSample(rng=np.random.default_rng(0), resample=False)
    report = check_layer(layer, _encoding(shape, sum(shape)), seed=shape[0])
    assert report.max_rel_error < TOL, str(report)
    assert [e.name for e in report.entries] == ["dx"]


@pytest.mark.parametrize("shape", SHAPES)
def test_sample_backward_is_dz_for_mu_and_dz_eps_sigma_over_two_for_logvar(shape):
    layer = GaussianSample(rng=np.random.default_rng(1))
    x = _encoding(shape, 3)
    k = shape[1]
    z = layer.forward(x)
    eps, sigma = layer.noise, np.exp(x[:, k:] / 2)
    np.testing.assert_allclose(z, x[:, :k] + sigma * eps, rtol=1e-15)
    dz = np.random.default_rng(2).standard_normal(z.shape)
    dx = layer.backward(dz)
    np.testing.assert_array_equal(dx[:, :k], dz)
    np.testing.assert_allclose(dx[:, k:], dz * eps * sigma / 2, rtol=1e-15)


def test_evaluation_mode_returns_the_mean_and_no_logvar_gradient():
    layer = GaussianSample().eval()  # no rng needed: nothing is drawn
    x = _encoding((4, 3), 0)
    np.testing.assert_array_equal(layer.forward(x), x[:, :3])
    report = check_layer(layer, x, seed=1)
    assert report.max_rel_error < TOL, str(report)
    dx = layer.backward(np.ones((4, 3)))
    np.testing.assert_array_equal(dx[:, 3:], 0)


def test_samples_have_mean_mu_and_variance_exp_logvar():
    mu, logvar = np.array([[1.5, -2.0, 0.0]]), np.array([[0.0, np.log(4.0), np.log(0.25)]])
    x = np.repeat(np.hstack([mu, logvar]), 20000, axis=0)
    z = GaussianSample(rng=np.random.default_rng(0)).forward(x)
    np.testing.assert_allclose(z.mean(axis=0), mu[0], atol=0.03)
    np.testing.assert_allclose(z.var(axis=0), np.exp(logvar[0]), rtol=0.03)


def test_every_training_forward_draws_new_noise_and_a_seed_repeats_it():
    x = _encoding((3, 2), 0)
    layer = GaussianSample(rng=np.random.default_rng(5))
    first, second = layer.forward(x), layer.forward(x)
    assert not np.allclose(first, second)
    again = GaussianSample(rng=np.random.default_rng(5))
    np.testing.assert_array_equal(again.forward(x), first)
    fixed = GaussianSample(rng=np.random.default_rng(5), resample=False)
    np.testing.assert_array_equal(fixed.forward(x), fixed.forward(x))


def test_backward_belongs_to_the_last_forward():
    layer = GaussianSample(rng=np.random.default_rng(0))
    x = _encoding((2, 3), 1)
    layer.forward(x)
    z = layer.forward(x)
    dx = layer.backward(np.ones_like(z))
    np.testing.assert_allclose(dx[:, 3:], layer.noise * np.exp(x[:, 3:] / 2) / 2, rtol=1e-15)


def test_float32_in_float32_out():
    layer = GaussianSample(rng=np.random.default_rng(0))
    x = _encoding((3, 4), 0).astype(np.float32)
    z = layer.forward(x)
    assert z.dtype == np.float32 and layer.noise.dtype == np.float32
    assert layer.backward(np.ones((3, 4), np.float32)).dtype == np.float32
    with pytest.raises(TypeError, match="float64"):
        layer.backward(np.ones((3, 4)))
    ref = GaussianSample(rng=np.random.default_rng(0)).forward(x.astype(np.float64))
    np.testing.assert_allclose(z, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("x,message", [
    (np.zeros((3, 5)), r"even number.*got \(3, 5\)"),
    (np.zeros((3, 1)), r"2k >= 2.*got \(3, 1\)"),
    (np.zeros(4), r"shape \(N, 2k\).*got \(4,\)"),
    (np.zeros((2, 2, 2)), r"got \(2, 2, 2\)"),
    (np.array([[0.0, np.nan]]), r"NaN or inf \(first at index \(0, 1\)\)"),
    (np.array([[0.0, 2000.0]]), r"exp\(logvar / 2\) overflows"),
])
def test_bad_input_is_named(x, message):
    with pytest.raises(ValueError, match=message):
        GaussianSample(rng=np.random.default_rng(0)).forward(x)


def test_training_without_rng_and_backward_misuse_are_named():
    with pytest.raises(TypeError, match="default_rng"):
        GaussianSample().forward(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="Generator"):
        GaussianSample(rng=0)
    layer = GaussianSample(rng=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((2, 2)))
    layer.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"expected dout of shape \(2, 2\).*got \(2, 4\)"):
        layer.backward(np.zeros((2, 4)))
    fixed = GaussianSample(rng=np.random.default_rng(0), resample=False)
    fixed.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"reuses the noise of shape \(2, 2\)"):
        fixed.forward(np.zeros((3, 4)))


def test_a_deep_copy_repeats_the_same_samples():
    layer = GaussianSample(rng=np.random.default_rng(0))
    twin = copy.deepcopy(layer)
    x = _encoding((2, 2), 0)
    np.testing.assert_array_equal(layer.forward(x), twin.forward(x))


@pytest.mark.parametrize("shape", [(1, 1), (4, 3), (7, 16)])
def test_sample_equals_pytorchs_rsample(shape, monkeypatch):
    torch = pytest.importorskip("torch")
    normal = pytest.importorskip("torch.distributions.normal")
    layer = GaussianSample(rng=np.random.default_rng(0))
    x = _encoding(shape, 4)
    k = shape[1]
    z = layer.forward(x)
    dz = np.random.default_rng(1).standard_normal(z.shape)
    dx = layer.backward(dz)
    # torch's Normal(mu, std).rsample() is loc + eps * scale with eps from _standard_normal:
    # hand it our noise
    monkeypatch.setattr(normal, "_standard_normal",
                        lambda shape, dtype, device: torch.from_numpy(layer.noise))
    xt = torch.tensor(x, requires_grad=True)
    zt = torch.distributions.Normal(xt[:, :k], torch.exp(0.5 * xt[:, k:])).rsample()
    zt.backward(torch.from_numpy(dz))
    assert rel_error(z, zt.detach().numpy()) < 1e-10
    assert rel_error(dx, xt.grad.numpy()) < 1e-10


# -- gaussian_kl --------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
def test_kl_gradients_match_finite_differences(shape):
    x = _encoding(shape, sum(shape))
    mu, logvar = x[:, :shape[1]].copy(), x[:, shape[1]:].copy()
    _, dmu, dlogvar = gaussian_kl(mu, logvar)
    assert rel_error(dmu, numerical_gradient(lambda m: gaussian_kl(m, logvar)[0], mu)) < TOL
    assert rel_error(dlogvar, numerical_gradient(lambda v: gaussian_kl(mu, v)[0], logvar)) < TOL


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    loss, dmu, dlogvar = gaussian_kl(np.zeros((3, 4)), np.zeros((3, 4)))
    assert loss == 0 and not dmu.any() and not dlogvar.any()
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert gaussian_kl(rng.standard_normal((3, 4)), rng.standard_normal((3, 4)))[0] > 0


def test_kl_sums_over_latent_dimensions_and_averages_over_examples():
    mu, logvar = np.array([[1.0, 2.0], [0.0, 0.0]]), np.zeros((2, 2))
    assert gaussian_kl(mu, logvar)[0] == pytest.approx((1 + 4) / 2 / 2, rel=1e-15)


@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (8, 16)])
def test_kl_equals_pytorchs_kl_divergence(shape):
    torch = pytest.importorskip("torch")
    x = _encoding(shape, 2)
    k = shape[1]
    loss, dmu, dlogvar = gaussian_kl(x[:, :k], x[:, k:])
    mu_t = torch.tensor(x[:, :k], requires_grad=True)
    logvar_t = torch.tensor(x[:, k:], requires_grad=True)
    posterior = torch.distributions.Normal(mu_t, torch.exp(0.5 * logvar_t))
    prior = torch.distributions.Normal(torch.zeros_like(mu_t), torch.ones_like(mu_t))
    theirs = torch.distributions.kl_divergence(posterior, prior).sum(dim=1).mean()
    theirs.backward()
    assert abs(loss - theirs.item()) <= 1e-10 * abs(loss)
    assert rel_error(dmu, mu_t.grad.numpy()) < 1e-10
    assert rel_error(dlogvar, logvar_t.grad.numpy()) < 1e-10


def test_kl_float32_and_bad_input():
    loss, dmu, dlogvar = gaussian_kl(np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32))
    assert dmu.dtype == dlogvar.dtype == np.float32 and loss == pytest.approx(1.5, rel=1e-6)
    with pytest.raises(ValueError, match=r"mu has shape \(2, 3\) but logvar has shape \(2, 4\)"):
        gaussian_kl(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"shape \(N, k\), got \(3,\)"):
        gaussian_kl(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"gaussian_kl\(logvar\): input contains NaN"):
        gaussian_kl(np.zeros((1, 2)), np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="overflows"):
        gaussian_kl(np.zeros((1, 1)), np.array([[1000.0]]))
    with pytest.raises(TypeError, match="real-valued"):
        gaussian_kl(np.array([["a"]]), np.zeros((1, 1)))


# -- GAN losses ---------------------------------------------------------------------------------
LOGIT_SHAPES = [(1,), (5,), (4, 1), (3, 2)]


@pytest.mark.parametrize("shape", LOGIT_SHAPES)
@pytest.mark.parametrize("saturating", [False, True])
def test_generator_loss_gradient_matches_finite_differences(shape, saturating):
    logits = np.random.default_rng(len(shape)).standard_normal(shape) * 3
    _, dlogits = gan_generator_loss(logits, saturating=saturating)
    numeric = numerical_gradient(lambda z: gan_generator_loss(z, saturating=saturating)[0],
                                 logits)
    assert rel_error(dlogits, numeric) < TOL


@pytest.mark.parametrize("real_shape,fake_shape", [((1,), (1,)), ((5,), (3,)), ((4, 1), (4, 1))])
def test_discriminator_loss_gradients_match_finite_differences(real_shape, fake_shape):
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal(real_shape) * 3, rng.standard_normal(fake_shape) * 3
    _, dreal, dfake = gan_discriminator_loss(real, fake)
    assert rel_error(dreal, numerical_gradient(lambda r: gan_discriminator_loss(r, fake)[0],
                                               real)) < TOL
    assert rel_error(dfake, numerical_gradient(lambda f: gan_discriminator_loss(real, f)[0],
                                               fake)) < TOL


def test_saturating_gradient_vanishes_where_the_discriminator_is_confident():
    confident = np.full(4, -10.0)  # D(G(z)) = sigmoid(-10) ~ 4.5e-5: the samples are rejected
    _, saturating = gan_generator_loss(confident, saturating=True)
    _, non_saturating = gan_generator_loss(confident)
    assert np.abs(saturating).max() < 1e-4 / 4
    assert np.abs(non_saturating).min() > 0.99 / 4
    assert np.all(saturating < 0) and np.all(non_saturating < 0)  # both push the logits up


def test_the_two_generator_gradients_differ_by_the_factor_exp_minus_logit():
    # saturating: -s / size; non-saturating: (s - 1) / size; their ratio (1 - s) / s = exp(-l)
    logits = np.linspace(-5, 5, 11)
    _, sat = gan_generator_loss(logits, saturating=True)
    _, non_sat = gan_generator_loss(logits)
    np.testing.assert_allclose(non_sat, sat * np.exp(-logits), rtol=1e-13)
    assert np.all(sat < 0) and np.all(non_sat < 0)


@pytest.mark.parametrize("shape", [(1,), (6, 1), (3, 4)])
def test_gan_losses_equal_pytorchs_bce_with_logits(shape):
    torch = pytest.importorskip("torch")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal(shape) * 4, rng.standard_normal(shape) * 4
    loss, dreal, dfake = gan_discriminator_loss(real, fake)
    rt, ft = torch.tensor(real, requires_grad=True), torch.tensor(fake, requires_grad=True)
    theirs = bce(rt, torch.ones_like(rt)) + bce(ft, torch.zeros_like(ft))
    theirs.backward()
    assert abs(loss - theirs.item()) <= 1e-10 * abs(loss)
    assert rel_error(dreal, rt.grad.numpy()) < 1e-10 and rel_error(dfake, ft.grad.numpy()) < 1e-10
    for saturating in (False, True):
        loss, dfake = gan_generator_loss(fake, saturating=saturating)
        ft = torch.tensor(fake, requires_grad=True)
        # saturating: log(1 - sigmoid(l)) = -BCE(l, 0); non-saturating: -log sigmoid(l) = BCE(l, 1)
        theirs = (-bce(ft, torch.zeros_like(ft)) if saturating
                  else bce(ft, torch.ones_like(ft)))
        theirs.backward()
        assert abs(loss - theirs.item()) <= 1e-10 * abs(loss)
        assert rel_error(dfake, ft.grad.numpy()) < 1e-10


def test_gan_losses_float32_and_bad_input():
    loss, dreal, dfake = gan_discriminator_loss(np.ones(3, np.float32), np.zeros(2, np.float32))
    assert dreal.dtype == dfake.dtype == np.float32
    assert gan_generator_loss(np.ones(2, np.float32))[1].dtype == np.float32
    with pytest.raises(ValueError, match=r"gan_generator_loss\(fake_logits\): the logits contain"):
        gan_generator_loss(np.array([0.0, np.inf]))
    with pytest.raises(ValueError, match=r"gan_discriminator_loss\(real_logits\).*NaN"):
        gan_discriminator_loss(np.array([np.nan]), np.zeros(1))
    with pytest.raises(ValueError, match="empty input"):
        gan_discriminator_loss(np.zeros(2), np.zeros(0))


# -- in a model ---------------------------------------------------------------------------------
def test_sample_inside_a_sequential_passes_the_layer_check():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(5, 6, rng=rng), GaussianSample(rng=np.random.default_rng(1),
                                                              resample=False),
                       Linear(3, 2, rng=rng))
    report = check_layer(model, rng.standard_normal((4, 5)), seed=2)
    assert report.max_rel_error < TOL, str(report)
    assert {"d0.W", "d0.b", "d2.W", "d2.b"} <= {e.name for e in report.entries}


def test_a_whole_vae_loss_gradient_matches_finite_differences():
    # encoder -> [mu, logvar] -> sample -> decoder -> BCE summed over pixels, + KL at the encoder
    rng = np.random.default_rng(0)
    k, n, d = 2, 3, 5
    encoder = Sequential(Linear(d, 4, rng=rng), Tanh(), Linear(4, 2 * k, rng=rng))
    sampler = GaussianSample(rng=np.random.default_rng(1), resample=False)
    decoder = Linear(k, d, rng=rng)
    x = rng.uniform(0, 1, (n, d))

    def loss():
        h = encoder.forward(x)
        rec, dlogits = binary_cross_entropy_with_logits(decoder.forward(sampler.forward(h)), x)
        kl, dmu, dlogvar = gaussian_kl(h[:, :k], h[:, k:])
        return d * rec + kl, d * dlogits, np.hstack([dmu, dlogvar])

    _, dlogits, dkl = loss()
    encoder.backward(sampler.backward(decoder.backward(dlogits)) + dkl)
    for name, param, grad in encoder.named_parameters():
        numeric = numerical_gradient(lambda _: loss()[0], param)
        assert rel_error(grad, numeric) < TOL, name
