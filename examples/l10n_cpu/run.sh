#!/usr/bin/env bash
# The paper's Transformer experiment at CPU scale on ../shared/data/l10n-en-de, round 3 (the
# QE-quality issue): base Transformer -> sigmoid heads -> QE of the base's own translations
# (Eval Self) and of another system's (Eval Other: the base's 1000-update checkpoint), each
# decoded two ways: beam search (beam 5) and sampling as the authors' Eval Self (top-p 0.95,
# temperature 1, seed 1), force-decoded with every head (--score-reference --print-qe), against
#   - sentence chrF of the one reference (valid: for choosing; test: reported once);
#   - multi-reference chrF on ../shared/data/l10n-en-de-multiref (mrdev: even lines, for
#     choosing; mrtest: odd lines, reported once; sources of >= 4 words).
# Heads: dense Adam to a stopping rule (best dev NCE loss, at most 3 epochs), its dominant-cut
# / de-duplication variants, the 2-parameter logit_affine head, the authors' regime (sparse Adam
# 1e-4, cosine), a head trained on pairs the base never saw (heldout) and one on as many of its
# own (ownslice), the chosen head with 3 seeds; the unsupervised baselines (entropy, MC dropout).
# Every step is skipped when its output exists; training resumes from checkpoint_last.pt, so an
# interrupted run is simply run again. The work directory lives outside the clone.
#
# Usage: bash examples/l10n_cpu/run.sh [WORKDIR]   (default ~/.cache/fairseq-sigmoid-qe/runs/l10n_cpu)
# Env:   L10N_EN_DE_DIR, L10N_MULTIREF_DIR (corpora), PYTHON (default: .venv/bin/python),
#        THREADS (default 2), BASE_DIM / BASE_UPDATES / OTHER_UPDATES (the base's width, its
#        updates and the other system's updates: 256 / 2800 / 1000; about 2 hours of 2 idle
#        cores for the base), HEAD_UPDATES (every head's update budget, default 2100),
#        VALIDATE / PATIENCE (validation interval and early-stopping patience, 100 / 3),
#        HEAD_EPOCHS (at most this many epochs of a head's training data, default 3, the
#        authors'), VARIANTS / CANDIDATES / SLICES / SEEDS (the heads of stages 4a-4d, default
#        all: instances of run.sh with disjoint selections share the cores), STAGES (default
#        "variants candidates data seeds final": the stages to run, in order; add
#        "calibration" for step 6), CHOSEN_VARIANT / CHOSEN_HEAD (an earlier run's choices, taken
#        instead of choosing: to repeat its later stages, e.g. its seeds, in a fresh directory)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$HOME/.cache/fairseq-sigmoid-qe/runs/l10n_cpu}
corpus=${L10N_EN_DE_DIR:-$repo/../shared/data/l10n-en-de}
multiref=${L10N_MULTIREF_DIR:-$repo/../shared/data/l10n-en-de-multiref}
py=${PYTHON:-$repo/.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-2}
user_dir=$repo/fairseq_sigmoid_qe
mkdir -p "$work"
fairseq() { "$py" -m "fairseq_cli.$1" "${@:2}"; }
step() { echo "[$(date +%H:%M:%S)] $*"; }

