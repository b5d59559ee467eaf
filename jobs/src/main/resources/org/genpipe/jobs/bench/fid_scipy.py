# FID of two pytorch-fid .npz statistics with scipy.linalg.sqrtm, computed as pytorch-fid does
# (sqrtm of sigma1 @ sigma2, an eps offset when not finite, the real part). Prints one JSON line.
# usage: fid_scipy.py A.npz B.npz REPEATS
import json
import sys
import time

import numpy as np
from scipy import linalg


def fid(mu1, s1, mu2, s2, eps=1e-6):
    diff = mu1 - mu2
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
repeats = int(sys.argv[3])
times, value = [], None
for _ in range(repeats):
    t = time.perf_counter()
    value = fid(a["mu"], a["sigma"], b["mu"], b["sigma"])
    times.append(time.perf_counter() - t)
print(json.dumps({"fid_scipy": float(value), "seconds": min(times), "scipy": __import__("scipy").__version__}))
