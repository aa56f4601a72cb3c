#!/usr/bin/env bash
# The one prepared GPU check of pycomp (issue 13), for a lent H100 / H200 machine.
#
# Needs only the repository and what such a machine has (nvcc, CMake, a Python with torch, triton,
# transformers and peft; no internet, no bitsandbytes). In one call, in under 8 minutes:
#
#   1. probe   what the machine has (every version, the GPU, the driver), into $OUT/env.json
#   2. build   pycomp with the CUDA backend for this GPU's architecture, into build/gpu/site:
#              pip install --no-build-isolation --no-index --target (scikit-build-core + pybind11),
#              else a plain CMake build with pybind11's CMake dir, else a clear FAIL; when the CUDA
#              build fails, a CPU-only build so that the rest still runs
#   3. tests   every GPU-marked test: pytest -m gpu tests (CUDA solvers vs the CPU backend, the Triton
#              head-loss kernels in fp32/fp16/bf16, a LoRA step through pycomp.ops)
#   4. bench   bench_gpu_solve.py (1M/10M and 10M/100M vs the CPU backend, data-pass bandwidth),
#              bench_head_loss.py (fp32, fp16, bf16), bench_gpu_train_step.py
#   5. summary $OUT/summary.md and summary.json: every step, every figure, the commit
#
# Every step has its own time limit (and the whole a budget, GPU_CHECK_BUDGET_S, default 450 s)
# and prints one PASS / FAIL / SKIP line; a failed step never stops the later ones. Exit status:
# 1 when a step FAILed, else 0.
#
# Usage:
#   bash bench/gpu_check.sh                  # on the GPU machine; results in $OUT (default bench/results/gpu)
#   OUT=/tmp/gpucheck bash bench/gpu_check.sh --cpu-smoke   # any machine: GPU parts SKIP, the
#                                            # benchmarks run at tiny sizes on the CPU (and device="thrust")
# Options:
#   --cpu-smoke   without a GPU, still run the benchmark scripts at tiny sizes (--smoke)
#   --no-build    use the pycomp that $PYTHON already imports (no build)
#   --build       build even without a GPU (the CUDA build is otherwise tried only where it can run)
# Environment: OUT, PYTHON (the interpreter; default: the first of python3 / python that imports
#   torch), GPU_CHECK_BUDGET_S, GPU_CHECK_COMMIT (the commit to record when the tree has no .git),
#   CUDA_ARCH (e.g. 90; default: the GPU's compute capability), GPU_CHECK_PYCOMP_CUDA (ON; OFF builds
#   the CPU backend only, to try the build steps on a machine without nvcc).

set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
OUT="${OUT:-$ROOT/bench/results/gpu}"
mkdir -p "$OUT/logs"
OUT="$(cd "$OUT" && pwd)"
BUDGET_S="${GPU_CHECK_BUDGET_S:-450}"
START_S=$SECONDS
CPU_SMOKE=0
NO_BUILD=0
FORCE_BUILD=0
for arg in "$@"; do
  case "$arg" in
    --cpu-smoke) CPU_SMOKE=1 ;;
    --no-build) NO_BUILD=1 ;;
    --build) FORCE_BUILD=1 ;;
    -h|--help) sed -n '2,/^$/{/^#/p}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
  esac
done

STEPS="$OUT/steps.tsv"
printf 'step\tstatus\tseconds\tdetail\n' > "$STEPS"
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 4)}"

say() { printf '%s\n' "$*"; }
record() {  # record STEP STATUS SECONDS DETAIL
  local detail="${4//$'\t'/ }"
  detail="${detail//$'\n'/ }"
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$detail" >> "$STEPS"
  printf '==> %-18s %-4s (%ss) %s\n' "$1" "$2" "$3" "$4"
}
remaining() { echo $(( BUDGET_S - (SECONDS - START_S) )); }
# limit_for MAX: the step's limit, capped by what is left of the budget (10 s kept for the summary)
limit_for() {
  local left
  left=$(( $(remaining) - 10 ))
  if (( left < $1 )); then echo "$left"; else echo "$1"; fi
}
# run_logged NAME LIMIT CMD...: run CMD under timeout with output to $OUT/logs/NAME.log; prints the
# log's tail; sets RC (124: timed out) and ELAPSED
run_logged() {
  local name="$1" limit="$2"
  shift 2
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
  RC=$?
  ELAPSED=$(( SECONDS - t0 ))
  tail -n "${TAIL_LINES:-12}" "$OUT/logs/$name.log" | sed "s/^/    [$name] /"
}

