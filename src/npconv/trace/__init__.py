"""Inside the network: one training step, number by number, with npconv's kernels or the learner's.

::

    from npconv import trace
    t = trace.step(model, x, y)                 # forward + backward of the compiled loss, recorded
    t.loss, t.output("conv0"), t.grad("conv0", "dW")
    t.terms("conv0", "dW", (0, 0, 0, 0))        # a * b terms that add up to that entry
    mine = trace.step(model, x, y, kernels="mine.py")   # the learner's conv_forward, ... inside
    mine.first_difference(t)                    # where they first differ, with a hint

Modules: :mod:`.step` runs and records, :mod:`.result` answers lookups, :mod:`.terms` opens an
entry into its terms, :mod:`npconv.learner_kernels` runs the learner's functions, :mod:`.compare` finds the
first difference.
"""

from ..learner_kernels import LearnerCodeError, load_kernels
from .compare import Difference
from .result import StepTrace
from .step import step
from .terms import Terms

__all__ = ["Difference", "LearnerCodeError", "StepTrace", "Terms", "load_kernels", "step"]
