#!/usr/bin/python3
"""node_tests.py TESTDATA_DIR CNN WORK_DIR [--list] — ONNX's own backend tests on `cnn run`.

TESTDATA_DIR is the `data` folder of ONNX's backend test data (Debian's libonnx-testdata:
/usr/share/libonnx-testdata/data). Every test folder of data/node, data/pytorch-converted,
data/pytorch-operator and data/simple is in scope when every op of its graph is in the importer's list
(OPS below, the default domain only; some of these cnn.c does not fully support yet). Each in-scope
test runs on each of its test_data_set_* folders:

- The harness's one transformation of the model: the first graph input that is not an initializer stays
  the input; every other graph input becomes an initializer holding that data set's input_K.pb, since
  cnn.c takes weights only as constants. The model is written to WORK_DIR/<test>/model.onnx, input_0 to
  x.npy and output_0 to expected.npy: the folder is the reproducer (`cnn run model.onnx --input x.npy
  --output y.npy`).
- Harness limits, reported as SKIP with the reason: input_0 not float32, or not rank 2 to 4 (cnn run
  takes N x F, N x C x L or N x C x H x W); a model with more than one output (cnn run writes one).
- Tolerance: max |got - expected| <= 1e-4 * max(1, max |expected|). ONNX's backend runner uses
  rtol 1e-3, atol 1e-7 per element; one bound relative to the output's scale is the rule the rest of
  cnn.c's ONNX tests use, and is no looser where outputs are of order 1. Non-finite expected values
  must be matched exactly (NaN by NaN). The shapes may differ only by leading or trailing 1s (N x C x 1
  x 1 against N x C); another shape is a FAIL even when the flattened values agree.

Results: PASS; FAIL (numbers or shape differ, or an exit status cnn does not give for a refusal);
REFUSED (cnn exited 1 with a one-line message); SKIP (out of scope or a harness limit); CRASH (killed
by a signal, exit status >= 128, or sanitizer output). The exit status is 1 when a test FAILs or
CRASHes, when a REFUSED test is not in tests/onnx/node_tests_refused.txt (test name, a tab, the reason
in words), or when a test of that list no longer is refused (take it off the list).
--list prints each test folder with its scope decision and runs nothing.
"""
import collections
import concurrent.futures
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper

SUITES = ("node", "pytorch-converted", "pytorch-operator", "simple")
OPS = set(
    "Conv ConvTranspose MaxPool AveragePool GlobalAveragePool BatchNormalization Relu LeakyRelu Clip "
    "Sigmoid HardSigmoid HardSwish Tanh Softmax Add Mul Sub Div Concat Flatten Reshape Transpose Slice "
    "Pad ReduceMean Identity Dropout Gemm MatMul Constant Shape Gather Unsqueeze Squeeze Cast "
    "ConstantOfShape".split())
REFUSED_LIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node_tests_refused.txt")
RTOL = 1e-4
TIMEOUT_S = 60
ORDER = ("PASS", "REFUSED", "SKIP", "FAIL", "CRASH")


def out_of_scope(model):
    """Why the graph is out of scope (ops not in the list or in another domain), or None."""
    bad = sorted({(n.domain, n.op_type) for n in model.graph.node
                  if n.domain not in ("", "ai.onnx") or n.op_type not in OPS})
    if not bad:
        return None
    return "ops not in the importer's list: " + ", ".join(f"{d}.{o}" if d else o for d, o in bad)


def read_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def data_sets(test_dir):
    return sorted(d for d in os.listdir(test_dir) if d.startswith("test_data_set_"))