# ---------------------------------------------------------------------------------------------
# 1. probe
# ---------------------------------------------------------------------------------------------
pick_python() {
  local c
  for c in "${PYTHON:-}" "$ROOT/.venv/bin/python" python3 python; do
    if [ -z "$c" ] || ! command -v "$c" > /dev/null 2>&1; then continue; fi
    if [ -n "${PYTHON:-}" ] || "$c" -c 'import torch' > /dev/null 2>&1; then echo "$c"; return; fi
  done
  for c in python3 python; do command -v "$c" > /dev/null 2>&1 && { echo "$c"; return; }; done
}
PY="$(pick_python)"
if [ -z "$PY" ]; then
  record probe FAIL 0 "no python3 / python on PATH: nothing can run"
  exit 1
fi
PY="$(command -v "$PY")"
say "pycomp GPU check: repository $ROOT, results in $OUT, python $PY, budget ${BUDGET_S} s"
HAS_GPU=0
if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1; then HAS_GPU=1; fi
CUDA_ARCH="${CUDA_ARCH:-}"
if [ -z "$CUDA_ARCH" ] && [ "$HAS_GPU" = 1 ]; then
  CUDA_ARCH="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader -i 0 2>/dev/null | tr -d ' .\r' | head -n1)"
fi
CUDA_ARCH="${CUDA_ARCH:-80;90}"
if [ -d "$ROOT/.git" ] && command -v git > /dev/null 2>&1; then
  COMMIT="${GPU_CHECK_COMMIT:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)}"
else
  COMMIT="${GPU_CHECK_COMMIT:-}"
fi
if [ -z "$COMMIT" ]; then
  COMMIT="$("$PY" "$ROOT/bench/gpu_info.py" --no-measure 2>/dev/null | sed -n 's/.*commit \(.*\)$/\1/p' | tail -n1)"
  COMMIT="${COMMIT:-unknown (no .git; set GPU_CHECK_COMMIT)}"
fi
export GPU_CHECK_COMMIT="$COMMIT"

t0=$SECONDS
TAIL_LINES=40 run_logged probe "$(limit_for 90)" "$PY" - "$OUT/env.json" "$ROOT" <<'PY'
import importlib, importlib.metadata as md, importlib.util, json, os, platform, shutil, subprocess, sys
out_path, root = sys.argv[1], sys.argv[2]
env = {"python": sys.version.split()[0], "executable": sys.executable, "platform": platform.platform(),
       "cpus": os.cpu_count(), "modules": {}, "tools": {}}
for mod, dist in [("numpy", "numpy"), ("torch", "torch"), ("triton", "triton"), ("transformers", "transformers"),
                  ("peft", "peft"), ("accelerate", "accelerate"), ("bitsandbytes", "bitsandbytes"),
                  ("pytest", "pytest"), ("hypothesis", "hypothesis"), ("scipy", "scipy"), ("pandas", "pandas"),
                  ("pybind11", "pybind11"), ("scikit_build_core", "scikit-build-core"), ("pip", "pip"),
                  ("liger_kernel", "liger-kernel"), ("pycomp", "pycomp")]:
    if importlib.util.find_spec(mod) is None:
        env["modules"][mod] = None
        continue
    try:
        env["modules"][mod] = md.version(dist)
    except md.PackageNotFoundError:
        env["modules"][mod] = "present (no metadata)"
