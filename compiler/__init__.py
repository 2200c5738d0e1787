"""The compiler: from a point of a space to a real PyTorch model, and back out as plain PyTorch.

- `arch`: the Arch, a networkx graph of block instances with types, spans and paths.
- `decode`: decode(space, point) → Arch, inferring shapes before any weight exists.
- `cost`: parameters, FLOPs and activation memory from the Arch, without weights.
- `lower`: Arch → torch.fx GraphModule, built with the Graph API; `passes`: graph passes.
- `export`: a GraphModule as a torch-only model.py + safetensors weights, or a .pt2 program
  (`export_code` writes model.py, `export_modules` its constructors, `export_sources` its names).
"""
