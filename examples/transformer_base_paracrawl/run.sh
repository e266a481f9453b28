#!/usr/bin/env bash
# The paper's Transformer Base experiment: ParaCrawl en-de -> Transformer Base (fairseq's
# transformer_wmt_en_de) -> sigmoid head with the best sampler (softmax T2 + token-freq +
# avoid-dominant) -> beam search with --print-qe on the test set -> Pearson vs chrF.
#
#   RAW_DIR=paracrawl WORK=work bash run.sh          # GPU recipe
#   bash run.sh --smoke                              # the same steps, tiny, on CPU (CI)
#
# RAW_DIR holds plain text {train,valid,test}.{en,de}: train = ParaCrawl en-de (the paper
# uses 5M pairs), test = WMT22 en-de (newstest2022 source and reference). PYTHON: the
# interpreter with fairseq and this plugin (default: python). Existing outputs are kept:
# a re-run continues (training resumes from checkpoint_last.pt).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
plugin=$repo/fairseq_sigmoid_qe
PYTHON=${PYTHON:-python}
smoke=0
[[ "${1:-}" == "--smoke" ]] && smoke=1

if [[ $smoke == 1 ]]; then
  corpus=${L10N_EN_DE_DIR:-$repo/../shared/data/l10n-en-de}
  WORK=${WORK:-$(mktemp -d -t transformer_base_smoke.XXXXXX)}
  PREPARE=(--corpus "$corpus" --train-pairs 2000 --valid-pairs 100 --test-pairs 60
           --spm-vocab 500)
  MODEL=(--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32
         --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64
         --encoder-attention-heads 2 --decoder-attention-heads 2)
  DEVICE=(--cpu --num-workers 0)
  BASE=(--max-tokens 2000 --max-update 40 --warmup-updates 10 --lr 0.003)
  HEAD=(--max-tokens 2000 --max-update 10)
  GENERATE=(--max-tokens 2000 --cpu --required-batch-size-multiple 1)
  WORKERS=1
else
  : "${RAW_DIR:?set RAW_DIR to a directory of {train,valid,test}.{en,de}}"
  WORK=${WORK:-$here/work}
  PREPARE=(--corpus "$RAW_DIR" --spm-vocab 32000 --spm-sample 2000000)
  MODEL=()
  DEVICE=(--fp16 --num-workers 4)
  # transformer_wmt_en_de base settings (Vaswani et al. 2017, fairseq's scaling recipe):
  # ~25k target tokens per update on one GPU via --update-freq 8.
  BASE=(--max-tokens 4096 --update-freq 8 --max-update 100000 --warmup-updates 4000 --lr 7e-4)
  HEAD=(--max-tokens 4096 --update-freq 8 --max-update 10000)
  GENERATE=(--max-tokens 8000 --required-batch-size-multiple 1)
  WORKERS=16
fi
mkdir -p "$WORK"
fairseq() { "$PYTHON" -m "fairseq_cli.$1" "${@:2}"; }

echo "== 1. sentencepiece (joint) and fairseq-preprocess"
if [[ ! -f "$WORK/text/test.de" ]]; then
  "$PYTHON" -m fairseq_sigmoid_qe.cli.prepare_data "${PREPARE[@]}" --out "$WORK/text"
fi
if [[ ! -f "$WORK/data-bin/dict.de.txt" ]]; then
  fairseq preprocess --source-lang en --target-lang de --joined-dictionary \
    --trainpref "$WORK/text/train" --validpref "$WORK/text/valid" --testpref "$WORK/text/test" \
    --destdir "$WORK/data-bin" --workers "$WORKERS"
fi

echo "== 2. Transformer Base"
fairseq train "$WORK/data-bin" --user-dir "$plugin" --arch transformer_wmt_en_de \
  --share-all-embeddings "${MODEL[@]}" \
  --optimizer adam --adam-betas "(0.9,0.98)" --clip-norm 0.0 --lr-scheduler inverse_sqrt \
  --warmup-init-lr 1e-07 --dropout 0.1 --weight-decay 0.0 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 "${BASE[@]}" "${DEVICE[@]}" \
  --seed 1 --save-dir "$WORK/base" --no-epoch-checkpoints --log-format simple --log-interval 100

echo "== 3. sigmoid head: softmax T2 + token-freq + avoid-dominant, k = 10"
fairseq train "$WORK/data-bin" --user-dir "$plugin" --arch sigmoid_head_transformer \
  --base-checkpoint "$WORK/base/checkpoint_best.pt" --criterion nce_dominant --num-negatives 10 \
  --negative-sampler token_freq+softmax --sampling-temperature 2 --avoid-dominant \
  --optimizer adam --lr 0.001 "${HEAD[@]}" "${DEVICE[@]}" --seed 1 --save-dir "$WORK/head" \
  --no-epoch-checkpoints --log-format simple --log-interval 100

echo "== 4. beam search with token, word and sentence QE"
if [[ ! -f "$WORK/qe.jsonl" ]]; then
  fairseq generate "$WORK/data-bin" --user-dir "$plugin" --path "$WORK/head/checkpoint_last.pt" \
    --gen-subset test --beam 5 --post-process sentencepiece --print-qe \
    --qe-output "$WORK/qe.part.jsonl" "${GENERATE[@]}" > "$WORK/generate.part.txt"
  mv "$WORK/generate.part.txt" "$WORK/generate.txt"
  mv "$WORK/qe.part.jsonl" "$WORK/qe.jsonl"
fi
grep "^BLEU" "$WORK/generate.txt" || true

echo "== 5. Pearson / Spearman / Kendall / PRR against sentence chrF"
"$PYTHON" -m fairseq_sigmoid_qe.cli.evaluate --qe "$WORK/qe.jsonl" \
  --references "$WORK/text/test.raw.de" | tee "$WORK/eval.txt"
echo "outputs in $WORK"