def prepare(model, data_dir, out_dir):
    """The model with its inputs past the first made initializers, and x / expected; or a SKIP reason."""
    inits = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in inits]
    if len(model.graph.output) != 1:
        return f"{len(model.graph.output)} outputs (cnn run writes one)"
    if not inputs:
        return "no graph input"
    for k, v in enumerate(inputs + list(model.graph.output)):
        kind = v.type.WhichOneof("value")
        if kind != "tensor_type":
            what = f"input {k}" if k < len(inputs) else "the output"
            return f"{what} is {kind.replace('_type', '') if kind else 'untyped'}, not a tensor"
    tensors = []
    for k in range(len(inputs)):
        path = os.path.join(data_dir, f"input_{k}.pb")
        if not os.path.exists(path):
            return f"no input_{k}.pb"
        tensors.append(read_tensor(path))
    x = numpy_helper.to_array(tensors[0])
    if x.dtype != np.float32:
        return f"input 0 is {x.dtype}, not float32"
    if x.ndim not in (2, 3, 4):
        return f"input 0 is rank {x.ndim}, not N x F, N x C x L or N x C x H x W"
    expected = numpy_helper.to_array(read_tensor(os.path.join(data_dir, "output_0.pb")))
    keep_listed = model.ir_version < 4  # before IR 4 every initializer must also be a graph input
    for v, t in zip(inputs[1:], tensors[1:]):
        t.name = v.name
        model.graph.initializer.append(t)
        if not keep_listed:
            model.graph.input.remove(v)
    os.makedirs(out_dir, exist_ok=True)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    np.save(os.path.join(out_dir, "x.npy"), x)
    np.save(os.path.join(out_dir, "expected.npy"), expected)
    return None


def squeeze_ends(shape):
    s = list(shape)
    while s and s[0] == 1:
        s.pop(0)
    while s and s[-1] == 1:
        s.pop()
    return s


def compare(got, want):
    """None when got matches want, else what differs."""
    shapes = f"shape {got.shape}, expected {want.shape}"
    if got.size != want.size:
        return shapes
    g = got.astype(np.float64).ravel()
    w = want.astype(np.float64).ravel()
    fin = np.isfinite(w)
    bad_nonfinite = int(np.sum(~fin & ~((g == w) | (np.isnan(g) & np.isnan(w)))))
    scale = max(1.0, float(np.abs(w[fin]).max())) if fin.any() else 1.0
    diff = np.abs(g[fin] - w[fin])
    worst = float(np.nan if np.isnan(diff).any() else diff.max()) if diff.size else 0.0
    ok_values = bad_nonfinite == 0 and worst <= RTOL * scale
    ok_shape = tuple(got.shape) == tuple(want.shape) or squeeze_ends(got.shape) == squeeze_ends(want.shape)
    if ok_values and ok_shape:
        return None
    what = []
    if not ok_shape:
        what.append(shapes)
    if ok_values:
        what.append("the values agree when flattened")
    elif worst == worst and diff.size:
        i = int(np.argmax(diff))
        where = np.unravel_index(int(np.flatnonzero(fin)[i]), want.shape) if want.ndim else ()
        what.append(f"max |diff| {worst:.3g} at {tuple(int(j) for j in where)} (got {g[fin][i]:.7g}, "
                    f"expected {w[fin][i]:.7g}; tolerance {RTOL * scale:.3g})")
    elif diff.size:
        what.append("NaN where a finite value was expected")
    if bad_nonfinite:
        what.append(f"{bad_nonfinite} non-finite expected values not matched")
    return "; ".join(what)


