"""p2pview: explore Linux PCIe peer-to-peer DMA decisions and data paths."""

__version__ = "0.1.0"
