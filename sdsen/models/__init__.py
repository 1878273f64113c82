"""DSEN / SDSEN networks (``sdsen.models``): config, official weights, summary, tiled inference,
export (plain PyTorch, ONNX) and inference engines."""

from .config import ModelConfig
from .engines import available_engines, make_engine
from .export import export_onnx, to_plain
from .inference import default_overlap, derain_image
from .networks import DSEN, SDSEN, build_model, check_image_batch
from .official import export_official, load_official, official_config
from .summary import ModelSummary, receptive_field, summary
from .symmetrize import equivariant_decoder_state, to_equivariant_decoder

__all__ = [
    "DSEN",
    "SDSEN",
    "ModelConfig",
    "ModelSummary",
    "available_engines",
    "build_model",
    "check_image_batch",
    "default_overlap",
    "derain_image",
    "equivariant_decoder_state",
    "export_official",
    "export_onnx",
    "load_official",
    "make_engine",
    "official_config",
    "receptive_field",
    "summary",
    "to_equivariant_decoder",
    "to_plain",
]
