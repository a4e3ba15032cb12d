"""Training losses: sentence-transformers' sparse losses, configured with the SPLARE recipe's defaults.

Every loss is ``SpladeLoss(main, λ_d, λ_q)``, i.e. ``L = L_main + λ_q·FLOPS(Q) + λ_d·FLOPS(D)`` where, for a
batch of vectors ``v_1..v_N`` (Paria et al. 2020, "Minimizing FLOPs to learn efficient sparse
representations"; SPLADE, Formal et al. 2021)::

    FLOPS(V) = Σ_j ( (1/N) Σ_i v_ij )²          (D = positives and negatives of the batch together)

and ``L_main`` is one of (s(q, d) = q·d, the dot product the indexes score with):

* ``kl``: distillation from teacher scores t (Hinton et al. 2015; as in SPLADE++/SPLARE), with temperature τ::

      L = τ² · (1/B) Σ_b KL( softmax(t_b / τ) || softmax(s_b / τ) )     over (pos, neg_1..neg_n)

* ``marginmse``: MarginMSE (Hofstätter et al. 2020)::

      L = mean_{b,k} ( (s(q,p) - s(q,n_k)) - (t_p - t_{n_k}) )²

* ``infonce``: contrastive with in-batch and given negatives (Karpukhin et al. 2020; van den Oord et al. 2018),
  scale = 1/τ::

      L = -(1/B) Σ_b log( exp(s(q_b, p_b)/τ) / Σ_{d ∈ all positives and negatives of the batch} exp(s(q_b, d)/τ) )

The λ's rise from 0 to their values over the first ``flops_warmup`` of the steps, quadratically, as
SPLADE's training did (sentence-transformers' ``SpladeRegularizerWeightSchedulerCallback``).

The implementations are sentence-transformers' own (``SparseDistillKLDivLoss``, ``SparseMarginMSELoss``,
``SparseMultipleNegativesRankingLoss``, ``FlopsLoss`` inside ``SpladeLoss``); this module only chooses and
configures them. tests/test_train_losses.py checks every formula above against them.
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
