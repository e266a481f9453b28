#!/usr/bin/env bash
# The paper's Transformer experiment at CPU scale on ../shared/data/l10n-en-de:
# base Transformer -> sigmoid heads -> QE of the base's own translations (Eval Self) and of
# another system's (Eval Other: the base's 1000-update checkpoint), force-decoded
# (--score-reference --print-qe), against
#   - sentence chrF of the one reference (valid: for choosing settings; test: reported once);
#   - multi-reference chrF on ../shared/data/l10n-en-de-multiref (mrdev: even lines, for
#     choosing settings; mrtest: odd lines, reported once; sources of >= 4 words);
#   - the ambiguity report: every valid reference of every multiref source force-decoded.
# Beside the chosen head, on test and mrtest: the unsupervised baselines of --qe-methods.
# Every step is skipped when its output exists; training resumes from checkpoint_last.pt, so an
# interrupted run is simply run again. The work directory lives outside the clone.
#
# Usage: bash examples/l10n_cpu/run.sh [WORKDIR]   (default ~/.cache/fairseq-sigmoid-qe/runs/l10n_cpu)
# Env:   L10N_EN_DE_DIR, L10N_MULTIREF_DIR (corpora), PYTHON (default: .venv/bin/python),
#        THREADS (default 2), TABLE6=1 (also the seven 200-update heads of the paper's Table 6),
#        HEAD_TYPES=1 (also the compact --qe-head-type heads, scored on test and mrtest),
#        HEADS_ONLY="name ..." (train and score only these heads, "init" for the 0-update point:
#        run two at once on two cores)
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

# 2. Base Transformer (3+3 layers, d=256, pre-norm so that a high learning rate is stable);
#    checkpoints every 500 updates are kept: the one after 1000 updates is the "other" system.
if [ ! -f "$work/base/done" ]; then
  step "train base (resumes from $work/base/checkpoint_last.pt)"
  fairseq train "$work/data-bin" --user-dir "$user_dir" --arch transformer --share-all-embeddings \
    --encoder-layers 3 --decoder-layers 3 --encoder-embed-dim 256 --decoder-embed-dim 256 \
    --encoder-ffn-embed-dim 1024 --decoder-ffn-embed-dim 1024 \
    --encoder-attention-heads 4 --decoder-attention-heads 4 --dropout 0.1 \
    --encoder-normalize-before --decoder-normalize-before \
    --optimizer adam --adam-betas "(0.9,0.98)" --lr 0.002 --lr-scheduler inverse_sqrt \
    --warmup-updates 500 --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens 4096 --max-update 2800 --seed 1 --save-dir "$work/base" \
    --save-interval-updates 500 --keep-interval-updates -1 --no-epoch-checkpoints \
    --cpu --num-workers 0 --log-format simple --log-interval 50 \
    2>&1 | tee -a "$work/train-base.log"
  touch "$work/base/done"
fi
base=$work/base/checkpoint_last.pt
other=$(ls "$work"/base/checkpoint_*_1000.pt | head -1)

# 3. Translations (beam 5) of each evaluation split by each system; QE never changes a
#    translation, so one beam search per system and split serves every head. The H- lines
#    (the search's own pieces) become a parallel split to force-decode with each head.
#    Choosing (every head and checkpoint): Eval Self on valid and mrdev, ambiguity on mrdev.
#    Reported once, for the chosen head only: Eval Self and Other on test and mrtest,
#    ambiguity on mrtest.
TUNE_EVALS=("self valid")
FINAL_EVALS=("self test" "other test")
if [ $MULTIREF = 1 ]; then
  TUNE_EVALS+=("self mrdev")
  FINAL_EVALS+=("self mrtest" "other mrtest")
fi
translate() {  # translate SYSTEM CHECKPOINT SPLIT
  local dir=$work/$1/$3
  [ -f "$dir/generate.txt" ] && return
  step "beam search: $1 on $3"
  mkdir -p "$dir"
  fairseq generate "${BIN[$3]}" --user-dir "$user_dir" --path "$2" --gen-subset "${SUBSET[$3]}" \
    --beam 5 --max-len-a 2 --max-len-b 10 \
    --max-tokens 8000 --required-batch-size-multiple 1 --cpu > "$dir/generate.part"
  mv "$dir/generate.part" "$dir/generate.txt"
}
for entry in "${TUNE_EVALS[@]}" "${FINAL_EVALS[@]}"; do
  read -r system split <<< "$entry"
  checkpoint=$base; [ "$system" = other ] && checkpoint=$other
  translate "$system" "$checkpoint" "$split"
  dir=$work/$system/$split
  [ -f "$dir/data-bin/test.en-de.de.bin" ] && continue
  "$py" - "$dir/generate.txt" "$work/text/$split.en" "$dir" <<'PY'