# Heads: name | checkpoints to evaluate (updates) | nce_dominant and optimisation flags.
# The paper's best sampler (softmax T2 + token-freq + avoid-dominant) trained two ways: dense
# Adam at 1e-3 (this project's earlier recipe) and the authors' regime (row-sparse Adam at
# 1e-4, cosine decay); evaluated along the way (a learning curve).
BEST="--negative-sampler token_freq+softmax --sampling-temperature 2 --avoid-dominant"
HEADS=(
  "dense_adam|200 400 800 1600|$BEST --optimizer adam --lr 0.001"
  "sparse_adam|200 400 800|$BEST --optimizer sparse_adam --lr 0.0001 --lr-scheduler cosine"
)
# Table 6 of the paper, 200 updates each (TABLE6=1).
TABLE6_HEADS=(
  "random|200|--negative-sampler random --no-avoid-dominant --optimizer adam --lr 0.001"
  "token_freq|200|--negative-sampler token_freq --no-avoid-dominant --optimizer adam --lr 0.001"
  "token_freq+avoid|200|--negative-sampler token_freq --avoid-dominant --optimizer adam --lr 0.001"
  "softmax|200|--negative-sampler softmax --sampling-temperature 1 --no-avoid-dominant --optimizer adam --lr 0.001"
  "softmax+avoid|200|--negative-sampler softmax --sampling-temperature 1 --avoid-dominant --optimizer adam --lr 0.001"
  "softmax_T2+avoid|200|--negative-sampler softmax --sampling-temperature 2 --avoid-dominant --optimizer adam --lr 0.001"
  "softmax_T2+token_freq+avoid|200|$BEST --optimizer adam --lr 0.001"
)
[ "${TABLE6:-0}" = 1 ] && HEADS+=("${TABLE6_HEADS[@]}")
# Compact head types (HEAD_TYPES=1): the chosen head's settings (dense Adam at 1e-3, 200
# updates) with another --qe-head-type; named type_*, compared with it on test and mrtest at
# equal updates, never candidates for the choice.
CHOSEN_SETTINGS="$BEST --optimizer adam --lr 0.001"
HEAD_TYPE_HEADS=(
  "type_rescaling|200|$CHOSEN_SETTINGS --qe-head-type rescaling"
  "type_lowrank16|200|$CHOSEN_SETTINGS --qe-head-type lowrank --qe-head-rank 16"
  "type_lowrank64|200|$CHOSEN_SETTINGS --qe-head-type lowrank --qe-head-rank 64"
  "type_lowrank256|200|$CHOSEN_SETTINGS --qe-head-type lowrank --qe-head-rank 256"
)
[ "${HEAD_TYPES:-0}" = 1 ] && HEADS+=("${HEAD_TYPE_HEADS[@]}")

if [ -n "${HEADS_ONLY:-}" ] && [ ! -f "$work/evaluations-ready" ]; then
  echo "run.sh: error: HEADS_ONLY instances share steps 1-3 (text, base, translations): run once" \
    "without HEADS_ONLY until the log says 'train head', then start them" >&2
  exit 1
fi

# 1. Sentencepiece (joint, 8k) on all 260k training pairs; all valid/test pairs; the
#    multi-reference sources and references encoded with the same model.
if [ ! -f "$work/text/test.de" ]; then
  step "prepare text"
  "$py" -m fairseq_sigmoid_qe.cli.prepare_data --corpus "$corpus" --out "$work/text" \
    --spm-vocab 8000 --spm-sample 400000 --heldout-pairs 26000
fi
if [ ! -f "$work/data-bin/dict.de.txt" ]; then
  step "binarize"
  fairseq preprocess --source-lang en --target-lang de --joined-dictionary \
    --trainpref "$work/text/train" --validpref "$work/text/valid" --testpref "$work/text/test" \
    --destdir "$work/data-bin" --workers 2
fi
# The held-out comparison: 26,000 random training pairs the base never sees (heldout) and a
# same-sized random slice of the base's own pairs (ownslice), each a head's training split.
for slice in heldout ownslice; do
  [ -f "$work/data-bin-$slice/dict.de.txt" ] && continue
  fairseq preprocess --source-lang en --target-lang de --srcdict "$work/data-bin/dict.en.txt" \
    --tgtdict "$work/data-bin/dict.de.txt" --trainpref "$work/text/$slice" \
    --validpref "$work/text/valid" --destdir "$work/data-bin-$slice" --workers 2
