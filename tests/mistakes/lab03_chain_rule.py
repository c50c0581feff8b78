"""Lab 03 (chain rule): mistakes in the backward rules of the operations lesson 03 does not work
out (/, **, exp, log, sigmoid, max), the iterative topological order and the backward pass."""
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
DIV_A = "a.grad += out.grad / b.data"
DIV_B = "b.grad -= out.data / b.data * out.grad"
MAX_RULE = """    if a.data > b.data:
        a.grad += out.grad
    else:
        b.grad += out.grad
"""

MISTAKES = [
    Mistake("div_backward: = instead of +=", "div_backward",
            [(DIV_A, "a.grad = out.grad / b.data"),
             (DIV_B, "b.grad = -out.data / b.data * out.grad")],
            hint=OVERWRITE),
    Mistake("div_backward: multiplies a's share by b instead of dividing", "div_backward",
            (DIV_A, "a.grad += out.grad * b.data"),
            hint="did you multiply by b instead of dividing"),
    Mistake("div_backward: b's share with a plus sign", "div_backward",
            (DIV_B, "b.grad += out.data / b.data * out.grad"),
            hint="b.grad has the opposite sign"),
    Mistake("div_backward: -a / b for b, the square of b forgotten", "div_backward",
            (DIV_B, "b.grad -= a.data / b.data * out.grad"),
            hint="b squared in its denominator"),
    Mistake("div_backward: -1 / b**2 for b, the factor a forgotten", "div_backward",
            (DIV_B, "b.grad -= 1 / b.data**2 * out.grad"),
            hint="forget the factor a"),
    Mistake("div_backward: b gets the same share as a", "div_backward",
            (DIV_B, "b.grad += out.grad / b.data"),
            hint="each operand has its own local derivative"),
    Mistake("pow_backward: forgot the factor n", "pow_backward",
            ("n * a.data ** (n - 1)", "a.data ** (n - 1)"),
            hint="did you forget the factor n"),
    Mistake("pow_backward: n * x**n, the exponent not lowered", "pow_backward",
            ("a.data ** (n - 1)", "a.data ** n"),
            hint="lower the exponent by one"),
    Mistake("pow_backward: a.data ** n-1 without parentheses", "pow_backward",
            ("n * a.data ** (n - 1)", "(n * a.data ** n-1)"),
            hint="with parentheses"),
    Mistake("pow_backward: a.data ** n - 1 * out.grad, no parentheses at all", "pow_backward",
            ("n * a.data ** (n - 1) * out.grad", "n * a.data ** n - 1 * out.grad"),
            hint="mind the precedence"),
    Mistake("pow_backward: (n * a.data) ** (n - 1), the factor inside the power",
            "pow_backward", ("n * a.data ** (n - 1)", "(n * a.data) ** (n - 1)"),
            hint="the factor n multiplies the power"),
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
    Mistake("log_backward: multiplies by log(a), the output", "log_backward",
            ("out.grad / a.data", "out.data * out.grad"),
            hint="not its derivative"),
    Mistake("log_backward: divides by the output instead of the input", "log_backward",
            ("out.grad / a.data", "out.grad / out.data"),
            hint="divide by the input a.data"),
    Mistake("log_backward: multiplies by a instead of dividing", "log_backward",
            ("out.grad / a.data", "out.grad * a.data"),
            hint="multiply by a instead of dividing"),
    Mistake("log_backward: = instead of +=", "log_backward",
            ("a.grad +=", "a.grad ="),
            hint=OVERWRITE),
    Mistake("sigmoid_backward: the input a where the output s belongs", "sigmoid_backward",
            ("out.data * (1 - out.data)", "a.data * (1 - a.data)"),
            hint="the output s = out.data belongs"),
    Mistake("sigmoid_backward: 1 - s**2, tanh's derivative", "sigmoid_backward",
            ("out.data * (1 - out.data)", "(1 - out.data**2)"),
            hint="derivative of tanh"),
    Mistake("sigmoid_backward: s alone, the factor (1 - s) lost", "sigmoid_backward",
            ("out.data * (1 - out.data)", "out.data"),
            hint="you lost a factor"),
    Mistake("sigmoid_backward: s * (s - 1), a flipped sign", "sigmoid_backward",
            ("out.data * (1 - out.data)", "out.data * (out.data - 1)"),
            hint="opposite sign"),
    Mistake("sigmoid_backward: forgot the upstream gradient", "sigmoid_backward",
            ("out.data * (1 - out.data) * out.grad", "out.data * (1 - out.data)"),
            hint=UPSTREAM),
    Mistake("max_backward: the gradient goes to the smaller operand", "max_backward",
            ("a.data > b.data", "a.data < b.data"),
            hint="the wrong way round"),
    Mistake("max_backward: both operands get the whole gradient", "max_backward",
            (MAX_RULE, "    a.grad += out.grad\n    b.grad += out.grad\n"),
            hint="the other one does not change out"),
    Mistake("max_backward: a gets the gradient at a tie (a.data >= b.data)", "max_backward",
            ("a.data > b.data", "a.data >= b.data"),
            hint="at a tie (a == b) the whole gradient goes to b"),
    Mistake("max_backward: multiplies by out.data, the maximum", "max_backward",
            [("        a.grad += out.grad", "        a.grad += out.data * out.grad"),
             ("        b.grad += out.grad", "        b.grad += out.data * out.grad")],
            hint="not the value out.data"),
    Mistake("max_backward: = instead of +=", "max_backward",
            [("        a.grad += out.grad", "        a.grad = out.grad"),
             ("        b.grad += out.grad", "        b.grad = out.grad")],
            hint=OVERWRITE),
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
