# Steps shared by the Transformer Base and DeltaLM recipes (sourced by their run.sh): the
# data, the sampler grid of Table 6, both decodings, Eval Other, the gold and the table.
# The sourcing script sets PYTHON, PLUGIN, WORK, BIN (data-bin), SMOKE, GENERATE (array),
# DEVICE (array), BEAM, DATA (array of paper_data.py prepare options) and HEAD_CHECKPOINT.
COMMON="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOWNLOADS="${DOWNLOADS:-$WORK/downloads}"
EVAL_OTHER="${EVAL_OTHER:-1}"
SAMPLING_SEED="${SAMPLING_SEED:-1}"
HEAD_CHECKPOINT="${HEAD_CHECKPOINT:-checkpoint_last.pt}"  # of each Table 6 head
# Eval sets: raw/{name}.{en,de} -> fairseq subsets test, test1, ... in this order.
SETS=(test wmt22)
[[ $EVAL_OTHER == 1 ]] && SETS+=(other_best other_worst)
declare -A SUBSET
for i in "${!SETS[@]}"; do SUBSET[${SETS[$i]}]=$([[ $i == 0 ]] && echo test || echo "test$i"); done
# Table 6 of the paper: the negative samplers (the main head is its last row).
GRID_HEADS=(
  "random|--negative-sampler random --no-avoid-dominant"
  "token_freq|--negative-sampler token_freq --no-avoid-dominant"
  "token_freq+avoid|--negative-sampler token_freq --avoid-dominant"
  "softmax|--negative-sampler softmax --sampling-temperature 1 --no-avoid-dominant"
  "softmax+avoid|--negative-sampler softmax --sampling-temperature 1 --avoid-dominant"
  "softmax_T2+avoid|--negative-sampler softmax --sampling-temperature 2 --avoid-dominant"
)

if [[ $SMOKE == 1 ]]; then
  # Stand-ins: local "downloads" (paper_data.py reads them exactly as the real ones) and a
  # comet-score that writes the real tool's output from a trigram F-score (not a model).
  export COMET_SCORE="${COMET_SCORE:-$COMMON/standin-bin/comet-score}"
  export COMET_ARGS="${COMET_ARGS:---gpus 0 --batch_size 8}"
  GOLD_NOTE="Smoke run: comet-score is the stand-in (examples/common/comet_standin.py), not a COMET model; no number here is comparable with the paper's."
fi
if ! COMET="$("$PYTHON" "$COMMON/comet_gold.py" which)"; then
  [[ -z "${COMET_SCORE:-}" ]] || exit 1  # COMET_SCORE given but unusable: said on stderr
  COMET=""
  GOLD_NOTE="No comet-score found (COMET_SCORE or PATH): the Eval Self gold is sentence chrF, not XCOMET-XL, and there is no COMET-Kiwi row; see the README."
fi
GOLD_NOTE="${GOLD_NOTE:-}"

step() { echo "== $*"; }

paper_data() {
  local sources=()
  [[ -n "${PAPER_SOURCES:-}" ]] && sources=(--sources "$PAPER_SOURCES")
  local raw=()
  [[ -n "${RAW_DIR:-}" ]] && raw=(--raw-dir "$RAW_DIR")
  local other=()
  [[ $EVAL_OTHER == 1 ]] || other=(--no-eval-other)
  "$PYTHON" "$COMMON/paper_data.py" prepare --out "$WORK/raw" --downloads "$DOWNLOADS" \
    "${raw[@]}" "${sources[@]}" "${other[@]}" "${DATA[@]}"
}

# The comma-separated --testpref of fairseq-preprocess for the eval sets under $1.
testprefs() {
  local prefix=$1 joined=""
  for name in "${SETS[@]}"; do joined+="${joined:+,}$prefix/$name"; done
  echo "$joined"
}

