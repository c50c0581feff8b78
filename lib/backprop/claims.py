"""Claims a lesson makes about its own numbers, checked beside the print that shows them.

A lesson's prose says what its measurements show ("the loss falls below 0.1", "reverse mode
needs n/2 times fewer operations"). `claim` states that sentence as a condition on the numbers
just printed: when a rerun (another machine, another NumPy) stops showing it, the cell fails,
and so does `make test` (nbval runs every lesson), instead of the text silently going wrong.

    claim(final_loss < 0.1, "the loss falls below 0.1 within 200 steps")

prints ``✓ the loss falls below 0.1 within 200 steps`` so the reader sees what was checked.
"""
import numpy as np

__all__ = ["ClaimError", "claim"]


class ClaimError(AssertionError):
    """A lesson's text says something its own numbers no longer show."""


def claim(condition, statement):
    """Check that `condition` (a bool computed from the lesson's numbers) holds; print
    ``✓ statement`` if it does, raise ClaimError naming the statement if it does not.

    condition: a Python or NumPy bool (not an array: say ``np.all(...)`` or ``.any()``).
    statement: the sentence of the lesson's text that the condition checks.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise TypeError("claim(condition, statement): statement must be the sentence the "
                        f"condition checks, got {statement!r}")
    if isinstance(condition, np.ndarray):
        raise TypeError(f"claim({statement!r}): the condition is an array of shape "
                        f"{condition.shape}; reduce it with np.all(...) or np.any(...)")
    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError(f"claim({statement!r}): the condition must be True or False, got "
                        f"{type(condition).__name__} {condition!r}")
    if not condition:
        raise ClaimError(f"The lesson says: {statement!r}, but the numbers it just computed do "
                         "not show it. Rerun the lesson and change its text (or its "
                         "experiment) so that they agree.")
    print(f"\u2713 {statement}")
