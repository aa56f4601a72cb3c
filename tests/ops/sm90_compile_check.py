"""Compile every Triton kernel of pycomp.ops for an H100 (sm_90) without a GPU.

Run by tests/ops/test_kernels_compile.py in a fresh process with
``TRITON_INTERPRET=0`` (the interpreter mode is fixed when triton is imported,
and the test session imports it in interpreter mode). Also runnable by hand::

    TRITON_INTERPRET=0 python tests/ops/sm90_compile_check.py

Each kernel is compiled with the tile choice a launch on d = 4096,
V = 128256 would get, specialised as such a launch would be (16-byte aligned
pointers, sizes and strides divisible by 16). Prints one JSON line per kernel;
exits 2 if this triton cannot compile ahead of time, 1 on a failure.
"""

import json
import sys

H100_MAX_SMEM = 232448  # bytes of shared memory one block may use on sm_90


def main() -> int:
    import torch
    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as exc:
        print(json.dumps({"skip": f"no ahead-of-time compile API in this triton: {exc}"}))
        return 2
    from pycomp.ops import _kernels as k
    from pycomp.ops._launch import kernel_config

    if k.INTERPRETED:
        print(json.dumps({"error": "TRITON_INTERPRET is set: run with TRITON_INTERPRET=0"}))
        return 1
    target = GPUTarget("cuda", 90, 32)
    failures = 0

    def compile_one(fn, sig, const, num_warps, num_stages, label):
        nonlocal failures
        sig = dict(sig)
        sig.update({c: "constexpr" for c in const})
        names = list(fn.arg_names)
        aligned = [n for n, t in sig.items() if t.startswith("*")]
        aligned += [n for n in ("D", "V", "stride_hb", "stride_wv", "stride_gb", "stride_gwv") if n in sig]
        attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in aligned}
        rec = {"kernel": fn.__name__, "case": label, "num_warps": num_warps, **const}
        try:
            ck = triton.compile(ASTSource(fn, sig, constexprs=const, attrs=attrs), target=target,
                                options=dict(num_warps=num_warps, num_stages=num_stages))
            rec["shared_bytes"] = ck.metadata.shared
            rec["ok"] = ck.metadata.shared <= H100_MAX_SMEM
        except Exception as exc:  # report every kernel, then fail
            rec["ok"] = False
            rec["error"] = f"{type(exc).__name__}: {exc}"[-2000:]
        failures += not rec["ok"]
        print(json.dumps(rec), flush=True)

    i32 = "i32"
    names = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
    for dtype, dt in names.items():
        P = "*" + dt
        for B in (8, 64):  # 16- and 64-row tiles (B = 512 tiles as 64)
            cfg = kernel_config(B, 128256, 4096, dtype, torch.device("cpu"), interpreted=False)
            tiles = dict(BLOCK_B=cfg.block_b, BLOCK_V=cfg.block_v, BLOCK_D=cfg.block_d)
            label = f"{dt} B={B}"
            compile_one(k._lse_fwd_kernel,
                        dict(H=P, W=P, M_OUT="*fp32", S_OUT="*fp32", B=i32, V=i32, D=i32,
                             stride_hb=i32, stride_wv=i32, n_vb=i32, vb_per_split=i32),
                        dict(tiles, PREC=cfg.prec), cfg.num_warps, cfg.num_stages, label)
            grad = dict(H=P, W=P, LSE="*fp32", ALPHA="*fp32", IDS="*i64", COEF="*fp32", GH="*fp32",
                        B=i32, V=i32, D=i32, K=i32, stride_hb=i32, stride_wv=i32, stride_ib=i32,
                        stride_ik=i32, stride_cb=i32, stride_ck=i32, stride_gb=i32)
            precs = dict(PREC=cfg.prec, GRAD_PREC=cfg.grad_prec, GRAD_F32=cfg.grad_f32)
            compile_one(k._vocab_grad_h_kernel, dict(grad, n_vb=i32, vb_per_split=i32),
                        dict(tiles, **precs), cfg.num_warps, cfg.num_stages, label)
            hw = dict(grad, GW=P, SCR="*fp32", stride_gwv=i32, n_bb=i32, n_vb=i32, vb_per_split=i32)
            order = ["H", "W", "LSE", "ALPHA", "IDS", "COEF", "GH", "GW", "SCR", "B", "V", "D", "K",
                     "stride_hb", "stride_wv", "stride_ib", "stride_ik", "stride_cb", "stride_ck",
                     "stride_gb", "stride_gwv", "n_bb", "n_vb", "vb_per_split"]
            compile_one(k._vocab_grad_hw_kernel, {n: hw[n] for n in order},
                        dict(tiles, **precs, NEED_GH=True), cfg.num_warps, cfg.num_stages, label)
        compile_one(k._gather_logits_kernel,
                    dict(H=P, W=P, IDS="*i64", Z="*fp32", B=i32, D=i32, stride_hb=i32,
                         stride_wv=i32, stride_ib=i32, stride_ik=i32, stride_zb=i32),
                    dict(BLOCK_B=64, BLOCK_D=128 if dtype != torch.float32 else 64), 4, 3, dt)
        compile_one(k._gather_grad_kernel,
                    dict(W=P, IDS="*i64", COEF="*fp32", GH=P, B=i32, D=i32, K=i32, stride_wv=i32,
                         stride_ib=i32, stride_ik=i32, stride_cb=i32, stride_ck=i32, stride_gb=i32),
                    dict(BLOCK_B=16, BLOCK_D=128), 4, 3, dt)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
