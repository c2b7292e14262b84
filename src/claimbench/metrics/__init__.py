"""Measurement libraries (spectral, sparsity, collapse, example scores), one module per concern."""
