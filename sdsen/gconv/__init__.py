"""Exact, GrouPy-compatible p4 / p4m group convolutions (``sdsen.gconv``).

Feature maps on a group carry an extra axis: ``(B, C, G, H, W)`` with G = 4 (p4) or 8 (p4m).
"""

from .filters import expand_filters, transform_filters
from .groups import P4, P4M, Z2, Group, act_on_group_maps, act_on_plane, get_group
from .layers import GroupConv2d, P4ConvP4, P4ConvZ2, P4MConvP4M, P4MConvZ2
from .pooling import group_max_pool2d, group_pool, plane_group_spatial_max_pooling

__all__ = [
    "P4",
    "P4M",
    "Z2",
    "Group",
    "GroupConv2d",
    "P4ConvP4",
    "P4ConvZ2",
    "P4MConvP4M",
    "P4MConvZ2",
    "act_on_group_maps",
    "act_on_plane",
    "expand_filters",
    "get_group",
    "group_max_pool2d",
    "group_pool",
    "plane_group_spatial_max_pooling",
    "transform_filters",
]
