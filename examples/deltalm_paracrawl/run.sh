#!/usr/bin/env bash
# DeltaLM-base fine-tuned on ParaCrawl en-de, then a sigmoid QE head on top, then QE at decoding.
#
#   RAW_DIR=paracrawl DELTALM_DIR=deltalm WORK=work bash run.sh      # GPU recipe
#   bash run.sh --smoke                                              # same steps, tiny, on CPU
#
# RAW_DIR: {train,valid,test}.{en,de} plain text. DELTALM_DIR: the official release files
# spm.model, dict.txt and deltalm-base.pt (see README.md). PYTHON: the interpreter with
# fairseq and this plugin (default: python).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PLUGIN="$(cd "$HERE/../.." && pwd)/fairseq_sigmoid_qe"
PYTHON="${PYTHON:-python}"
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1

if [[ $SMOKE == 1 ]]; then
  WORK="${WORK:-$(mktemp -d -t deltalm_smoke.XXXXXX)}"
  if [[ -e "$WORK/inputs" ]]; then echo "--smoke: $WORK is not fresh; unset WORK" >&2; exit 1; fi
  "$PYTHON" "$HERE/recipe_tools.py" smoke-inputs "$WORK/inputs"
  RAW_DIR="$WORK/inputs/raw"
  DELTALM_DIR="$WORK/inputs/deltalm"
  # Tiny dimensions: must match recipe_tools.py (deltalm_fixtures.TINY_OPTIONS).
  MODEL=(--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32
         --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64
         --encoder-attention-heads 2 --decoder-attention-heads 2)
  DEVICE=(--cpu --num-workers 0)
  FINETUNE=(--max-tokens 1000 --max-update 6 --warmup-updates 2 --lr 1e-3)
  HEAD=(--max-tokens 1000 --max-update 4 --lr 1e-3)
  GENERATE=(--batch-size 8 --beam 2 --max-len-b 20 --required-batch-size-multiple 1)
else
  : "${RAW_DIR:?set RAW_DIR to the ParaCrawl en-de text}" "${DELTALM_DIR:?set DELTALM_DIR}"
  WORK="${WORK:-$HERE/work}"
  MODEL=()
  DEVICE=(--fp16 --num-workers 4)
  # DeltaLM's fine-tuning recipe: ~4096 x 128 tokens per update (here 8 GPUs x 4096 x 16).
  FINETUNE=(--max-tokens 4096 --update-freq 16 --max-update 400000 --max-epoch 100
            --warmup-updates 4000 --lr 1e-4)
  HEAD=(--max-tokens 4096 --max-update 20000 --lr 1e-3)
  GENERATE=(--batch-size 64 --beam 5 --required-batch-size-multiple 1)
fi
TEXT="$WORK/spm"; BIN="$WORK/data-bin"; FT="$WORK/deltalm_ft"; QE="$WORK/sigmoid_head"
mkdir -p "$WORK"

echo "== 1. sentencepiece with DeltaLM's spm.model"
"$PYTHON" "$HERE/recipe_tools.py" encode "$DELTALM_DIR/spm.model" "$RAW_DIR" "$TEXT"

echo "== 2. binarize with DeltaLM's dict.txt (one vocabulary for both languages)"
"$PYTHON" -m fairseq_cli.preprocess --source-lang en --target-lang de \
  --trainpref "$TEXT/train" --validpref "$TEXT/valid" --testpref "$TEXT/test" \
  --srcdict "$DELTALM_DIR/dict.txt" --tgtdict "$DELTALM_DIR/dict.txt" \
  --destdir "$BIN" --workers "$([[ $SMOKE == 1 ]] && echo 1 || echo 16)"

echo "== 3. fine-tune deltalm_base from the pretrained weights"
"$PYTHON" -m fairseq_cli.train "$BIN" --user-dir "$PLUGIN" --task translation \
  --arch deltalm_base "${MODEL[@]}" \
  --pretrained-deltalm-checkpoint "$DELTALM_DIR/deltalm-base.pt" \
  --max-source-positions 512 --max-target-positions 512 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
  --optimizer adam --adam-betas '(0.9, 0.98)' --lr-scheduler inverse_sqrt \
  --warmup-init-lr 1e-07 --stop-min-lr 1e-09 --dropout 0.1 --weight-decay 0.0 \
  --eval-bleu --eval-bleu-args '{"beam": 5, "max_len_a": 1.2, "max_len_b": 10}' \
  --eval-bleu-detok space --eval-bleu-remove-bpe sentencepiece \
  --best-checkpoint-metric bleu --maximize-best-checkpoint-metric \
  "${FINETUNE[@]}" "${DEVICE[@]}" --seed 1 --save-dir "$FT" --no-epoch-checkpoints \
  --skip-invalid-size-inputs-valid-test --log-format simple --log-interval 100

if [[ $SMOKE == 1 ]]; then
  # The fine-tuned checkpoint must not need the pretrained file any more: prove it.
  rm "$DELTALM_DIR/deltalm-base.pt"
fi

echo "== 4. sigmoid QE head on the frozen fine-tuned model"
"$PYTHON" -m fairseq_cli.train "$BIN" --user-dir "$PLUGIN" \
  --arch sigmoid_head_transformer --base-checkpoint "$FT/checkpoint_best.pt" \
  --criterion nce_dominant --negative-sampler token_freq+softmax --sampling-temperature 2 \
  --optimizer adam "${HEAD[@]}" "${DEVICE[@]}" --seed 1 --save-dir "$QE" \
  --no-epoch-checkpoints --skip-invalid-size-inputs-valid-test \
  --log-format simple --log-interval 100

echo "== 5. translate the test set with token, word and sentence QE"
if [[ ! -f "$WORK/qe.jsonl" ]]; then  # an existing result is kept, never overwritten
  "$PYTHON" -m fairseq_cli.generate "$BIN" --user-dir "$PLUGIN" --path "$QE/checkpoint_best.pt" \
    --gen-subset test "${GENERATE[@]}" "${DEVICE[@]}" --post-process sentencepiece \
    --print-qe --qe-output "$WORK/qe.part.jsonl" > "$WORK/generate.part.out"
  mv "$WORK/generate.part.out" "$WORK/generate.out"
  mv "$WORK/qe.part.jsonl" "$WORK/qe.jsonl"
fi
grep -c '^Q-' "$WORK/generate.out" | sed 's/^/QE lines: /'
echo "done: $WORK/generate.out, $WORK/qe.jsonl"
