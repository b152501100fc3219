#!/usr/bin/python3
"""train_torch.py — PyTorch's side of bench_train: fashion-cnn trained and run on Fashion-MNIST, timed
the same way, with the same output (bench/compare_train.sh puts the two side by side).

The model is models/fashion-cnn.cfg written in torch.nn: conv 32 3x3 pad 1, relu, maxpool 2,
conv 64 3x3 pad 1, relu, maxpool 2, flatten, dense 128, relu, dense 10; cross-entropy loss.
Data loading is not timed: the IDX files are read with gzip + numpy and normalised once, like cnn.c,
x = (pixel / 255 - mean) / std with the training set's mean and std, into in-memory tensors (a pool
of up to one epoch of shuffled training batches, and the whole test set); no DataLoader, no workers.
Training: SGD (lr 0.05, momentum 0.9, weight decay 5e-4), batch 64, pool batch s mod pool for step s;
--warmup steps, then --steps timed steps -> images/s. Inference: eval mode under torch.no_grad(),
the 10,000 test images in batches of 256 (after one warm-up batch), best of 3 passes -> images/s,
plus the accuracy as a check that real work was done.

Unless --no-mallopt, glibc is told to keep freed memory, as in bench_conv_torch.py: PyTorch
allocates every activation afresh each step, and on this sandbox the page faults of fresh memory
are costly. cnn.c allocates its arena once and needs no such setting.
Run with a python3 that has torch (Debian: /usr/bin/python3 with python3-torch).
"""
import argparse
import contextlib
import ctypes
import gzip
import os
import struct
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write("train_torch.py: PyTorch not found for %s\n" % sys.executable)
    sys.exit(3)

