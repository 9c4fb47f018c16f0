#!/usr/bin/env python3
"""The sort-everything baseline for bench/eval.bench.ts: numpy scores every pair with one matrix
product, then per subset does what sklearn.metrics.roc_curve does (materialise the pair scores and
labels, mergesort-argsort descending, cumulative counts) and reads TPR at each FPR off it with the
same definition as mfr (k = floor(x*n) + 1, tau = s_k, TPR = |genuine > tau| / G).

Usage: eval_numpy.py E.npy L.npy G.npy FPR[,FPR...]; prints one JSON line.
"""
import json
import resource
import sys
import time
from fractions import Fraction

import numpy as np


def binary_clf_curve(y_true, y_score):
    # sklearn.metrics._ranking._binary_clf_curve, without the checks.
    desc = np.argsort(y_score, kind="mergesort")[::-1]
    y_score = y_score[desc]
    y_true = y_true[desc]
    distinct = np.where(np.diff(y_score))[0]
    idx = np.r_[distinct, y_true.size - 1]
    tps = np.cumsum(y_true, dtype=np.int64)[idx]
    fps = 1 + idx - tps
    return fps, tps, y_score[idx]


def at_fpr(fps, tps, thr, fprs):
    n, g = int(fps[-1]), int(tps[-1])
    tpr, tau = {}, {}
    for key in fprs:
        if n == 0:
            tpr[key], tau[key] = None, None
            continue
        k = min(int(Fraction(key) * n) + 1, n)
        # thresholds descend; fps[i] = impostors >= thr[i]: the first i with fps >= k holds s_k.
        i = int(np.searchsorted(fps, k))
        t = float(thr[i])
        above = i - 1  # the last threshold strictly greater than t
        tau[key] = t
        tpr[key] = (int(tps[above]) if above >= 0 else 0) / g if g else None
    return {"genuine": g, "impostor": n, "tpr": tpr, "threshold": tau}


def main():
    e_file, l_file, g_file, fpr_text = sys.argv[1:5]
    fprs = fpr_text.split(",")
    t0 = time.perf_counter()
    e = np.load(e_file).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    labels = np.load(l_file)
    groups = np.load(g_file)
    m = e.shape[0]
    t1 = time.perf_counter()
    s = e @ e.T
    t2 = time.perf_counter()
    i, j = np.triu_indices(m, 1)
    scores = s[i, j]
    del s
    same = labels[i] == labels[j]
    gi, gj = groups[i], groups[j]
    del i, j
    subsets = {
        "all": None,
        "masked-unmasked": gi != gj,
        "masked-masked": (gi == 1) & (gj == 1),
        "unmasked-unmasked": (gi == 0) & (gj == 0),
    }
    out = {}
    for name, mask in subsets.items():
        y, sc = (same, scores) if mask is None else (same[mask], scores[mask])
        fps, tps, thr = binary_clf_curve(y, sc)
        out[name] = at_fpr(fps, tps, thr, fprs)
        del y, sc, fps, tps, thr
    t3 = time.perf_counter()
    print(json.dumps({
        "n": m,
        "seconds": t3 - t0,
        "gemmSeconds": t2 - t1,
        "rocSeconds": t3 - t2,
        "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "subsets": out,
    }))


if __name__ == "__main__":
    main()
