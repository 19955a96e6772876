"""The one training loop (pretrain and finetune alike) and its parts.

settings  TrainSettings / PretrainSettings (flag > --config TOML > env > default)
loader    the window stream over memory-mapped token arrays, its position resumable
schedule  learning-rate schedules (warmup + cosine / constant / warmup-stable-decay)
optim     AdamW parameter groups (decay on >= 2-D weights only)
guard     the instability guard (non-finite skip, spike rollback)
state     the trainer state (TrainerState) and RNG capture/restore
step_folder  checkpoint folders step_NNNNNN/ (safetensors + JSON, no pickle)
checkpointer saves/restores the loop's parts; the one resume check
setup     one run set-up for pretrain and finetune
loop      THE loop: knows nothing about the CLI, emits events
pretrain  builds a run from PretrainSettings and hands it to the loop
dry_run   --dry-run: parameters, FLOPs, memory, measured tokens/s, ETA; --micro-batch auto
"""
