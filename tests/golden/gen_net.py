#!/usr/bin/python3
"""gen_net.py -- writes the network-level PyTorch fixtures that tests/test_net.c replays against libcnn.

Run from anywhere with Debian's interpreter (python3-torch):
    /usr/bin/python3 tests/golden/gen_net.py [NET ...]
(no NET: all of them; `gen_net.py residual se` rewrites net_residual.txt and net_se.txt only).
Deterministic: fixed seeds, CPU, one thread, float32. Re-running on the same torch version and CPU
reproduces the files byte for byte; another CPU (another vector ISA inside torch) may change the last
digit of some values, well inside test_net.c's tolerances. net_fashion.txt and net_bn.txt were written on
such another machine: on an AVX2-only one this script (and its nn.Sequential predecessor alike) writes
them with such last-digit differences, so regenerate only the nets you change.

Each net is built from its model-spec text (below; test_net.c uses the same text) by a small interpreter,
SpecNet: one torch module per spec line, in line order, reading what the line names (the previous line's
output, from=REF, or the positional words of add / concat / mul, as cnn.c reads them), so that its
parameters enumerate in cnn.c's flat order.

The nets (model-spec text, exactly as test_net.c builds them; ';' separates lines)
  fashion  input 1 28 28; conv 32 3 pad=1; relu; maxpool 2; conv 64 3 pad=1; relu; maxpool 2; flatten;
           dense 128; relu; dense 10; softmax_ce                                    batch 8, 421642 params
  bn       input 3 12 12; conv 8 3 pad=1 bias=0; batchnorm; relu; maxpool 2; conv 16 3 stride=2 pad=1;
           batchnorm; leaky_relu alpha=0.1; globalavgpool; flatten; dense 10; softmax_ce
                                                                                     batch 6, 1602 params
  residual (a residual block, identity shortcut)
           input 3 8 8; conv 8 3 pad=1 bias=0; batchnorm; relu name=x; conv 8 3 pad=1 bias=0; batchnorm;
           relu; conv 8 3 pad=1 bias=0; batchnorm; add x; relu; globalavgpool; flatten; dense 10;
           softmax_ce                                                                batch 4, 1506 params
  projection (a strided residual block, 1x1 stride-2 conv + batchnorm on the shortcut, which reads the
           block input by from=; hardswish inside)
           input 4 10 10; conv 8 3 pad=1 bias=0; batchnorm; relu name=stem; conv 16 3 stride=2 pad=1 bias=0;
           batchnorm; hardswish; conv 16 3 pad=1 bias=0; batchnorm name=main;
           conv 16 1 stride=2 bias=0 from=stem; batchnorm; add main; relu; globalavgpool; flatten;
           dense 10; softmax_ce                                                      batch 6, 4154 params
  inception (three branches from t -- 1x1; 1x1 then 3x3; 3x3 max pool stride 1 pad 1 then 1x1 -- joined
           by concat; silu and relu6 inside)
           input 3 8 8; conv 8 3 pad=1; relu name=t; conv 4 1 bias=0; batchnorm; silu name=b1;
           conv 4 1 from=t; relu; conv 6 3 pad=1 bias=0; batchnorm; relu6 name=b2;
           maxpool 3 stride=1 pad=1 from=t; conv 4 1; relu name=b3; concat b1 b2 b3; globalavgpool;
           flatten; dense 10; softmax_ce                                              batch 5, 714 params
  se       (squeeze-excitation: globalavgpool, dense, relu, dense, hardsigmoid gives an N x 16 x 1 x 1 gate
           that mul broadcasts over the feature map f; silu after)
           input 3 8 8; conv 16 3 pad=1 bias=0; batchnorm; relu name=f; globalavgpool; dense 4; relu;
           dense 16; hardsigmoid; mul f; conv 8 3 pad=1 bias=0; batchnorm; silu; globalavgpool; flatten;
           dense 10; softmax_ce                                                      batch 4, 1870 params
  upsample (convtranspose, PyTorch's ConvTranspose2d with output padding and groups, and nearest
           upsample, joined by add)
           input 3 6 6; conv 8 3 stride=2 pad=1 bias=0; batchnorm; relu name=d;
           convtranspose 6 3 stride=2 pad=1 outpad=1; silu name=u; upsample 2 from=d; conv 6 1; add u;
           convtranspose 4 2 stride=2 groups=2 bias=0; tanh; avgpool 2; flatten; dense 10; softmax_ce
                                                                                     batch 4, 2222 params
  A convtranspose's fan-in is its weight's dimension 1 times the kernel (PyTorch's): out/groups x K x K.
  No conv with a bias feeds a batchnorm in the graph nets, so none of their gradients is pure
  rounding noise (bn's conv 16 has that one).

Initial parameters are not stored: test_net.c and this script compute them from the same formula, exact
in float32 (so both sides hold the same bits). Tensor t of the net (counted 0, 1, 2, ... over the flat
parameter vector in cnn.c's layout: layer by layer, conv/dense weight then bias, batchnorm weight then
bias) gets, for its element i (0-based within the tensor),
    h    = hash32(i, t)                         (below; 32-bit unsigned arithmetic, wrapping)
    conv/dense weight and bias:  bound * ((h >> 8) * 2^-23 - 1),  bound = float32(1 / sqrt(fan_in))
                                 (fan_in = C/groups * R * S for conv, IN for dense; U[-bound, bound) as
                                 PyTorch's default init; the bracket is exact, the product rounds once)
    batchnorm weight:            (h >> 9) * 2^-23 + 0.5        in [0.5, 1.5), exact
    batchnorm bias:              (h >> 9) * 2^-23 - 0.5        in [-0.5, 0.5), exact
The batchnorm running statistics start as PyTorch's (mean 0, variance 1).

What is computed (torch float32 on the CPU, as libcnn computes in float32)
  model.train(); logits = model(x); loss = CrossEntropyLoss(mean)(logits, labels); loss.backward().
  Then, from copies of the same initial parameters and the same gradients, one step of
    SGD(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False)   (fresh state: buf = grad + wd p)
    Adam(lr=1e-3), default betas (0.9, 0.999), eps 1e-8, no weight decay (fresh state)
  and after each step the eval-mode logits (model.eval(): batchnorm uses the running statistics that the
  one training forward left behind) for the same batch.
  The batch x is float32 N(0, 1); labels uniform in [0, 10). The data seed is the first one from a fixed
  start for which every input of a ReLU or leaky ReLU is at least 1e-5 away from 0 (relu6: from 0 and 6;
  hardsigmoid and hardswish: from -3 and 3) and every max-pool window's largest value at least 1e-5 above
  its second largest (both in float32 and float64 forwards; kink_margin), so the different summation
  orders of libcnn and torch cannot put a value on the other side of a kink.

File format (ASCII, whitespace separated; lines starting with '#' are comments)
  Every other line is one record:  <name> <count> <v_0> ... <v_{count-1}>
  Floats are float32 printed with '%.9g' (round-trips exactly through strtof); integer records (idx,
  labels, meta, param_count) are printed as integers.
  Records:
    meta 5          N C H W CLASSES
    param_count 1   length of the flat parameter vector
    x N*C*H*W       the batch (NCHW)
    labels N
    logits N*10     training-mode forward output (before the update)
    loss 1
    idx K           the (sorted) flat parameter indices the following records are given at:
                    every net but fashion: all of them; fashion: every element of conv1 (weight, bias),
                    conv2.bias, dense1.bias and dense2 (weight, bias), plus 1000 seeded random indices
                    into conv2.weight and 1000 into dense1.weight (together 3802 of 421642)
    param0 K        the initial parameters at idx (lets the C test check it uses the same formula)
    grad K          dL/dparam at idx
    grad_sumsq T    for each of the T parameter tensors, the sum of squares of its whole gradient
                    (float64 sum of the float32 gradient): checks the elements idx leaves out
    state S         batchnorm running statistics after the training forward, cnn_net_state layout:
                    per batchnorm layer running_mean (C) then running_var (C); S = 0 without batchnorm
    sgd K           parameters after the SGD step, at idx
    adam K          parameters after the Adam step, at idx
    eval_sgd N*10   eval-mode logits with the SGD-updated parameters
    eval_adam N*10  eval-mode logits with the Adam-updated parameters
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
M32 = 0xFFFFFFFF
MARGIN = 1e-5


def hash32(i, t):
    """32-bit integer hash of (element index i, tensor number t); i is a uint64 numpy array."""
    x = (i * np.uint64(0x9E3779B1) + np.uint64((t * 0x85EBCA77 + 0x165667B1) & M32)) & np.uint64(M32)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x2C1B3C6D)) & np.uint64(M32)
    x ^= x >> np.uint64(12)
    x = (x * np.uint64(0x297A2D39)) & np.uint64(M32)
    x ^= x >> np.uint64(15)
    return x


def det_uniform(n, t, fan_in):
    h = hash32(np.arange(n, dtype=np.uint64), t)
    u = (h >> np.uint64(8)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1.0)  # exact
    bound = np.float32(1.0 / math.sqrt(fan_in))
    return (bound * u).astype(np.float32)


def det_bn(n, t, offset):
    h = hash32(np.arange(n, dtype=np.uint64), t)
    return ((h >> np.uint64(9)).astype(np.float32) * np.float32(2.0 ** -23) + np.float32(offset)).astype(np.float32)


def fmt(v):
    s = "%.9g" % v
    assert np.float32(float(s)) == np.float32(v), (s, v)
    return s


def record(name, values):
    vals = [fmt(v) for v in np.asarray(values, dtype=np.float32).reshape(-1).tolist()]
    return " ".join([name, str(len(vals))] + vals) + "\n"


def int_record(name, values):
    vals = [str(int(v)) for v in np.asarray(values).reshape(-1).tolist()]
    return " ".join([name, str(len(vals))] + vals) + "\n"


# The model-spec texts, character for character as test_net.c builds them (FASHION_SPEC, BN_SPEC,
# RESIDUAL_SPEC, PROJECTION_SPEC, INCEPTION_SPEC, SE_SPEC there).
FASHION_SPEC = ("input 1 28 28\nconv 32 3 pad=1\nrelu\nmaxpool 2\nconv 64 3 pad=1\nrelu\nmaxpool 2\nflatten\n"
                "dense 128\nrelu\ndense 10\nsoftmax_ce\n")
BN_SPEC = ("input 3 12 12\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu\nmaxpool 2\n"
           "conv 16 3 stride=2 pad=1\nbatchnorm\nleaky_relu alpha=0.1\n"
           "globalavgpool\nflatten\ndense 10\nsoftmax_ce\n")
RESIDUAL_SPEC = ("input 3 8 8\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu name=x\n"
                 "conv 8 3 pad=1 bias=0\nbatchnorm\nrelu\nconv 8 3 pad=1 bias=0\nbatchnorm\nadd x\nrelu\n"
                 "globalavgpool\nflatten\ndense 10\nsoftmax_ce\n")
PROJECTION_SPEC = ("input 4 10 10\nconv 8 3 pad=1 bias=0\nbatchnorm\nrelu name=stem\n"
                   "conv 16 3 stride=2 pad=1 bias=0\nbatchnorm\nhardswish\nconv 16 3 pad=1 bias=0\n"
                   "batchnorm name=main\nconv 16 1 stride=2 bias=0 from=stem\nbatchnorm\nadd main\nrelu\n"
                   "globalavgpool\nflatten\ndense 10\nsoftmax_ce\n")
INCEPTION_SPEC = ("input 3 8 8\nconv 8 3 pad=1\nrelu name=t\n"
                  "conv 4 1 bias=0\nbatchnorm\nsilu name=b1\n"
                  "conv 4 1 from=t\nrelu\nconv 6 3 pad=1 bias=0\nbatchnorm\nrelu6 name=b2\n"
                  "maxpool 3 stride=1 pad=1 from=t\nconv 4 1\nrelu name=b3\n"
                  "concat b1 b2 b3\nglobalavgpool\nflatten\ndense 10\nsoftmax_ce\n")
SE_SPEC = ("input 3 8 8\nconv 16 3 pad=1 bias=0\nbatchnorm\nrelu name=f\n"
           "globalavgpool\ndense 4\nrelu\ndense 16\nhardsigmoid\nmul f\n"
           "conv 8 3 pad=1 bias=0\nbatchnorm\nsilu\nglobalavgpool\nflatten\ndense 10\nsoftmax_ce\n")
UPSAMPLE_SPEC = ("input 3 6 6\nconv 8 3 stride=2 pad=1 bias=0\nbatchnorm\nrelu name=d\n"
                 "convtranspose 6 3 stride=2 pad=1 outpad=1\nsilu name=u\nupsample 2 from=d\nconv 6 1\nadd u\n"
                 "convtranspose 4 2 stride=2 groups=2 bias=0\ntanh\navgpool 2\nflatten\ndense 10\nsoftmax_ce\n")


# the model-spec interpreter: scripts/spec_torch.py
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from spec_torch import SpecNet  # noqa: E402


def param_tensors(model):
    """The parameters in cnn.c's flat order: per layer (spec line) weight then bias."""
    out = []
    for m in model.layers:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.BatchNorm2d)):
            out.append((m, m.weight))
            if m.bias is not None:
                out.append((m, m.bias))
    return out


