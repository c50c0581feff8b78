"""A vanilla (Elman) recurrent layer, its single time step, and the base of every recurrent layer.

Sequences are batch-first ``(N, T, D)`` arrays (batch, time, features), as PyTorch's
``batch_first=True``. The tanh recurrence over one sequence is

    h_t = tanh(x_t @ Wx + h_{t-1} @ Wh + b),      h_0 given or zeros,

and backpropagation through time (BPTT) runs the same loop backwards, carrying ``dh`` from step
t to step t - 1 through ``Wh``. Only the loop over time is sequential: the input projection
``x @ Wx`` of every step is one matrix product before the loop, and the weight gradients are one
matrix product each after it. Inside, the layers keep time-major ``(T, N, ...)`` arrays, so each
step's slice is one contiguous block; ``forward`` returns ``(N, T, H)`` as a transposed view.

`rnn_step_forward` / `rnn_step_backward` say the same thing for a single step (the version a lab
asks you to write); `RNN` is the fast layer. LSTM and GRU live in `backprop.gated`; embeddings,
per-time-step linear layers, the sequence loss and gradient clipping in `backprop.sequence`.
All of them can be imported from here too (``from backprop.rnn import LSTM, clip_grad_norm``),
the names the recurrent-network part of the course promises.
"""
import numpy as np

from .layers import Layer, require_rng, as_float_array


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


# -- shared by RNN, LSTM and GRU -------------------------------------------------------------
class RecurrentLayer(Layer):
    """Base of the recurrent layers: parameters, input checks, and the two big matrix products.

    ``num_blocks`` H-wide blocks sit side by side in ``Wx (D, num_blocks*H)``,
    ``Wh (H, num_blocks*H)`` and ``b (num_blocks*H,)`` (1 for RNN, 4 gates for LSTM, 3 for GRU).
    Weights start uniform in ``(-1/sqrt(H), 1/sqrt(H))`` as in PyTorch, biases at zero (PyTorch
    has two biases, ``b_ih + b_hh``; they only ever appear summed here, so one is kept).

    After ``forward``, ``h_n`` is the last hidden state ``(N, H)`` (to continue a sequence or
    sample from it). After ``backward``, ``dh0`` is the gradient w.r.t. the initial state if one
    was passed to ``forward``, else None (zeros are a constant). ``backward`` itself returns only
    ``dx`` so that every layer keeps one interface (`Sequential` chains them).
    """

    num_blocks = 1

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        if int(input_size) < 1 or int(hidden_size) < 1:
            raise ValueError(f"{name}: input_size and hidden_size must be >= 1, "
                             f"got {input_size} and {hidden_size}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        rng = require_rng(rng, name)
        D, H, width = self.input_size, self.hidden_size, self.num_blocks * self.hidden_size
        k = 1.0 / np.sqrt(H)
        self.params = {
            "Wx": rng.uniform(-k, k, (D, width)).astype(dtype),
            "Wh": rng.uniform(-k, k, (H, width)).astype(dtype),
            "b": np.zeros(width, dtype=dtype),
        }
        self.h_n = None
        self.dh0 = None

    def __call__(self, x, *states, **named_states):
        return self.forward(x, *states, **named_states)

    def _check_input(self, x):
        """`x` as a float (N, T, D) array with T >= 1, or a ValueError naming the layer."""
        x = as_float_array(x, repr(self))
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"{self!r}: expected input of shape (N, T, {self.input_size}) "
                             f"(batch, time, features), got {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"{self!r}: expected at least one time step, got shape {x.shape}")
        return x

    def _initial_state(self, state, name, n, dtype):
        """The given state as a float (N, H) array, or zeros when it is None."""
        shape = (n, self.hidden_size)
        if state is None:
            return np.zeros(shape, dtype=dtype)
        state = as_float_array(state, f"{self!r} ({name})")
        if state.shape != shape:
            raise ValueError(f"{self!r}: expected {name} of shape {shape} (N, hidden_size), "
                             f"got {state.shape}")
        return state

    def _project_input(self, x):
        """``x @ Wx + b`` for every time step at once, time-major.

        x (N, T, D) -> ``(x_rows (T*N, D), a (T, N, num_blocks*H))``: row ``t*N + n`` of
        ``x_rows`` is ``x[n, t]``. Time-major, each step's slice ``a[t]`` is one contiguous
        block, which the loop over time reads and writes fastest.
        """
        N, T, D = x.shape
        x_rows = x.transpose(1, 0, 2).reshape(T * N, D)
        a = x_rows @ self.params["Wx"] + self.params["b"]
        return x_rows, a.reshape(T, N, -1)

    def _weight_grads(self, x_rows, h_prev, da_x, da_h):
        """Fill ``grads`` with one matrix product each and return ``dx`` (N, T, D).

        x_rows (T*N, D) from `_project_input`; h_prev (T, N, H), the state entering each step;
        da_x / da_h (T, N, num_blocks*H), the gradients w.r.t. the input-side / hidden-side
        pre-activations (the same array except in the GRU, where ``r`` scales the hidden side).
        """
        T, N, width = da_x.shape
        rows_x, rows_h = da_x.reshape(T * N, width), da_h.reshape(T * N, width)
        self.grads["Wx"] = x_rows.T @ rows_x
        self.grads["Wh"] = h_prev.reshape(T * N, self.hidden_size).T @ rows_h
        self.grads["b"] = rows_x.sum(axis=0)
        return (rows_x @ self.params["Wx"].T).reshape(T, N, -1).transpose(1, 0, 2)

    def __repr__(self):
        return f"{type(self).__name__}({self.input_size}, {self.hidden_size})"


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
        dout = self._check_dout(dout, (N, T, H)).transpose(1, 0, 2)  # time-major view, like h
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


# The recurrent toolbox under one name. `backprop.gated` builds on RecurrentLayer above, so its
# layers are looked up on first use (PEP 562) rather than imported here, which would be circular.
from .sequence import (Embedding, TemporalLinear, TimeDistributed,  # noqa: E402
                       clip_grad_norm, sequence_cross_entropy)

_GATED = ("LSTM", "GRU")


def __getattr__(name):
    if name in _GATED:
        from . import gated
        return getattr(gated, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