for tool, args in [("nvcc", ["--version"]), ("cmake", ["--version"]), ("ninja", ["--version"]),
                   ("g++", ["--version"]), ("git", ["--version"]), ("nvidia-smi", ["-L"])]:
    path = shutil.which(tool)
    if path is None:
        env["tools"][tool] = None
        continue
    try:
        r = subprocess.run([path, *args], capture_output=True, text=True, timeout=20)
        lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
        env["tools"][tool] = (lines[-1] if tool == "nvcc" else "; ".join(lines[:8]) if tool == "nvidia-smi"
                              else lines[0]) if lines else path
    except Exception as exc:
        env["tools"][tool] = f"{path}: {exc}"
try:
    import torch
    env["torch_cuda"] = torch.version.cuda
    env["torch_sees_cuda"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}",
                      "memory_gib": round(p.total_memory / 2**30, 1), "sms": p.multi_processor_count}
except Exception as exc:
    env["torch_error"] = f"{type(exc).__name__}: {exc}"
try:
    r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap",
                        "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    env["nvidia_smi"] = r.stdout.strip() or r.stderr.strip()
except Exception as exc:
    env["nvidia_smi"] = f"unavailable: {exc}"
du = shutil.disk_usage(root)
env["disk_free_gib"] = round(du.free / 2**30, 1)
json.dump(env, open(out_path, "w"), indent=1)
for k, v in env["modules"].items():
    print(f"python module {k:18s} {v if v else 'MISSING'}")
for k, v in env["tools"].items():
    print(f"tool {k:12s} {v if v else 'MISSING'}")
print(f"torch CUDA {env.get('torch_cuda')}, sees a GPU: {env.get('torch_sees_cuda')}; nvidia-smi: {env.get('nvidia_smi')}")
print(f"python {env['python']} ({sys.executable}), {env['cpus']} CPUs, {env['disk_free_gib']} GiB free disk")
PY
if [ "$RC" = 0 ]; then
  record probe PASS "$ELAPSED" "GPU: $([ "$HAS_GPU" = 1 ] && echo "yes (sm_$CUDA_ARCH)" || echo none); commit $COMMIT"
else
  record probe FAIL "$ELAPSED" "the probe script failed (rc $RC): see logs/probe.log"
fi
mod() {  # mod NAME: the probed version of a python module ('' when missing)
  "$PY" -c 'import json,sys; v=json.load(open(sys.argv[1]))["modules"].get(sys.argv[2]); print(v or "")' \
    "$OUT/env.json" "$1" 2>/dev/null
}
TORCH_CUDA=0
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' > /dev/null 2>&1; then TORCH_CUDA=1; fi

