"""CPU (no GPU needed): the specialization key Triton would compile the decode kernels for at each launch of the
steps a GraphedDecoder runs eagerly or captures (replays launch nothing new), kernels not executed; prints the
steps with new keys and what differs from an earlier one.
  python3 docs/gpu_runs/2026-12-02e/specializations.py kvquant3 8192 256"""
import contextlib
import sys
import torch
from kvtool import bench
from kvtool.runtime import kernels
from kvtool.runtime.cache import CompressedCache
from kvtool.runtime.graphs import GraphStep, replayable_steps, counter_fields, moves_since, advance
from kvtool.runtime.kernels import decode

name, context, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = []

def recorder(kernel):
    names = kernel.arg_names
    nospec = set(kernel.do_not_specialize) | {kernel.arg_names[i] for i in kernel.do_not_specialize if isinstance(i, int)}
    def grid_fn(grid):
        def launch(*args, **kw):
            key = []
            for n, a in zip(names, args):
                if isinstance(a, torch.Tensor):
                    key.append((n, a.data_ptr() % 16 == 0, str(a.dtype)))
                elif isinstance(a, bool):
                    key.append((n, a))
                elif isinstance(a, int) and n not in nospec:
                    key.append((n, a == 1, a % 16 == 0))
                elif isinstance(a, float):
                    key.append((n, "f"))
            key.append(tuple(sorted((k, v) for k, v in kw.items())))
            log.append((kernel.fn.__name__ if hasattr(kernel, "fn") else str(kernel), tuple(key)))
        return launch
    return grid_fn

for k in (decode._decode_split_kernel, decode._merge_partials_kernel):
    k.__class__.__getitem__ = lambda self, grid: recorder(self)(grid)

layer = bench.make_layer(name, "cpu")
cache = CompressedCache([layer])
cache.reserve(context + 2 * steps)
bench.fill_layer(layer, 1, context, "cpu")
layer.fusable = True
q = torch.randn(1, 32, 1, 128).half()
graph, first, end, moves = None, 0, 0, None
seen = {}
warm = False
for t in range(2 * steps):
    position = cache.get_seq_length()
    k, v = torch.randn(1, 8, 1, 128).half(), torch.randn(1, 8, 1, 128).half()
    if graph is not None and first < position < end:
        advance(cache, moves)
        continue
    span = replayable_steps(cache, 256)
    kind = "capture" if span >= 2 and warm else "eager-graph" if span >= 1 else "eager"
    log.clear()
    if kind == "capture":
        for s in cache.streams():
            s.make_room(span)
        fields = counter_fields(cache)
        before = [getattr(o, n) for o, n in fields]
    step = GraphStep(q.device, span if kind == "capture" else 1)
    warm = warm or kind == "eager-graph"
    with cache.graph_step(step) if kind != "eager" else contextlib.nullcontext():  # plain steps: no graph form
        layer.update(k, v)
        width = position + step.span
        mask = (torch.arange(width) <= position)[None, None, None].expand(1, 1, 1, width)
        kernels.attend_decode(layer, q, mask, 0.125, None)
    if kind == "capture":
        moves = moves_since(fields, before)
        graph, first, end = True, position, position + span
    new = [l for l in log if l not in seen.values()]
    for l in log:
        seen.setdefault(l, l)
    print(t, position, kind, "span", span, "launches", len(log), "new specializations", len(new))
    if new and t > 0:
        for l in new:
            prev = [p for p in seen if p[0] == l[0] and p is not l]
            for p in prev[:1]:
                print("   differs:", [(a, b) for a, b in zip(p[1], l[1]) if a != b])
