#!/usr/bin/env bash
# The paper's Transformer Base experiment, from nothing to its Table 2/3/6 layout:
# ParaCrawl en-de (fetched) -> Transformer Base (fairseq's transformer_wmt_en_de) -> sigmoid
# head with the best sampler (softmax T2 + token-freq + avoid-dominant) and the six other
# samplers of Table 6 -> beam search and the authors' sampling with --print-qe on the
# ParaCrawl test split and WMT22 (Eval Self), force-decoding WMT22 system outputs (Eval
# Other) -> XCOMET-XL gold and CometKiwi (comet-score), human scores -> the table.
#
#   WORK=work bash run.sh                      # GPU recipe (fetches what it needs)
#   RAW_DIR=raw WORK=work bash run.sh          # offline: text from RAW_DIR (README)
#   bash run.sh --smoke                        # the same steps, tiny, on CPU, stand-ins (CI)
#
# Knobs (environment): PYTHON (the interpreter with fairseq and this plugin), PAIRS (ParaCrawl
# training pairs, default 5000000), TABLE6 (1: train the six other samplers' heads, default 1),
# EVAL_OTHER (1: Eval Other, default 1), COMET_SCORE (path of comet-score), COMET_ARGS,
# DOWNLOADS (default WORK/downloads). Existing outputs are kept: a re-run continues.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
PLUGIN=$repo/fairseq_sigmoid_qe
PYTHON=${PYTHON:-python}
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1

if [[ $SMOKE == 1 ]]; then
  WORK=${WORK:-$(mktemp -d -t transformer_base_smoke.XXXXXX)}
  mkdir -p "$WORK"
  if [[ ! -f "$WORK/smoke-downloads/sources.json" ]]; then
    "$PYTHON" "$repo/examples/common/smoke_downloads.py" "$WORK/smoke-downloads" \
      --corpus "${L10N_EN_DE_DIR:-$repo/../shared/data/l10n-en-de}"
  fi
  export PAPER_SOURCES=$WORK/smoke-downloads/sources.json
  DATA=(--pairs 2000 --valid-pairs 100 --test-pairs 60)
  SPM=(--vocab 500)
  MODEL=(--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 --decoder-embed-dim 32
         --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64
         --encoder-attention-heads 2 --decoder-attention-heads 2)
  DEVICE=(--cpu --num-workers 0)
  HEAD_DEVICE=("${DEVICE[@]}")
  BASE=(--max-tokens 2000 --max-update 40 --warmup-updates 10 --lr 0.003)
  HEAD=(--max-tokens 2000 --max-update 10)
  GENERATE=(--max-tokens 2000 --max-len-b 30 --required-batch-size-multiple 1)
  WORKERS=1
  TABLE6=${TABLE6:-0}
else
  WORK=${WORK:-$here/work}
  DATA=(--pairs "${PAIRS:-5000000}")
  SPM=(--vocab 32000 --sample 2000000)
  MODEL=()
  DEVICE=(--fp16 --num-workers 4)
  # the head: --amp (--fp16 would cast the frozen base to float16) and legacy DDP (PyTorch DDP
  # would not average its gradients over GPUs); both refused otherwise, in one line
  HEAD_DEVICE=(--amp --ddp-backend legacy_ddp --num-workers 4)
  # transformer_wmt_en_de base settings (Vaswani et al. 2017, fairseq's scaling recipe):
  # ~25k target tokens per update on one GPU via --update-freq 8.
  BASE=(--max-tokens 4096 --update-freq 8 --max-update 100000 --warmup-updates 4000 --lr 7e-4)
  HEAD=(--max-tokens 4096 --update-freq 8 --max-update 10000)
  GENERATE=(--max-tokens 8000 --required-batch-size-multiple 1)
  WORKERS=16
  TABLE6=${TABLE6:-1}
fi
BEAM=5
BIN=$WORK/data-bin
mkdir -p "$WORK"
source "$repo/examples/common/paper_steps.sh"
fairseq() { "$PYTHON" -m "fairseq_cli.$1" "${@:2}"; }

step "0. data: ParaCrawl en-de, WMT22 en-de, WMT22 human scores (fetched or from RAW_DIR)"
paper_data

step "1. sentencepiece (joint) and fairseq-preprocess"
if [[ ! -f "$WORK/text/spm.model" ]]; then
  "$PYTHON" "$COMMON/paper_data.py" spm "$WORK/raw" "$WORK/text/spm" "${SPM[@]}"
fi
if [[ ! -f "$WORK/text/.done" ]]; then
  "$PYTHON" "$COMMON/paper_data.py" encode "$WORK/text/spm.model" "$WORK/raw" "$WORK/text" \
    train valid "${SETS[@]}"
  touch "$WORK/text/.done"
fi
if [[ ! -f "$BIN/dict.de.txt" ]]; then
  fairseq preprocess --source-lang en --target-lang de --joined-dictionary \
    --trainpref "$WORK/text/train" --validpref "$WORK/text/valid" \
    --testpref "$(testprefs "$WORK/text")" --destdir "$BIN" --workers "$WORKERS"
fi

step "2. Transformer Base"
fairseq train "$BIN" --user-dir "$PLUGIN" --arch transformer_wmt_en_de \
  --share-all-embeddings "${MODEL[@]}" \
  --optimizer adam --adam-betas "(0.9,0.98)" --clip-norm 0.0 --lr-scheduler inverse_sqrt \
  --warmup-init-lr 1e-07 --dropout 0.1 --weight-decay 0.0 \
  --criterion label_smoothed_cross_entropy --label-smoothing 0.1 "${BASE[@]}" "${DEVICE[@]}" \
  --seed 1 --save-dir "$WORK/base" --no-epoch-checkpoints --log-format simple --log-interval 100

train_head() {  # train_head SAVE_DIR SAMPLER_FLAGS...
  fairseq train "$BIN" --user-dir "$PLUGIN" --arch sigmoid_head_transformer \
    --base-checkpoint "$WORK/base/checkpoint_best.pt" --criterion nce_dominant --num-negatives 10 \
    "${@:2}" --optimizer adam --lr 0.001 "${HEAD[@]}" "${HEAD_DEVICE[@]}" --seed 1 --save-dir "$1" \
    --no-epoch-checkpoints --log-format simple --log-interval 100
}
step "3. sigmoid head: softmax T2 + token-freq + avoid-dominant, k = 10"
train_head "$WORK/head" --negative-sampler token_freq+softmax --sampling-temperature 2 \
  --avoid-dominant
if [[ $TABLE6 == 1 ]]; then
  for entry in "${GRID_HEADS[@]}"; do
    step "3b. Table 6 head: ${entry%%|*}"
    # shellcheck disable=SC2086  # the sampler flags are words
    train_head "$WORK/grid/${entry%%|*}" ${entry#*|}
  done
fi

step "4-6. decodings with QE, gold (comet-score: ${COMET:-none}), evaluations"
eval_all "$WORK/head/checkpoint_last.pt" "$([[ $TABLE6 == 1 ]] && echo "$WORK/grid")"
paper_table transformer_base
echo "outputs in $WORK (results.md)"
