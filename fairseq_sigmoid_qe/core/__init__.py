"""The fairseq-free core: the dominant-token rule, negative samplers, words, the QE methods' math,
the user's files and errors, progress lines. Nothing here imports fairseq."""
