"""Hugging Face GPT-2 interop, both ways.

`load_hf` / `read_hf` / `import_hf` read a transformers GPT-2 folder (config.json +
model.safetensors, GPT2LMHeadModel or GPT2Model/OpenAI layout, sharded or not); `export_hf`
writes ours as a folder `transformers.GPT2LMHeadModel.from_pretrained` loads. Both sides use
OpenAI's parameter names; only the four Conv1D matrices are transposed.
"""

from minigpt_cli.hf.export import check_output_folder, export_hf, write_folder
from minigpt_cli.hf.read import HfModel, import_hf, load_hf, read_hf

__all__ = ["HfModel", "check_output_folder", "export_hf", "import_hf", "load_hf", "read_hf",
           "write_folder"]