# ---------------------------------------------------------------------------------------------
# 2. build
# ---------------------------------------------------------------------------------------------
SITE="$ROOT/build/gpu/site"
SKBUILD_DIR="$ROOT/build/gpu/skbuild"
CMAKE_DIR="$ROOT/build/gpu/cmake"
CORE_OK=0   # whether PYTHONPATH=$SITE gives a pycomp with its compiled core
SHADOWED=0  # whether another pycomp install takes precedence over $SITE
verify_core() {  # prints build_info and cuda_available of the pycomp in $SITE; rc 0 when the core loads
  PYTHONPATH="$SITE" PYTHONSAFEPATH=1 "$PY" -c '
import pycomp, sys
print("pycomp from", pycomp.__file__, flush=True)
info = pycomp.build_info()
print("build_info:", {k: info[k] for k in sorted(info)})
ok = pycomp.cuda_available()
print("cuda_available:", ok)
if not ok:
    try:
        from pycomp._devices import cuda_unavailable_reason as why
        reason = why()
    except Exception:
        reason = info.get("cuda_unavailable_reason")
    print("cuda_unavailable_reason:", reason or "(none given)")
' 2>&1
}
build_pip() {  # build_pip CUDA_MODE LIMIT LOGNAME
  rm -rf "$SITE"
  PYCOMP_CUDA="$1" run_logged "$3" "$2" "$PY" -m pip install --no-build-isolation --no-deps --no-index \
    --target "$SITE" -v -C "build-dir=$SKBUILD_DIR-$1" -C "cmake.define.PYCOMP_CUDA=$1" \
    -C "cmake.define.PYCOMP_CUDA_ARCHITECTURES=$CUDA_ARCH" "$ROOT"
}
build_cmake() {  # build_cmake CUDA_MODE LIMIT LOGNAME
  local dir="$CMAKE_DIR-$1" pb
  pb="$("$PY" -m pybind11 --cmakedir 2>/dev/null)"
  rm -rf "$SITE" "$dir/install"
  # shellcheck disable=SC2016
  run_logged "$3" "$2" bash -c '
    set -e
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DPYCOMP_CUDA="$3" -DPYCOMP_CUDA_ARCHITECTURES="$4" \
      -Dpybind11_DIR="$5" -DPython_EXECUTABLE="$6" -DSKBUILD_PROJECT_VERSION=0.1.0
    cmake --build "$2" --parallel
    cmake --install "$2" --prefix "$2/install"
    mkdir -p "$7"
    cp -r "$1/pycomp" "$7/"
    find "$7/pycomp" -name "_core*.so" -delete
    cp "$2"/install/pycomp/_core*.so "$7/pycomp/"
  ' _ "$ROOT" "$dir" "$1" "$CUDA_ARCH" "$pb" "$PY" "$SITE"
}
source_only_site() {  # pycomp's Python sources without a core: the kernels and the training step still run
  rm -rf "$SITE"
  mkdir -p "$SITE"
  cp -r "$ROOT/pycomp" "$SITE/"
  find "$SITE/pycomp" -name "_core*.so" -delete
}
try_build() {  # try_build CUDA_MODE MAX_S STEP: pip, else CMake; records STEP
  local how="" limit
  limit="$(limit_for "$2")"
  if (( limit < 30 )); then record "$3" SKIP 0 "out of the time budget"; return 1; fi
  local has_cmake=0
  if [ -n "$(mod pybind11)" ] && command -v cmake > /dev/null 2>&1; then has_cmake=1; fi
  if [ -n "$(mod scikit_build_core)" ] && [ -n "$(mod pybind11)" ] && [ -n "$(mod pip)" ]; then
    how="pip install --no-build-isolation --target build/gpu/site (scikit-build-core $(mod scikit_build_core))"
    build_pip "$1" "$limit" "$3"
    if [ "$RC" != 0 ] && [ "$ELAPSED" -lt 30 ] && [ "$has_cmake" = 1 ]; then
      # failed before compiling (an old pip or scikit-build-core): the plain CMake build instead
      mv "$OUT/logs/$3.log" "$OUT/logs/$3-pip.log"
      say "    [$3] pip failed in ${ELAPSED} s (logs/$3-pip.log): trying the plain CMake build"
      how="plain CMake with pybind11 $(mod pybind11)'s CMake dir (the pip build failed: logs/$3-pip.log)"
      build_cmake "$1" "$(limit_for "$2")" "$3"
    fi
  elif [ "$has_cmake" = 1 ]; then
    how="plain CMake with pybind11 $(mod pybind11)'s CMake dir (scikit-build-core or pip missing)"
    build_cmake "$1" "$limit" "$3"
  else
    record "$3" FAIL 0 "cannot build: pybind11 $(mod pybind11 || true)/ cmake missing and no internet to install them"
    return 1
  fi
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
    record "$3" FAIL "$ELAPSED" "timed out after $limit s ($how); see logs/$3.log"; return 1
  elif [ "$RC" != 0 ]; then
    record "$3" FAIL "$ELAPSED" "rc $RC ($how); see logs/$3.log"; return 1
  fi
  verify_core > "$OUT/logs/$3-verify.log" 2>&1
  sed "s/^/    [$3] /" "$OUT/logs/$3-verify.log"
  local from
  from="$(sed -n 's/^pycomp from //p' "$OUT/logs/$3-verify.log")"
  if [ -n "$from" ] && [ "${from#"$SITE"/}" = "$from" ]; then
    SHADOWED=1
    record "$3" FAIL "$ELAPSED" "built, but $PY imports pycomp from $from, not build/gpu/site: an installed (editable?) pycomp shadows the build; uninstall it, or run with --no-build"
    return 1
  fi
  if ! grep -q '^cuda_available:' "$OUT/logs/$3-verify.log"; then
    record "$3" FAIL "$ELAPSED" "built, but the core does not load; see logs/$3-verify.log"; return 1
  fi
  CORE_OK=1
  if [ "$1" = ON ] && ! grep -q '^cuda_available: True' "$OUT/logs/$3-verify.log"; then
    record "$3" FAIL "$ELAPSED" "built with CUDA ($how), but pycomp.cuda_available() is False: $(sed -n 's/^cuda_unavailable_reason: //p' "$OUT/logs/$3-verify.log")"
    return 1
  fi
  record "$3" PASS "$ELAPSED" "$how, PYCOMP_CUDA=$1$([ "$1" = ON ] && echo ", architectures $CUDA_ARCH")"
}

