"""Triton kernels of the fused head losses (imported lazily by :mod:`pycomp.ops._backend`).

Both losses reduce to two primitives on the logits ``z = hidden @ weight.T``
(B x V), which no kernel here ever stores:

* forward: the log-normaliser ``lse[b] = log sum_v exp(z[b, v])``
  (:func:`_lse_fwd_kernel`, an online logsumexp streamed over vocabulary
  blocks, split over programs and combined on the host) and the logits of a
  few token ids per row (:func:`_gather_logits_kernel`);
* backward: the gradient of the logits has the form
  ``G[b, v] = alpha[b] * softmax(z)[b, v] + sum_k coef[b, k] [v == ids[b, k]]``
  (a dense softmax part and a sparse part on the answer / score tokens).
  :func:`_vocab_grad_h_kernel` recomputes each logits tile, forms ``G`` in
  registers and accumulates ``G @ weight`` into the hidden-state gradient
  (fp32 atomics); :func:`_vocab_grad_hw_kernel` also writes
  ``G.T @ hidden`` blockwise into the weight gradient when the LM head is
  trainable. :func:`_gather_grad_kernel` is the backward of the two-token and
  K-token losses (``grad_h[b] = sum_k coef[b, k] weight[ids[b, k]]``).

Accumulation is always fp32. Tiles of 16-bit inputs go to ``tl.dot`` as
they are; fp32 inputs use ``input_precision="ieee"`` (no TF32). In the
gradient GEMMs ``G`` is rounded to bfloat16 for bfloat16 inputs; for float16
inputs ``G`` stays fp32 and the weight tile is upcast (TF32 keeps every
float16 bit), so tiny probabilities do not flush to float16 subnormals.
"""

import triton
import triton.language as tl


@triton.jit
def _row_block(pid_b, B, BLOCK_B: tl.constexpr):
    """Rows ``offs_b`` of row block ``pid_b`` and their in-bounds mask."""
    offs_b = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    return offs_b, offs_b < B


@triton.jit
def _split_bounds(pid_s, vb_per_split, n_vb):
    """The V-blocks ``[start, end)`` that split ``pid_s`` streams."""
    vb_start = pid_s * vb_per_split
    return vb_start, tl.minimum(vb_start + vb_per_split, n_vb)


