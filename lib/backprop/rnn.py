"""A vanilla (Elman) recurrent layer and its single time step; the recurrent toolbox by one name.

Sequences are batch-first ``(N, T, D)`` arrays (batch, time, features), as PyTorch's
``batch_first=True``. The tanh recurrence over one sequence is

    h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b),      h_0 given or zeros,

and backpropagation through time (BPTT) runs the same loop backwards, carrying ``dh`` from step
t to step t - 1 through ``Wh``. Only the loop over time is sequential: the input projection
``x @ Wx`` of every step is one matrix product before the loop, and the weight gradients are one
matrix product each after it. Inside, the layers keep time-major ``(T, N, ...)`` arrays, so each
step's slice is one contiguous block; ``forward`` returns ``(N, T, H)`` as a transposed view.

`rnn_step_forward` / `rnn_step_backward` say the same thing for a single step (the version a lab
asks you to write); `RNN` is the fast layer. Their common base `RecurrentLayer` is in
`backprop.recurrent`, LSTM and GRU in `backprop.gated`; embeddings, per-time-step linear layers,
the sequence loss and gradient clipping in `backprop.sequence`.
All of them can be imported from here too (``from backprop.rnn import LSTM, clip_grad_norm``),
the names the recurrent-network part of the course promises.
"""
import numpy as np

from .recurrent import RecurrentLayer
# The recurrent toolbox under one name; neither module imports this one (the import graph of
# backprop is acyclic, which tests/test_imports.py checks).
from .gated import GRU, LSTM  # noqa: F401
from .sequence import (Embedding, TemporalLinear, TimeDistributed,  # noqa: F401
                       clip_grad_norm, sequence_cross_entropy)


# -- one time step, written for reading ------------------------------------------------------
def _check_step(x_t, h_prev, Wx, Wh, owner):
    if x_t.ndim != 2 or x_t.shape[1] != Wx.shape[0]:
        raise ValueError(f"{owner}: expected x_t of shape (N, {Wx.shape[0]}) to match Wx "
                         f"{Wx.shape}, got {x_t.shape}")
    if h_prev.shape != (x_t.shape[0], Wh.shape[0]):
        raise ValueError(f"{owner}: expected h_prev of shape {(x_t.shape[0], Wh.shape[0])}, "
                         f"got {h_prev.shape}")


def rnn_step_forward(x_t, h_prev, Wx, Wh, b):
    """One step of the tanh recurrence: ``h_next = tanh(x_t @ Wx + h_prev @ Wh + b)``.

    Shapes: x_t ``(N, D)``, h_prev ``(N, H)``, Wx ``(D, H)``, Wh ``(H, H)``, b ``(H,)``.
    Returns ``(h_next (N, H), cache)``; ``cache`` holds what `rnn_step_backward` needs.
    """
    x_t, h_prev = np.asarray(x_t), np.asarray(h_prev)
    _check_step(x_t, h_prev, Wx, Wh, "rnn_step_forward")
    h_next = np.tanh(x_t @ Wx + h_prev @ Wh + b)
    return h_next, (x_t, h_prev, Wx, Wh, h_next)


def rnn_step_backward(dh_next, cache):
    """Gradients of one step, given ``dh_next`` (N, H), the loss gradient w.r.t. ``h_next``.

    Returns ``(dx_t (N, D), dh_prev (N, H), dWx (D, H), dWh (H, H), db (H,))``. The tanh
    derivative is taken from the output: ``d tanh(a) / da = 1 - tanh(a)**2 = 1 - h_next**2``.
    """
    x_t, h_prev, Wx, Wh, h_next = cache
    dh_next = np.asarray(dh_next)
    if dh_next.shape != h_next.shape:
        raise ValueError(f"rnn_step_backward: expected dh_next of shape {h_next.shape}, "
                         f"got {dh_next.shape}")
    da = dh_next * (1 - h_next**2)  # gradient w.r.t. the pre-activation a
    return da @ Wx.T, da @ Wh.T, x_t.T @ da, h_prev.T @ da, da.sum(axis=0)


class RNN(RecurrentLayer):
    """Tanh recurrent layer over whole sequences, as ``torch.nn.RNN(batch_first=True)``.

    ``forward(x, h0=None)``: x ``(N, T, D)``, h0 ``(N, H)`` or None (zeros) -> every hidden
    state ``(N, T, H)``. ``backward(dout)``: dout ``(N, T, H)`` (the loss gradient w.r.t. every
    output) -> dx ``(N, T, D)``; fills ``grads`` (Wx ``(D, H)``, Wh ``(H, H)``, b ``(H,)``) and
    ``dh0``. PyTorch's ``weight_ih_l0`` is ``Wx.T``, ``weight_hh_l0`` is ``Wh.T``.
    """

    def forward(self, x, h0=None):
        x = self._check_input(x)
        h_start = self._initial_state(h0, "h0", x.shape[0], x.dtype)
        x_rows, h = self._project_input(x)  # (T, N, H): pre-activations, overwritten by h_t
        Wh = self.params["Wh"]
        h_prev = h_start
        for a_t in h:
            a_t += h_prev @ Wh
            h_prev = np.tanh(a_t, out=a_t)
        self._cache = (x_rows, h_start, h, h0 is not None)
        self.h_n = h_prev.copy()
        return h.transpose(1, 0, 2)

    def backward(self, dout):
        if self._cache is None:
            self._check_dout(dout, ())  # raises "backward() called before forward()"
        x_rows, h_start, h, has_h0 = self._cache
        T, N, H = h.shape
        dout = self._check_dout(dout, (N, T, H), self.params["Wx"].dtype)
        dout = dout.transpose(1, 0, 2)  # time-major view, like h
        Wh_T = self.params["Wh"].T
        da = np.square(h)
        np.subtract(1, da, out=da)  # tanh'(a_t) = 1 - h_t**2 for all t; times dh_t: dL/da_t
        dh_carry = np.zeros_like(h_start)  # dL/dh_t arriving from step t + 1
        for t in reversed(range(T)):
            da_t = da[t]
            da_t *= dout[t] + dh_carry
            dh_carry = da_t @ Wh_T
        self.dh0 = dh_carry if has_h0 else None
        h_prev = np.concatenate([h_start[None], h[:-1]])
        return self._weight_grads(x_rows, h_prev, da, da)