if [ "$NO_BUILD" = 1 ]; then
  record build SKIP 0 "--no-build: using the pycomp that $PY imports"
  CORE_OK=1
elif [ "$HAS_GPU" = 0 ] && [ "$FORCE_BUILD" = 0 ]; then
  record build SKIP 0 "no CUDA device (nvidia-smi lists none): the CUDA build is tried only where it can run (--build forces it); using the pycomp that $PY imports"
  CORE_OK=1
else
  if ! try_build "${GPU_CHECK_PYCOMP_CUDA:-ON}" 300 build; then
    if [ -n "$(mod pybind11)" ] && [ "$SHADOWED" = 0 ] && [ "${GPU_CHECK_PYCOMP_CUDA:-ON}" != OFF ]; then
      try_build OFF 180 build-cpu-fallback || true
    fi
  fi
  if [ "$CORE_OK" = 0 ]; then
    source_only_site
    say "    no compiled core: build/gpu/site holds pycomp's Python sources only (kernel tests and benchmarks still run)"
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export PYTHONSAFEPATH=1  # python -m pytest / -c must not put the clone (sources without a core) first
fi

# ---------------------------------------------------------------------------------------------
# 3. GPU-marked tests
# ---------------------------------------------------------------------------------------------
summarize_junit() {  # prints "passed failed errors skipped collection_errors" and the failing ids
  "$PY" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as exc:
    print(f"0 0 0 0 0\nno junit file: {exc}")
    sys.exit(0)
counts = dict(passed=0, failed=0, errors=0, skipped=0, collection=0)
bad, skips, coll = [], {}, []
for case in root.iter("testcase"):
    name = f"{case.get('classname')}::{case.get('name')}"
    if case.find("failure") is not None:
        counts["failed"] += 1; bad.append("FAILED " + name)
    elif case.find("error") is not None:
        err = case.find("error")
        if err.get("message", "") == "collection failure":
            counts["collection"] += 1
            last = (err.text or "").strip().splitlines()[-1:] or [""]
            coll.append(f"{case.get('name')}: {last[0][:200]}")
        else:
            counts["errors"] += 1; bad.append("ERROR " + name)
    elif case.find("skipped") is not None:
        counts["skipped"] += 1
        reason = case.find("skipped").get("message", "")
        skips[reason] = skips.get(reason, 0) + 1
    else:
        counts["passed"] += 1
print(counts["passed"], counts["failed"], counts["errors"], counts["skipped"], counts["collection"])
for b in bad[:40]:
    print(b)
for c in coll[:20]:
    print("NOT COLLECTED", c)
for r, n in sorted(skips.items(), key=lambda kv: -kv[1])[:5]:
    print(f"SKIPPED x{n}: {r[:200]}")
PY
}

limit="$(limit_for 170)"
if [ -z "$(mod pytest)" ]; then
  if [ "$HAS_GPU" = 1 ]; then st=FAIL; else st=SKIP; fi
  record gpu-tests "$st" 0 "pytest is not installed for $PY (no internet to install it): the GPU tests cannot run; the benchmarks below still check results"
elif (( limit < 30 )); then
  record gpu-tests SKIP 0 "out of the time budget"