# decode CHECKPOINT SET MODE OUT.jsonl: beam search, the authors' sampling (top-p 0.95,
# temperature 1, seeded) or force-decoding the set's target side (Eval Other), with QE.
decode() {
  local checkpoint=$1 name=$2 mode=$3 out=$4 how=()
  [[ -f "$out" ]] && return 0
  case $mode in
    beam) how=(--beam "$BEAM") ;;
    sampling) how=(--sampling --sampling-topp 0.95 --temperature 1.0 --beam 1 --nbest 1
                   --seed "$SAMPLING_SEED") ;;
    reference) how=(--score-reference) ;;
  esac
  mkdir -p "$(dirname "$out")"
  rm -f "$out.part"
  "$PYTHON" -m fairseq_cli.generate "$BIN" --user-dir "$PLUGIN" --path "$checkpoint" \
    --gen-subset "${SUBSET[$name]}" "${how[@]}" "${GENERATE[@]}" "${DEVICE[@]}" \
    --post-process sentencepiece --print-qe --qe-output "$out.part" > "${out%.jsonl}.generate.part"
  mv "${out%.jsonl}.generate.part" "${out%.jsonl}.generate.txt"
  mv "$out.part" "$out"
}

# evaluate NAME SET QE.jsonl [GOLD_FROM]: the gold of SET (Eval Self: XCOMET-XL with the
# reference, or chrF without comet-score; Eval Other: the human scores), CometKiwi beside
# the QE methods, and eval/NAME.json. GOLD_FROM: the gold folder of the same hypotheses
# (the grid heads reuse the main head's; merge checks that the hypotheses are the same).
evaluate() {
  local name=$1 set=$2 qe=$3 from=${4:-} out="$WORK/eval/$1.json" gold=()
  [[ -f "$out" ]] && return 0
  mkdir -p "$WORK/eval" "$WORK/gold"
  local refs=(--references "$WORK/raw/$set.de")
  [[ $set == other_* ]] && refs=()
  if [[ -n $COMET && -n $from ]]; then
    "$PYTHON" "$COMMON/comet_gold.py" merge --qe "$qe" --scores "$WORK/gold/$from/cometkiwi.json" \
      --out "$WORK/gold/$name.jsonl"
    qe="$WORK/gold/$name.jsonl"
  elif [[ -n $COMET ]]; then
    "$PYTHON" "$COMMON/comet_gold.py" run --qe "$qe" --sources "$WORK/raw/$set.en" \
      "${refs[@]}" --out "$WORK/gold/$name"
    qe="$WORK/gold/$name/qe.jsonl"
    from=$name
  fi
  if [[ $set == other_* ]]; then
    gold=(--gold-scores "$WORK/raw/$set.human")
  elif [[ -n $COMET ]]; then
    gold=(--gold-json "$WORK/gold/$from/xcomet.json")
  else
    gold=("${refs[@]}")
  fi
  "$PYTHON" -m fairseq_sigmoid_qe.cli.evaluate --qe "$qe" "${gold[@]}" --json > "$out.part"
  mv "$out.part" "$out"
}

# eval_all HEAD_CHECKPOINT [GRID_CHECKPOINT_DIR]: every decoding and setting of the main head,
# then beam Eval Self of each grid head found under the second argument.
eval_all() {
  local head=$1 grid_dir=${2:-}
  for name in test wmt22; do
    for mode in beam sampling; do
      step "decode $name ($mode) with QE; gold; evaluate"
      decode "$head" "$name" "$mode" "$WORK/qe/$name-$mode.jsonl"
      evaluate "$name-$mode" "$name" "$WORK/qe/$name-$mode.jsonl"
    done
  done
  if [[ $EVAL_OTHER == 1 ]]; then
    for name in other_best other_worst; do
      step "Eval Other: force-decode $name with QE; human gold; evaluate"
      decode "$head" "$name" reference "$WORK/qe/$name-reference.jsonl"
      evaluate "$name-reference" "$name" "$WORK/qe/$name-reference.jsonl"
    done
  fi
  [[ -n $grid_dir ]] || return 0
  for entry in "${GRID_HEADS[@]}"; do
    local grid=${entry%%|*}
    [[ -f "$grid_dir/$grid/$HEAD_CHECKPOINT" ]] || continue
    for name in test wmt22; do
      step "Table 6 head $grid: decode $name (beam); evaluate"
      decode "$grid_dir/$grid/$HEAD_CHECKPOINT" "$name" beam "$WORK/qe/$name-beam-$grid.jsonl"
      evaluate "$name-beam-$grid" "$name" "$WORK/qe/$name-beam-$grid.jsonl" "$name-beam"
    done
  done
}

paper_table() {
  step "the paper's tables"
  "$PYTHON" "$COMMON/paper_table.py" "$WORK" --model "$1" --gold-note "$GOLD_NOTE" \
    | tee "$WORK/results.md"
}
