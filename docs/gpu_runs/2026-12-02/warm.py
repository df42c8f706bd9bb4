"""The batch-1 set-up host_profile.py and host_cprofile.py share: a random-weight Llama-3-8B, then per cache kind a
cache filled to `context` and three greedy warm-up steps."""
import torch

from kvtool import bench
from kvtool.runtime.generate import forward


def warmed_caches(kinds: list[str], context: int):
    """Yield (kind, model, cache, next ids) for each kind, after three warm-up steps."""
    torch.backends.cuda.enable_cudnn_sdp(False)
    model = bench.llama3_8b_random()
    for kind in kinds:
        cache = bench.make_cache(model, kind, 1, context, 40)
        ids = torch.randint(0, model.config.vocab_size, (1, 1), device="cuda")
        with torch.no_grad():
            for _ in range(3):
                ids = forward(model, ids, cache, logits_to_keep=1).logits[:, -1:].argmax(-1)
        yield kind, model, cache, ids
        del cache, ids  # before the next kind's cache is filled
        torch.cuda.empty_cache()