@triton.jit
def _logits_tile(
    H, W, offs_b, offs_v, mask_b, mask_v, D, stride_hb, stride_wv,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr, PREC: tl.constexpr,
):
    """z[offs_b, offs_v] = H[offs_b] @ W[offs_v].T as a (BLOCK_B, BLOCK_V) fp32 tile."""
    offs_d = tl.arange(0, BLOCK_D)
    h_ptrs = H + offs_b[:, None].to(tl.int64) * stride_hb + offs_d[None, :]
    w_ptrs = W + offs_v[None, :].to(tl.int64) * stride_wv + offs_d[:, None]
    acc = tl.zeros((BLOCK_B, BLOCK_V), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        mask_d = (d0 + offs_d) < D
        h = tl.load(h_ptrs, mask=mask_b[:, None] & mask_d[None, :], other=0.0)
        w = tl.load(w_ptrs, mask=mask_d[:, None] & mask_v[None, :], other=0.0)
        acc = tl.dot(h, w, acc, input_precision=PREC)
        h_ptrs += BLOCK_D
        w_ptrs += BLOCK_D
    return acc


@triton.jit
def _vocab_block_logits(
    H, W, offs_b, mask_b, vb, V, D, stride_hb, stride_wv,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr, PREC: tl.constexpr,
):
    """Vocabulary block ``vb``: its columns ``offs_v``, their mask and the logits tile (fp32)."""
    offs_v = vb * BLOCK_V + tl.arange(0, BLOCK_V)
    mask_v = offs_v < V
    z = _logits_tile(H, W, offs_b, offs_v, mask_b, mask_v, D, stride_hb, stride_wv,
                     BLOCK_B, BLOCK_V, BLOCK_D, PREC)
    return offs_v, mask_v, z


@triton.jit
def _dlogits_tile(
    z, offs_b, offs_v, mask_b, mask_v, LSE, ALPHA, IDS, COEF, K,
    stride_ib, stride_ik, stride_cb, stride_ck,
):
    """G = alpha * exp(z - lse) + sum_k coef_k [v == ids_k], zero outside the masks (fp32)."""
    lse = tl.load(LSE + offs_b, mask=mask_b, other=0.0)
    alpha = tl.load(ALPHA + offs_b, mask=mask_b, other=0.0)
    g = alpha[:, None] * tl.exp(z - lse[:, None])
    for k in range(K):
        idk = tl.load(IDS + offs_b * stride_ib + k * stride_ik, mask=mask_b, other=-1)
        ck = tl.load(COEF + offs_b * stride_cb + k * stride_ck, mask=mask_b, other=0.0)
        g += tl.where(offs_v[None, :] == idk[:, None], ck[:, None], 0.0)
    return tl.where(mask_b[:, None] & mask_v[None, :], g, 0.0)


@triton.jit
def _lse_fwd_kernel(
    H, W, M_OUT, S_OUT, B, V, D, stride_hb, stride_wv, n_vb, vb_per_split,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr, PREC: tl.constexpr,
):
    """Partial online logsumexp of rows ``pid_b`` over the V-blocks of split ``pid_s``.

    Writes the running max ``M_OUT[pid_s, b]`` and the sum
    ``S_OUT[pid_s, b] = sum_v exp(z[b, v] - M_OUT[pid_s, b])``; the host
    combines the splits.
    """
    pid_b = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_b, mask_b = _row_block(pid_b, B, BLOCK_B)
    m = tl.full((BLOCK_B,), float("-inf"), tl.float32)
    s = tl.zeros((BLOCK_B,), dtype=tl.float32)
    vb_start, vb_end = _split_bounds(pid_s, vb_per_split, n_vb)
    for vb in range(vb_start, vb_end):
        _, mask_v, z = _vocab_block_logits(H, W, offs_b, mask_b, vb, V, D, stride_hb, stride_wv,
                                           BLOCK_B, BLOCK_V, BLOCK_D, PREC)
        z = tl.where(mask_v[None, :], z, float("-inf"))
        m_new = tl.maximum(m, tl.max(z, axis=1))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(z - m_new[:, None]), axis=1)
        m = m_new
    tl.store(M_OUT + pid_s * B + offs_b, m, mask=mask_b)
    tl.store(S_OUT + pid_s * B + offs_b, s, mask=mask_b)


