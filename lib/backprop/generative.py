"""Pieces of generative models: the VAE's reparameterised Gaussian sample and its KL term, and
the GAN's two losses.

**VAE.** An encoder outputs, for each example, the mean ``mu`` and the log-variance
``logvar = log sigma**2`` of a Gaussian over the k latent numbers, side by side in one (N, 2k)
array. `GaussianSample` draws ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, I)``: the
randomness sits in ``eps``, which does not depend on the parameters, so ``z`` is a smooth
function of ``mu`` and ``logvar`` and has a gradient (the reparameterisation trick):

    dmu = dz,    dlogvar = dz * eps * exp(logvar / 2) / 2

`gaussian_kl` is ``KL(N(mu, diag sigma**2) || N(0, I))``, the VAE loss's second term, summed
over the k latent dimensions and averaged over the N examples, with its gradients.

**GAN.** The discriminator outputs a logit per example (real: high). `gan_discriminator_loss`
is binary cross-entropy with real examples labelled 1 and generated ones 0;
`gan_generator_loss` is the generator's loss on the discriminator's logits for its samples,
non-saturating (``-log D(G(z))``, the default) or saturating (``log(1 - D(G(z)))``, the
minimax game's). Both return gradients with respect to the logits; the generator's gradient then
flows back through the (frozen) discriminator's backward to the generated samples.
"""
import numpy as np

from .base import Layer, as_float_array, require_rng
from .losses import binary_cross_entropy_with_logits


def _check_finite(owner, arr, what="input contains", fix="the encoder's forward pass has diverged: "
                  "lower the learning rate or check its input"):
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{owner}: {what} NaN or inf (first at index "
                         f"{tuple(int(i) for i in bad)}); {fix}")


