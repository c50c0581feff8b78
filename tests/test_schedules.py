"""backprop.schedules: learning-rate values per step, how step() drives optimizer.lr, use with
fit, validation, and agreement with torch.optim.lr_scheduler when torch is installed."""
import math

import numpy as np
import pytest

from backprop.layers import Linear
from backprop.losses import mse_loss
from backprop.optim import SGD, Adam
from backprop.schedules import CosineLR, ExponentialLR, LRSchedule, StepLR
from backprop.train import fit


def _optimizer(lr=0.1, cls=SGD):
    return cls(Linear(2, 1, rng=np.random.default_rng(0)), lr=lr)


def test_step_lr_multiplies_by_gamma_every_step_size_steps():
    schedule = StepLR(_optimizer(lr=0.1), step_size=3, gamma=0.5)
    values = [schedule.lr_at(k) for k in range(8)]
    np.testing.assert_allclose(values, [0.1] * 3 + [0.05] * 3 + [0.025] * 2, rtol=1e-15)


def test_exponential_lr_multiplies_by_gamma_every_step():
    schedule = ExponentialLR(_optimizer(lr=0.2), gamma=0.9)
    np.testing.assert_allclose([schedule.lr_at(k) for k in range(4)],
                               [0.2, 0.18, 0.162, 0.1458], rtol=1e-14)


def test_cosine_lr_follows_half_a_cosine_then_stays_at_min_lr():
    schedule = CosineLR(_optimizer(lr=0.1), total_steps=4, min_lr=0.02)
    expected = [0.1, 0.02 + 0.08 * (1 + math.sqrt(0.5)) / 2, 0.06,
                0.02 + 0.08 * (1 - math.sqrt(0.5)) / 2, 0.02, 0.02]
    np.testing.assert_allclose([schedule.lr_at(k) for k in range(6)], expected, rtol=1e-14)


def test_step_sets_the_optimizers_lr_and_counts_steps():
    optimizer = _optimizer(lr=0.1)
    schedule = StepLR(optimizer, step_size=2, gamma=0.1)
    rates = [schedule.step() for _ in range(4)]
    np.testing.assert_allclose(rates, [0.1, 0.01, 0.01, 0.001], rtol=1e-14)
    assert optimizer.lr == rates[-1] and schedule.steps_done == 4


def test_cosine_schedule_may_end_at_a_learning_rate_of_zero():
    optimizer = _optimizer(lr=0.1, cls=Adam)
    schedule = CosineLR(optimizer, total_steps=2)
    schedule.step()
    schedule.step()
    assert optimizer.lr == 0.0


def test_a_step_of_the_optimizer_uses_the_scheduled_rate():
    optimizer = _optimizer(lr=1.0)
    layer = optimizer.model
    W0 = layer.params["W"].copy()
    ExponentialLR(optimizer, gamma=0.25).step()
    layer.grads = {"W": np.ones_like(W0), "b": np.zeros(1)}
    optimizer.step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.25, rtol=1e-15)


def test_on_epoch_end_steps_once_per_epoch_of_fit_and_records_the_rates():
    X = np.random.default_rng(0).standard_normal((20, 2))
    y = X @ np.array([[1.0], [-2.0]])
    optimizer = _optimizer(lr=0.1)
    schedule = StepLR(optimizer, step_size=2, gamma=0.5)
    history = fit(optimizer.model, mse_loss, optimizer, X, y, epochs=5, batch_size=5,
                  progress=False, on_epoch_end=schedule.on_epoch_end)
    assert history.epochs == 5
    np.testing.assert_allclose(history["lr"], [0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-15)
    assert optimizer.lr == pytest.approx(0.025)  # set for a 6th epoch: 0.1 * 0.5**(5 // 2)


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda opt: StepLR(opt, step_size=0), ValueError, "StepLR: step_size must be an integer >= 1"),
        (lambda opt: StepLR(opt, step_size=2.0), ValueError, "step_size must be an integer"),
        (lambda opt: StepLR(opt, step_size=2, gamma=0), ValueError, r"gamma must lie in \(0, 1\]"),
        (lambda opt: StepLR(opt, step_size=2, gamma=10), ValueError, r"gamma must lie in \(0, 1\]"),
        (lambda opt: ExponentialLR(opt, gamma=-0.5), ValueError, r"ExponentialLR: gamma must lie"),
        (lambda opt: ExponentialLR(opt, gamma="fast"), TypeError, "gamma must be a number"),
        (lambda opt: CosineLR(opt, total_steps=0), ValueError, "total_steps must be an integer"),
        (lambda opt: CosineLR(opt, total_steps=5, min_lr=0.5), ValueError,
         r"min_lr must lie in \[0, base_lr\] = \[0, 0.1\]"),
        (lambda opt: CosineLR(opt, total_steps=5, min_lr=-0.01), ValueError, "min_lr must lie in"),
        (lambda opt: StepLR([opt], step_size=1), TypeError, "expected a backprop.optim Optimizer"),
    ],
)
def test_schedules_reject_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make(_optimizer(lr=0.1))


@pytest.mark.parametrize("step", [-1, 1.5, True])
def test_lr_at_rejects_a_step_that_is_not_a_count(step):
    with pytest.raises(ValueError, match="step must be an integer >= 0"):
        StepLR(_optimizer(), step_size=1).lr_at(step)


def test_a_new_schedule_only_needs_lr_at():
    class Halving(LRSchedule):
        def _lr_at(self, step):
            return self.base_lr / 2**step

    optimizer = _optimizer(lr=0.8)
    schedule = Halving(optimizer)
    schedule.step()
    schedule.step()
    assert optimizer.lr == 0.2


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "CosineLR"])
def test_schedules_match_torch_step_by_step(name):
    torch = pytest.importorskip("torch")
    param = torch.zeros(1, requires_grad=True)
    theirs_optimizer = torch.optim.SGD([param], lr=0.3)
    ours_optimizer = _optimizer(lr=0.3)
    theirs, ours = {
        "StepLR": (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
                   lambda o: StepLR(o, step_size=3, gamma=0.5)),
        "ExponentialLR": (lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8),
                          lambda o: ExponentialLR(o, gamma=0.8)),
        "CosineLR": (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01),
                     lambda o: CosineLR(o, total_steps=7, min_lr=0.01)),
    }[name]
    theirs, ours = theirs(theirs_optimizer), ours(ours_optimizer)
    for _ in range(7):
        theirs_optimizer.step()  # torch warns when the schedule steps before the optimizer
        theirs.step()
        ours.step()
        assert ours_optimizer.lr == pytest.approx(theirs_optimizer.param_groups[0]["lr"],
                                                  rel=1e-12, abs=1e-15)
