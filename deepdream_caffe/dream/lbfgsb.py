"""L-BFGS-B on a box of pixel bounds, without scipy.optimize.minimize's per-variable Python loops.

``scipy.optimize.minimize(method="L-BFGS-B", bounds=...)`` converts the bounds
between two formats and then classifies them variable by variable in
Python. For an image that is three loops over every pixel value: on a
640x427 photo (820k variables) they cost more than the ten forward+backward
passes of the octave. This driver makes the same calls to scipy's L-BFGS-B
routine (``scipy.optimize._lbfgsb.setulb``) with the bound arrays built by
numpy, so the iterates are the same bits as ``minimize``'s (a test holds it
to that). The routine is private to scipy and its arguments changed in
scipy 1.15; for versions whose calling convention is not the one known here
the driver falls back to ``minimize`` itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np
import scipy
from scipy.optimize import Bounds, minimize

try:  # scipy's private L-BFGS-B routine, for the fast driver; other scipy versions may lack it
    from scipy.optimize import _lbfgsb
    from scipy.optimize._lbfgsb_py import status_messages, task_messages
except ImportError:
    _lbfgsb = None

Fun = Callable[[np.ndarray], Tuple[float, np.ndarray]]
Callback = Callable[[np.ndarray, float], None]

# The setulb calling convention below is that of scipy 1.15 (the C port of L-BFGS-B) up to 1.17.
_KNOWN = ((1, 15), (1, 18))
# minimize()'s defaults for L-BFGS-B.
MAXCOR, FTOL, GTOL, MAXLS = 10, 2.2204460492503131e-09, 1e-5, 20


@dataclass
class Result:
    """What a run ended with (the fields of scipy's OptimizeResult that the L-BFGS mode uses)."""

    x: np.ndarray
    fun: float
    nit: int
    nfev: int
    status: int  # 0 converged, 1 out of iterations or evaluations, 2 other
    message: str


def fast_path_available() -> bool:
    """True when scipy's L-BFGS-B routine has the calling convention this driver knows."""
    try:
        version = tuple(int(p) for p in scipy.__version__.split(".")[:2])
    except ValueError:
        return False
    return _lbfgsb is not None and _KNOWN[0] <= version < _KNOWN[1] and hasattr(_lbfgsb, "setulb")


def lbfgsb(fun: Fun, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, maxiter: int,
           maxfun: Optional[int] = None, callback: Optional[Callback] = None,
           fast: Optional[bool] = None) -> Result:
    """Minimise ``fun`` (x -> (f, grad), float64) from ``x0`` within ``lo <= x <= hi`` (flat, finite).

    Same stopping rules and defaults as ``minimize(method="L-BFGS-B")``;
    ``maxfun=None`` is its 15000. ``callback(x, f)`` sees each accepted
    iterate. ``fast=None`` uses the fast driver when scipy allows it.
    """
    maxfun = 15000 if maxfun is None else int(maxfun)
    if fast is None:
        fast = fast_path_available()
    if not fast:
        return _with_minimize(fun, x0, lo, hi, maxiter, maxfun, callback)
    return _with_setulb(fun, x0, lo, hi, maxiter, maxfun, callback)


def _with_minimize(fun, x0, lo, hi, maxiter, maxfun, callback) -> Result:
    def cb(intermediate_result) -> None:
        # scipy >= 1.11 passes an OptimizeResult with .fun; older ones pass x alone.
        xk = getattr(intermediate_result, "x", intermediate_result)
        fk = getattr(intermediate_result, "fun", None)
        callback(xk, float(fun(xk)[0]) if fk is None else float(fk))

    res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=Bounds(lo, hi),
                   options={"maxiter": int(maxiter), "maxfun": maxfun}, callback=cb if callback else None)
    return Result(np.asarray(res.x, dtype=np.float64), float(res.fun), int(res.nit), int(res.nfev),
                  int(res.status), str(res.message))


def _with_setulb(fun, x0, lo, hi, maxiter, maxfun, callback) -> Result:
    lo = np.ascontiguousarray(lo, dtype=np.float64).ravel()
    hi = np.ascontiguousarray(hi, dtype=np.float64).ravel()
    if lo.shape != hi.shape or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError("the bounds must be finite arrays of one shape")
    if np.any(lo > hi):
        raise ValueError("a lower bound is above its upper bound")
    m, n = MAXCOR, lo.size
    x = np.clip(np.asarray(x0, dtype=np.float64).ravel(), lo, hi)
    nbd = np.full(n, 2, np.int32)  # 2: bounded below and above, for every variable
    f = np.array(0.0, dtype=np.float64)
    g = np.zeros(n, dtype=np.float64)
    wa = np.zeros(2 * m * n + 5 * n + 11 * m * m + 8 * m, np.float64)
    iwa = np.zeros(3 * n, dtype=np.int32)
    task = np.zeros(2, dtype=np.int32)
    ln_task = np.zeros(2, dtype=np.int32)
    lsave = np.zeros(4, dtype=np.int32)
    isave = np.zeros(44, dtype=np.int32)
    dsave = np.zeros(29, dtype=np.float64)
    factr = FTOL / np.finfo(float).eps

    # minimize() evaluates f at x0 before the first call (ScalarFunction), and counts it.
    f_seen, g_seen = fun(x)
    f_seen, g_seen, x_seen, nfev = float(f_seen), np.asarray(g_seen, dtype=np.float64), x.copy(), 1
    nit = 0
    while True:
        g = g.astype(np.float64)
        _lbfgsb.setulb(m, x, lo, hi, nbd, f, g, factr, GTOL, wa, iwa, task, lsave, isave, dsave, MAXLS, ln_task)
        if task[0] == 3:  # FG: wants f and g at the current x
            if not np.array_equal(x, x_seen):  # like minimize(), the last point's values are reused
                f_seen, g_seen = fun(x)
                f_seen, g_seen, x_seen = float(f_seen), np.asarray(g_seen, dtype=np.float64), x.copy()
                nfev += 1
            f, g = f_seen, g_seen
        elif task[0] == 1:  # NEW_X: an accepted iterate
            nit += 1
            if callback is not None:
                callback(x.copy(), float(f))
            if nit >= maxiter:
                task[0], task[1] = 5, 504
            elif nfev > maxfun:
                task[0], task[1] = 5, 502
        else:
            break
    if task[0] == 4:
        status = 0
    elif nfev > maxfun or nit >= maxiter:
        status = 1
    else:
        status = 2
    message = status_messages[task[0]] + ": " + task_messages[task[1]]
    return Result(x.copy(), float(f), nit, nfev, status, message)
