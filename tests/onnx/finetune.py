#!/usr/bin/python3
"""finetune.py DATA_DIR OUT.onnx [EPOCHS] — trains make_models.py's fashion_cnn in PyTorch on the IDX
dataset in DATA_DIR (pixels / 255, no other normalisation: torchvision's ToTensor), SGD lr 0.05
momentum 0.9, batch 64, seed 0, then exports it to OUT.onnx (opset 13, dynamic batch) and prints
"pytorch test accuracy 0.XXXX" on the test split. The start of the import-and-fine-tune test."""
import gzip
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import FashionCNN  # noqa: E402


def idx(path):
    with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], 'big') for k in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def split(folder, prefix):
    x = idx(os.path.join(folder, prefix + '-images-idx3-ubyte.gz')).astype(np.float32) / 255.0
    y = idx(os.path.join(folder, prefix + '-labels-idx1-ubyte.gz')).astype(np.int64)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y)


def main():
    data, out = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr, ytr = split(data, 'train')
    xte, yte = split(data, 't10k')
    model = FashionCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xtr[b]), ytr[b]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    torch.onnx.export(model, xte[:1], out, opset_version=13, input_names=['input'], output_names=['output'],
                      dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}})
    print(f'pytorch test accuracy {acc:.4f}')


if __name__ == '__main__':
    main()
