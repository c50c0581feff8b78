"""Gated recurrent layers, LSTM and GRU, with PyTorch's equations and gate order.

Same conventions as `backprop.rnn.RNN` (batch-first ``(N, T, D)`` input, every hidden state
``(N, T, H)`` out, ``backward`` returns dx only, initial-state gradients as attributes). The
gates of all steps are stored during ``forward`` so that ``backward`` never recomputes them.
"""
import numpy as np

from . import functional as F
from .recurrent import RecurrentLayer


class LSTM(RecurrentLayer):
    """Long short-term memory layer, as ``torch.nn.LSTM(batch_first=True)``.

    With ``a = x_t @ Wx + h_{t-1} @ Wh + b`` split into four H-wide blocks in PyTorch's order::

        i = sigmoid(a[:, 0:H])     input gate        c_t = f * c_{t-1} + i * g
        f = sigmoid(a[:, H:2H])    forget gate       h_t = o * tanh(c_t)
        g = tanh(a[:, 2H:3H])      cell candidate
        o = sigmoid(a[:, 3H:4H])   output gate

    Shapes: Wx ``(D, 4H)``, Wh ``(H, 4H)``, b ``(4H,)`` (PyTorch's ``weight_ih_l0`` is ``Wx.T``).
    ``forward(x, h0=None, c0=None)`` -> ``(N, T, H)``; afterwards ``h_n``, ``c_n`` hold the last
    states. ``backward(dout)`` -> dx, and sets ``dh0`` / ``dc0`` for the states that were given.

    Initialisation: the forget-gate bias starts at ``forget_bias`` (default 1.0, not PyTorch's
    random bias), so that f = sigmoid(1) ~ 0.73 and the cell keeps most of its memory (and its
    gradient) at the start of training (Jozefowicz et al., 2015); pass 0.0 for all-zero biases.
    """

    num_blocks = 4

    def __init__(self, input_size, hidden_size, rng=None, dtype=np.float64, forget_bias=1.0):
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype)
        H = self.hidden_size
        self.params["b"][H:2 * H] = forget_bias
        self.c_n = None
        self.dc0 = None

    def forward(self, x, h0=None, c0=None):
        x = self._check_input(x)
        N, T, _ = x.shape
        H = self.hidden_size
        h_start = self._initial_state(h0, "h0", N, x.dtype)
        c_start = self._initial_state(c0, "c0", N, x.dtype)
        x_rows, gates = self._project_input(x)  # (T, N, 4H): pre-activations, then the gates
        Wh = self.params["Wh"]
        c = np.empty((T, N, H), dtype=gates.dtype)
        tanh_c = np.empty_like(c)
        h = np.empty_like(c)
        h_prev, c_prev = h_start, c_start
        for t in range(T):
            a_t = gates[t]
            a_t += h_prev @ Wh
            a_t[:, :2 * H] = F.sigmoid(a_t[:, :2 * H])  # i, f
            np.tanh(a_t[:, 2 * H:3 * H], out=a_t[:, 2 * H:3 * H])  # g
            a_t[:, 3 * H:] = F.sigmoid(a_t[:, 3 * H:])  # o
            i, f, g, o = (a_t[:, k * H:(k + 1) * H] for k in range(4))
            c_prev = np.add(f * c_prev, i * g, out=c[t])
            h_prev = np.multiply(o, np.tanh(c_prev, out=tanh_c[t]), out=h[t])
        self._cache = (x_rows, h_start, c_start, gates, c, tanh_c, h,
                       h0 is not None, c0 is not None)
        self.h_n, self.c_n = h_prev.copy(), c_prev.copy()
        return h.transpose(1, 0, 2)

    def backward(self, dout):
        if self._cache is None:
            self._check_dout(dout, ())  # raises "backward() called before forward()"
        x_rows, h_start, c_start, gates, c, tanh_c, h, has_h0, has_c0 = self._cache
        T, N, H = h.shape
        dout = self._check_dout(dout, (N, T, H), self.params["Wx"].dtype)
        dout = dout.transpose(1, 0, 2)  # time-major, like h
        Wh_T = self.params["Wh"].T
        c_prev_all = np.concatenate([c_start[None], c[:-1]])
        da = np.empty_like(gates)  # dL/d(pre-activations), (T, N, 4H)
        dh_carry = np.zeros_like(h_start)  # from step t + 1 through Wh
        dc_carry = np.zeros_like(c_start)  # from step t + 1 through c_t = f * c_{t-1} + ...
        for t in reversed(range(T)):
            i, f, g, o = (gates[t, :, k * H:(k + 1) * H] for k in range(4))
            dh = dout[t] + dh_carry
            dc = dc_carry + dh * o * (1 - tanh_c[t] ** 2)
            da_t = da[t]
            da_t[:, :H] = dc * g * i * (1 - i)
            da_t[:, H:2 * H] = dc * c_prev_all[t] * f * (1 - f)
            da_t[:, 2 * H:3 * H] = dc * i * (1 - g**2)
            da_t[:, 3 * H:] = dh * tanh_c[t] * o * (1 - o)
            dc_carry = dc * f
            dh_carry = da_t @ Wh_T
        self.dh0 = dh_carry if has_h0 else None
        self.dc0 = dc_carry if has_c0 else None
        h_prev = np.concatenate([h_start[None], h[:-1]])
        return self._weight_grads(x_rows, h_prev, da, da)


