#!/usr/bin/env python3
"""Writes the fixtures of test/eval: InsightFace-style .bin verification sets and the expected
10-fold accuracy of arcface_torch's verification.py on fixed embeddings.

A .bin is pickle.dump((bins, issame_list)): bins = JPEG bytes, two per pair; issame = bools.
InsightFace's own files were written by Python 2 (protocol 2, JPEGs as BINSTRING); Python 3
writes bytes at protocol 2 through _codecs.encode and at protocol 4 as BINBYTES. All three are
written here, plus two malicious pickles that must be refused.

Run: /usr/bin/python3 scripts/make-eval-fixtures.py   (needs numpy and PIL)
"""
import io
import json
import os
import pickle
import struct

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "eval")
SIZE = 24


def jpeg(rgb_left, rgb_right):
    """A SIZE x SIZE JPEG: left half one colour, right half another (flips are visible)."""
    a = np.zeros((SIZE, SIZE, 3), np.uint8)
    a[:, : SIZE // 2] = rgb_left
    a[:, SIZE // 2 :] = rgb_right
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


class Py2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2 pickled str: SHORT_BINSTRING / BINSTRING."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def write_bins():
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (40, 220, 220), (128, 128, 128)]
    bins = [jpeg(colours[i], colours[(i + 1) % 6]) for i in range(6)]
    issame = [True, False, True]
    data = (bins, issame)
    with open(os.path.join(OUT, "tiny-p2.bin"), "wb") as f:
        pickle.dump(data, f, protocol=2)
    with open(os.path.join(OUT, "tiny-p4.bin"), "wb") as f:
        pickle.dump(data, f, protocol=4)
    with open(os.path.join(OUT, "tiny-py2.bin"), "wb") as f:
        Py2Pickler(f, protocol=2).dump(data)
    with open(os.path.join(OUT, "evil-global.bin"), "wb") as f:
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")  # protocol 0: GLOBAL + REDUCE
    with open(os.path.join(OUT, "evil-p4.bin"), "wb") as f:
        pickle.dump(([Evil()], [True]), f, protocol=4)  # STACK_GLOBAL + REDUCE


# ---- arcface_torch eval/verification.py, verbatim in substance (sklearn's KFold inlined) -------
def kfold(n, n_splits):
    sizes = np.full(n_splits, n // n_splits, dtype=int)
    sizes[: n % n_splits] += 1
    cur = 0
    idx = np.arange(n)
    for s in sizes:
        test = idx[cur : cur + s]
        train = np.concatenate([idx[:cur], idx[cur + s :]])
        yield train, test
        cur += s


def calculate_accuracy(threshold, dist, actual_issame):
    predict_issame = np.less(dist, threshold)
    tp = np.sum(np.logical_and(predict_issame, actual_issame))
    tn = np.sum(np.logical_and(np.logical_not(predict_issame), np.logical_not(actual_issame)))
    return float(tp + tn) / dist.size


def calculate_roc(thresholds, embeddings1, embeddings2, actual_issame, nrof_folds=10):
    nrof_pairs = min(len(actual_issame), embeddings1.shape[0])
    accuracy = np.zeros((nrof_folds))
    best = np.zeros((nrof_folds))
    diff = np.subtract(embeddings1, embeddings2)
    dist = np.sum(np.square(diff), 1)
    for fold_idx, (train_set, test_set) in enumerate(kfold(nrof_pairs, nrof_folds)):
        acc_train = np.zeros((len(thresholds)))
        for threshold_idx, threshold in enumerate(thresholds):
            acc_train[threshold_idx] = calculate_accuracy(threshold, dist[train_set], actual_issame[train_set])
        best_threshold_index = np.argmax(acc_train)
        best[fold_idx] = thresholds[best_threshold_index]
        accuracy[fold_idx] = calculate_accuracy(thresholds[best_threshold_index], dist[test_set], actual_issame[test_set])
    return accuracy, best


def write_kfold():
    """Embeddings of the images and of their flips; expected = arcface_torch's test() numbers."""
    rng = np.random.default_rng(0)
    pairs = 203  # not a multiple of 10: uneven folds
    issame = rng.random(pairs) < 0.5
    first = rng.standard_normal((2 * pairs, 4))
    for i in range(pairs):  # genuine pairs closer
        if issame[i]:
            first[2 * i + 1] = first[2 * i] + 0.9 * first[2 * i + 1]
    second = first + 0.5 * rng.standard_normal((2 * pairs, 4))
    first, second = np.round(first, 3), np.round(second, 3)
    emb = first + second  # flip-sum
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)  # sklearn.preprocessing.normalize
    acc, best = calculate_roc(np.arange(0, 4, 0.01), emb[0::2], emb[1::2], issame, 10)
    out = {
        "first": first.tolist(),
        "second": second.tolist(),
        "issame": issame.tolist(),
        "foldAccuracy": acc.tolist(),
        "bestThreshold": best.tolist(),
        "accuracy": float(np.mean(acc)),
        "std": float(np.std(acc)),
    }
    with open(os.path.join(OUT, "kfold.json"), "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write_bins()
    write_kfold()