import sys
generate, sources, out = sys.argv[1:]
hyps = {}
for line in open(generate, encoding="utf-8"):
    if line.startswith("H-"):
        sample_id, _, pieces = line.rstrip("\n").split("\t")
        hyps[int(sample_id[2:])] = pieces
src = open(sources, encoding="utf-8").read().splitlines()
assert len(hyps) == len(src), (len(hyps), len(src))
with open(f"{out}/hyp.en", "w", encoding="utf-8") as f:
    f.write("".join(line + "\n" for line in src))
with open(f"{out}/hyp.de", "w", encoding="utf-8") as f:
    f.write("".join(hyps[i] + "\n" for i in range(len(src))))
PY
  fairseq preprocess --source-lang en --target-lang de --srcdict "$work/data-bin/dict.en.txt" \
    --tgtdict "$work/data-bin/dict.de.txt" --testpref "$dir/hyp" --destdir "$dir/data-bin" \
    --workers 2
done
for system in self other; do  # corpus sacreBLEU and chrF of each system on test
  dir=$work/$system/test
  [ -f "$dir/bleu.txt" ] || "$py" "$repo/examples/l10n_cpu/corpus_scores.py" \
    "$dir/generate.txt" "$work/text/test.raw.de" > "$dir/bleu.txt"
done
touch "$work/evaluations-ready"

