"""Decoding with QE: generators that record what fairseq's search computes, force-decoding, the
Monte-Carlo methods, the one search+QE loop, and fairseq-generate's QE printer."""