done
# Evaluation splits: name -> binarized directory and subset.
declare -A BIN=([valid]="$work/data-bin" [test]="$work/data-bin")
declare -A SUBSET=([valid]=valid [test]=test)
MULTIREF=0
if [ -f "$multiref/dev.tsv" ]; then
  MULTIREF=1
  if [ ! -f "$work/text/mrtest-refs.group" ]; then
    step "prepare multi-reference text"
    "$py" -m fairseq_sigmoid_qe.cli.prepare_data --multiref "$multiref/dev.tsv" \
      --spm-model "$work/text/spm.model" --out "$work/text"
  fi
  for split in mrdev mrtest mrdev-refs mrtest-refs; do
    BIN[$split]=$work/eval-bin/$split; SUBSET[$split]=test
    [ -f "${BIN[$split]}/test.en-de.de.bin" ] && continue
    fairseq preprocess --source-lang en --target-lang de --srcdict "$work/data-bin/dict.en.txt" \
      --tgtdict "$work/data-bin/dict.de.txt" --testpref "$work/text/$split" \
      --destdir "${BIN[$split]}" --workers 2
  done
else
  step "no $multiref/dev.tsv: multi-reference evaluations skipped"
fi

# 2. Base Transformer (3+3 layers, d = BASE_DIM, pre-norm so that a high learning rate is
#    stable); checkpoints every 500 updates are kept: the one after OTHER_UPDATES updates is
#    the "other" system.
BASE_DIM=${BASE_DIM:-256}
BASE_UPDATES=${BASE_UPDATES:-2800}
OTHER_UPDATES=${OTHER_UPDATES:-1000}
if [ ! -f "$work/base/done" ]; then
  step "train base, d = $BASE_DIM, $BASE_UPDATES updates (resumes from $work/base/checkpoint_last.pt)"
  fairseq train "$work/data-bin" --user-dir "$user_dir" --arch transformer --share-all-embeddings \
    --encoder-layers 3 --decoder-layers 3 --encoder-embed-dim "$BASE_DIM" \
    --decoder-embed-dim "$BASE_DIM" --encoder-ffn-embed-dim $((4 * BASE_DIM)) \
    --decoder-ffn-embed-dim $((4 * BASE_DIM)) \
    --encoder-attention-heads 4 --decoder-attention-heads 4 --dropout 0.1 \
    --encoder-normalize-before --decoder-normalize-before \
    --optimizer adam --adam-betas "(0.9,0.98)" --lr 0.002 --lr-scheduler inverse_sqrt \
    --warmup-updates 500 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens 4096 --max-update "$BASE_UPDATES" --seed 1 --save-dir "$work/base" \
    --save-interval-updates 500 --keep-interval-updates -1 --no-epoch-checkpoints \
    --cpu --num-workers 0 --log-format simple --log-interval 50 \
    2>&1 | tee -a "$work/train-base.log"
  touch "$work/base/done"
fi
base=$work/base/checkpoint_last.pt
other=$(ls "$work"/base/checkpoint_*_"$OTHER_UPDATES".pt | head -1)

# 3. Translations of each evaluation split by each system, decoded both ways; QE never changes
#    a translation, so one decoding per system, split and decoding serves every head. The H-
#    lines (the decoding's own pieces) become a parallel split to force-decode with each head.
#    Choosing: Eval Self on valid and mrdev. Reported once: Eval Self and Other on test and
#    mrtest.
DECODINGS=(beam sampled)
declare -A DECODE=(
  [beam]="--beam 5"
  [sampled]="--sampling --sampling-topp 0.95 --temperature 1.0 --beam 1 --nbest 1 --seed 1"
)
TUNE_EVALS=("self valid")
FINAL_EVALS=("self test" "other test")
if [ $MULTIREF = 1 ]; then
  TUNE_EVALS+=("self mrdev")
  FINAL_EVALS+=("self mrtest" "other mrtest")
