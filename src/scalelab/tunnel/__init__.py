"""The wind tunnel: train grids of tiny GPTs with PyTorch, store every run, prove forecasts."""
