#!/usr/bin/python3
"""bench_conv_torch.py — PyTorch's side of bench_conv: the same shapes, timing rule and output.

Forward is F.conv2d under no_grad; backward-data and backward-weights are each one call of
aten::convolution_backward with an output_mask selecting only that gradient (falling back to
torch.nn.grad.conv2d_input / conv2d_weight on a torch without it). float32, no bias.
Run with a python3 that has torch (Debian: /usr/bin/python3 with python3-torch).

Unless --no-mallopt, glibc is told to keep freed memory (as bench_conv does): every call allocates
its output, and on this sandbox the page faults of fresh memory can cost 50x the convolution.
"""
import argparse
import ctypes
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    sys.stderr.write("bench_conv_torch.py: PyTorch not found for %s\n" % sys.executable)
    sys.exit(3)

# name N C H W K R stride pad groups (square kernel R = S, symmetric padding), as bench_conv.c
SHAPES = [
    ("lenet1", 64, 1, 28, 28, 32, 5, 1, 2, 1),
    ("lenet2", 64, 32, 14, 14, 64, 5, 1, 2, 1),
    ("vgg64", 16, 64, 56, 56, 64, 3, 1, 1, 1),
    ("res128", 16, 128, 28, 28, 128, 3, 1, 1, 1),
    ("res256s2", 16, 128, 28, 28, 256, 3, 2, 1, 1),
    ("pw1x1", 16, 256, 28, 28, 64, 1, 1, 0, 1),
    ("dw3x3", 16, 128, 56, 56, 128, 3, 1, 1, 128),
]
PASSES = ("fwd", "bwd_data", "bwd_weights")
MAX_REPS = 100000


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch conv2d GFLOP/s per pass (bench_conv's twin)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--shape", action="append", default=[], help="shapes to run (repeatable or comma list)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds of repeats per pass (default 0.5)")
    ap.add_argument("--median", action="store_true", help="report the median repeat (default: the best)")
    ap.add_argument("--csv", action="store_true", help="print name,pass,gflops,ms rows")
    ap.add_argument("--no-mallopt", action="store_true", help="leave glibc's malloc settings alone")
    a = ap.parse_args()
    known = {s[0] for s in SHAPES}
    wanted = {n for item in a.shape for n in item.split(",") if n}
    for n in sorted(wanted - known):
        ap.error("unknown shape '%s'" % n)
    a.shapes = [s for s in SHAPES if not wanted or s[0] in wanted]
    return a


def make_passes(n, c, h, w, k, r, stride, pad, groups):
    """The three passes of one shape as zero-argument callables, and the FLOPs of each."""
    gen = torch.Generator().manual_seed(0x5EED)

    def uniform(*size):
        return torch.rand(*size, generator=gen, dtype=torch.float32) * 2 - 1

    x = uniform(n, c, h, w)
    wt = uniform(k, c // groups, r, r)
    p = (h + 2 * pad - r) // stride + 1
    q = (w + 2 * pad - r) // stride + 1
    dy = uniform(n, k, p, q)
    st, pd = [stride, stride], [pad, pad]
    flops = 2.0 * n * k * (c // groups) * r * r * p * q

    def fwd():
        with torch.no_grad():
            return F.conv2d(x, wt, None, st, pd, 1, groups)

    aten_bwd = getattr(getattr(torch.ops, "aten", None), "convolution_backward", None)
    if aten_bwd is not None:
        def bwd(mask):
            return lambda: aten_bwd(dy, x, wt, None, st, pd, [1, 1], False, [0, 0], groups, mask)
        bwd_data, bwd_weights = bwd([True, False, False]), bwd([False, True, False])
    else:
        def bwd_data():
            return torch.nn.grad.conv2d_input(x.shape, wt, dy, st, pd, 1, groups)

        def bwd_weights():
            return torch.nn.grad.conv2d_weight(x, wt.shape, dy, st, pd, 1, groups)
    return (fwd, bwd_data, bwd_weights), flops


def keep_freed_memory():
    """mallopt as bench_conv: allocations up to 32 MiB come from the heap, which is never trimmed."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc.mallopt(-3, 32 << 20) == 1 and libc.mallopt(-1, 1 << 30) == 1  # MMAP_, TRIM_THRESHOLD
    except (OSError, AttributeError):
        return False


def time_pass(fn, min_time, median):
    """Seconds of one call: best or median of the repeats after one warm-up."""
    fn()
    times = []
    start = t = time.perf_counter()  # CLOCK_MONOTONIC on Linux
    while len(times) < MAX_REPS and (not times or t - start < min_time):
        t0 = t
        fn()
        t = time.perf_counter()
        times.append(t - t0)
    times.sort()
    return times[len(times) // 2] if median else times[0]


def main():
    a = parse_args()
    malloc = "default" if a.no_mallopt or not keep_freed_memory() else "keep"
    torch.set_num_threads(a.threads)
    threads = torch.get_num_threads()
    stat = "median" if a.median else "best"
    if a.csv:
        print("# pytorch %s threads=%d stat=%s min_time=%g malloc=%s"
              % (torch.__version__, threads, stat, a.min_time, malloc))
        print("name,pass,gflops,ms")
    else:
        print("PyTorch %s conv2d, %d thread%s, GFLOP/s (%s of repeats over >= %g s per pass, malloc=%s)"
              % (torch.__version__, threads, "" if threads == 1 else "s", stat, a.min_time, malloc))
        print("%-9s %9s %9s %9s %11s" % ("shape", "GFLOP", "fwd", "bwd-data", "bwd-weights"))
    for shape in a.shapes:
        passes, flops = make_passes(*shape[1:])
        sec = [time_pass(fn, a.min_time, a.median) for fn in passes]
        if a.csv:
            for name, s in zip(PASSES, sec):
                print("%s,%s,%.3f,%.4f" % (shape[0], name, flops / s * 1e-9, s * 1e3))
        else:
            print("%-9s %9.3f %9.2f %9.2f %11.2f" % ((shape[0], flops * 1e-9) + tuple(flops / s * 1e-9 for s in sec)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
