#!/usr/bin/env bash
# Bounded run of every fuzz target (fuzz/, cargo-fuzz on nightly; FUZZING.md has the targets
# and the long campaign). Installs cargo-fuzz if missing, builds the targets (cached in
# fuzz/target), runs each for FUZZ_SECONDS on its committed corpus, and fails on any crash.
#
# The corpus is copied, so a run adds nothing to git; a crash input is kept under
# fuzz/artifacts/<target>/ (ignored) for `cargo +nightly fuzz run <target> <file>`.
# No sanitizer by default: our code denies `unsafe`, and a plain build runs 2-3x faster
# on the CPUs the suite has; FUZZ_SANITIZER=address turns ASan on.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_SECONDS:-15}
sanitizer=${FUZZ_SANITIZER:-none}

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi
python3 seeds.py
cargo +nightly fuzz build -s "$sanitizer"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in $(cargo +nightly fuzz list); do
  mkdir -p "$work/$target" "artifacts/$target"
  cp -r "corpus/$target/." "$work/$target/" 2>/dev/null || true
  # -rss_limit_mb: a decoder that balloons on a small input is a finding too.
  if cargo +nightly fuzz run -s "$sanitizer" "$target" "$work/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=10 \
      -artifact_prefix="artifacts/$target/" >"$work/$target.log" 2>&1; then
    echo "fuzz $target: $(grep -E '^#[0-9]+.*DONE' "$work/$target.log" | tail -1)"
  else
    echo "fuzz $target: FAILED"
    # The panic message sits above libFuzzer's report; show both.
    grep -A4 -m3 'panicked at' "$work/$target.log" || true
    tail -40 "$work/$target.log"
    failed+=("$target")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz targets failed: ${failed[*]} (inputs under fuzz/artifacts/)"
  exit 1
fi
