#!/usr/bin/env bash
# DeltaLM-base fine-tuned on ParaCrawl en-de, a sigmoid QE head on top, then the paper's
# Table 2/3/6 layout: the data and the official pretrained release fetched (or read), the
# release checked by the plugin's loader, fine-tuning, the head (and the six other samplers
# of Table 6), beam and sampling Eval Self, Eval Other, XCOMET-XL gold and CometKiwi.
#
#   WORK=work bash run.sh                                  # GPU recipe (fetches what it needs)
#   RAW_DIR=raw DELTALM_DIR=deltalm WORK=work bash run.sh  # offline: files given (README)
#   bash run.sh --smoke                                    # same steps, tiny, on CPU, stand-ins
#
# Knobs (environment): PYTHON, DELTALM_DIR (the release's spm.model, dict.txt, deltalm-base.pt;
# fetched into WORK/deltalm when absent), PAIRS (default 5000000), FT_MAX_EPOCH (default 100,
# the official recipe's; the cost is in README.md), TABLE6 (default 1), EVAL_OTHER (default 1),
# COMET_SCORE, COMET_ARGS, DOWNLOADS. Existing outputs are kept: a re-run continues.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PLUGIN="$REPO/fairseq_sigmoid_qe"
PYTHON="${PYTHON:-python}"
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1

if [[ $SMOKE == 1 ]]; then
  WORK="${WORK:-$(mktemp -d -t deltalm_smoke.XXXXXX)}"
  if [[ -e "$WORK/smoke-release" ]]; then echo "--smoke: $WORK is not fresh; unset WORK" >&2; exit 1; fi
  "$PYTHON" "$HERE/recipe_tools.py" smoke-release "$WORK/smoke-release"
  "$PYTHON" "$REPO/examples/common/smoke_downloads.py" "$WORK/smoke-downloads" \
    --corpus "${L10N_EN_DE_DIR:-$REPO/../shared/data/l10n-en-de}" --deltalm "$WORK/smoke-release"
  export PAPER_SOURCES="$WORK/smoke-downloads/sources.json"
  DATA=(--pairs 300 --valid-pairs 40 --test-pairs 12)
  CHECK=(--tiny)
  # Tiny dimensions: must match recipe_tools.py (deltalm_fixtures.TINY_OPTIONS).
  MODEL=(--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32
         --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64
         --encoder-attention-heads 2 --decoder-attention-heads 2)
  DEVICE=(--cpu --num-workers 0)
  HEAD_DEVICE=("${DEVICE[@]}")
  FINETUNE=(--max-tokens 1000 --max-update 6 --warmup-updates 2 --lr 1e-3)
  HEAD=(--max-tokens 1000 --max-update 4 --lr 1e-3)
  GENERATE=(--batch-size 8 --max-len-b 20 --required-batch-size-multiple 1)
  BEAM=2
  WORKERS=1
  TABLE6="${TABLE6:-0}"
else
  WORK="${WORK:-$HERE/work}"
  DATA=(--pairs "${PAIRS:-5000000}")
  CHECK=()
  MODEL=()
  DEVICE=(--fp16 --num-workers 4)
  # the head: --amp (--fp16 would cast the frozen base to float16) and legacy DDP (PyTorch DDP
  # would not average its gradients over GPUs); both refused otherwise, in one line
  HEAD_DEVICE=(--amp --ddp-backend legacy_ddp --num-workers 4)
  # DeltaLM's fine-tuning recipe: ~4096 x 128 tokens per update (here 8 GPUs x 4096 x 16).
  FINETUNE=(--max-tokens 4096 --update-freq 16 --max-update 400000
            --max-epoch "${FT_MAX_EPOCH:-100}" --warmup-updates 4000 --lr 1e-4)
  HEAD=(--max-tokens 4096 --max-update 20000 --lr 1e-3)
  GENERATE=(--batch-size 64 --required-batch-size-multiple 1)
  BEAM=5
  WORKERS=16
  TABLE6="${TABLE6:-1}"
fi
DELTALM_DIR="${DELTALM_DIR:-$WORK/deltalm}"
HEAD_CHECKPOINT=checkpoint_best.pt
TEXT="$WORK/spm"; BIN="$WORK/data-bin"; FT="$WORK/deltalm_ft"; QE="$WORK/sigmoid_head"
mkdir -p "$WORK"
source "$REPO/examples/common/paper_steps.sh"

step "0. data: ParaCrawl en-de, WMT22 en-de, WMT22 human scores (fetched or from RAW_DIR)"
paper_data
if [[ ! -f "$FT/checkpoint_best.pt" ]]; then
  step "0b. the official DeltaLM-base release (fetched into $DELTALM_DIR when absent), checked"
  "$PYTHON" "$COMMON/paper_data.py" deltalm --out "$DELTALM_DIR" \
    ${PAPER_SOURCES:+--sources "$PAPER_SOURCES"}
  "$PYTHON" "$HERE/recipe_tools.py" check "$DELTALM_DIR" "${CHECK[@]}"
fi

step "1. sentencepiece with DeltaLM's spm.model"
if [[ ! -f "$TEXT/.done" ]]; then
  "$PYTHON" "$COMMON/paper_data.py" encode "$DELTALM_DIR/spm.model" "$WORK/raw" "$TEXT" \
    train valid "${SETS[@]}"
  touch "$TEXT/.done"
fi

step "2. binarize with DeltaLM's dict.txt (one vocabulary for both languages)"
if [[ ! -f "$BIN/dict.de.txt" ]]; then
  "$PYTHON" -m fairseq_cli.preprocess --source-lang en --target-lang de \
    --trainpref "$TEXT/train" --validpref "$TEXT/valid" --testpref "$(testprefs "$TEXT")" \
    --srcdict "$DELTALM_DIR/dict.txt" --tgtdict "$DELTALM_DIR/dict.txt" \
    --destdir "$BIN" --workers "$WORKERS"
fi

step "3. fine-tune deltalm_base from the pretrained weights"
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

train_head() {  # train_head SAVE_DIR SAMPLER_FLAGS...
  "$PYTHON" -m fairseq_cli.train "$BIN" --user-dir "$PLUGIN" \
    --arch sigmoid_head_transformer --base-checkpoint "$FT/checkpoint_best.pt" \
    --criterion nce_dominant "${@:2}" \
    --optimizer adam "${HEAD[@]}" "${HEAD_DEVICE[@]}" --seed 1 --save-dir "$1" \
    --no-epoch-checkpoints --skip-invalid-size-inputs-valid-test \
    --log-format simple --log-interval 100
}
step "4. sigmoid QE head on the frozen fine-tuned model"
train_head "$QE" --negative-sampler token_freq+softmax --sampling-temperature 2
if [[ $TABLE6 == 1 ]]; then
  for entry in "${GRID_HEADS[@]}"; do
    step "4b. Table 6 head: ${entry%%|*}"
    # shellcheck disable=SC2086  # the sampler flags are words
    train_head "$WORK/grid/${entry%%|*}" ${entry#*|}
  done
fi

step "5-7. decodings with QE, gold (comet-score: ${COMET:-none}), evaluations"
eval_all "$QE/$HEAD_CHECKPOINT" "$([[ $TABLE6 == 1 ]] && echo "$WORK/grid")"
paper_table deltalm
echo "done: $WORK/results.md"