def init_params(model):
    with torch.no_grad():
        for t, (m, p) in enumerate(param_tensors(model)):
            n = p.numel()
            if isinstance(m, nn.BatchNorm2d):
                v = det_bn(n, t, 0.5 if p is m.weight else -0.5)
            else:
                fan_in = m.weight[0].numel()
                v = det_uniform(n, t, fan_in)
            p.copy_(torch.from_numpy(v).reshape(p.shape))


def flat(tensors):
    return np.concatenate([t.detach().numpy().reshape(-1) for t in tensors]).astype(np.float32)


def bn_state(model):
    parts = []
    for m in model.layers:
        if isinstance(m, nn.BatchNorm2d):
            parts += [m.running_mean.numpy().copy(), m.running_var.numpy().copy()]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def pool_windows(layer, h):
    """The windows of a max pool (NCHW input h), one row each; padding reads as -inf, as in PyTorch."""
    k, s, p = layer.kernel_size, layer.stride, layer.padding
    if p:
        h = nn.functional.pad(h, (p, p, p, p), value=-math.inf)
    return h.unfold(2, k, s).unfold(3, k, s).reshape(-1, k * k)


def kink_margin(model, x):
    """Smallest distance of an input of ReLU, leaky ReLU, ReLU6, hardsigmoid or hardswish from a kink of
    theirs (0; 0; 0 and 6; -3 and 3; -3 and 3) and smallest top-1/top-2 gap of a max-pool window, in float32
    and in float64 forwards (the float64 one on the float32 parameters), over the whole graph. Max-pool
    windows reading a ReLU's (or ReLU6's) output count only when their top value is positive: a tie of
    zeros routes a gradient that the ReLU then drops."""
    kinks = ((nn.ReLU, (0.0,)), (nn.LeakyReLU, (0.0,)), (nn.ReLU6, (0.0, 6.0)), (nn.Hardsigmoid, (-3.0, 3.0)),
             (nn.Hardswish, (-3.0, 3.0)))
    worst = [math.inf]

    def visit(i, layer, xs):
        h = xs[0]
        for cls, at in kinks:
            if isinstance(layer, cls):
                worst[0] = min([worst[0]] + [(h - a).abs().min().item() for a in at])
        if isinstance(layer, nn.MaxPool2d):
            src = model.inputs[i][0]
            after_relu = src >= 0 and isinstance(model.layers[src], (nn.ReLU, nn.ReLU6))
            top = pool_windows(layer, h).sort(dim=1, descending=True).values
            pos = top[:, 0] > 0 if after_relu else torch.ones_like(top[:, 0], dtype=torch.bool)
            if pos.any():
                worst[0] = min(worst[0], (top[pos, 0] - top[pos, 1]).min().item())

    for dtype in (torch.float32, torch.float64):
        m = model.to(dtype)
        with torch.no_grad():
            m(x.to(dtype), visit)
        if worst[0] < MARGIN:
            break  # rejected already: skip the float64 pass
    model.to(torch.float32)
    return worst[0]