fi
translate() {  # translate DECODING SYSTEM CHECKPOINT SPLIT
  local dir=$work/$1/$2/$4
  [ -f "$dir/generate.txt" ] && return
  step "$1 decoding: $2 on $4"
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  fairseq generate "${BIN[$4]}" --user-dir "$user_dir" --path "$3" --gen-subset "${SUBSET[$4]}" \
    ${DECODE[$1]} --max-len-a 2 --max-len-b 10 \
    --max-tokens 8000 --required-batch-size-multiple 1 --cpu > "$dir/generate.part"
  mv "$dir/generate.part" "$dir/generate.txt"
}
for decoding in "${DECODINGS[@]}"; do
  for entry in "${TUNE_EVALS[@]}" "${FINAL_EVALS[@]}"; do
    read -r system split <<< "$entry"
    checkpoint=$base; [ "$system" = other ] && checkpoint=$other
    translate "$decoding" "$system" "$checkpoint" "$split"
    dir=$work/$decoding/$system/$split
    [ -f "$dir/data-bin/test.en-de.de.bin" ] && continue
    "$py" "$repo/examples/l10n_cpu/hypotheses.py" "$dir/generate.txt" "$work/text/$split.en" "$dir"
    fairseq preprocess --source-lang en --target-lang de --srcdict "$work/data-bin/dict.en.txt" \
      --tgtdict "$work/data-bin/dict.de.txt" --testpref "$dir/hyp" --destdir "$dir/data-bin" \
      --workers 2
  done
  for system in self other; do  # corpus sacreBLEU and chrF of each system on test
    dir=$work/$decoding/$system/test
    [ -f "$dir/bleu.txt" ] || "$py" "$repo/examples/l10n_cpu/corpus_scores.py" \
      "$dir/generate.txt" "$work/text/test.raw.de" > "$dir/bleu.txt"
  done
done

# 4. Heads: name | training data | nce_dominant and optimisation flags. Every head trains at
#    most HEAD_UPDATES updates, is validated (dev NCE loss on valid) every VALIDATE updates
#    and stops after PATIENCE validations without improvement; checkpoint_best.pt (the best
#    dev loss) is the one scored. The stages run in order; a stage's choice (on mrdev, by
#    results_table.py --choose-*) decides the next stage's settings.
HEAD_UPDATES=${HEAD_UPDATES:-2100}
VALIDATE=${VALIDATE:-100}
PATIENCE=${PATIENCE:-3}
STOPPING="--validate-interval-updates $VALIDATE --patience $PATIENCE --best-checkpoint-metric loss"
STOPPING+=" --max-update $HEAD_UPDATES --max-epoch ${HEAD_EPOCHS:-3}"
STOPPING+=" --save-interval-updates $VALIDATE --keep-interval-updates 1"
SAMPLER="--negative-sampler token_freq+softmax --sampling-temperature 2"
DENSE="--optimizer adam --lr 0.001"
AUTHORS="--optimizer sparse_adam --lr 0.0001 --lr-scheduler cosine"
declare -A VARIANT=(
  [cut_last]="--dominant-cut last"
  [cut_first]="--dominant-cut first"
  [cut_last_dedup]="--dominant-cut last --negative-dedup"
  [cut_first_dedup]="--dominant-cut first --negative-dedup"
)
read -r -a VARIANTS <<< "${VARIANTS:-cut_last cut_first_dedup cut_first cut_last_dedup}"
read -r -a CANDIDATES <<< "${CANDIDATES:-authors logit_affine}"
read -r -a SLICES <<< "${SLICES:-heldout ownslice}"
read -r -a SEEDS <<< "${SEEDS:-2 3}"