# 4. Heads, each evaluated at its checkpoints: QE of every evaluation split, and of the
#    multi-reference references (ambiguity).
qe() {  # qe OUT.jsonl CHECKPOINT DATA_BIN [QE OPTIONS]
  [ -f "$1" ] && return
  rm -f "$1.part"
  fairseq generate "$3" --user-dir "$user_dir" --path "$2" --gen-subset test --score-reference \
    --print-qe --qe-output "$1.part" --post-process sentencepiece \
    --max-tokens 8000 --required-batch-size-multiple 1 --cpu "${@:4}" > /dev/null
  mv "$1.part" "$1"
}
score_head() {  # score_head NAME UPDATES CHECKPOINT EVALS_ARRAY REFS_SPLIT
  local -n evals=$4
  for eval in "${evals[@]}"; do
    read -r system split <<< "$eval"
    qe "$work/$system/$split/qe-$1-$2.jsonl" "$3" "$work/$system/$split/data-bin"
  done
  if [ $MULTIREF = 1 ]; then
    mkdir -p "$work/refs/$5"
    qe "$work/refs/$5/qe-$1-$2.jsonl" "$3" "${BIN[$5-refs]}"
  fi
}
for entry in "${HEADS[@]}"; do
  IFS='|' read -r name updates flags <<< "$entry"
  [ -n "${HEADS_ONLY:-}" ] && [[ " $HEADS_ONLY " != *" $name "* ]] && continue
  save=$work/heads/$name
  last=${updates##* }
  if [ ! -f "$save/done" ]; then
    step "train head $name ($last updates)"
    # shellcheck disable=SC2086
    fairseq train "$work/data-bin" --user-dir "$user_dir" --arch sigmoid_head_transformer \
      --base-checkpoint "$base" --criterion nce_dominant --num-negatives 10 $flags \
      --max-tokens 8192 --max-update "$last" --seed 1 --save-dir "$save" \
      --save-interval-updates "${updates%% *}" --keep-interval-updates -1 \
      --no-epoch-checkpoints --cpu --num-workers 0 --log-format simple --log-interval 50 \
      2>&1 | tee -a "$work/train-head-$name.log"
    touch "$save/done"
  fi
  for n in $updates; do
    step "QE for choosing: $name after $n updates"
    score_head "$name" "$n" "$(ls "$save"/checkpoint_*_"$n".pt | head -1)" TUNE_EVALS mrdev
  done
  if [[ $name == type_* ]]; then
    step "QE of the compact head $name on test and mrtest"
    score_head "$name" "$last" "$(ls "$save"/checkpoint_*_"$last".pt | head -1)" FINAL_EVALS mrtest
  fi
done
# The 0-update point of every curve: W_qe = the softmax projection (from any head checkpoint).
if [ -z "${HEADS_ONLY:-}" ] || [[ " $HEADS_ONLY " == *" init "* ]]; then
  if [ ! -f "$work/heads/init.pt" ]; then
    any=$(ls "$work"/heads/*/checkpoint_last.pt | head -1)
    "$py" "$repo/examples/l10n_cpu/init_head.py" "$any" "$work/heads/init.pt"
  fi
  score_head init 0 "$work/heads/init.pt" TUNE_EVALS mrdev
fi
if [ -n "${HEADS_ONLY:-}" ]; then
  step "HEADS_ONLY run done; run without HEADS_ONLY for the chosen head's test scores and tables"
  exit 0
fi

# 5. The head chosen on mrdev (results_table.py --choose), scored once on test and mrtest.
read -r chosen n <<< "$("$py" "$repo/examples/l10n_cpu/results_table.py" "$work" --choose)"
checkpoint=$work/heads/init.pt
[ "$chosen" != init ] && checkpoint=$(ls "$work/heads/$chosen"/checkpoint_*_"$n".pt | head -1)
step "QE of the chosen head ($chosen after $n updates) on test and mrtest"
score_head "$chosen" "$n" "$checkpoint" FINAL_EVALS mrtest
# Reported beside it: the paper's setting trained until its valid loss stopped improving (the
# dense head's last checkpoint), as the QE-quality issue asks; never a candidate for the choice.
read -r converged m <<< "dense_adam 1600"
if [ "$converged $m" != "$chosen $n" ] && [ -d "$work/heads/$converged" ]; then
  step "QE of the converged head ($converged after $m updates) on test and mrtest"
  score_head "$converged" "$m" "$(ls "$work/heads/$converged"/checkpoint_*_"$m".pt | head -1)" \
    FINAL_EVALS mrtest
fi

# 5b. The unsupervised baselines (token entropy, MC dropout, MC sequence entropy; N = 10,
#     --seed 1) of the same hypotheses, scored once on test and mrtest. They use only the
#     frozen base (trained with --dropout 0.1); any head checkpoint carries it: the chosen one.
#     The sampled translations of mc_seq_entropy get the beam search's length limits.
for eval in "${FINAL_EVALS[@]}"; do
  read -r system split <<< "$eval"
  step "QE baselines: $system on $split"
  qe "$work/$system/$split/qe-baselines-mc10.jsonl" "$checkpoint" "$work/$system/$split/data-bin" \
    --qe-methods entropy,mc_dropout,mc_seq_entropy --qe-mc-samples 10 --seed 1 \
    --max-len-a 2 --max-len-b 10
done

# 6. Tables (RESULTS.md): learning curves on valid/mrdev, final results on test/mrtest.
step "tables"
"$py" "$repo/examples/l10n_cpu/results_table.py" "$work" | tee "$work/results.md"

# 7. Calibration of each method's scores by the chosen head (fairseq-sigmoid-qe calibrate,
#    isotonic): fitted on valid (one reference) and mrdev (all references), rated once on test
#    and mrtest. Sentence gold: chrF (BAD below 0.5); word gold: a word is OK if it occurs in
#    the best-matching reference (a proxy).
calibrations=$work/calibration/$chosen-$n
calibrate_pair() {  # calibrate_pair DEV TEST GOLD_OPTION DEV_GOLD TEST_GOLD
  local out=$calibrations/$1-$2 method
  mkdir -p "$out"
  for method in sigmoid softmax boostedprob; do
    [ -f "$out/$method.json" ] && continue
    step "calibrate $method ($chosen after $n updates) on $1"
    rm -f "$out/$method.json.part" "$out/$method.png"
    "$py" -m fairseq_sigmoid_qe.cli.calibrate --qe "$work/self/$1/qe-$chosen-$n.jsonl" \
      --method "$method" "$3" "$4" --reference-word-labels --output "$out/$method.json" \
      > "$out/$method.txt"
  done
  [ -f "$out/report.json" ] && return
  step "calibrated QE on $2"
  "$py" -m fairseq_sigmoid_qe.cli.evaluate --qe "$work/self/$2/qe-$chosen-$n.jsonl" "$3" "$5" \
    --reference-word-labels --calibration "$out"/{sigmoid,softmax,boostedprob}.json --json \
    > "$out/report.part"
  mv "$out/report.part" "$out/report.json"
}
calibrate_pair valid test --references "$work/text/valid.raw.de" "$work/text/test.raw.de"
if [ $MULTIREF = 1 ]; then
  calibrate_pair mrdev mrtest --references-tsv "$work/text/mrdev.refs.tsv" \
    "$work/text/mrtest.refs.tsv"
fi
"$py" "$repo/examples/l10n_cpu/calibration_table.py" "$calibrations" \
  | tee "$calibrations/results.md"
