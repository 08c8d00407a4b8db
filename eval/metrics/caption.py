"""COCO caption metrics (CIDEr-D and BLEU-4) through pycocoevalcap, exactly as coco-caption computes them.

Both are corpus-level: CIDEr-D weighs n-grams by their document frequency over the references of the whole
evaluated set, and BLEU pools n-gram counts over all images, so neither is a mean of per-image scores and a
subset must be scored on its own. Captions are tokenized with coco-caption's Stanford PTB tokenizer (Java;
lower-cases and drops punctuation) in coco-caption's two calls, references first, then predictions, each in
the order of the ids (the annotation file's order; coco-caption takes its images in its annotation file's
order). One call for both would be about 0.3 s faster (JVM start-up) but gives different tokens: the tokenizer
reads each line with the next one in view (a reference ending in "no." keeps "no." as an abbreviation when the
next line starts with a number), so the last reference would be tokenized against the first prediction.
"""

from __future__ import annotations

import shutil
from typing import Hashable, Mapping, Sequence

Captions = Mapping[Hashable, Sequence[str]]


def _check(references: Captions, predictions: Captions) -> None:
    if set(references) != set(predictions):
        only_refs = sorted(map(str, set(references) - set(predictions)))[:5]
        only_preds = sorted(map(str, set(predictions) - set(references)))[:5]
        raise ValueError(f"references and predictions differ in ids (only in references: {only_refs}, "
                         f"only in predictions: {only_preds})")
    if not references:
        raise ValueError("no captions to score")
    for key in references:
        if len(predictions[key]) != 1:
            raise ValueError(f"id {key!r}: expected exactly one predicted caption, got {len(predictions[key])}")
        if not references[key]:
            raise ValueError(f"id {key!r}: no reference captions")


def tokenize(references: Captions, predictions: Captions) -> tuple[dict, dict]:
    """PTB-tokenize references, then predictions (two Java calls, as coco-caption); (refs, preds) keyed alike."""
    if shutil.which("java") is None:
        raise RuntimeError("CIDEr/BLEU need Java for the PTB tokenizer of pycocoevalcap; install a JRE "
                           "(e.g. `apt-get install default-jre-headless`)")
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    def call(captions: Captions) -> dict:
        return PTBTokenizer().tokenize({k: [{"caption": c} for c in v] for k, v in captions.items()})

    return call(references), call({k: predictions[k] for k in references})


def cider(references: Captions, predictions: Captions) -> float:
    """CIDEr-D (coco-caption's "CIDEr": sigma 6, clipped counts, length penalty) of the corpus.

    `references` maps an id to its reference captions and `predictions` the same ids to a one-caption list.
    Returns coco-caption's number (papers print it x100, e.g. 1.10 -> 110.0).
    """
    from pycocoevalcap.cider.cider import Cider

    _check(references, predictions)
    refs, preds = tokenize(references, predictions)
    score, _ = Cider().compute_score(refs, preds)
    return float(score)


def bleu4(references: Captions, predictions: Captions) -> float:
    """Corpus BLEU-4 as coco-caption computes it ("closest" reference length for the brevity penalty), 0-1."""
    from pycocoevalcap.bleu.bleu import Bleu

    _check(references, predictions)
    refs, preds = tokenize(references, predictions)
    scores, _ = Bleu(4).compute_score(refs, preds, verbose=0)
    return float(scores[3])
