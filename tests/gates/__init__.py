"""Release gates, one module per lab: plausible wrong implementations (`WRONG`: each must lose its points) and,
for every graded exercise, a student's function that only wraps the library's twin (`WRAPPERS`: a right answer
that must score 0). `HEAD` is what a wrapper cell imports."""
from . import lab00, lab01, lab02, lab03, lab04, lab05, lab06, lab07

HEAD = """
import functools
import numpy as np
from mcunet_lite.kit import lab02, lab03, lab04, lab05, lab06, lab07
from mcunet_lite import boxes, deploy, evolution as evo, fixedpoint as fp, int8ref, patch, quant, schedule
from mcunet_lite import liveness, profile as prof, search_space as ss, supernet, zoo
from mcunet_lite.ir import Graph
"""

LABS = (lab00, lab01, lab02, lab03, lab04, lab05, lab06, lab07)
WRONG = {key: impls for lab in LABS for key, impls in lab.WRONG.items()}
WRAPPERS = {key: source for lab in LABS for key, source in lab.WRAPPERS.items()}
