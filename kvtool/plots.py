"""Per-layer, per-KV-head maps of an artifact's `head_map` tensor (DuoAttention's gates), as text or a PNG heatmap.

matplotlib is imported only when a PNG is written, so the runtime never needs it.
"""

from __future__ import annotations

import os
from pathlib import Path

from kvtool.artifacts import Artifact
from kvtool.errors import KvtoolError


def _head_map(artifact: Artifact):
    if "head_map" not in artifact.tensors:
        raise KvtoolError(f"a {artifact.method} artifact has no head_map")
    return artifact.tensors["head_map"].float()


def format_head_map(artifact: Artifact) -> str:
    """One line per layer: each KV head's value, starred where the artifact's `retrieval` mask keeps full attention."""
    values = _head_map(artifact)
    retrieval = artifact.tensors.get("retrieval")
    lines = ["layer  " + " ".join(f"{f'head {h}':>7s}" for h in range(values.shape[1])) + "   (* = retrieval head)"]
    for layer, row in enumerate(values.tolist()):
        marks = [" *" if retrieval is not None and retrieval[layer, h] else "  " for h in range(len(row))]
        lines.append(f"{layer:5d}  " + " ".join(f"{v:5.3f}{m}" for v, m in zip(row, marks)))
    return "\n".join(lines)


def save_head_map(artifact: Artifact, path: str | os.PathLike) -> Path:
    """Write the head map as a PNG heatmap (layers down, KV heads across, 0..1), retrieval heads outlined."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    values = _head_map(artifact).numpy()
    path = Path(path)
    if not path.parent.is_dir():
        raise KvtoolError(f"output folder {path.parent} does not exist")
    figure, axes = plt.subplots(figsize=(2.5 + 0.6 * values.shape[1], 1.5 + 0.22 * values.shape[0]))
    image = axes.imshow(values, cmap="coolwarm", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    retrieval = artifact.tensors.get("retrieval")
    if retrieval is not None:
        for layer, head in retrieval.nonzero().tolist():
            axes.add_patch(plt.Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.2))
    axes.set_xlabel("KV head")
    axes.set_ylabel("layer")
    axes.set_xticks(range(values.shape[1]))
    axes.set_title(f"{artifact.method} head map (outlined: retrieval)", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.08)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