def make_batch(model, n, shape, seed0):
    for seed in range(seed0, seed0 + 1000):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n,) + shape).astype(np.float32)
        labels = rng.integers(0, 10, n)
        model.train()
        saved = [b.clone() for b in model.buffers()]
        margin = kink_margin(model, torch.from_numpy(x))
        with torch.no_grad():
            for b, s in zip(model.buffers(), saved):
                b.copy_(s)  # the margin forwards must not move the running statistics
        if margin >= MARGIN:
            return seed, x, labels, margin
    raise SystemExit("gen_net.py: no batch with kink margin %g" % MARGIN)


def make_fashion_idx(tensors, seed):
    sizes = [p.numel() for _, p in tensors]
    offs = np.concatenate([[0], np.cumsum(sizes)])
    rng = np.random.default_rng(seed)
    idx = []
    for t in (0, 1, 3, 5, 6, 7):  # conv1.w, conv1.b, conv2.b, dense1.b, dense2.w, dense2.b
        idx.append(np.arange(offs[t], offs[t + 1]))
    for t in (2, 4):  # conv2.w, dense1.w
        idx.append(offs[t] + rng.choice(sizes[t], 1000, replace=False))
    return np.unique(np.concatenate(idx)).astype(np.int64)


def gen(name, model, n, shape, data_seed, sample_seed):
    init_params(model)
    tensors = param_tensors(model)
    params = [p for _, p in tensors]
    seed, x, labels, margin = make_batch(model, n, shape, data_seed)
    p0 = flat(params)

    model.train()
    xt, lt = torch.from_numpy(x), torch.from_numpy(labels)
    logits = model(xt)
    loss = nn.CrossEntropyLoss()(logits, lt)
    loss.backward()
    grads = [p.grad.detach().clone() for p in params]
    g = flat(grads)
    state = bn_state(model)

    results = {}
    for opt_name, make in (("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4,
                                                              nesterov=False, foreach=False)),
                           ("adam", lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=False))):
        with torch.no_grad():
            for p, v in zip(params, np.split(p0, np.cumsum([q.numel() for q in params])[:-1])):
                p.copy_(torch.from_numpy(v.copy()).reshape(p.shape))
        for p, gr in zip(params, grads):
            p.grad = gr.clone()
        opt = make(params)
        opt.step()
        model.eval()
        with torch.no_grad():
            ev = model(xt)
        model.train()
        results[opt_name] = (flat(params), ev.numpy().copy())

    idx = np.arange(len(p0)) if sample_seed is None else make_fashion_idx(tensors, sample_seed)
    sumsq = [float(np.sum(gr.numpy().astype(np.float64) ** 2)) for gr in grads]
    out = ["# net_%s: generated by gen_net.py (torch %s); format and nets described there\n" % (name, torch.__version__),
           "# data seed %d, kink margin %.3g\n" % (seed, margin),
           int_record("meta", [n, shape[0], shape[1], shape[2], 10]),
           int_record("param_count", [len(p0)]),
           record("x", x), int_record("labels", labels),
           record("logits", logits.detach().numpy()), record("loss", [loss.item()]),
           int_record("idx", idx), record("param0", p0[idx]), record("grad", g[idx]),
           " ".join(["grad_sumsq", str(len(sumsq))] + ["%.17g" % v for v in sumsq]) + "\n",
           record("state", state),
           record("sgd", results["sgd"][0][idx]), record("adam", results["adam"][0][idx]),
           record("eval_sgd", results["sgd"][1]), record("eval_adam", results["adam"][1])]
    with open(os.path.join(HERE, "net_%s.txt" % name), "w") as f:
        f.writelines(out)
    print("net_%s: %d params, loss %.6f, data seed %d, margin %.3g" % (name, len(p0), loss.item(), seed, margin))


NETS = (  # name, spec, batch, data seed (the first one tried), sample seed (None: every parameter)
    ("fashion", FASHION_SPEC, 8, 100, 7),
    ("bn", BN_SPEC, 6, 200, None),
    ("residual", RESIDUAL_SPEC, 4, 300, None),
    ("projection", PROJECTION_SPEC, 6, 400, None),
    ("inception", INCEPTION_SPEC, 5, 500, None),
    ("se", SE_SPEC, 4, 600, None),
    ("upsample", UPSAMPLE_SPEC, 4, 700, None),
)


def main(argv):
    names = argv or [n for n, *_ in NETS]
    unknown = set(names) - {n for n, *_ in NETS}
    if unknown:
        raise SystemExit("gen_net.py: no net %s (the nets: %s)" % (", ".join(sorted(unknown)),
                                                                   " ".join(n for n, *_ in NETS)))
    torch.set_num_threads(1)
    torch.manual_seed(0)  # nothing random is drawn from torch, but module construction initialises
    for name, spec, n, data_seed, sample_seed in NETS:
        if name in names:
            model = SpecNet(spec)
            gen(name, model, n, model.input_shape, data_seed, sample_seed)


if __name__ == "__main__":
    main(sys.argv[1:])