class GRU(RecurrentLayer):
    """Gated recurrent unit, as ``torch.nn.GRU(batch_first=True)`` (gate order r, z, n).

    With ``ax = x_t @ Wx + b`` and ``ah = h_{t-1} @ Wh``, each split into three H-wide blocks::

        r = sigmoid(ax_r + ah_r)         reset gate
        z = sigmoid(ax_z + ah_z)         update gate
        n = tanh(ax_n + r * ah_n)        candidate state
        h_t = (1 - z) * n + z * h_{t-1}

    Shapes: Wx ``(D, 3H)``, Wh ``(H, 3H)``, b ``(3H,)``. PyTorch has a second bias ``b_hh``;
    its r and z blocks only ever add to ``b``, and its n block (inside ``r * (...)``) is left
    out here, i.e. this is PyTorch's GRU with ``bias_hh = 0``.
    ``forward(x, h0=None)`` -> ``(N, T, H)``; ``backward(dout)`` -> dx, and sets ``dh0``.
    """

    num_blocks = 3

    def forward(self, x, h0=None):
        x = self._check_input(x)
        N, T, _ = x.shape
        H = self.hidden_size
        h_start = self._initial_state(h0, "h0", N, x.dtype)
        x_rows, ax = self._project_input(x)  # (T, N, 3H)
        Wh = self.params["Wh"]
        gates = np.empty_like(ax)  # r, z, n of every step
        ah_n = np.empty((T, N, H), dtype=ax.dtype)  # the hidden-side n block, needed for dr
        h = np.empty_like(ah_n)
        h_prev = h_start
        for t in range(T):
            ah = h_prev @ Wh
            r_z = F.sigmoid(ax[t, :, :2 * H] + ah[:, :2 * H])
            r, z = r_z[:, :H], r_z[:, H:]
            ah_n[t] = ah[:, 2 * H:]
            n = np.tanh(ax[t, :, 2 * H:] + r * ah_n[t])
            gates[t, :, :2 * H], gates[t, :, 2 * H:] = r_z, n
            h_prev = np.add((1 - z) * n, z * h_prev, out=h[t])
        self._cache = (x_rows, h_start, gates, ah_n, h, h0 is not None)
        self.h_n = h_prev.copy()
        return h.transpose(1, 0, 2)

    def backward(self, dout):
        if self._cache is None:
            self._check_dout(dout, ())
        x_rows, h_start, gates, ah_n, h, has_h0 = self._cache
        T, N, H = h.shape
        dout = self._check_dout(dout, (N, T, H), self.params["Wx"].dtype)
        dout = dout.transpose(1, 0, 2)
        Wh_T = self.params["Wh"].T
        h_prev_all = np.concatenate([h_start[None], h[:-1]])
        dax = np.empty_like(gates)  # dL/d(input-side pre-activations)
        dah = np.empty_like(gates)  # dL/d(hidden-side pre-activations): differs in the n block
        dh_carry = np.zeros_like(h_start)
        for t in reversed(range(T)):
            r, z, n = (gates[t, :, k * H:(k + 1) * H] for k in range(3))
            dh = dout[t] + dh_carry
            dan = dh * (1 - z) * (1 - n**2)
            dax[t, :, :H] = dan * ah_n[t] * r * (1 - r)
            dax[t, :, H:2 * H] = dh * (h_prev_all[t] - n) * z * (1 - z)
            dax[t, :, 2 * H:] = dan
            dah[t, :, :2 * H] = dax[t, :, :2 * H]
            dah[t, :, 2 * H:] = dan * r
            dh_carry = dh * z + dah[t] @ Wh_T
        self.dh0 = dh_carry if has_h0 else None
        return self._weight_grads(x_rows, h_prev_all, dax, dah)
