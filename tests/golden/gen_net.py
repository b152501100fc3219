#!/usr/bin/python3
"""gen_net.py -- writes the network-level PyTorch fixtures that tests/test_net.c replays against libcnn.

Run from anywhere with Debian's interpreter (python3-torch):  /usr/bin/python3 tests/golden/gen_net.py
Deterministic: fixed seeds, CPU, one thread, float32. Re-running on the same torch version and CPU
reproduces net_fashion.txt and net_bn.txt byte for byte.

The two nets (model-spec text, exactly as test_net.c builds them)
  fashion  input 1 28 28; conv 32 3 pad=1; relu; maxpool 2; conv 64 3 pad=1; relu; maxpool 2; flatten;
           dense 128; relu; dense 10; softmax_ce                                    batch 8, 421642 params
  bn       input 3 12 12; conv 8 3 pad=1 bias=0; batchnorm; relu; maxpool 2; conv 16 3 stride=2 pad=1;
           batchnorm; leaky_relu alpha=0.1; globalavgpool; flatten; dense 10; softmax_ce
                                                                                     batch 6, 1602 params

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
  start for which every ReLU input is at least 1e-5 away from 0 and every max-pool window's largest
  value at least 1e-5 above its second largest (both in float32 and float64 forwards), so the
  different summation orders of libcnn and torch cannot put a value on the other side of a kink.

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
                    bn: all of them; fashion: every element of conv1 (weight, bias), conv2.bias, dense1.bias
                    and dense2 (weight, bias), plus 1000 seeded random indices into conv2.weight and
                    1000 into dense1.weight (together 3802 of 421642)
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


def fashion_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def bn_model():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.LeakyReLU(0.1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def param_tensors(model):
    """The parameters in cnn.c's flat order: per layer weight then bias."""
    out = []
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)):
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
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            parts += [m.running_mean.numpy().copy(), m.running_var.numpy().copy()]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def kink_margin(model, x):
    """Smallest distance of a ReLU input from 0 and smallest top-1/top-2 gap of a positive max-pool window,
    in float32 and in float64 forwards (the float64 one on the float32 parameters)."""
    worst = math.inf
    for dtype in (torch.float32, torch.float64):
        m = model.to(dtype)
        h = x.to(dtype)
        with torch.no_grad():
            for layer in m:
                if isinstance(layer, nn.ReLU):
                    worst = min(worst, h.abs().min().item())
                if isinstance(layer, nn.MaxPool2d):
                    n, c, hh, ww = h.shape
                    win = h[:, :, : hh // 2 * 2, : ww // 2 * 2].reshape(n, c, hh // 2, 2, ww // 2, 2)
                    win = win.permute(0, 1, 2, 4, 3, 5).reshape(-1, 4)
                    top = win.sort(dim=1, descending=True).values
                    pos = top[:, 0] > 0
                    if pos.any():
                        worst = min(worst, (top[pos, 0] - top[pos, 1]).min().item())
                h = layer(h)
        if worst < MARGIN:
            break  # rejected already: skip the float64 pass
    model.to(torch.float32)
    return worst


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


def main():
    torch.set_num_threads(1)
    torch.manual_seed(0)  # nothing random is drawn from torch, but module construction initialises
    gen("fashion", fashion_model(), 8, (1, 28, 28), 100, 7)
    gen("bn", bn_model(), 6, (3, 12, 12), 200, None)


if __name__ == "__main__":
    main()
