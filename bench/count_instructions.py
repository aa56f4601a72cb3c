"""A fixed PoE-BT solve to count instructions with callgrind (repeatable whatever the load).

20,000 items, 200,000 comparisons (seeded), one thread, straight into the compiled core:

    valgrind --tool=callgrind --toggle-collect='*bt_newton*' --toggle-collect='*bt_fixed_point*' \
        python bench/count_instructions.py hard newton

Arguments: the outcomes (``hard`` or ``soft``) and the method (``newton``, ``mm``,
``newman``). It prints the iteration counts, the gradient norm and the objective, so
two builds can be checked to do the same work before their counts are compared.
"""
import sys

import numpy as np

from pycomp._native import core


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "hard"
    method = sys.argv[2] if len(sys.argv) > 2 else "newton"
    rng = np.random.default_rng(0)
    n, m = 20000, 200000
    true = rng.normal(size=n)
    i = rng.integers(0, n, m).astype(np.int32)
    j = ((i + 1 + rng.integers(0, n - 1, m)) % n).astype(np.int32)
    p_win = 1 / (1 + np.exp(-(true[i] - true[j])))
    if kind == "hard":
        won = rng.random(m) < p_win
        a, b = np.where(won, i, j).astype(np.int32), np.where(won, j, i).astype(np.int32)
        raw = core().solve_bt(a, b, None, None, n, method, 1.0, 1e-8, 100, 1, True)
    else:
        raw = core().solve_bt(i, j, p_win, None, n, method, 1.0, 1e-8, 100, 1, True)
    print(kind, method, raw["n_iter"], raw["n_inner"], raw["grad_norm"], repr(raw["objective"]))


if __name__ == "__main__":
    main()
