"""The base of every recurrent layer (`backprop.rnn.RNN`, `backprop.gated.LSTM` and `GRU`).

Its own module so that `backprop.rnn` and `backprop.gated` both build on it without importing
each other. Sequences are batch-first ``(N, T, D)`` arrays; inside, the layers keep time-major
``(T, N, ...)`` arrays, so each step's slice is one contiguous block.
"""
import numpy as np

from .layers import Layer, as_layer_input, require_rng


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
        x = as_layer_input(x, repr(self), self.params["Wx"].dtype)
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
        state = as_layer_input(state, repr(self), dtype, name)
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
