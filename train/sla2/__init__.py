"""SLA2 (sparse-linear attention with a learnable router and QAT) in PyTorch:
the operator of ARCHITECTURE.md section 2 and its fake-quantisation."""
from .attention import (FEATURE_MAPS, QUANT_MODES, SLA2Attention, kept_blocks,
                        num_blocks, sla2_attention, sla2_attention_details)
from . import quant

__all__ = ["FEATURE_MAPS", "QUANT_MODES", "SLA2Attention", "kept_blocks",
           "num_blocks", "sla2_attention", "sla2_attention_details", "quant"]