@triton.jit
def _gather_logits_kernel(
    H, W, IDS, Z, B, D, stride_hb, stride_wv, stride_ib, stride_ik, stride_zb,
    BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """Z[b, k] = H[b] . W[IDS[b, k]] in fp32, for the rows of ``pid_b`` and token slot ``k``."""
    k = tl.program_id(1)
    offs_b, mask_b = _row_block(tl.program_id(0), B, BLOCK_B)
    ids = tl.load(IDS + offs_b * stride_ib + k * stride_ik, mask=mask_b, other=0)
    offs_d = tl.arange(0, BLOCK_D)
    h_ptrs = H + offs_b[:, None].to(tl.int64) * stride_hb + offs_d[None, :]
    w_ptrs = W + ids[:, None].to(tl.int64) * stride_wv + offs_d[None, :]
    acc = tl.zeros((BLOCK_B, BLOCK_D), dtype=tl.float32)
    for d0 in range(0, D, BLOCK_D):
        mask = mask_b[:, None] & ((d0 + offs_d) < D)[None, :]
        h = tl.load(h_ptrs, mask=mask, other=0.0).to(tl.float32)
        w = tl.load(w_ptrs, mask=mask, other=0.0).to(tl.float32)
        acc += h * w
        h_ptrs += BLOCK_D
        w_ptrs += BLOCK_D
    tl.store(Z + offs_b * stride_zb + k, tl.sum(acc, axis=1), mask=mask_b)


@triton.jit
def _gather_grad_kernel(
    W, IDS, COEF, GH, B, D, K, stride_wv, stride_ib, stride_ik, stride_cb, stride_ck, stride_gb,
    BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    """GH[b, d-block] = sum_k COEF[b, k] * W[IDS[b, k], d-block] (fp32 sum, stored in GH's dtype)."""
    offs_b, mask_b = _row_block(tl.program_id(0), B, BLOCK_B)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = mask_b[:, None] & (offs_d < D)[None, :]
    acc = tl.zeros((BLOCK_B, BLOCK_D), dtype=tl.float32)
    for k in range(K):
        ids = tl.load(IDS + offs_b * stride_ib + k * stride_ik, mask=mask_b, other=0)
        c = tl.load(COEF + offs_b * stride_cb + k * stride_ck, mask=mask_b, other=0.0)
        w = tl.load(W + ids[:, None].to(tl.int64) * stride_wv + offs_d[None, :], mask=mask, other=0.0)
        acc += c[:, None] * w.to(tl.float32)
    gh_ptrs = GH + offs_b[:, None].to(tl.int64) * stride_gb + offs_d[None, :]
    tl.store(gh_ptrs, acc.to(GH.dtype.element_ty), mask=mask)


@triton.jit
def _vocab_grad_h_kernel(
    H, W, LSE, ALPHA, IDS, COEF, GH, B, V, D, K,
    stride_hb, stride_wv, stride_ib, stride_ik, stride_cb, stride_ck, stride_gb,
    n_vb, vb_per_split,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
    PREC: tl.constexpr, GRAD_PREC: tl.constexpr, GRAD_F32: tl.constexpr,
):
    """GH[rows of pid_b] += G @ W over the V-blocks of split ``pid_s`` (frozen LM head).

    ``GH`` is fp32 and zero-initialised; programs of different splits add
    into it with relaxed atomics.
    """
    pid_b = tl.program_id(0)
    pid_s = tl.program_id(1)
    offs_b, mask_b = _row_block(pid_b, B, BLOCK_B)
    offs_d = tl.arange(0, BLOCK_D)
    vb_start, vb_end = _split_bounds(pid_s, vb_per_split, n_vb)
    for vb in range(vb_start, vb_end):
        offs_v, mask_v, z = _vocab_block_logits(H, W, offs_b, mask_b, vb, V, D, stride_hb, stride_wv,
                                                BLOCK_B, BLOCK_V, BLOCK_D, PREC)
        g = _dlogits_tile(z, offs_b, offs_v, mask_b, mask_v, LSE, ALPHA, IDS, COEF, K,
                          stride_ib, stride_ik, stride_cb, stride_ck)
        if not GRAD_F32:
            g = g.to(W.dtype.element_ty)
        w_rows = W + offs_v[:, None].to(tl.int64) * stride_wv
        gh_rows = GH + offs_b[:, None].to(tl.int64) * stride_gb
        # walk the hidden dimension backwards: the chunks of this weight tile read
        # last by _logits_tile are the likeliest to still be in L2
        n_d = tl.cdiv(D, BLOCK_D)
        for i in range(n_d):
            d = (n_d - 1 - i) * BLOCK_D + offs_d
            mask_d = d < D
            w = tl.load(w_rows + d[None, :], mask=mask_v[:, None] & mask_d[None, :], other=0.0)
            if GRAD_F32:
                w = w.to(tl.float32)
            gh = tl.dot(g, w, input_precision=GRAD_PREC)
            tl.atomic_add(gh_rows + d[None, :], gh, mask=mask_b[:, None] & mask_d[None, :],
                          sem="relaxed")


@triton.jit
def _vocab_grad_hw_kernel(
    H, W, LSE, ALPHA, IDS, COEF, GH, GW, SCR, B, V, D, K,
    stride_hb, stride_wv, stride_ib, stride_ik, stride_cb, stride_ck, stride_gb, stride_gwv,
    n_bb, n_vb, vb_per_split,
    BLOCK_B: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
    PREC: tl.constexpr, GRAD_PREC: tl.constexpr, GRAD_F32: tl.constexpr, NEED_GH: tl.constexpr,
):
    """Trainable LM head: GW[v-block] = G.T @ H (stored once) and GH += G @ W.

    Each program owns the V-blocks of split ``pid_s`` and loops over all row
    blocks. For one V-block it first writes ``G`` of every row block to its
    private fp32 scratch ``SCR[pid_s]`` (n_bb * BLOCK_B, BLOCK_V), then walks
    the hidden dimension once, accumulating the weight-gradient tile over the
    row blocks in registers; so the weight gradient is written exactly once,
    in the weight's dtype, without atomics.
    """
    pid_s = tl.program_id(0)
    offs_d = tl.arange(0, BLOCK_D)
    offs_vl = tl.arange(0, BLOCK_V)
    scr = SCR + pid_s.to(tl.int64) * (n_bb * BLOCK_B * BLOCK_V)
    vb_start, vb_end = _split_bounds(pid_s, vb_per_split, n_vb)
    for vb in range(vb_start, vb_end):
        offs_v = vb * BLOCK_V + offs_vl
        mask_v = offs_v < V
        for bb in range(n_bb):
            offs_b, mask_b = _row_block(bb, B, BLOCK_B)
            z = _logits_tile(H, W, offs_b, offs_v, mask_b, mask_v, D, stride_hb, stride_wv,
                             BLOCK_B, BLOCK_V, BLOCK_D, PREC)
            g = _dlogits_tile(z, offs_b, offs_v, mask_b, mask_v, LSE, ALPHA, IDS, COEF, K,
                              stride_ib, stride_ik, stride_cb, stride_ck)
            tl.store(scr + offs_b[:, None] * BLOCK_V + offs_vl[None, :], g)
        tl.debug_barrier()
        w_rows = W + offs_v[:, None].to(tl.int64) * stride_wv
        gw_rows = GW + offs_v[:, None].to(tl.int64) * stride_gwv
        n_d = tl.cdiv(D, BLOCK_D)
        for i in range(n_d):  # backwards, as in _vocab_grad_h_kernel
            d = (n_d - 1 - i) * BLOCK_D + offs_d
            mask_d = d < D
            w = tl.load(w_rows + d[None, :], mask=mask_v[:, None] & mask_d[None, :], other=0.0)
            if GRAD_F32:
                w = w.to(tl.float32)
            gw = tl.zeros((BLOCK_V, BLOCK_D), dtype=tl.float32)
            for bb in range(n_bb):
                offs_b, mask_b = _row_block(bb, B, BLOCK_B)
                g = tl.load(scr + offs_b[:, None] * BLOCK_V + offs_vl[None, :])
                h = tl.load(H + offs_b[:, None].to(tl.int64) * stride_hb + d[None, :],
                            mask=mask_b[:, None] & mask_d[None, :], other=0.0)
                if GRAD_F32:
                    h = h.to(tl.float32)
                else:
                    g = g.to(W.dtype.element_ty)
                if NEED_GH:
                    gh = tl.dot(g, w, input_precision=GRAD_PREC)
                    gh_ptrs = GH + offs_b[:, None].to(tl.int64) * stride_gb + d[None, :]
                    tl.atomic_add(gh_ptrs, gh, mask=mask_b[:, None] & mask_d[None, :], sem="relaxed")
                gw = tl.dot(tl.trans(g), h, gw, input_precision=GRAD_PREC)
            tl.store(gw_rows + d[None, :], gw.to(GW.dtype.element_ty),
                     mask=mask_v[:, None] & mask_d[None, :])
        tl.debug_barrier()


# the mode these kernels were defined in (pycomp.ops._backend.load_kernels matches triton's)
INTERPRETED = type(_lse_fwd_kernel).__name__ == "InterpretedFunction"