train_head() {  # train_head NAME DATA_BIN FLAGS...
  local save=$work/heads/$1
  [ -f "$save/done" ] && return
  step "train head $1 (at most $HEAD_UPDATES updates)"
  # shellcheck disable=SC2086
  fairseq train "$2" --user-dir "$user_dir" --arch sigmoid_head_transformer \
    --base-checkpoint "$base" --criterion nce_dominant --num-negatives 10 ${@:3} $STOPPING \
    --max-tokens 8192 --save-dir "$save" --no-epoch-checkpoints --cpu --num-workers 0 \
    --log-format simple --log-interval 50 2>&1 | tee -a "$work/train-head-$1.log"
  touch "$save/done"
}
qe() {  # qe OUT.jsonl CHECKPOINT DATA_BIN [QE OPTIONS]
  [ -f "$1" ] && return
  rm -f "$1.part"
  fairseq generate "$3" --user-dir "$user_dir" --path "$2" --gen-subset test --score-reference \
    --print-qe --qe-output "$1.part" --post-process sentencepiece \
    --max-tokens 8000 --required-batch-size-multiple 1 --cpu "${@:4}" > /dev/null
  mv "$1.part" "$1"
}
head_checkpoint() {  # the scored checkpoint of a head
  if [ "$1" = init ]; then echo "$work/heads/init.pt"; else echo "$work/heads/$1/checkpoint_best.pt"; fi
}
score_head() {  # score_head NAME EVALS_ARRAY
  local -n evals=$2
  local decoding eval system split
  for decoding in "${DECODINGS[@]}"; do
    for eval in "${evals[@]}"; do
      read -r system split <<< "$eval"
      qe "$work/$decoding/$system/$split/qe-$1.jsonl" "$(head_checkpoint "$1")" \
        "$work/$decoding/$system/$split/data-bin"
    done
  done
}
choose() { "$py" "$repo/examples/l10n_cpu/results_table.py" "$work" "$@"; }
stage() { [[ " ${STAGES:-variants candidates data seeds final} " == *" $1 "* ]]; }

# 4a. The dominant cut and de-duplication: dense Adam with each variant, chosen on mrdev.
if stage variants; then
  for variant in "${VARIANTS[@]}"; do
    train_head "dense_$variant" "$work/data-bin" $SAMPLER ${VARIANT[$variant]} $DENSE --seed 1
    score_head "dense_$variant" TUNE_EVALS
  done
  if [ ! -f "$work/heads/init.pt" ]; then  # W_qe = the softmax projection, from any head
    "$py" "$repo/examples/l10n_cpu/init_head.py" "$work/heads/dense_cut_last/checkpoint_last.pt" \
      "$work/heads/init.pt"
  fi
  score_head init TUNE_EVALS
fi
variant=${CHOSEN_VARIANT:-$(choose --choose-variant)}
if [ -z "${VARIANT[$variant]+set}" ]; then
  echo "run.sh: error: CHOSEN_VARIANT=$variant is not one of: ${!VARIANT[*]}" >&2
  exit 1
fi
# 4b. The candidates with the chosen variant: dense (4a's), the authors' regime, logit_affine.
declare -A CANDIDATE=(
  [authors]="$AUTHORS"
  [logit_affine]="--qe-head-type logit_affine --optimizer adam --lr 0.01"
)
if stage candidates; then
  for name in "${CANDIDATES[@]}"; do
    # shellcheck disable=SC2086
    train_head "$name" "$work/data-bin" $SAMPLER ${VARIANT[$variant]} ${CANDIDATE[$name]} --seed 1
    score_head "$name" TUNE_EVALS
  done
fi
# 4c. The training data: pairs the base never saw against as many of its own.
if stage data; then
  for slice in "${SLICES[@]}"; do
    train_head "data_$slice" "$work/data-bin-$slice" $SAMPLER ${VARIANT[$variant]} $DENSE --seed 1
    score_head "data_$slice" TUNE_EVALS
  done
fi
# 4d. The chosen head (results_table.py --choose-head) with seeds 2 and 3.
chosen=${CHOSEN_HEAD:-$(choose --choose-head)}
if [[ ! " init dense_$variant ${!CANDIDATE[*]} " == *" $chosen "* ]]; then
  echo "run.sh: error: CHOSEN_HEAD=$chosen is not one of: init dense_$variant ${!CANDIDATE[*]}" >&2
  exit 1
