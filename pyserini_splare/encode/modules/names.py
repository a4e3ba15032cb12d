"""The allowed values of the modules' settings, importable without torch (CLI choices, config schemas)."""

ATTENTION_MODES = ("causal", "bidirectional")  # trunk.Trunk
SAE_FORMATS = ("auto", "llama_scope", "llamascopium", "sae_lens", "plain")  # sae.load_sae
ACTIVATIONS = ("jumprelu", "topk", "relu")  # sae.SAE
