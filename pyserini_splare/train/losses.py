"""Training losses: sentence-transformers' sparse losses, configured with the SPLARE recipe's defaults.

``L = L_main + λ_q·FLOPS(Q) + λ_d·FLOPS(D)`` (Paria et al. 2020) with ``L_main`` one of ``kl`` (Hinton et al.
2015), ``marginmse`` (Hofstätter et al. 2020) or ``infonce`` (Karpukhin et al. 2020); the formulas are in
docs/training.md and tests/test_train_losses.py checks each against sentence-transformers. The λ's rise
quadratically over ``flops_warmup``, as SPLADE's training did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOSSES = ("kl", "marginmse", "infonce")
WARMUP_SCHEDULES = ("quadratic", "linear")


@dataclass
class LossConfig:
    loss: str = field(default="kl", metadata={"help": f"one of {LOSSES}"})
    temperature: float = field(default=1.0, metadata={"help": "τ of the KL loss (teacher and student) or of InfoNCE"})
    flops_query: float = field(default=1e-4, metadata={"help": "λ_q, FLOPS weight on queries"})
    flops_doc: float = field(default=1e-4, metadata={"help": "λ_d, FLOPS weight on documents"})
    flops_warmup: float = field(default=1 / 3, metadata={"help": "fraction of the steps over which λ rises from 0"})
    flops_schedule: str = field(default="quadratic", metadata={"help": f"λ warm-up shape: {WARMUP_SCHEDULES}"})

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        for name in ("flops_query", "flops_doc"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.flops_warmup <= 1:
            raise ValueError(f"flops_warmup must be in [0, 1], got {self.flops_warmup}")
        if self.flops_schedule not in WARMUP_SCHEDULES:
            raise ValueError(f"flops_schedule must be one of {WARMUP_SCHEDULES}, got {self.flops_schedule!r}")

    @property
    def needs_scores(self) -> bool:
        return self.loss in ("kl", "marginmse")


def main_loss(model, cfg: LossConfig):
    """The ranking loss alone (sentence-transformers' sparse losses, dot-product similarity)."""
    from sentence_transformers.sparse_encoder import losses

    if cfg.loss == "kl":
        return losses.SparseDistillKLDivLoss(model, temperature=cfg.temperature)
    if cfg.loss == "marginmse":
        return losses.SparseMarginMSELoss(model)
    return losses.SparseMultipleNegativesRankingLoss(model, scale=1.0 / cfg.temperature)


def build_loss(model, cfg: LossConfig):
    """``(SpladeLoss, callbacks)``: the main loss plus FLOPS on queries and documents, and the λ warm-up."""
    from sentence_transformers.sparse_encoder import losses
    from sentence_transformers.sparse_encoder.callbacks.splade_callbacks import SpladeRegularizerWeightSchedulerCallback

    from .st_module import L0Flops

    # FlopsLoss as sentence-transformers computes it, recording the batch's ℓ0 for the progress bar.
    loss = losses.SpladeLoss(model, main_loss(model, cfg), document_regularizer_weight=cfg.flops_doc,
                             query_regularizer_weight=cfg.flops_query, document_regularizer=L0Flops(model),
                             query_regularizer=L0Flops(model))
    callbacks = []
    if cfg.flops_warmup > 0:
        callbacks.append(SpladeRegularizerWeightSchedulerCallback(loss, scheduler_type=cfg.flops_schedule,
                                                                  warmup_ratio=cfg.flops_warmup))
    return loss, callbacks