class GaussianSample(Layer):
    """The reparameterised Gaussian sample of a VAE: ``z = mu + exp(logvar / 2) * eps``.

    Shapes: x ``(N, 2k)``, the concatenation ``[mu, logvar]`` (columns ``0..k-1`` the means,
    ``k..2k-1`` the log-variances); out z ``(N, k)``. backward takes dz ``(N, k)`` and returns
    dx ``(N, 2k)`` = ``[dmu, dlogvar]``. No parameters.

    Training mode draws ``eps ~ N(0, I)`` of shape (N, k) from `rng` at each forward and keeps
    it (``noise``) for backward. Evaluation mode returns ``z = mu`` (the code's mean, no noise)
    and then ``dlogvar`` is 0. rng: a ``np.random.Generator``, required in training mode (the
    samples must be reproducible). resample=False draws the noise once and reuses it, which
    makes the layer a fixed function of its input, as a gradient check needs (as `Dropout`).
    """

    def __init__(self, rng=None, resample=True):
        super().__init__()
        if rng is not None:
            rng = require_rng(rng, "GaussianSample")
        self.rng = rng
        self.resample = bool(resample)
        self.noise = None  # the eps of the last training-mode forward, (N, k)

    def _split(self, x):
        x = as_float_array(x, repr(self))
        if x.ndim != 2 or x.shape[1] < 2 or x.shape[1] % 2:
            raise ValueError(
                f"{self!r}: expected input of shape (N, 2k), the means and log-variances side "
                f"by side, with an even number 2k >= 2 of columns; got {x.shape}")
        _check_finite(repr(self), x)
        k = x.shape[1] // 2
        return x, x[:, :k], x[:, k:]

    def _draw(self, shape, dtype):
        if self.rng is None:
            raise TypeError(f"{self!r}: training mode draws random noise: build it with "
                            "GaussianSample(rng=np.random.default_rng(seed)), or call .eval() "
                            "to use the means alone")
        if not self.resample and self.noise is not None:
            if self.noise.shape != shape:
                raise ValueError(f"{self!r}: resample=False reuses the noise of shape "
                                 f"{self.noise.shape}, but the sample has shape {shape}")
            return self.noise.astype(dtype, copy=False)
        self.noise = self.rng.standard_normal(shape).astype(dtype, copy=False)
        return self.noise

    def forward(self, x):
        x, mu, logvar = self._split(x)
        if not self.training:
            self._cache = (x.shape, x.dtype, None, None)
            return mu.copy()
        eps = self._draw(mu.shape, x.dtype)
        with np.errstate(over="ignore"):
            std = np.exp(0.5 * logvar)
        if not np.all(np.isfinite(std)):
            raise ValueError(f"{self!r}: exp(logvar / 2) overflows (largest logvar "
                             f"{float(logvar.max()):.4g}); the encoder has diverged: lower the "
                             "learning rate")
        self._cache = (x.shape, x.dtype, eps, std)
        return mu + std * eps

    def backward(self, dz):
        x_shape, dtype, eps, std = self._cache if self._cache is not None else ((0, 0), None,
                                                                                None, None)
        dz = self._check_dout(dz, (x_shape[0], x_shape[1] // 2), dtype)
        dx = np.empty(x_shape, dtype=dz.dtype)
        k = x_shape[1] // 2
        dx[:, :k] = dz
        if eps is None:  # evaluation mode: z = mu does not depend on logvar
            dx[:, k:] = 0
        else:
            dx[:, k:] = dz * eps * std * 0.5
        return dx

    def __repr__(self):
        return "GaussianSample()" if self.resample else "GaussianSample(resample=False)"


def gaussian_kl(mu, logvar):
    """KL divergence of ``N(mu, diag(exp(logvar)))`` from the standard normal ``N(0, I)``.

    mu, logvar: (N, k), the same shape. ``loss = sum(mu**2 + exp(logvar) - 1 - logvar) / (2 N)``:
    summed over the k latent dimensions, averaged over the N examples. Returns
    ``(loss, dmu, dlogvar)`` with ``dmu = mu / N`` and ``dlogvar = (exp(logvar) - 1) / (2 N)``.
    logvar is computed in mu's dtype.
    """
    mu = as_float_array(mu, "gaussian_kl(mu)")
    logvar = as_float_array(logvar, "gaussian_kl(logvar)", mu.dtype)
    if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
        raise ValueError(f"gaussian_kl: expected mu of shape (N, k), got {mu.shape}")
    if logvar.shape != mu.shape:
        raise ValueError(f"gaussian_kl: mu has shape {mu.shape} but logvar has shape "
                         f"{logvar.shape}; they must match (one mean and one log-variance per "
                         "latent dimension)")
    _check_finite("gaussian_kl(mu)", mu)
    _check_finite("gaussian_kl(logvar)", logvar)
    n = mu.shape[0]
    with np.errstate(over="ignore"):
        var = np.exp(logvar)
    if not np.all(np.isfinite(var)):
        raise ValueError(f"gaussian_kl: exp(logvar) overflows (largest logvar "
                         f"{float(logvar.max()):.4g}); the encoder has diverged")
    loss = float(np.sum(mu * mu + var - 1.0 - logvar) / (2 * n))
    return loss, mu / n, (var - 1.0) / (2 * n)


def _logits(owner, logits):
    logits = as_float_array(logits, owner)
    if logits.size == 0:
        raise ValueError(f"{owner}: empty input")
    _check_finite(owner, logits, "the logits contain", "the discriminator's forward pass has "
                  "diverged: lower the learning rate")
    return logits


def gan_discriminator_loss(real_logits, fake_logits):
    """The discriminator's loss: binary cross-entropy with real examples labelled 1 and
    generated ones 0, ``mean(softplus(-real_logits)) + mean(softplus(fake_logits))`` (each mean
    over its own elements, as PyTorch's ``binary_cross_entropy_with_logits`` twice).

    real_logits, fake_logits: any shapes ((N,) or (N, 1), N may differ between the two).
    Returns ``(loss, dreal, dfake)``: ``dreal = (sigmoid(real) - 1) / real.size``,
    ``dfake = sigmoid(fake) / fake.size``.
    """
    real = _logits("gan_discriminator_loss(real_logits)", real_logits)
    fake = _logits("gan_discriminator_loss(fake_logits)", fake_logits)
    real_loss, dreal = binary_cross_entropy_with_logits(real, np.ones_like(real))
    fake_loss, dfake = binary_cross_entropy_with_logits(fake, np.zeros_like(fake))
    return real_loss + fake_loss, dreal, dfake


def gan_generator_loss(fake_logits, saturating=False):
    """The generator's loss on the discriminator's logits for its samples, mean over them.

    saturating=False (default): ``-log sigmoid(l)`` = ``softplus(-l)``, the non-saturating
    loss (binary cross-entropy with the label "real"); its gradient
    ``(sigmoid(l) - 1) / size`` stays near ``-1 / size`` while the discriminator rejects the
    samples. saturating=True: ``log(1 - sigmoid(l))`` = ``-softplus(l)``, the minimax game's
    loss; gradient ``-sigmoid(l) / size``, which vanishes exactly then (l very negative).
    Returns ``(loss, dfake_logits)``.
    """
    fake = _logits("gan_generator_loss(fake_logits)", fake_logits)
    if saturating:
        loss, dfake = binary_cross_entropy_with_logits(fake, np.zeros_like(fake))
        return -loss, -dfake
    return binary_cross_entropy_with_logits(fake, np.ones_like(fake))

