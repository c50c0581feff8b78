"""Datasets, splits and mini-batches for the course, all offline.

The real datasets are the small ones bundled inside scikit-learn (no download); the toy 2-D
sets are generated from an explicit ``np.random.Generator`` so every lesson is reproducible.
Every loader returns ``(X, y)`` with ``X`` float64 of shape ``(N, D)`` and ``y`` of shape ``(N,)``
(int64 class labels, or float64 targets for regression).
"""
from dataclasses import dataclass, fields

import numpy as np
import sklearn.datasets
from sklearn.model_selection import train_test_split


# -- bundled real datasets -------------------------------------------------------------------
def load_digits(as_images=False):
    """The 8x8 handwritten digits (1797 images, classes 0..9), pixels scaled to [0, 1].

    Returns ``X`` float64 of shape (1797, 64), or (1797, 1, 8, 8) when ``as_images`` is True
    (N, channels, height, width, the layout of the convolution layers), and ``y`` int64 (1797,).
    """
    bunch = sklearn.datasets.load_digits()
    X = bunch.data.astype(np.float64) / 16.0  # pixel intensities are integers 0..16
    if as_images:
        X = X.reshape(-1, 1, 8, 8)
    return X, bunch.target.astype(np.int64)


def load_breast_cancer():
    """Wisconsin breast-cancer diagnosis: 569 tumours, 30 raw (unscaled) features.

    Returns ``X`` float64 (569, 30) and ``y`` int64 (569,) with 0 = malignant, 1 = benign
    (scikit-learn's coding). Features differ in scale by orders of magnitude: `standardize` them.
    """
    bunch = sklearn.datasets.load_breast_cancer()
    return bunch.data.astype(np.float64), bunch.target.astype(np.int64)


def load_diabetes():
    """Diabetes progression regression: 442 patients, 10 features (already centred and scaled).

    Returns ``X`` float64 (442, 10) and ``y`` float64 (442,), disease progression one year later.
    """
    bunch = sklearn.datasets.load_diabetes()
    return bunch.data.astype(np.float64), bunch.target.astype(np.float64)


# -- toy 2-D classification sets -------------------------------------------------------------
def _generator(rng, owner):
    """The caller's Generator, or one seeded with 0 when None: results are reproducible by
    default, never drawn from a hidden global state."""
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{owner}: rng must be a np.random.Generator (np.random.default_rng(seed)) or None, "
            f"got {type(rng).__name__}"
        )
    return rng


def make_spirals(n_per_class=100, n_classes=3, noise=0.2, rng=None):
    """Interleaved spiral arms (CS231n's example that no linear classifier can separate).

    Arm ``k`` has radius growing linearly from 0 to 1 while its angle sweeps 4 radians
    starting at ``4 k``, plus Gaussian angle noise of standard deviation ``noise``.
    Returns ``X`` float64 (n_per_class * n_classes, 2) and ``y`` int64 with values 0..n_classes-1.
    """
    if n_per_class < 1 or n_classes < 2:
        raise ValueError(
            f"make_spirals: need n_per_class >= 1 and n_classes >= 2, "
            f"got {n_per_class} and {n_classes}"
        )
    rng = _generator(rng, "make_spirals")
    radius = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    start = 4.0 * np.arange(n_classes)
    angle = (start[:, None] + np.linspace(0.0, 4.0, n_per_class)).ravel()
    angle = angle + noise * rng.standard_normal(angle.shape)
    X = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    y = np.repeat(np.arange(n_classes, dtype=np.int64), n_per_class)
    return X, y


def make_moons(n=200, noise=0.1, rng=None):
    """Two interleaving half circles (scikit-learn's ``make_moons``), seeded from `rng`.

    Returns ``X`` float64 (n, 2) and ``y`` int64 (n,) in {0, 1}.
    """
    rng = _generator(rng, "make_moons")
    X, y = sklearn.datasets.make_moons(
        n_samples=n, noise=noise, random_state=int(rng.integers(2**31 - 1))
    )
    return X.astype(np.float64), y.astype(np.int64)


def make_xor(n=200, noise=0.1, rng=None):
    """Four Gaussian blobs centred at (+-1, +-1); the label is 1 when the two signs differ.

    The blobs get ``n // 4`` points each (the first ``n % 4`` blobs one more), in random order.
    Returns ``X`` float64 (n, 2) and ``y`` int64 (n,) in {0, 1}.
    """
    rng = _generator(rng, "make_xor")
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    blob = rng.permutation(np.arange(n) % 4)
    X = corners[blob] + noise * rng.standard_normal((n, 2))
    y = (corners[blob, 0] != corners[blob, 1]).astype(np.int64)
    return X, y


def is_positive_int(value):
    """True for an integer >= 1 (a bool or a float like 2.0 is not one)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


# -- splits, scaling, batches ----------------------------------------------------------------
@dataclass
class Splits:
    """Train / validation / test arrays, by attribute or key: ``s.X_val`` or ``s["X_val"]``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray

    def keys(self):
        return [f.name for f in fields(self)]

    def __getitem__(self, key):
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)


def _is_class_labels(y):
    y = np.asarray(y)
    return y.ndim == 1 and y.dtype.kind in "iub"


def _split_off(X, y, count, seed, stratify):
    """Split off `count` samples: returns (X_keep, X_part, y_keep, y_part)."""
    if count == 0:
        return X, X[:0], y, y[:0]
    return train_test_split(
        X, y, test_size=count, random_state=seed, stratify=y if stratify else None
    )


