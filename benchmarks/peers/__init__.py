"""Independent implementations that the benchmarks compare jaxviz with (plain PyTorch, no torchvision)."""
