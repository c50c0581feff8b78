"""A scalar automatic-differentiation engine, in the spirit of karpathy/micrograd.

Every operation on `Value`s creates an output node that remembers its operands (``_prev``), the
operation's name (``_op``) and a small closure ``_backward`` that applies the operation's local
derivative: it adds ``local derivative * out.grad`` to each operand's ``grad``. ``backward()``
then visits the nodes once, from the output back to the leaves (reverse topological order).

Derived operations reuse the primitives (``a - b`` is ``a + (-b)``, ``a / b`` is ``a * b**-1``),
so there are fewer local derivatives to get wrong. Drawing lives in `backprop.graph_plot`.
"""
import math
from numbers import Real


class Value:
    """One scalar in a computation graph: its ``data`` and the ``grad`` of the output w.r.t. it.

    ``label`` is an optional name shown by `backprop.graph_plot.draw_graph`. ``_prev`` is the tuple
    of operands in order (``a * a`` lists ``a`` twice) and ``_op`` the operation that made it.
    """

    __slots__ = ("data", "grad", "label", "_prev", "_op", "_backward")  # lighter for big graphs

    def __init__(self, data, _children=(), _op="", label=""):
        # the exact-type test first: isinstance(x, Real) is slow and a big graph makes many nodes
        plain = type(data) in (float, int)
        if not plain and (isinstance(data, Value) or not isinstance(data, Real)):
            raise TypeError(
                f"Value: data must be a real number, got {type(data).__name__} {data!r}"
            )
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self._prev = tuple(_children)
        self._op = _op
        self._backward = lambda: None  # a leaf has nothing to pass on

    # -- primitives: each knows its own local derivative -------------------------------------
    def __add__(self, other):
        other = _as_value(other)
        if other is NotImplemented:
            return other
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            # += not =: a node used twice (a + a) receives one contribution per use
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = _as_value(other)
        if other is NotImplemented:
            return other
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent):
        if isinstance(exponent, Value) or not isinstance(exponent, Real):
            raise TypeError(
                f"Value.__pow__: the exponent must be a constant int or float, "
                f"got {type(exponent).__name__}"
            )
        if self.data < 0 and not float(exponent).is_integer():
            raise ValueError(
                f"Value.__pow__: ({self.data}) ** {exponent} is not a real number "
                "(negative base, fractional exponent)"
            )
        if self.data == 0 and exponent < 0:
            raise ZeroDivisionError(
                f"Value.__pow__: 0 ** {exponent} is undefined (a division by 0?)"
            )
        out = Value(self.data**exponent, (self,), f"**{exponent}")

        def _backward():
            if exponent != 0:  # x**0 is constant; skip the 0 ** -1 that 0 * x**-1 would compute
                self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self):
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad  # d/dx e^x = e^x, already computed

        out._backward = _backward
        return out

    def log(self):
        """Natural logarithm; raises ValueError for data <= 0."""
        if self.data <= 0:
            raise ValueError(
                f"Value.log: log is defined for positive numbers only, got {self.data}"
            )
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self):
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1.0 - out.data**2) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self):
        """Logistic function, without overflow for large |data| (exp of a non-positive number)."""
        e = math.exp(-abs(self.data))
        out = Value(1.0 / (1.0 + e) if self.data >= 0 else e / (1.0 + e), (self,), "sigmoid")

        def _backward():
            self.grad += out.data * (1.0 - out.data) * out.grad

        out._backward = _backward
        return out

    def relu(self):
        """max(data, 0); its derivative at exactly 0 is taken as 0."""
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward():
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    # -- derived operations: built from the primitives above ---------------------------------
    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        other = _as_value(other)
        return NotImplemented if other is NotImplemented else self + (-other)

    def __truediv__(self, other):
        other = _as_value(other)
        return NotImplemented if other is NotImplemented else self * other**-1

    # number <op> Value: Python calls these after the number's own operator gives up
    def __radd__(self, other):
        other = _as_value(other)
        return NotImplemented if other is NotImplemented else other + self

    def __rmul__(self, other):
        other = _as_value(other)
        return NotImplemented if other is NotImplemented else other * self

    def __rsub__(self, other):
        other = _as_value(other)
        return NotImplemented if other is NotImplemented else other + (-self)

    def __rtruediv__(self, other):
        other = _as_value(other)
        return NotImplemented if other is NotImplemented else other * self**-1

    # -- the backward pass ------------------------------------------------------------------
    def backward(self):
        """Fill ``grad`` of every node in this graph with d(self)/d(node).

        Each call first zeroes the gradients of every node reachable from ``self``, then seeds
        ``self.grad = 1`` and runs each node's ``_backward`` in reverse topological order. So
        calling ``backward()`` twice gives the same gradients as calling it once. (micrograd does
        not zero first: a second call adds on top of the grads the first one left, in the
        intermediate nodes too, so the leaves end up with more than twice their gradient; a
        classic surprise.) The flip side: to combine two losses, sum them into one Value and call
        backward once; ``loss2.backward()`` would reset the grads ``loss1.backward()`` left in
        the nodes the two share.
        """
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()

    def zero_grad(self):
        """Set ``grad`` to 0 in every node reachable from this one."""
        for node in topological_order(self):
            node.grad = 0.0

    def __repr__(self):
        return f"Value(data={self.data:.4f}, grad={self.grad:.4f})"


def _as_value(x):
    """Wrap a plain number as a constant leaf; NotImplemented lets Python raise its TypeError."""
    if isinstance(x, Value):
        return x
    return Value(x) if isinstance(x, Real) else NotImplemented


def topological_order(root):
    """Every node reachable from ``root``, each after all of its operands; ``root`` comes last.

    Depth-first post-order with an explicit stack rather than recursion, so a chain of
    100,000 operations does not hit Python's recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))  # comes back off the stack after all its operands
        stack.extend((child, False) for child in reversed(node._prev) if child not in visited)
    return order
