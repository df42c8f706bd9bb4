"""The codebook core CQ and MILLION share: per sub-space k-means with faiss, weighted and k-means++-seeded on request,
and a bank of sampled vectors that distributed ranks gather in sequence order (so N ranks learn what one would)."""

from __future__ import annotations

import functools
import sys

import faiss
import numpy as np
import torch
from sklearn.cluster import kmeans_plusplus
from tqdm import tqdm

from kvtool.calibrate import dist
from kvtool.errors import KvtoolError


class SampleBank:
    """Rows sampled per name and per calibration sequence; `gathered` concatenates every rank's in sequence order."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[int, list[torch.Tensor]]] = {}

    def add(self, name: str, sequence_index: int, rows: torch.Tensor) -> None:
        self.rows.setdefault(name, {}).setdefault(sequence_index, []).append(rows)

    def gathered(self, name: str) -> torch.Tensor:
        per_sequence = {index: torch.cat(parts) for index, parts in self.rows[name].items()}
        return torch.cat(dist.gather_indexed(per_sequence))


@functools.cache
def kmeans_on_gpu() -> bool:
    """Whether this faiss build has GPU k-means; on a CUDA machine without it, say once that k-means runs on the CPU."""
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if torch.cuda.is_available() and gpus == 0 and dist.is_main():
        tqdm.write("note: k-means runs on the CPU (this faiss has no GPU support; faiss-gpu runs it on the GPU)",
                   file=sys.stderr)
    return gpus > 0


def learn_codebook(vectors: torch.Tensor, size: int, iterations: int, seed: int,
                   weights: torch.Tensor | None = None, plus_plus: bool = False) -> torch.Tensor:
    """k-means centroids [size, c] of vectors [n, c]; `weights` [n] weight each vector's pull on its centroid."""
    if vectors.shape[0] < size:
        raise KvtoolError(f"{vectors.shape[0]} calibration vectors cannot train {size} centroids: "
                          "raise --samples or --seq-len, or lower --bits")
    points = np.ascontiguousarray(vectors.float().numpy())
    mass = None if weights is None else np.ascontiguousarray(weights.float().numpy())
    start = None
    if plus_plus:
        start, _ = kmeans_plusplus(points, size, sample_weight=mass, random_state=seed, n_local_trials=1)
    # faiss would subsample above 256 points per centroid (dropping weighted rows) and warn below 39: use all, quietly
    kmeans = faiss.Kmeans(points.shape[1], size, niter=iterations, seed=seed, gpu=1 if kmeans_on_gpu() else False,
                          max_points_per_centroid=points.shape[0], min_points_per_centroid=1)
    kmeans.train(points, weights=mass, init_centroids=start)
    return torch.from_numpy(kmeans.centroids.copy())


def learn_product_codebooks(vectors: torch.Tensor, width: int, bits: int, iterations: int, seed: int,
                            weights: torch.Tensor | None = None, plus_plus: bool = False) -> torch.Tensor:
    """One codebook per sub-space of `width` contiguous channels: vectors [n, D] -> [D / width, 2**bits, width].

    `weights` [n, D / width] weight each sub-vector separately (CQ's Fisher information of that channel group).
    """
    subspaces = vectors.shape[1] // width
    return torch.stack([
        learn_codebook(vectors[:, s * width : (s + 1) * width], 1 << bits, iterations, seed + s,
                       None if weights is None else weights[:, s], plus_plus)
        for s in range(subspaces)
    ])
