"""Training shared by both families.

Read in this order: `settings` (`RunSettings`: everything a run reads, resolved by the
config), `loop` (the nanoGPT-like loop and its schedule), `lifecycle` (`TrainingRun`: one run
from start to finish, for both families), `checkpoints` (save, verify, resume), `lm`
(grammar runs: `train_lm`), `prompted` (Nim runs: `train_prompt_completion`), and their
inputs: `mixing` (the packed token stream), `encoding` (prompt/completion and document
examples, padding), `anchor` (L2-SP).
"""
