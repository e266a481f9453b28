#!/usr/bin/env bash
# The paper's Transformer experiment at CPU scale on ../shared/data/l10n-en-de:
# base Transformer -> one sigmoid head per Table-6 sampler setting -> Eval Self (own beam
# translations of the test split) and Eval Other (translations of another system, here the
# base's early checkpoint) against chrF pseudo-gold. Every step is skipped when its output
# exists; training resumes from checkpoint_last.pt, so an interrupted run is simply re-run.
#
# Usage: bash examples/l10n_cpu/run.sh [WORKDIR]      (default: runs/l10n_cpu)
# Env:   L10N_EN_DE_DIR (corpus), PYTHON (default: .venv/bin/python), THREADS (default 2)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-runs/l10n_cpu}
corpus=${L10N_EN_DE_DIR:-$repo/../shared/data/l10n-en-de}
py=${PYTHON:-$repo/.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-2}
user_dir=$repo/fairseq_sigmoid_qe
mkdir -p "$work"
fairseq() { "$py" -m "fairseq_cli.$1" "${@:2}"; }
step() { echo "[$(date +%H:%M:%S)] $*"; }

# Table 6: name, head updates and nce_dominant flags, one head each.
SAMPLERS=(
  "random|200|--negative-sampler random --no-avoid-dominant"
  "token_freq|200|--negative-sampler token_freq --no-avoid-dominant"
  "token_freq+avoid|200|--negative-sampler token_freq --avoid-dominant"
  "softmax|200|--negative-sampler softmax --sampling-temperature 1 --no-avoid-dominant"
  "softmax+avoid|200|--negative-sampler softmax --sampling-temperature 1 --avoid-dominant"
  "softmax_T2+avoid|200|--negative-sampler softmax --sampling-temperature 2 --avoid-dominant"
  "softmax_T2+token_freq+avoid|200|--negative-sampler token_freq+softmax --sampling-temperature 2 --avoid-dominant"
)

# 1. Sentencepiece (joint, 8k) on all 260k training pairs; all valid/test pairs.
if [ ! -f "$work/text/test.de" ]; then
  step "prepare text"
  "$py" -m fairseq_sigmoid_qe.realdata --corpus "$corpus" --out "$work/text" \
    --spm-vocab 8000 --spm-sample 400000
fi
if [ ! -f "$work/data-bin/dict.de.txt" ]; then
  step "binarize"
  fairseq preprocess --source-lang en --target-lang de --joined-dictionary \
    --trainpref "$work/text/train" --validpref "$work/text/valid" --testpref "$work/text/test" \
    --destdir "$work/data-bin" --workers 2
fi

# 2. Base Transformer (3+3 layers, d=256, pre-norm so that a high learning rate is stable);
#    checkpoints every 500 updates are kept: the one after 1000 updates is the "other" system
#    of Eval Other.
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

# 3. Translations: the base's (Eval Self) and the 1000-update checkpoint's (Eval Other), beam 5.
#    QE never changes a translation, so one beam search per system serves every head.
translate() {  # translate SYSTEM CHECKPOINT
  [ -f "$work/$1/generate.txt" ] && return
  step "beam search: $1"
  mkdir -p "$work/$1"
  fairseq generate "$work/data-bin" --user-dir "$user_dir" --path "$2" --gen-subset test --beam 5 \
    --max-len-a 2 --max-len-b 10 \
    --max-tokens 8000 --required-batch-size-multiple 1 --cpu > "$work/$1/generate.part"
  mv "$work/$1/generate.part" "$work/$1/generate.txt"
}
translate self "$base"
translate other "$other"

# 4. The hypotheses (the H- lines: the search's own sentencepiece pieces) as a parallel test
#    split, to be force-decoded by each head (--score-reference --print-qe); sacreBLEU and chrF
#    of the detokenized hypotheses against the raw references.
for system in self other; do
  dir=$work/$system
  if [ ! -f "$dir/data-bin/test.en-de.de.bin" ]; then
    "$py" - "$dir/generate.txt" "$work/text/test.en" "$work/text/test.raw.de" "$dir" <<'PY'
