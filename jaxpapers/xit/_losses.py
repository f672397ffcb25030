"""The contrastive losses: NT-Xent, temporal-contrasting InfoNCE, and SICC.

All are pure, batched and built on ``jax.nn.log_softmax``; each returns a scalar mean.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxpapers.xit import _validate as chk

__all__ = ["l2_normalize", "nt_xent", "tc_infonce", "sicc"]

_MASKED = -1e9


def l2_normalize(x, axis: int = -1, eps: float = 1e-8):
    """``x / sqrt(sum(x^2) + eps)`` along ``axis``."""
    return x * jax.lax.rsqrt(jnp.sum(x * x, axis=axis, keepdims=True) + eps)


def _check_pair(name, a, b, names):
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"{name}: expected two [B, D] arrays of the same shape ({names}); got "
                         f"{a.shape} and {b.shape}")
    return chk.floats(a, names.split(", ")[0]), chk.floats(b, names.split(", ")[1])


def _tau_ok(tau):
    return chk.scalar_ok(tau, "tau", lambda t: jnp.isfinite(t) & (t > 0), "finite and > 0")


def nt_xent(u, v, tau):
    """NT-Xent (TS-TCC's contextual contrasting) of the pairs ``(u_i, v_i)``.

    Each of the ``2B`` vectors ``[u; v]`` is contrasted with the other ``2B - 1`` by cosine
    similarity over ``tau``; its positive is its partner in the other view. The self-similarity
    is excluded by a ``-1e9`` logit (not ``-inf``, safe in low precision).

    Args:
      u: float ``(B, D)`` projections of one view.
      v: float ``(B, D)`` projections of the other view.
      tau: temperature, finite and > 0 (may be traced).

    Returns:
      The mean loss, a scalar of the inputs' dtype; NaN under ``jit`` for a bad ``tau``, and
      for NaN in ``u`` or ``v``.

    Raises:
      ValueError: ``u`` and ``v`` not two floating ``(B, D)`` arrays of one shape; eagerly
        also a bad ``tau``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit import nt_xent
      >>> u = jnp.eye(3)
      >>> loss = jax.jit(nt_xent)
      >>> round(float(loss(u, u, 0.1)), 4), round(float(loss(u, u[::-1], 0.1)), 4)
      (0.0002, 6.6668)
    """
    u, v = _check_pair("nt_xent", u, v, "u, v")
    tau_ok = _tau_ok(tau)
    batch = u.shape[0]
    q = l2_normalize(jnp.concatenate([u, v], axis=0))
    logits = q @ q.T / tau
    eye = jnp.eye(2 * batch, dtype=bool)
    logits = jnp.where(eye, _MASKED, logits)
    positive = (jnp.arange(2 * batch) + batch) % (2 * batch)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    loss = -jnp.mean(jnp.take_along_axis(log_p, positive[:, None], axis=-1))
    return chk.nan_unless(tau_ok, loss)


def tc_infonce(pred, fut):
    """TS-TCC's temporal contrasting InfoNCE: each true future against the batch's predictions.

    ``-mean_{k,b} log softmax_c(fut_kb . pred_kc)[b]``: for each of ``K`` future steps, row
    ``b`` (the true future of sample ``b`` in the other view) against the ``B`` predictions; no
    temperature.

    Args:
      pred: float ``(K, B, D)`` predictions ``W_k c`` from one view's context.
      fut: float ``(K, B, D)`` normalised true future latents of the other view.

    Returns:
      The mean loss, a scalar; NaN in, NaN out.

    Raises:
      ValueError: ``pred`` and ``fut`` not two floating ``(K, B, D)`` arrays of one shape.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit import tc_infonce
      >>> round(float(jax.jit(tc_infonce)(jnp.zeros((2, 4, 3)), jnp.ones((2, 4, 3)))), 4)  # ln 4
      1.3863
    """
    pred, fut = jnp.asarray(pred), jnp.asarray(fut)
    if pred.ndim != 3 or pred.shape != fut.shape:
        raise ValueError(f"tc_infonce: expected two [K, B, D] arrays of the same shape (pred, "
                         f"fut); got {pred.shape} and {fut.shape}")
    pred, fut = chk.floats(pred, "pred"), chk.floats(fut, "fut")
    scores = jnp.einsum("kbd,kcd->kbc", fut, pred)
    log_p = jax.nn.log_softmax(scores, axis=-1)
    return -jnp.mean(jnp.diagonal(log_p, axis1=1, axis2=2))


def sicc(m, r, perm, lam, tau, extra_negatives: bool = False):
    """Soft interpolation contextual contrasting (SICC, XIT; its form is inferred).

    The projected context ``m_i`` of the mixed series against the projected contexts ``r`` of
    the originals, with the soft target ``lam_i e_i + (1 - lam_i) e_perm(i)``; cosine
    similarity over ``tau``.

    Args:
      m: ``[B, D]`` projected contexts of the mixed series.
      r: ``[B, D]`` projected contexts of the original series (weak view).
      perm: ``[B]`` int partner of each mixed series.
      lam: ``[B]`` mixing weights (``x_mix_i = lam_i x_i + (1 - lam_i) x_perm(i)``).
      tau: temperature of the cosine similarities.
      extra_negatives: also contrast against the other mixed contexts (``2B - 1`` candidates).

    Returns:
      The scalar ``-mean_i [lam_i log p_{i,i} + (1 - lam_i) log p_{i,perm(i)}]``; NaN under
      ``jit`` when ``tau`` is not finite and positive, a ``perm`` entry is outside ``[0, B)``,
      a ``lam`` outside ``[0, 1]``, or an input is NaN.

    Raises:
      ValueError: ``m`` and ``r`` not two floating ``(B, D)`` arrays of one shape, ``perm``
        not integer ``(B,)``, ``lam`` not floating ``(B,)``; eagerly also a bad ``tau``,
        ``perm`` entry or ``lam``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxpapers.xit import sicc
      >>> m = jnp.eye(4)
      >>> loss = jax.jit(sicc)(m, m, jnp.asarray([1, 0, 3, 2]), jnp.ones(4), 0.1)  # lam = 1
      >>> round(float(loss), 4)
      0.0001
    """
    m, r = _check_pair("sicc", m, r, "m, r")
    batch = m.shape[0]
    perm = chk.ints(perm, "perm", (batch,))
    lam = chk.floats(lam, "lam", shape=(batch,))
    valid = (_tau_ok(tau)
             & chk.all_ok(perm, "perm", lambda p: (p >= 0) & (p < batch), f"in [0, {batch})")
             & chk.all_ok(lam, "lam", lambda a: (a >= 0) & (a <= 1), "in [0, 1]"))
    mn, rn = l2_normalize(m), l2_normalize(r)
    logits = mn @ rn.T / tau
    if extra_negatives:
        self_block = jnp.where(jnp.eye(batch, dtype=bool), _MASKED, mn @ mn.T / tau)
        logits = jnp.concatenate([logits, self_block], axis=1)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    own = jnp.take_along_axis(log_p, jnp.arange(batch)[:, None], axis=-1)[:, 0]
    partner = jnp.take_along_axis(log_p, perm[:, None].astype(jnp.int32), axis=-1)[:, 0]
    return chk.nan_unless(valid, -jnp.mean(lam * own + (1.0 - lam) * partner))