else
  PYTEST_ARGS=(-m gpu -q -rfEs -p no:cacheprovider --continue-on-collection-errors --junitxml="$OUT/pytest_gpu.xml")
  TEST_PATHS=(tests)
  note=""
  if [ -z "$(mod hypothesis)" ]; then
    # tests/conftest.py imports hypothesis: load only the conftests from tests/gpu down
    PYTEST_ARGS+=(--confcutdir="$ROOT/tests/gpu")
    TEST_PATHS=(tests/gpu tests/ops)
    note="; hypothesis missing: ran tests/gpu and tests/ops without tests/conftest.py"
  fi
  TAIL_LINES=25 run_logged gpu-tests "$limit" env PYTHONSAFEPATH=1 "$PY" -m pytest "${PYTEST_ARGS[@]}" "${TEST_PATHS[@]}"
  read -r n_pass n_fail n_err n_skip n_coll < <(summarize_junit "$OUT/pytest_gpu.xml" | head -n1)
  summarize_junit "$OUT/pytest_gpu.xml" | tail -n +2 > "$OUT/pytest_gpu_summary.txt"
  sed 's/^/    [gpu-tests] /' "$OUT/pytest_gpu_summary.txt"
  counts="$n_pass passed, $n_fail failed, $n_err errors, $n_skip skipped, $n_coll modules not collected$note"
  coll_in_gpu=$(grep -c 'NOT COLLECTED tests[./]\(gpu\|ops\)' "$OUT/pytest_gpu_summary.txt" || true)
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
    record gpu-tests FAIL "$ELAPSED" "timed out after $limit s ($counts so far in the junit file, if any)"
  elif [ "${n_fail:-0}" != 0 ] || [ "${n_err:-0}" != 0 ] || [ "${coll_in_gpu:-0}" != 0 ]; then
    uncollected="$(sed -n 's/^NOT COLLECTED \(tests\.\(gpu\|ops\)[^:]*\):.*/\1/p' "$OUT/pytest_gpu_summary.txt" | paste -sd, -)"
    record gpu-tests FAIL "$ELAPSED" "$counts${uncollected:+ (GPU modules not collected: $uncollected)}; see logs/gpu-tests.log"
  elif [ "${n_pass:-0}" = 0 ] && [ "$HAS_GPU" = 1 ]; then
    record gpu-tests FAIL "$ELAPSED" "no GPU test passed on a machine with a GPU ($counts); see logs/gpu-tests.log"
  elif [ "${n_pass:-0}" = 0 ]; then
    record gpu-tests SKIP "$ELAPSED" "no GPU test ran here ($counts): no CUDA device"
  elif [ "$RC" != 0 ] && [ "${n_coll:-0}" = 0 ]; then
    record gpu-tests FAIL "$ELAPSED" "pytest rc $RC ($counts); see logs/gpu-tests.log"
  else
    record gpu-tests PASS "$ELAPSED" "$counts"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 4. benchmarks
