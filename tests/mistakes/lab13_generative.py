"""Lab 13 (a VAE with sigma = softplus(s) and a prior N(0, sigma_p^2)): mistakes in the stable
softplus and its derivative, in the reparameterised sample and its backward pass, in the KL term
to a prior of width sigma_p, in the negative ELBO's two paths into the encoder's outputs, and in
the sampling layer and training loop of the build-and-train part."""
from . import Mistake

SOFTPLUS = "return np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s)))"
GRAD = "return np.exp(-softplus(-s))"
SAMPLE = "return mu + softplus(s) * eps"
DS = "ds = dz * eps * softplus_grad(s)"
KL_LOSS = ("loss = np.sum(np.log(sigma_p / sigma) + (sigma**2 + mu**2) / (2 * sigma_p**2) "
           "- 0.5) / n")
KL_DS = "ds = (sigma / sigma_p**2 - 1 / sigma) * softplus_grad(s) / n"
DH = "dh = np.concatenate([dmu + dmu_kl, ds + ds_kl], axis=1)"
RECON = "recon = np.sum(softplus(logits) - x * logits) / n"
DLOGITS = "dlogits = (softplus_grad(logits) - x) / n"
KL_STEP = "encoder.backward(dh + np.concatenate([dmu, ds], axis=1))"

MISTAKES = [
    # softplus and its derivative
    Mistake("softplus: log(1 + exp(s)) as written, which overflows at s = 1000", "softplus",
            (SOFTPLUS, "return np.log(1 + np.exp(s))"), hint="did exp overflow"),
    Mistake("softplus: np.where(s > 30, s, log1p(exp(s))), whose unused branch overflows",
            "softplus", (SOFTPLUS, "return np.where(s > 30, s, np.log1p(np.exp(s)))"),
            hint="np.where computes both branches"),
    Mistake("softplus: the sign of the exponent flipped", "softplus",
            (SOFTPLUS, "return np.maximum(-s, 0) + np.log1p(np.exp(-np.abs(s)))"),
            hint="that is softplus(-s)"),
    Mistake("softplus_grad: 1 / (1 + exp(-s)), which overflows at s = -1000", "softplus_grad",
            (GRAD, "return 1 / (1 + np.exp(-s))"), hint="exp of a large positive number"),
    Mistake("softplus_grad: exp(s) / (1 + exp(s)), nan at s = 1000", "softplus_grad",
            (GRAD, "return np.exp(s) / (1 + np.exp(s))"), hint="NaN"),
    Mistake("softplus_grad: sigmoid(-s), a sign slipped", "softplus_grad",
            (GRAD, "return np.exp(-softplus(s))"), hint="that is sigmoid(-s)"),
    # the reparameterised sample
    Mistake("reparam_sample: sigma = exp(s), s taken for log sigma", "reparam_sample",
            (SAMPLE, "return mu + np.exp(s) * eps"), hint="not exp(s)"),
    Mistake("reparam_sample: the lesson's exp(s / 2), s taken for the log-variance",
            "reparam_sample", (SAMPLE, "return mu + np.exp(s / 2) * eps"),
            hint="the lesson's exp(logvar / 2)"),
    Mistake("reparam_sample: eps scaled by the variance softplus(s)**2", "reparam_sample",
            (SAMPLE, "return mu + softplus(s) ** 2 * eps"), hint="not by the variance"),
    Mistake("reparam_backward: forgot the noise factor eps in ds", "reparam_backward",
            (DS, "ds = dz * softplus_grad(s)"), hint="its gradient carries eps too"),
    Mistake("reparam_backward: forgot the chain factor softplus'(s) in ds", "reparam_backward",
            (DS, "ds = dz * eps"), hint="the chain rule's last factor"),
    Mistake("reparam_backward: d sigma / ds taken as sigma (exp's rule)", "reparam_backward",
            (DS, "ds = dz * eps * softplus(s)"), hint="not sigma itself"),
    # the KL term
    Mistake("kl_to_prior: the standard-normal prior (sigma_p left out)", "kl_to_prior",
            [(KL_LOSS, "loss = np.sum(np.log(1 / sigma) + (sigma**2 + mu**2) / 2 - 0.5) / n"),
             ("dmu = mu / (sigma_p**2 * n)", "dmu = mu / n"),
             (KL_DS, "ds = (sigma - 1 / sigma) * softplus_grad(s) / n")],
            hint="not N(0, 1)"),
    Mistake("kl_to_prior: summed over the batch instead of averaged", "kl_to_prior",
            ("n = mu.shape[0]", "n = 1"), hint="a sum over the batch, not a mean"),
    Mistake("kl_to_prior: the log ratio upside down, log(sigma / sigma_p)", "kl_to_prior",
            (KL_LOSS, "loss = np.sum(np.log(sigma / sigma_p) + (sigma**2 + mu**2) / "
                      "(2 * sigma_p**2) - 0.5) / n"), hint="sign flipped"),
    Mistake("kl_to_prior: forgot the -1/2 per dimension", "kl_to_prior",
            (KL_LOSS, "loss = np.sum(np.log(sigma_p / sigma) + (sigma**2 + mu**2) / "
                      "(2 * sigma_p**2)) / n"), hint="the -1/2 per dimension is missing"),
    Mistake("kl_to_prior: dmu without the 1 / sigma_p**2", "kl_to_prior",
            ("dmu = mu / (sigma_p**2 * n)", "dmu = mu / n"), hint="not N(0, 1)"),
    Mistake("kl_to_prior: ds without the chain factor softplus'(s)", "kl_to_prior",
            (KL_DS, "ds = (sigma / sigma_p**2 - 1 / sigma) / n"),
            hint="the chain rule's last factor"),
    # the negative ELBO
    Mistake("negative_elbo: forgot the KL path into mu", "negative_elbo",
            (DH, "dh = np.concatenate([dmu, ds + ds_kl], axis=1)"),
            hint="the KL path into mu is missing"),
    Mistake("negative_elbo: forgot the KL term's gradient altogether", "negative_elbo",
            (DH, "dh = np.concatenate([dmu, ds], axis=1)"),
            hint="the KL term's gradient is missing"),
    Mistake("negative_elbo: the reconstruction term averaged over the pixels", "negative_elbo",
            [(RECON, "recon = np.mean(softplus(logits) - x * logits)"),
             (DLOGITS, "dlogits = (softplus_grad(logits) - x) / x.size")],
            hint="sums over the pixels"),
    # build and train
    Mistake("build_and_train: the sampler draws new noise in its backward pass",
            "build_and_train",
            ("        return np.concatenate(reparam_backward(dz, self.s, self.eps), axis=1)",
             "        self.eps = self.rng.standard_normal(dz.shape)\n"
             "        return np.concatenate(reparam_backward(dz, self.s, self.eps), axis=1)"),
            hint="the noise of ITS forward pass"),
    Mistake("build_and_train: the sampler samples in evaluation mode too", "build_and_train",
            ("        if not self.training:\n            return mu\n", ""),
            hint="it should be mu, no noise"),
    Mistake("build_and_train: the KL term's gradient never reaches the encoder",
            "build_and_train", (KL_STEP, "encoder.backward(dh)"),
            hint="does the KL term's gradient reach the encoder"),
    Mistake("build_and_train: the Bernoulli term's gradient not rescaled to a sum over pixels",
            "build_and_train", ("decoder.backward(dlogits * xb.shape[1])",
                                "decoder.backward(dlogits)"),
            hint="summed over the 64 pixels"),
]