def train_val_test_split(X, y, val=0.15, test=0.15, seed=0, stratify=True):
    """Shuffle and split into train / validation / test sets, identically for the same `seed`.

    X: (N, ...); y: (N,). ``val`` and ``test`` are fractions of N (each part gets
    ``round(fraction * N)`` samples). With ``stratify`` each part keeps the class proportions
    of ``y`` (only applies when ``y`` holds integer class labels). Returns a `Splits`.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"train_val_test_split: X has {len(X)} samples but y has {len(y)}")
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(
            f"train_val_test_split: need 0 <= val, 0 <= test and val + test < 1, "
            f"got val={val}, test={test}"
        )
    stratify = stratify and _is_class_labels(y)
    # absolute counts, so the sizes do not depend on rounding a rescaled second fraction
    n_val, n_test = round(val * len(X)), round(test * len(X))
    X_rest, X_test, y_rest, y_test = _split_off(X, y, n_test, seed, stratify)
    X_train, X_val, y_train, y_val = _split_off(X_rest, y_rest, n_val, seed, stratify)
    return Splits(X_train, y_train, X_val, y_val, X_test, y_test)


def standardize(X_train, *others):
    """Shift and scale each feature to mean 0 and std 1 using statistics of `X_train` only.

    X_train: (N, ...); others: arrays with the same feature shape (validation, test data).
    Constant features (std 0) are only centred. Returns a tuple ``(X_train_std, *others_std)``.
    The statistics come from the training set alone so no information leaks from test data.
    """
    X_train = np.asarray(X_train)
    X_train = X_train.astype(np.result_type(X_train.dtype, np.float32), copy=False)
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0).astype(X_train.dtype)
    result = []
    for i, X in enumerate((X_train, *others)):
        X = np.asarray(X)
        if X.shape[1:] != X_train.shape[1:]:
            raise ValueError(
                f"standardize: array {i} has feature shape {X.shape[1:]}, "
                f"expected {X_train.shape[1:]} (the training set's)"
            )
        result.append((X - mean) / std)
    return tuple(result)


def minibatches(X, y, batch_size, shuffle=True, rng=None):
    """Return an iterator of ``(X_batch, y_batch)`` covering every sample exactly once (one epoch).

    X: (N, ...); y: (N, ...). Batches hold `batch_size` samples; the last may be smaller.
    With ``shuffle`` (the default) the order is a fresh permutation drawn from `rng`, a
    ``np.random.Generator`` that is required: pass the same generator every epoch so that each
    epoch gets a new order (a default seed would repeat one order forever). ``shuffle=False``
    keeps the order of X and needs no rng. Bad arguments raise here, at the call, rather than at
    the first ``next()``.
    """
    if len(X) != len(y):
        raise ValueError(f"minibatches: X has {len(X)} samples but y has {len(y)}")
    if not is_positive_int(batch_size):
        raise ValueError(f"minibatches: batch_size must be an integer >= 1, got {batch_size!r}")
    if shuffle and not isinstance(rng, np.random.Generator):
        raise TypeError(
            "minibatches: shuffle=True needs rng=np.random.default_rng(seed), created once and "
            "passed every epoch (so each epoch gets a new order), or shuffle=False; "
            f"got rng={type(rng).__name__}"
        )
    X, y = np.asarray(X), np.asarray(y)
    order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
    batches = (order[start:start + batch_size] for start in range(0, len(X), batch_size))
    return ((X[idx], y[idx]) for idx in batches)


# -- text --------------------------------------------------------------------------------------
# Non-ASCII punctuation of the pydoc topics and its ASCII spelling; other non-ASCII characters
# (a handful of letters and symbols) are dropped.
_ASCII_PUNCTUATION = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                      "\u2026": "...", "\u2014": "--", "\u2013": "-"}


def _prose(text):
    """The English prose of one pydoc topic: headings' underlines, code examples, grammar rules
    and tables (the lines indented by 3 or more spaces, or starting a table) are removed; the
    paragraphs and bullet points stay, with their line breaks."""
    lines = []
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        if (indent >= 3 or "\t" in line or line.lstrip().startswith(("+-", "|", "=="))
                or (line and set(line) <= set("*=-^~\"+"))):
            if lines and lines[-1]:
                lines.append("")  # a removed block still separates two paragraphs
            continue
        lines.append(line.strip())
    text = "\n".join(lines)
    text = "".join(_ASCII_PUNCTUATION.get(c, c) for c in text)
    text = text.encode("ascii", "ignore").decode("ascii")
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def load_text(name="pydoc_topics"):
    """An English text that ships offline, as one str of printable ASCII and newlines.

    ``"pydoc_topics"``: the prose of Python's own reference documentation as ``help()`` shows
    it (the standard library's ``pydoc_data.topics``: the language reference's sections on
    statements, expressions, data types, ...), every topic in alphabetical order of its name,
    with code examples, grammar rules and tables removed, curly quotes and dashes spelled in
    ASCII, paragraphs separated by a blank line. About 240,000 characters, about 90 distinct
    ones (under Python 3.11: 243,434 characters, 94 distinct). Deterministic for a given Python
    version (the documentation changes a little between Python versions).
    """
    if name != "pydoc_topics":
        raise ValueError(f"load_text: unknown text {name!r}; the one available is "
                         "'pydoc_topics'")
    from pydoc_data.topics import topics
    return "\n\n".join(_prose(topics[key]) for key in sorted(topics)) + "\n"
