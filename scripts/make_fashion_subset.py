#!/usr/bin/python3
"""make_fashion_subset.py - the small Fashion-MNIST subset committed under tests/data/.

Reads Debian's dataset-fashion-mnist files (/usr/share/datasets/fashion-mnist) and writes, fully
deterministically (no randomness, gzip mtime 0):
  tests/data/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
      the first 200 (train) / 50 (t10k) images of every class, kept in file order, so 2000 / 500
      images, class-balanced; same names and format as the originals, so `--data tests/data` works;
  tests/data/images/<label>_<name>.png   the first t10k-subset image of each class, 28x28 gray;
  tests/data/images/test_<i>.pgm         t10k-subset images 498 and 499 as binary PGM (P5);
  tests/data/images/wrong_size_32x32.png t10k-subset image 0 zero-padded by 2: a wrong size on purpose.
PNG files are written by hand (zlib + struct), so nothing beyond numpy is needed.
Usage: /usr/bin/python3 scripts/make_fashion_subset.py [SRC_DIR [OUT_DIR]]
"""
import gzip
import os
import struct
import sys
import zlib

import numpy as np

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
OUT = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                         "tests", "data")
NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]
PER_CLASS = {"train": 200, "t10k": 50}


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    assert zero == 0 and dtype == 0x08, path
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    assert data.size == int(np.prod(dims)), path
    return data.reshape(dims)


def write_idx_gz(path, arr):
    header = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    with open(path, "wb") as raw:
        # filename "" and mtime 0: the bytes depend only on the content.
        with gzip.GzipFile(filename="", mode="wb", compresslevel=9, fileobj=raw, mtime=0) as f:
            f.write(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())


def png_chunk(kind, body):
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def write_png_gray(path, img):
    h, w = img.shape
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)  # 8-bit grayscale, no interlace
    rows = b"".join(b"\x00" + img[y].tobytes() for y in range(h))  # filter type 0 on every row
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(rows, 9))
            + png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def write_pgm(path, img):
    h, w = img.shape
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h) + img.tobytes())


def subset(split):
    images = read_idx(os.path.join(SRC, split + "-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(SRC, split + "-labels-idx1-ubyte.gz"))
    keep = np.zeros(labels.shape[0], dtype=bool)
    for c in range(10):
        keep[np.flatnonzero(labels == c)[:PER_CLASS[split]]] = True
    images, labels = images[keep], labels[keep]
    write_idx_gz(os.path.join(OUT, split + "-images-idx3-ubyte.gz"), images)
    write_idx_gz(os.path.join(OUT, split + "-labels-idx1-ubyte.gz"), labels)
    return images, labels


def main():
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    subset("train")
    images, labels = subset("t10k")
    img_dir = os.path.join(OUT, "images")
    for c in range(10):
        i = int(np.flatnonzero(labels == c)[0])
        write_png_gray(os.path.join(img_dir, "%d_%s.png" % (c, NAMES[c])), images[i])
    for i in (498, 499):
        write_pgm(os.path.join(img_dir, "test_%d.pgm" % i), images[i])
    write_png_gray(os.path.join(img_dir, "wrong_size_32x32.png"), np.pad(images[0], 2))
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(
            "# Test data\n\n"
            "A class-balanced subset of Fashion-MNIST (Zalando Research, MIT licence,\n"
            "https://github.com/zalandoresearch/fashion-mnist), made from Debian's\n"
            "`dataset-fashion-mnist` files by `/usr/bin/python3 scripts/make_fashion_subset.py`\n"
            "(deterministic; rerun it to rebuild):\n\n"
            "- `train-*-ubyte.gz`: the first 200 training images of each class, in file order (2000);\n"
            "- `t10k-*-ubyte.gz`: the first 50 test images of each class, in file order (500);\n"
            "- `images/<label>_<name>.png`: the first image of each class in the t10k subset (28x28 gray);\n"
            "- `images/test_498.pgm`, `images/test_499.pgm`: t10k-subset images 498 and 499 (binary PGM);\n"
            "- `images/wrong_size_32x32.png`: t10k-subset image 0 zero-padded to 32x32 (for error tests).\n")


if __name__ == "__main__":
    main()
