# Shared by run.sh and replay.sh: reads NAME's experiment.env and builds the `nlah ablate`
# arguments that define its matrix (harness, tasks, design, models, seeds, run settings), so that
# a replay names exactly the matrix that was recorded.
#
# experiment.env sets HARNESS and TASKS (paths relative to the experiment's folder), DESIGN (a
# TOML file in that folder, or a design keyword such as one-at-a-time), MODULES (optional: the
# modules a keyword design ablates), MODELS, SEEDS and FLAGS (run settings, the same for every arm).

# Usage: load_experiment DIR; then "${matrix_args[@]}" holds the arguments.
load_experiment() {
  local dir=$1
  [ -f "$dir/experiment.env" ] || { echo "$dir/experiment.env: no such experiment" >&2; exit 2; }
  MODULES=""
  # shellcheck source=/dev/null
  . "$dir/experiment.env"
  local design=$DESIGN
  [ -f "$dir/$DESIGN" ] && design="$dir/$DESIGN"
  matrix_args=("$dir/$HARNESS" "$dir/$TASKS" --design "$design" --seeds "$SEEDS")
  local m
  for m in $MODULES; do matrix_args+=(--module "$m"); done
  for m in $MODELS; do matrix_args+=(--model "$m"); done
  # shellcheck disable=SC2206
  matrix_args+=($FLAGS)
}
