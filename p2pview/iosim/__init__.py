"""Layer 4: the O_DIRECT data-path simulator (GUP, bio merge, map_sg, DMA mapping).

It steps one I/O through the kernel's stages as a sequence of events; it may
import the model, the sources and the kernel decision engine, never a face.
"""
