"""The codebook core CQ and MILLION share: a bank of sampled vectors that distributed ranks gather in sequence order
(so N ranks learn what one would), batched weighted k-means in torch for CQ's many small problems, and faiss k-means
for MILLION's few large ones.

CQ learns one codebook per layer, head and channel group (2,880 problems of 4,096 points for CQ-4c8b on the
embedded model, 16,384 on an 8B model); faiss has no batched k-means, and one call per problem is dominated by
per-call work. `batched_kmeans` solves all the groups of a layer as one [groups, points, c] problem on the
capture's device (the GPU when calibrating there).
"""

from __future__ import annotations

import functools
import sys

import faiss
import numpy as np
import torch
from tqdm import tqdm

from kvtool.calibrate import dist
from kvtool.errors import KvtoolError


def distance_block(device: torch.device) -> int:
    """Distance-matrix entries computed at once: cache-sized blocks are fastest on a CPU (measured: 2^19 floats,
    2x faster than 2^24), large ones on a GPU; either bounds memory whatever the number of groups (2 MiB, 1 GiB)."""
    return 1 << 19 if device.type == "cpu" else 1 << 28


class SampleBank:
    """Rows sampled per name and per calibration sequence; `gathered` concatenates every rank's in sequence order."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[int, list[torch.Tensor]]] = {}

    def add(self, name: str, sequence_index: int, rows: torch.Tensor) -> None:
        self.rows.setdefault(name, {}).setdefault(sequence_index, []).append(rows)

    def gathered(self, name: str) -> torch.Tensor:
        per_sequence = {index: torch.cat(parts) for index, parts in self.rows[name].items()}
        return torch.cat(dist.gather_indexed(per_sequence))


def check_enough(points: int, size: int) -> None:
    if points < size:
        raise KvtoolError(f"{points} calibration vectors cannot train {size} centroids: "
                          "raise --samples or --seq-len, or lower --bits")


def nearest(points: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per group, each point's nearest centroid and squared distance: [G, n, c], [G, K, c] -> [G, n], [G, n]."""
    step = max(1, distance_block(points.device) // (points.shape[0] * centroids.shape[1]))
    norms = centroids.square().sum(-1)[:, None]  # [G, 1, K]
    index, distance = [], []
    for block in points.split(step, dim=1):
        # ||x - c||² = ||x||² + ||c||² - 2 x·c; the argmin needs only the last two terms
        partial, found = torch.baddbmm(norms, block, centroids.transpose(1, 2), alpha=-2).min(-1)
        index.append(found)
        distance.append((partial + block.square().sum(-1)).clamp_min(0))
    return torch.cat(index, 1), torch.cat(distance, 1)


def kmeans_objective(points: torch.Tensor, weights: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Σ weight · squared distance to the nearest centroid, per group: [G]."""
    return (weights * nearest(points, centroids)[1]).sum(-1)


def plus_plus_seeds(points: torch.Tensor, weights: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Weighted k-means++ (one candidate per new centroid, Arthur & Vassilvitskii 2007), every group at once:
    each new centroid is a point drawn with probability ∝ weight · squared distance to the chosen ones."""
    groups = torch.arange(points.shape[0], device=points.device)
    planes = points.transpose(1, 2).contiguous()  # [G, c, n]: one contiguous plane per channel
    # buffers reused by all `size` draws: fresh ones cost 20% more on the CPU, and page faults at first
    cumulative = torch.empty(weights.shape, dtype=torch.float64, device=points.device)
    distance, difference = weights.new_empty(weights.shape), weights.new_empty(weights.shape)

    def draw(mass: torch.Tensor) -> torch.Tensor:  # one point per group, P ∝ mass [G, n]
        torch.cumsum(mass, -1, dtype=torch.float64, out=cumulative)
        target = torch.rand(len(groups), 1, generator=generator, device=points.device, dtype=torch.float64)
        found = torch.searchsorted(cumulative, target * cumulative[:, -1:], right=True)  # skips zero-mass points
        return points[groups, found[:, 0].clamp_max(points.shape[1] - 1)]

    def distance_to(seed: torch.Tensor) -> torch.Tensor:  # [G, c] -> [G, n]; a plane at a time beats a sum over c
        torch.sub(planes[:, 0], seed[:, :1], out=distance).square_()
        for channel in range(1, planes.shape[1]):
            distance.add_(torch.sub(planes[:, channel], seed[:, channel, None], out=difference).square_())
        return distance

    seeds = [draw(weights)]
    closest = distance_to(seeds[0]).clone()
    for _ in range(size - 1):
        seeds.append(draw(weights * closest))
        torch.minimum(closest, distance_to(seeds[-1]), out=closest)
    return torch.stack(seeds, 1)


def weighted_means(points: torch.Tensor, weights: torch.Tensor, index: torch.Tensor,
                   centroids: torch.Tensor) -> torch.Tensor:
    """Each centroid moved to the weighted mean of its points [G, n, c] (assigned by `index` [G, n]); a centroid
    without weight keeps its place, so the objective never increases."""
    mass = weights.new_zeros(centroids.shape[:2]).scatter_add_(1, index, weights)
    sums = torch.zeros_like(centroids).scatter_add_(1, index[..., None].expand_as(points), weights[..., None] * points)
    return torch.where(mass[..., None] > 0, sums / mass[..., None].clamp_min(1e-30), centroids)


def batched_kmeans(points: torch.Tensor, size: int, iterations: int, seed: int,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted k-means of G independent problems at once: points [G, n, c], weights [G, n] -> centroids [G, size, c].

    k-means++ seeding, then `iterations` Lloyd steps (assign, weighted mean). A group whose assignment repeats the
    previous step's is at a fixed point (its means are its centroids again), so it leaves the batch: the remaining
    steps would not change it, and most groups get there well before CQ's 25 steps.
    """
    check_enough(points.shape[1], size)
    points = points.float()
    # contiguous: CQ passes a transposed view, whose strided reads and writes made every step several times slower
    weights = torch.ones(points.shape[:2], device=points.device) if weights is None else weights.float().contiguous()
    generator = torch.Generator(points.device).manual_seed(seed)
    centroids = plus_plus_seeds(points, weights, size, generator)
    moving = torch.arange(points.shape[0], device=points.device)  # the groups still changing
    previous = None
    for _ in range(iterations):
        index = nearest(points[moving], centroids[moving])[0]
        if previous is not None:
            changed = (index != previous).any(1)
            moving, index = moving[changed], index[changed]
            if len(moving) == 0:
                break
        centroids[moving] = weighted_means(points[moving], weights[moving], index, centroids[moving])
        previous = index
    return centroids


@functools.cache
def kmeans_on_gpu() -> bool:
    """Whether this faiss build has GPU k-means; on a CUDA machine without it, say once that k-means runs on the CPU."""
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if torch.cuda.is_available() and gpus == 0 and dist.is_main():
        tqdm.write("note: k-means runs on the CPU (this faiss has no GPU support; faiss-gpu runs it on the GPU)",
                   file=sys.stderr)
    return gpus > 0


def learn_codebook(vectors: torch.Tensor, size: int, iterations: int, seed: int) -> torch.Tensor:
    """faiss k-means centroids [size, c] of vectors [n, c] (random seeding, as IndexPQ's training)."""
    check_enough(vectors.shape[0], size)
    points = np.ascontiguousarray(vectors.float().numpy())
    # faiss would subsample above 256 points per centroid and warn below 39: use all, quietly
    kmeans = faiss.Kmeans(points.shape[1], size, niter=iterations, seed=seed, gpu=1 if kmeans_on_gpu() else False,
                          max_points_per_centroid=points.shape[0], min_points_per_centroid=1)
    kmeans.train(points)
    return torch.from_numpy(kmeans.centroids.copy())


def learn_product_codebooks(vectors: torch.Tensor, width: int, bits: int, iterations: int, seed: int) -> torch.Tensor:
    """One faiss codebook per sub-space of `width` channels: vectors [n, D] -> [D / width, 2**bits, width]."""
    return torch.stack([learn_codebook(vectors[:, s * width : (s + 1) * width], 1 << bits, iterations, seed + s)
                        for s in range(vectors.shape[1] // width)])
