"""Model selection: which of an app's models answer a query, and how they combine.

Five pure, seedable policies behind one interface (``Policy``): ``exp3`` (one
model per query, adversarial bandit), ``exp4`` (an ensemble of all models with
multiplicative weights), ``epsilon_greedy``, ``thompson`` and ``fixed``. The
frontend calls ``select`` -> asks the models -> ``combine`` at the deadline with
whatever arrived -> later, with the client's label, ``loss`` per model and
``update``. State is kept per context (a bounded LRU), so personalised selection
cannot grow memory without bound. See docs/selection_and_cache.md.
"""

from clipper.frontend.selection.combine import combine_outputs
from clipper.frontend.selection.epsilon_greedy import EpsilonGreedy
from clipper.frontend.selection.exp3 import Exp3
from clipper.frontend.selection.exp4 import Exp4
from clipper.frontend.selection.factory import POLICIES, make_policy
from clipper.frontend.selection.fixed import Fixed
from clipper.frontend.selection.losses import get_loss
from clipper.frontend.selection.policy import Combined, ContextualPolicy, Policy, Selection
from clipper.frontend.selection.thompson import Thompson

__all__ = [
    "POLICIES",
    "Combined",
    "ContextualPolicy",
    "EpsilonGreedy",
    "Exp3",
    "Exp4",
    "Fixed",
    "Policy",
    "Selection",
    "Thompson",
    "combine_outputs",
    "get_loss",
    "make_policy",
]
