"""Text for calibration and evaluation, token sequences cut from it, and passkey-retrieval prompts."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from kvtool.errors import KvtoolError

SPLITS = ("calibration", "evaluation")
EVAL_SHARE = 0.2  # of the default text (by characters) held out for evaluation


def default_topics(split: str) -> list[str]:
    """Names of the pydoc topics in a split. Walking the topics in name order, a topic goes to evaluation when that
    keeps evaluation at most EVAL_SHARE of the text walked so far: disjoint, deterministic, ~20% by size."""
    if split not in SPLITS:
        raise KvtoolError(f"unknown split '{split}'; use one of {', '.join(SPLITS)}")
    from pydoc_data.topics import topics

    chosen = {"calibration": [], "evaluation": []}
    evaluation_chars = total_chars = 0
    for name in sorted(topics):
        total_chars += len(topics[name])
        goes_to_evaluation = evaluation_chars + len(topics[name]) <= EVAL_SHARE * total_chars
        evaluation_chars += len(topics[name]) if goes_to_evaluation else 0
        chosen["evaluation" if goes_to_evaluation else "calibration"].append(name)
    return chosen[split]


def default_text(split: str) -> str:
    """The Python reference topics that ship with CPython (~465 KB of English), split disjointly by topic."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in default_topics(split))


def read_text_file(path: str | Path) -> str:
    """Plain text, or JSONL whose records carry a `text` field."""
    path = Path(path)
    if not path.is_file():
        raise KvtoolError(f"data file not found: {path}")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise KvtoolError(f"cannot read data file {path}: {err}") from None
    if path.suffix == ".jsonl":
        texts = []
        for number, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise KvtoolError(f"{path}:{number} is not valid JSON") from None
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise KvtoolError(f"{path}:{number} has no string field 'text'")
            texts.append(record["text"])
        raw = "\n\n".join(texts)
    if not raw.strip():
        raise KvtoolError(f"data file {path} is empty")
    return raw


def load_text(data: str | Path | None, split: str) -> str:
    """The user's file if given (used whole: the user keeps calibration and evaluation files apart), else the default."""
    return read_text_file(data) if data else default_text(split)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def tokenize(tokenizer, text: str) -> torch.Tensor:
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids[0]
    return ids


def calibration_sequences(tokenizer, text: str, samples: int, seq_len: int, seed: int) -> list[torch.Tensor]:
    """`samples` random windows of `seq_len` tokens (non-overlapping where the text is long enough)."""
    if samples <= 0 or seq_len <= 1:
        raise KvtoolError("--samples must be positive and --seq-len at least 2")
    ids = tokenize(tokenizer, text)
    if len(ids) < seq_len:
        raise KvtoolError(f"the text has {len(ids)} tokens, fewer than --seq-len {seq_len}")
    slots = len(ids) // seq_len
    rng = random.Random(seed)
    if samples <= slots:
        starts = [slot * seq_len for slot in rng.sample(range(slots), samples)]
    else:
        starts = [rng.randrange(0, len(ids) - seq_len + 1) for _ in range(samples)]
    return [ids[s : s + seq_len] for s in sorted(starts)]


def evaluation_sequences(tokenizer, text: str, seq_len: int, max_sequences: int | None) -> list[torch.Tensor]:
    """Consecutive non-overlapping windows of `seq_len` tokens from the start of the text."""
    ids = tokenize(tokenizer, text)
    count = len(ids) // seq_len
    if count == 0:
        raise KvtoolError(f"the evaluation text has {len(ids)} tokens, fewer than --seq-len {seq_len}")
    if max_sequences is not None:
        count = min(count, max_sequences)
    return [ids[i * seq_len : (i + 1) * seq_len] for i in range(count)]


# The filler and phrasing of the passkey test used by Landmark Attention, KIVI and most long-context papers.
PASSKEY_INTRO = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about the important information there.\n"
)
PASSKEY_FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
PASSKEY_QUESTION = "\nWhat is the pass key? The pass key is"


@dataclass(frozen=True)
class PasskeyPrompt:
    input_ids: torch.Tensor  # [1, length]
    key: str
    length: int
    depth: float


def passkey_prompt(tokenizer, length: int, depth: float, rng: random.Random) -> PasskeyPrompt:
    """A prompt of about `length` tokens with a random 5-digit key placed at relative `depth` of the filler."""
    key = str(rng.randint(10000, 99999))
    needle = f" The pass key is {key}. Remember it. {key} is the pass key. "
    fixed = len(tokenize(tokenizer, PASSKEY_INTRO + needle + PASSKEY_QUESTION))
    filler_ids = tokenize(tokenizer, PASSKEY_FILLER)
    filler_tokens = max(0, length - fixed)
    repeats = filler_tokens // len(filler_ids) + 1
    filler = torch.cat([filler_ids] * repeats)[:filler_tokens]
    cut = int(round(depth * filler_tokens))
    # cut on a sentence boundary of the filler so that the needle reads as a sentence
    cut -= cut % len(filler_ids)
    parts = [
        tokenize(tokenizer, PASSKEY_INTRO),
        filler[:cut],
        tokenize(tokenizer, needle),
        filler[cut:],
        tokenize(tokenizer, PASSKEY_QUESTION),
    ]
    ids = torch.cat(parts)[None]
    return PasskeyPrompt(ids, key, ids.shape[1], depth)