INFER_BATCH = 256
INFER_PASSES = 3


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch fashion-cnn training and inference images/s (bench_train's twin)")
    ap.add_argument("--model", help="a model spec (default fashion-cnn), built by scripts/spec_torch.py")
    ap.add_argument("--batch", type=int, default=64, help="training batch (default 64)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--steps", type=int, default=300, help="timed training steps (default 300)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed training steps first (default 20)")
    ap.add_argument("--data", default=os.environ.get("CNN_DATA") or "/usr/share/datasets/fashion-mnist",
                    help="dataset folder (default: $CNN_DATA, else /usr/share/datasets/fashion-mnist)")
    ap.add_argument("--no-infer", action="store_true", help="skip inference (and the test set)")
    ap.add_argument("--no-mallopt", action="store_true", help="leave glibc's malloc settings alone")
    ap.add_argument("--csv", action="store_true", help="'#' line, header and one row, as bench_train")
    ap.add_argument("--autocast", choices=["bf16"], help="torch.autocast('cpu', torch.bfloat16) around forward "
                    "and loss, training and inference (bench_train's --precision bf16 twin)")
    a = ap.parse_args()
    if a.threads < 1 or a.steps < 1 or a.warmup < 0 or a.batch < 1:
        ap.error("--threads, --steps and --batch must be >= 1, --warmup >= 0")
    return a


def read_idx(path):
    """An IDX file (raw or gzip) as a numpy uint8 array of its shape."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    zero, kind, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or kind != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">%dI" % ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(folder, prefix):
    images = read_idx(os.path.join(folder, "%s-images-idx3-ubyte" % prefix))
    labels = read_idx(os.path.join(folder, "%s-labels-idx1-ubyte" % prefix))
    return images, labels


def stats(images):
    """Mean and std of all pixels scaled to [0, 1], from a histogram in double (as cnn_dataset_stats)."""
    flat, hist = images.reshape(-1), np.zeros(256, dtype=np.float64)
    for i in range(0, len(flat), 1 << 20):  # bincount widens to int64: in chunks, not 8 bytes a pixel at once
        hist += np.bincount(flat[i:i + (1 << 20)], minlength=256)
    v = np.arange(256, dtype=np.float64) / 255.0
    n = hist.sum()
    mean = (hist * v).sum() / n
    std = np.sqrt((hist * (v - mean) ** 2).sum() / n)
    return np.float32(mean), np.float32(std)


def prepare(images, labels, idx, mean, std):
    """Images idx as normalised N x 1 x H x W float32 and int64 labels (a lookup table, as cnn.c)."""
    lut = (np.arange(256, dtype=np.float32) / np.float32(255.0) - mean) / std
    x = torch.from_numpy(lut[images[idx]]).unsqueeze(1)
    y = torch.from_numpy(labels[idx].astype(np.int64))
    return x, y


class FashionCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


def keep_freed_memory():
    """mallopt as bench_conv: allocations up to 32 MiB come from the heap, which is never trimmed."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(-3, 32 << 20) == 1 and libc.mallopt(-1, 1 << 30) == 1  # MMAP_, TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def train(a, model, images, labels, mean, std):
    total = a.warmup + a.steps
    pool = min(total, len(images) // a.batch)  # batches prepared, as bench_train
    if pool < 1:
        raise ValueError("the training set has fewer images than one batch of %d" % a.batch)
    perm = np.random.default_rng(1).permutation(len(images))[:pool * a.batch]
    x, y = prepare(images, labels, perm, mean, std)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    model.train()
    t0 = 0.0
    loss = None
    for s in range(total):
        if s == a.warmup:
            t0 = time.perf_counter()
        b = (s % pool) * a.batch
        opt.zero_grad(set_to_none=True)
        with autocast(a):
            loss = F.cross_entropy(model(x[b:b + a.batch]), y[b:b + a.batch])
        loss.backward()
        opt.step()
    secs = time.perf_counter() - t0
    return a.steps * a.batch / secs, float(loss)


class SpecModel(nn.Module):
    """A model spec through scripts/spec_torch.py, with PyTorch's default initialisation."""
    def __init__(self, path):
        super().__init__()
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
        from spec_torch import SpecNet
        with open(path) as f:
            self.net = SpecNet(f.read())

    def forward(self, x):
        return self.net(x)


def autocast(a):
    """The bf16 autocast context of --autocast bf16, else one that does nothing."""
    if a.autocast == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def infer(a, model, images, labels, mean, std):
    x, y = prepare(images, labels, np.arange(len(images)), mean, std)
    model.eval()
    best = acc = 0.0
    with torch.no_grad(), autocast(a):
        model(x[:INFER_BATCH])  # warm-up batch
        for _ in range(INFER_PASSES):
            correct = 0
            t0 = time.perf_counter()
            for start in range(0, len(x), INFER_BATCH):
                out = model(x[start:start + INFER_BATCH])
                correct += int((out.argmax(1) == y[start:start + INFER_BATCH]).sum())
            secs = time.perf_counter() - t0
            best = max(best, len(x) / secs)
            acc = correct / len(x)
    return best, acc


def main():
    a = parse_args()
    malloc = "default" if a.no_mallopt or not keep_freed_memory() else "keep"
    torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    torch.manual_seed(1)
    try:
        tr_images, tr_labels = load_split(a.data, "train")
        te_images, te_labels = (None, None) if a.no_infer else load_split(a.data, "t10k")
    except (OSError, ValueError) as e:
        sys.stderr.write("train_torch.py: %s\n" % e)
        sys.exit(1)
    mean, std = stats(tr_images)
    model = SpecModel(a.model) if a.model else FashionCNN()
    train_ips, loss = train(a, model, tr_images, tr_labels, mean, std)
    del tr_images, tr_labels
    infer_ips = acc = 0.0
    if not a.no_infer:
        infer_ips, acc = infer(a, model, te_images, te_labels, mean, std)
    if a.csv:
        print("# pytorch %s threads=%d autocast=%s batch=%d steps=%d warmup=%d infer_batch=%d malloc=%s"
              % (torch.__version__, threads, a.autocast or "none", a.batch, a.steps, a.warmup, INFER_BATCH, malloc))
        print("train_img_s,infer_img_s,final_loss,test_acc")
        print("%.1f,%.1f,%.4f,%.4f" % (train_ips, infer_ips, loss, acc))
    else:
        print("PyTorch %s %s, %d thread%s (malloc=%s)" % (torch.__version__, a.model or "fashion-cnn", threads,
                                                                  "" if threads == 1 else "s", malloc))
        print("training:  %.1f images/s (batch %d, %d steps after %d warm-up), last loss %.4f"
              % (train_ips, a.batch, a.steps, a.warmup, loss))
        if not a.no_infer:
            print("inference: %.1f images/s (batch %d, %d test images, best of %d), accuracy %.4f"
                  % (infer_ips, INFER_BATCH, len(te_images), INFER_PASSES, acc))


if __name__ == "__main__":
    main()
