"""`minigpt finetune`: the one training loop (train/loop.py) started from pretrained weights
(a minigpt checkpoint or a Hugging Face GPT-2 folder), with fine-tuning defaults, frozen blocks
or LoRA adapters."""
