"""Lab 03 (chain rule): mistakes in the scalar engine's backward rules, topological order and
backward pass."""
from . import Mistake

OVERWRITE = "did you use = instead of +="
UPSTREAM = "by the upstream gradient"
RECURSIVE_ORDER = '''def topological_order(root):
    order, visited = [], set()

    def visit(node):
        if node not in visited:
            visited.add(node)
            for child in node._prev:
                visit(child)
            order.append(node)

    visit(root)
    return order
'''
ZERO_THEN_SEED = "    for node in order:\n        node.grad = 0.0\n    root.grad = 1.0\n"

MISTAKES = [
    Mistake("add_backward: a.grad = out.grad, overwriting instead of accumulating",
            "add_backward", [("a.grad += out.grad", "a.grad = out.grad"),
                             ("b.grad += out.grad", "b.grad = out.grad")],
            hint=OVERWRITE),
    Mistake("add_backward: adds the local derivative 1, forgetting the upstream gradient",
            "add_backward", [("a.grad += out.grad", "a.grad += 1"),
                             ("b.grad += out.grad", "b.grad += 1")],
            hint=UPSTREAM),
    Mistake("add_backward: only a receives the gradient", "add_backward",
            ("\n    b.grad += out.grad", ""),
            hint="add to b.grad too"),
    Mistake("mul_backward: = instead of +=", "mul_backward",
            [("a.grad += b.data", "a.grad = b.data"),
             ("b.grad += a.data", "b.grad = a.data")],
            hint=OVERWRITE),
    Mistake("mul_backward: each operand gets its own value instead of the other's",
            "mul_backward", [("a.grad += b.data", "a.grad += a.data"),
                             ("b.grad += a.data", "b.grad += b.data")],
            hint="the OTHER operand's value"),
    Mistake("mul_backward: multiplies by out.data, the product", "mul_backward",
            [("a.grad += b.data", "a.grad += out.data"),
             ("b.grad += a.data", "b.grad += out.data")],
            hint="not out.data (the product)"),
    Mistake("pow_backward: forgot the factor n", "pow_backward",
            ("n * a.data ** (n - 1)", "a.data ** (n - 1)"),
            hint="did you forget the factor n"),
    Mistake("pow_backward: n * x**n, the exponent not lowered", "pow_backward",
            ("a.data ** (n - 1)", "a.data ** n"),
            hint="lower the exponent by one"),
    Mistake("pow_backward: a.data ** n-1 without parentheses", "pow_backward",
            ("n * a.data ** (n - 1)", "(n * a.data ** n-1)"),
            hint="with parentheses"),
    Mistake("pow_backward: = instead of +=", "pow_backward",
            ("a.grad +=", "a.grad ="),
            hint=OVERWRITE),
    Mistake("exp_backward: multiplies by x instead of e^x", "exp_backward",
            ("out.data * out.grad", "a.data * out.grad"),
            hint="not x"),
    Mistake("exp_backward: exponentiates out.data again", "exp_backward",
            ("out.data * out.grad", "math.exp(out.data) * out.grad"),
            hint="math.exp(out.data) is e^(e^x)"),
    Mistake("exp_backward: forgot the upstream gradient", "exp_backward",
            ("out.data * out.grad", "out.data"),
            hint=UPSTREAM),
    Mistake("tanh_backward: 1 - x**2 with the input instead of the output", "tanh_backward",
            ("out.data**2", "a.data**2"),
            hint="1 - x**2 uses the input x"),
    Mistake("tanh_backward: 1 - t, the square forgotten", "tanh_backward",
            ("out.data**2", "out.data"),
            hint="square the output"),
    Mistake("tanh_backward: t**2 - 1, a flipped sign", "tanh_backward",
            ("(1 - out.data**2)", "(out.data**2 - 1)"),
            hint="opposite sign"),
    Mistake("relu_backward: passes the gradient where a < 0", "relu_backward",
            ("a.data > 0", "a.data < 0"),
            hint="did you get the side wrong"),
    Mistake("relu_backward: a.data >= 0 at the kink", "relu_backward",
            ("a.data > 0", "a.data >= 0"),
            hint="use a.data > 0, not >="),
    Mistake("relu_backward: multiplies by a.data instead of the derivative 1", "relu_backward",
            ("(a.data > 0) * out.grad", "max(a.data, 0) * out.grad"),
            hint="not a itself"),
    Mistake("topological_order: recursion, which overflows Python's stack on deep graphs",
            "topological_order", RECURSIVE_ORDER,
            hint="instead of recursion"),
    Mistake("topological_order: no set of visited nodes", "topological_order",
            [("elif node not in visited:", "else:"), (" if child not in visited)", ")")],
            hint="remember visited nodes"),
    Mistake("topological_order: returns the root first", "topological_order",
            ("return order", "return order[::-1]"),
            hint="did you reverse it?"),
    Mistake("topological_order: never visits the leaves", "topological_order",
            ("if child not in visited)", "if child not in visited and child._prev)"),
            hint="follow node._prev from the root down to the leaves"),
    Mistake("backward: forgot to seed root.grad = 1", "backward",
            ("    root.grad = 1.0\n", ""),
            hint="root.grad must be 1.0"),
    Mistake("backward: walks the nodes in topological order instead of reversed",
            "backward", ("reversed(order)", "order"),
            hint="call _backward in REVERSED topological order"),
    Mistake("backward: never zeroes the gradients of an earlier pass", "backward",
            ("    for node in order:\n        node.grad = 0.0\n", ""),
            hint="set every node's grad to 0 before seeding the root"),
    Mistake("backward: zeroes the gradients after seeding the root", "backward",
            (ZERO_THEN_SEED,
             "    root.grad = 1.0\n    for node in order:\n        node.grad = 0.0\n"),
            hint="seed it after zeroing the grads"),
    Mistake("build_and_train: a step along the gradient instead of against it", "build_and_train",
            ("parameter.data -= 1.0 * parameter.grad", "parameter.data += 1.0 * parameter.grad"),
            hint="the sign of your step"),
    Mistake("build_and_train: the labels 0/1 used as the signs of the max-margin loss",
            "build_and_train", ("[2.0 * label - 1.0 for label in y_train]", "list(y_train)"),
            hint="sign convention"),
    Mistake("build_and_train: trained for two steps only", "build_and_train",
            ("range(60)", "range(2)"),
            hint="did you train long enough"),
]