def run_one(cnn, test_dir, out_dir):
    """(result, detail) for one data set already prepared in out_dir."""
    y = os.path.join(out_dir, "y.npy")
    if os.path.exists(y):
        os.remove(y)
    cmd = [cnn, "run", "model.onnx", "--input", "x.npy", "--output", "y.npy", "--threads", "1"]
    try:
        p = subprocess.run(cmd, cwd=out_dir, capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "FAIL", f"no answer within {TIMEOUT_S} s"
    err = p.stderr.strip()
    with open(os.path.join(out_dir, "stderr.txt"), "w") as f:
        f.write(p.stderr)
    if p.returncode < 0 or p.returncode >= 128 or "Sanitizer" in err or "runtime error:" in err:
        return "CRASH", f"exit status {p.returncode}: " + " | ".join(err.splitlines()[:6])
    if p.returncode == 1 and err and len(err.splitlines()) == 1:
        return "REFUSED", err
    if p.returncode != 0:
        return "FAIL", f"exit status {p.returncode}: " + " | ".join(err.splitlines()[:6])
    try:
        got = np.load(y)
    except (OSError, ValueError) as e:
        return "FAIL", f"exit status 0 but y.npy unreadable: {e}"
    diff = compare(got, np.load(os.path.join(out_dir, "expected.npy")))
    return ("PASS", "") if diff is None else ("FAIL", diff)


def run_test(cnn, test_dir, out_dir):
    """(result, detail) of a test over its data sets: the first one that is not a PASS decides."""
    model = onnx.load(os.path.join(test_dir, "model.onnx"))
    sets = data_sets(test_dir)
    if not sets:
        return "SKIP", "no test_data_set_*"
    for k, s in enumerate(sets):
        d = out_dir if len(sets) == 1 else os.path.join(out_dir, s)
        m = onnx.ModelProto()
        m.CopyFrom(model)
        skip = prepare(m, os.path.join(test_dir, s), d)
        if skip:
            return "SKIP", skip
        result, detail = run_one(cnn, test_dir, d)
        if result != "PASS":
            return result, (f"{s}: " if len(sets) > 1 else "") + detail
    return "PASS", ""


def read_refused():
    refused = {}
    if os.path.exists(REFUSED_LIST):
        with open(REFUSED_LIST) as f:
            for line in f:
                line = line.rstrip("\n")
                if line and not line.startswith("#"):
                    name, _, reason = line.partition("\t")
                    refused[name] = reason
    return refused


def tests(data):
    for suite in SUITES:
        root = os.path.join(data, suite)
        for name in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            if os.path.isfile(os.path.join(root, name, "model.onnx")):
                yield name, os.path.join(root, name)


def main(argv):
    args = [a for a in argv[1:] if a != "--list"]
    if len(args) != 3:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    data, cnn, work = args
    listing = "--list" in argv
    todo, results = [], {}
    for name, path in tests(data):
        why = out_of_scope(onnx.load(os.path.join(path, "model.onnx"), load_external_data=False))
        if listing:
            print(f"{name}\t{'in scope' if why is None else why}")
        elif why:
            results[name] = ("SKIP", why)
        else:
            todo.append((name, path))
    if listing:
        return 0
    cnn = os.path.abspath(cnn)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {name: pool.submit(run_test, cnn, path, os.path.join(work, name)) for name, path in todo}
        for name, fut in futures.items():
            results[name] = fut.result()

    refused = read_refused()
    bad = 0
    counts = collections.Counter()
    for name in sorted(results):
        result, detail = results[name]
        counts[result] += 1
        note = ""
        if result == "REFUSED" and name not in refused:
            note, bad = " [not in node_tests_refused.txt]", bad + 1
        elif result in ("FAIL", "CRASH"):
            bad += 1
        elif name in refused and result != "REFUSED":
            scope = result == "SKIP" and detail.startswith("ops not in")
            note, bad = (" [in node_tests_refused.txt but " +
                         ("out of scope now" if scope else "now passes: take it off the list" if result == "PASS"
                          else "no longer refused: take it off the list") + "]"), bad + 1
        print(f"{result:7} {name}{': ' + detail if detail else ''}{note}")
    for name in sorted(set(refused) - set(results)):
        print(f"note: {name} is in node_tests_refused.txt but not in {data}")

    out = sum(1 for r, d in results.values() if r == "SKIP" and d.startswith("ops not in"))
    print(f"\n{len(results)} tests, {len(todo)} in scope")
    for r in ORDER:
        if r == "SKIP":
            print(f"  {'SKIP':8} {counts[r] - out:4}  in scope, a harness limit\n  {'SKIP':8} {out:4}  out of scope")
        else:
            print(f"  {r:8} {counts[r]:4}")
    reasons = collections.Counter(refused[n] for n, (r, _) in results.items() if r == "REFUSED" and n in refused)
    if reasons:
        print("refused, by reason:")
        for reason, c in reasons.most_common():
            print(f"  {c:4}  {reason}")
    skips = collections.Counter(d for n, (r, d) in results.items() if r == "SKIP" and not d.startswith("ops not in"))
    if skips:
        print("in scope but skipped, by reason:")
        for reason, c in skips.most_common():
            print(f"  {c:4}  {reason}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
