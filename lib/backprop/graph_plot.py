"""Draw a `backprop.engine.Value` graph with matplotlib alone (no graphviz binary, no networkx).

Layout: one column per depth (leaves on the left, the output on the right), a box per value
(``a | data 2.00 | grad -3.00``), a small circle per operation just left of the value it made,
arrows operand -> operation -> result. Readable for graphs of up to ~30 values.

Sizes are worked out in inches: a new figure is sized so that every box fits. Box widths come
from the text's own width in points, and arrows attach to boxes with offsets in points, so they
stay attached whatever the size of the axes.
"""
import matplotlib.pyplot as plt
from matplotlib.font_manager import FontProperties
from matplotlib.patches import ConnectionPatch, FancyArrowPatch
from matplotlib.textpath import TextToPath
from matplotlib.transforms import offset_copy

from .engine import topological_order

FONT_SIZE = 9  # points
BOX_PAD = 0.3  # box padding, as a fraction of the font size (matplotlib's "round,pad=0.3")
ROW_HEIGHT = 0.5  # inches between the centres of two boxes in one column
COLUMN_GAP = 1.0  # inches between two columns of boxes: room for an op circle and arrows
OP_OFFSET = 0.35  # inches from an op circle's centre to the left edge of its result's column
MARGIN = 0.25  # inches around the drawing
OP_SYMBOLS = {"*": "×", "sigmoid": "σ", "relu": "ReLU"}
LEAF_COLOR, NODE_COLOR, ROOT_COLOR, OP_COLOR = "#d6e6f5", "#f2f2f2", "#fde2c8", "#ffe9a8"

_MONO = FontProperties(family="monospace", size=FONT_SIZE)
_OP_FONT = FontProperties(family="sans-serif", size=FONT_SIZE - 1)


def node_text(node, digits=2):
    """The text in a value's box: ``"a | data 2.00 | grad -3.00"`` (no label part if unlabelled)."""
    numbers = f"data {node.data:.{digits}f} | grad {node.grad:.{digits}f}"
    return f"{node.label} | {numbers}" if node.label else numbers


def _text_width_points(text, prop):
    width, _, _ = TextToPath().get_text_width_height_descent(text, prop, ismath=False)
    return width


def _columns(order):
    """Column of every node: its depth from the leaves (longest path from a leaf).

    A leaf is then moved right, next to the first operation that uses it, so that a bias or a
    constant does not send a long arrow across the whole drawing.
    """
    column = {}
    for node in order:  # operands come before the nodes that use them
        column[node] = 1 + max((column[child] for child in node._prev), default=-1)
    users = {node: [] for node in order}
    for node in order:
        for child in set(node._prev):
            users[child].append(node)
    for node in order:
        if not node._prev and users[node]:
            column[node] = min(column[user] for user in users[node]) - 1
    return column, users


def _rows(order, column, users, sweeps=4):
    """Order the nodes inside each column to keep arrows short: a few barycentre sweeps."""
    n_columns = max(column.values()) + 1
    layers = [[node for node in order if column[node] == c] for c in range(n_columns)]
    y = {}

    def place(layer):
        for i, node in enumerate(layer):
            y[node] = ((len(layer) - 1) / 2 - i) * ROW_HEIGHT

    def mean_y(nodes, default):
        return sum(y[n] for n in nodes) / len(nodes) if nodes else default

    for layer in layers:
        place(layer)
    for _ in range(sweeps):
        for layer in layers[1:]:  # left to right: follow the operands
            layer.sort(key=lambda n: -mean_y(set(n._prev), y[n]))
            place(layer)
        for layer in reversed(layers[:-1]):  # right to left: follow the users
            layer.sort(key=lambda n: -mean_y(users[n], y[n]))
            place(layer)
    return layers, y


def draw_graph(root, ax=None, digits=2, max_nodes=300):
    """Draw the graph that computed ``root``; returns the matplotlib Axes.

    Each value is a box with its label, data and grad (``digits`` decimals); each operation a
    small circle. Boxes carry the artist id (gid) ``"value"``, op circles ``"op"``. With
    ``ax=None`` a new figure is created, sized to fit; a given ``ax`` is used as it is.
    Raises ValueError above ``max_nodes`` values (a drawing that size is unreadable).
    """
    order = topological_order(root)
    if len(order) > max_nodes:
        raise ValueError(
            f"draw_graph: the graph has {len(order)} values; drawing is meant for small graphs "
            f"(max_nodes={max_nodes})"
        )
    column, users = _columns(order)
    layers, y = _rows(order, column, users)

    texts = {node: node_text(node, digits) for node in order}
    half_width_pt = {node: _text_width_points(text, _MONO) / 2 + BOX_PAD * FONT_SIZE
                     for node, text in texts.items()}
    column_width = [2 * max(half_width_pt[n] for n in layer) / 72 for layer in layers]
    column_x, x = [], MARGIN
    for width in column_width:
        column_x.append(x + width / 2)
        x += width + COLUMN_GAP
    width_in = x - COLUMN_GAP + MARGIN
    height_in = max(len(layer) for layer in layers) * ROW_HEIGHT + 2 * MARGIN

    if ax is None:
        fig = plt.figure(figsize=(width_in, height_in))
        ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_in)
    ax.set_ylim(-height_in / 2, height_in / 2)
    ax.set_axis_off()

    for node in order:
        c = column[node]
        color = ROOT_COLOR if node is root else (NODE_COLOR if node._prev else LEAF_COLOR)
        ax.text(column_x[c], y[node], texts[node], fontproperties=_MONO, ha="center",
                va="center", gid="value", zorder=3,
                bbox=dict(boxstyle=f"round,pad={BOX_PAD}", fc=color, ec="0.3", lw=0.8))
        if node._prev:
            _draw_op(ax, node, column_x[c] - column_width[c] / 2 - OP_OFFSET, y[node],
                     column_x, column, y, half_width_pt)
    return ax


def _draw_op(ax, node, op_x, op_y, column_x, column, y, half_width_pt):
    """The op circle of ``node``, an arrow from each operand to it and one from it to ``node``."""
    symbol = OP_SYMBOLS.get(node._op, node._op)
    diameter = max(16.0, _text_width_points(symbol, _OP_FONT) + 6)  # points
    ax.plot([op_x], [op_y], marker="o", ms=diameter, mfc=OP_COLOR, mec="0.3", mew=0.8,
            ls="none", gid="op", zorder=3)
    ax.text(op_x, op_y, symbol, fontproperties=_OP_FONT, ha="center", va="center", zorder=4)
    arrow = dict(arrowstyle="-|>", mutation_scale=8, color="0.35", lw=0.8, zorder=2)
    ax.add_patch(FancyArrowPatch((op_x, op_y), (column_x[column[node]], y[node]),
                                 shrinkA=diameter / 2, shrinkB=half_width_pt[node], **arrow))
    for child in dict.fromkeys(node._prev):  # a * a: one arrow, not two on top of each other
        right_edge = offset_copy(ax.transData, fig=ax.figure, x=half_width_pt[child], y=0,
                                 units="points")
        ax.add_artist(ConnectionPatch((column_x[column[child]], y[child]), (op_x, op_y),
                                      coordsA=right_edge, coordsB=ax.transData,
                                      shrinkB=diameter / 2, **arrow))