import sys
import sacrebleu
from fairseq_sigmoid_qe.words import detokenize
generate, sources, references, out = sys.argv[1:]
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
detok = [detokenize(hyps[i].split()) for i in range(len(src))]
refs = open(references, encoding="utf-8").read().splitlines()[: len(src)]
with open(f"{out}/bleu.txt", "w", encoding="utf-8") as f:
    f.write(f"{sacrebleu.corpus_bleu(detok, [refs])}\n{sacrebleu.corpus_chrf(detok, [refs])}\n")
PY
    fairseq preprocess --source-lang en --target-lang de --srcdict "$work/data-bin/dict.en.txt" \
      --tgtdict "$work/data-bin/dict.de.txt" --testpref "$dir/hyp" --destdir "$dir/data-bin" \
      --workers 2
  fi
done

# 5. One head per sampler setting (the paper's best first), each scoring both systems.
for entry in "${SAMPLERS[@]:6:1}" "${SAMPLERS[@]:0:6}"; do
  IFS='|' read -r name updates flags <<< "$entry"
  if [ ! -f "$work/heads/$name/done" ]; then
    step "train head $name"
    # shellcheck disable=SC2086
    fairseq train "$work/data-bin" --user-dir "$user_dir" --arch sigmoid_head_transformer \
      --base-checkpoint "$base" --criterion nce_dominant --num-negatives 10 $flags \
      --optimizer adam --lr 0.001 --max-tokens 8192 --max-update "$updates" --seed 1 \
      --save-dir "$work/heads/$name" --no-epoch-checkpoints --cpu --num-workers 0 \
      --log-format simple --log-interval 50 2>&1 | tee -a "$work/train-head-$name.log"
    touch "$work/heads/$name/done"
  fi
  for system in self other; do
    dir=$work/$system
    [ -f "$dir/qe-$name.jsonl" ] && continue
    step "QE of $system translations: $name"
    rm -f "$dir/qe-$name.part"  # an interrupted earlier try
    fairseq generate "$dir/data-bin" --user-dir "$user_dir" --path "$work/heads/$name/checkpoint_last.pt" \
      --score-reference --print-qe --qe-output "$dir/qe-$name.part" --post-process sentencepiece \
      --max-tokens 8000 --required-batch-size-multiple 1 --cpu > /dev/null
    mv "$dir/qe-$name.part" "$dir/qe-$name.jsonl"
  done
done

# 6. Evaluation: Pearson (and Spearman, Kendall, PRR) against chrF of the raw reference.
for system in self other; do
  dir=$work/$system
  files=(); names=()
  for entry in "${SAMPLERS[@]}"; do
    name=${entry%%|*}; files+=("$dir/qe-$name.jsonl"); names+=("$name")
  done
  step "evaluate $system"
  "$py" -m fairseq_sigmoid_qe.evaluate --qe "${files[@]}" --names "${names[@]}" \
    --references "$work/text/test.raw.de" --json > "$dir/eval.json"
  "$py" -m fairseq_sigmoid_qe.evaluate --qe "${files[@]}" --names "${names[@]}" \
    --references "$work/text/test.raw.de" | tee "$dir/eval.txt"
  # Figure 2: softmax, BoostedProb and the paper's best head against chrF.
  rm -rf "$dir/plots"
  "$py" -m fairseq_sigmoid_qe.evaluate --qe "$dir/qe-softmax_T2+token_freq+avoid.jsonl" \
    --references "$work/text/test.raw.de" --plot "$dir/plots" > /dev/null
done
echo "self:  $(cat "$work/self/bleu.txt")"
echo "other: $(cat "$work/other/bleu.txt")"
