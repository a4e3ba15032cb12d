"""The table and explanation that ``python -m pyserini_splare.demo`` prints."""

from __future__ import annotations

from .pipeline import DemoResult


def format_table(r: DemoResult) -> str:
    lines = [f"{'run':<20} {'nDCG@10':>8} {'nDCG@20':>8} {'rel. non-English in top 10':>28}   model"]
    for name, s in r.scores.items():
        lines.append(f"{name:<20} {s['nDCG@10']:>8.4f} {s['nDCG@20']:>8.4f} "
                     f"{r.non_english_found[name]:>14d} of {r.non_english_total:<11d}   {r.models[name]}")
    return "\n".join(lines)


def format_explanation(r: DemoResult) -> str:
    e = r.explanation
    return "\n".join([f"Bag of concepts (SPLARE-demo latents) for {e['qid']}: {e['query']!r}",
                      "label = the demo corpus's tokens that activate the latent most (no Neuronpedia for a "
                      "home-made SAE)", e["table"]])