fi
if stage seeds && [ "$chosen" != init ]; then
  for seed in "${SEEDS[@]}"; do
    # shellcheck disable=SC2086
    train_head "${chosen}_seed$seed" "$work/data-bin" $SAMPLER ${VARIANT[$variant]} \
      ${CANDIDATE[$chosen]:-$DENSE} --seed "$seed"
  done
fi

# 5. Reported once, on test and mrtest, both decodings: every head trained above (the choice
#    among them was made on mrdev), and the unsupervised baselines (token entropy, MC dropout,
#    N = 10, --seed 1) of the same hypotheses, which use only the frozen base (any head
#    checkpoint carries it).
if stage final; then
  for save in "$work"/heads/*/; do
    name=$(basename "$save")
    [ -f "$save/done" ] && [ -f "$save/checkpoint_best.pt" ] || continue
    case $name in  # of the variants, only the chosen one (and its seeds) is reported
      dense_*) [[ $name == "dense_$variant" || $name == "dense_${variant}_seed"* ]] || continue ;;
    esac
    step "QE of $name on test and mrtest"
    score_head "$name" FINAL_EVALS
  done
  if [ -f "$work/heads/init.pt" ]; then  # made by stage 4a
    score_head init FINAL_EVALS
    for decoding in "${DECODINGS[@]}"; do
      for eval in "${FINAL_EVALS[@]}"; do
        read -r system split <<< "$eval"
        step "QE baselines: $decoding, $system on $split"
        qe "$work/$decoding/$system/$split/qe-baselines.jsonl" "$work/heads/init.pt" \
          "$work/$decoding/$system/$split/data-bin" --qe-methods entropy,mc_dropout \
          --qe-mc-samples 10 --seed 1
      done
    done
  fi
  step "tables"
  "$py" "$repo/examples/l10n_cpu/results_table.py" "$work" ${CHOSEN_HEAD:+--chosen-head "$CHOSEN_HEAD"} \
    | tee "$work/results.md"
fi

# 6. Calibration (STAGES with "calibration"): each method's scores by the chosen head on beam
#    output (fairseq-sigmoid-qe calibrate, isotonic), fitted on valid (one reference) and
#    mrdev (all references), rated once on test and mrtest. Sentence gold: chrF (BAD below
#    0.5); word gold: a word is OK if it occurs in the best-matching reference (a proxy).
if stage calibration; then
  calibrations=$work/calibration/$chosen
  calibrate_pair() {  # calibrate_pair DEV TEST GOLD_OPTION DEV_GOLD TEST_GOLD
    local out=$calibrations/$1-$2 method
    mkdir -p "$out"
    for method in sigmoid softmax boostedprob; do
      [ -f "$out/$method.json" ] && continue
      step "calibrate $method ($chosen) on $1"
      rm -f "$out/$method.json.part" "$out/$method.png"
      "$py" -m fairseq_sigmoid_qe.cli.calibrate --qe "$work/beam/self/$1/qe-$chosen.jsonl" \
        --method "$method" "$3" "$4" --reference-word-labels --output "$out/$method.json" \
        > "$out/$method.txt"
    done
    [ -f "$out/report.json" ] && return
    step "calibrated QE on $2"
    "$py" -m fairseq_sigmoid_qe.cli.evaluate --qe "$work/beam/self/$2/qe-$chosen.jsonl" "$3" \
      "$5" --reference-word-labels --calibration "$out"/{sigmoid,softmax,boostedprob}.json \
      --json > "$out/report.part"
    mv "$out/report.part" "$out/report.json"
  }
  calibrate_pair valid test --references "$work/text/valid.raw.de" "$work/text/test.raw.de"
  if [ $MULTIREF = 1 ]; then
    calibrate_pair mrdev mrtest --references-tsv "$work/text/mrdev.refs.tsv" \
      "$work/text/mrtest.refs.tsv"
  fi
  "$py" "$repo/examples/l10n_cpu/calibration_table.py" "$calibrations" \
    | tee "$calibrations/results.md"
fi
