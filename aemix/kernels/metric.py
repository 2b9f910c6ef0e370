"""The preconditioner shared by the kernels: the proposal scale of the random walk's adaptation.

The warm-up (`aemix.adaptation`) estimates the posterior covariance across chains as a flat scale: a
factor ``L`` with ``L L^T`` the covariance, given per coordinate (a vector ``sd``: ``L = diag(sd)``),
as a matrix, or as a `LowRankScale` (``L = diag(sd) (I + V diag(gains) V^T)``).  The random walk
proposes along ``L e``; the gradient kernels move in the whitened coordinates ``y = L^{-1} x``, where
the posterior is close to isotropic: their velocity in ``x`` is ``L v`` and their gradient in ``y`` is
``L^T grad_x``.  Both products are written as elementwise products and sums, which both loops batch
and lower.
"""

from __future__ import annotations

from aesara.graph.basic import Variable

from aemix.kernels.rmh import LowRankScale

__all__ = ["times_factor", "times_factor_transpose"]


def times_factor(scale: Variable | LowRankScale, v: Variable) -> Variable:
    """``L @ v`` for the factor ``L`` of ``scale`` (see the module docstring)."""
    if isinstance(scale, LowRankScale):
        along = (scale.vectors * v[:, None]).sum(axis=0) * scale.gains
        return scale.sd * (v + (scale.vectors * along[None, :]).sum(axis=-1))
    if scale.ndim == 2:
        return (scale * v[None, :]).sum(axis=-1)
    return scale * v


def times_factor_transpose(scale: Variable | LowRankScale, v: Variable) -> Variable:
    """``L^T @ v`` for the factor ``L`` of ``scale``."""
    if isinstance(scale, LowRankScale):
        w = scale.sd * v
        along = (scale.vectors * w[:, None]).sum(axis=0) * scale.gains
        return w + (scale.vectors * along[None, :]).sum(axis=-1)
    if scale.ndim == 2:
        return (scale * v[:, None]).sum(axis=0)
    return scale * v
