"""Check a learner's own step functions, as the course's graders do, with hints a learner can act on.

``from npconv.testing import *`` stands in for the course's ``from public_tests import *`` (and
``from test_utils import summary, comparator``)::

    zero_pad_test(zero_pad)            # prints "All tests passed!" or raises AssertionError with a hint
    conv_forward_test(conv_forward)

Each ``*_test(target)`` runs the course's own cases and random ones against :mod:`npconv.course`.
"""

from .conv import conv_backward_test, conv_forward_test, conv_single_step_test, zero_pad_test
from .keras import comparator, summary
from .pool import create_mask_from_window_test, distribute_value_test, pool_backward_test, pool_forward_test

__all__ = [
    "zero_pad_test",
    "conv_single_step_test",
    "conv_forward_test",
    "pool_forward_test",
    "conv_backward_test",
    "create_mask_from_window_test",
    "distribute_value_test",
    "pool_backward_test",
    "summary",
    "comparator",
]
