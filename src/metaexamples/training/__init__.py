"""Training shared by both families.

Read in this order: `loop` (the nanoGPT-like loop and its schedule), `checkpoints`
(save, verify, resume), `lm` (grammar runs: `train_lm`), `prompted` (Nim runs:
`train_prompt_completion`), and their inputs: `mixing` (the packed token stream),
`encoding` (prompt/completion and document examples, padding), `anchor` (L2-SP),
`run_files` (what both entries read and write around the loop).
"""