# ---------------------------------------------------------------------------------------------
# bench_step NAME MAX_S RESULT_FILE CMD...: PASS when CMD exits 0 and wrote RESULT_FILE
bench_step() {
  local name="$1" max="$2" result="$3" limit
  shift 3
  limit="$(limit_for "$max")"
  if (( limit < 20 )); then record "$name" SKIP 0 "out of the time budget"; return; fi
  rm -f "$result"
  TAIL_LINES=20 run_logged "$name" "$limit" "$@"
  if [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
    record "$name" FAIL "$ELAPSED" "timed out after $limit s; partial results (if any) in $(basename "$result")"
  elif [ "$RC" != 0 ] || [ ! -s "$result" ]; then
    record "$name" FAIL "$ELAPSED" "rc $RC; see logs/$name.log"
  elif grep -q '"status": "error' "$result"; then
    record "$name" FAIL "$ELAPSED" "ran, but some cases ended in an error (see $(basename "$result"))"
  else
    record "$name" PASS "$ELAPSED" "$(basename "$result") and .md${SMOKE_NOTE:-}"
  fi
}

if [ "$TORCH_CUDA" = 1 ]; then
  bench_step gpu-info 30 "$OUT/gpu_info.json" "$PY" bench/gpu_info.py --json "$OUT/gpu_info.json"
fi

SMOKE=()
SMOKE_NOTE=""
if [ "$TORCH_CUDA" = 0 ] && [ "$CPU_SMOKE" = 1 ]; then
  SMOKE=(--smoke)
  SMOKE_NOTE=" (CPU smoke run at tiny sizes: no GPU figure)"
  export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"  # a small shared CPU machine (see pycomp.solve's notes)
fi
if [ "$TORCH_CUDA" = 0 ] && [ "$CPU_SMOKE" = 0 ]; then
  for b in bench-solve bench-head-loss bench-train-step; do
    record "$b" SKIP 0 "torch sees no CUDA device (--cpu-smoke runs the scripts at tiny sizes on the CPU)"
  done
else
  if [ "$CORE_OK" = 1 ]; then
    bench_step bench-solve 150 "$OUT/gpu_solve.json" "$PY" bench/bench_gpu_solve.py "${SMOKE[@]}" \
      --out "$OUT" --budget-s "$(( $(limit_for 150) > 45 ? $(limit_for 150) - 25 : 20 ))"
  else
    record bench-solve SKIP 0 "no compiled pycomp core (see the build step)"
  fi
  if [ "$TORCH_CUDA" = 1 ]; then
    # shellcheck disable=SC2016
    bench_step bench-head-loss 110 "$OUT/head_loss.json" bash -c '
      rc=0
      for dt in fp32 fp16 bf16; do
        "$1" bench/bench_head_loss.py --B 64 --V 32000,128256 --d 4096 --dtype "$dt" \
          --providers hf,eager,pycomp --warmup 3 --repeats 20 --out "$2" --commit "$3" || rc=$?
      done
      exit $rc' _ "$PY" "$OUT" "$COMMIT"
  else
    record bench-head-loss SKIP 0 "torch sees no CUDA device: no speed figure exists for the kernels here (their interpreter correctness check is tests/ops and bench_head_loss.py without a GPU)"
  fi
  missing=""
  for m in torch transformers peft; do [ -n "$(mod "$m")" ] || missing="$missing $m"; done
  if [ -n "$missing" ]; then
    if [ "$HAS_GPU" = 1 ]; then st=FAIL; else st=SKIP; fi
    record bench-train-step "$st" 0 "missing python modules:$missing (no internet to install them)"
  else
    bench_step bench-train-step 100 "$OUT/gpu_train_step.json" "$PY" bench/bench_gpu_train_step.py "${SMOKE[@]}" \
      --out "$OUT"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 5. summary
# ---------------------------------------------------------------------------------------------
TOTAL=$(( SECONDS - START_S ))
if ! "$PY" bench/gpu_check_summary.py --out "$OUT" --commit "$COMMIT" --total-s "$TOTAL" > "$OUT/logs/summary.log" 2>&1; then
  cat "$OUT/logs/summary.log"
  { echo "# pycomp GPU check (summary script failed: logs/summary.log)"; echo; echo "commit $COMMIT, ${TOTAL} s"; echo
    echo '```'; cat "$STEPS"; echo '```'; } > "$OUT/summary.md"
fi
say ""
say "================ pycomp GPU check: commit $COMMIT, ${TOTAL} s of ${BUDGET_S} s ================"
column -t -s $'\t' "$STEPS" 2>/dev/null | cut -c1-220 || cat "$STEPS"
if [ -s "$OUT/key_figures.txt" ]; then say "key figures:"; cut -c1-300 "$OUT/key_figures.txt" | sed 's/^/  /'; fi
grep -h '^- ' "$OUT/gpu_solve.md" 2>/dev/null | grep 'target' | sed 's/^/  /'
say "results: $OUT (summary.md, summary.json, logs/)"
if grep -q $'\tFAIL\t' "$STEPS"; then exit 1; fi
exit 0
