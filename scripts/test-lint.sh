#!/usr/bin/env bash
# Lint stage: eslint + prettier (TypeScript/JSON/Markdown), the TypeScript type-check
# (`npm run synth` only transpiles), ruff (Python), shellcheck (every bash script),
# actionlint (GitHub workflows). Reports every linter's findings before failing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

failed=()
run() { # run NAME CMD... -> records NAME when CMD fails, keeps going
  local name=$1
  shift
  log "lint: $name"
  "$@" || failed+=("$name")
}

run eslint npx --no-install eslint --max-warnings=0 .
run prettier npx --no-install prettier --check --log-level=warn .
run tsc npx --no-install tsc -p tsconfig.json --noEmit
run ruff-check "$VENV_DIR/bin/ruff" check --config config/ruff.toml .
run ruff-format "$VENV_DIR/bin/ruff" format --check --config config/ruff.toml .

# Every tracked or new shell script: *.sh files plus files whose shebang names bash/sh.
mapfile -t shell_scripts < <(
  git ls-files --cached --others --exclude-standard |
    while read -r f; do
      [ -f "$f" ] || continue
      case "$f" in
        *.sh) echo "$f" ;;
        *.*) ;;
        *) head -n1 "$f" 2>/dev/null | grep -qE '^#!.*\b(ba)?sh\b' && echo "$f" ;;
      esac
    done
)
run shellcheck shellcheck -x -P SCRIPTDIR "${shell_scripts[@]}"

# Built once from the Go module proxy into .cache/ (scripts/build-actionlint.sh); it also
# runs shellcheck on the workflows' `run:` scripts.
actionlint="$(bash scripts/build-actionlint.sh --path)"
run actionlint "$actionlint" .github/workflows/*.yml

# `packer fmt -check` runs in the ami stage, next to `packer validate`, with the built packer.

if [ "${#failed[@]}" -gt 0 ]; then
  die "lint failed: ${failed[*]}"
fi
log "lint clean (${#shell_scripts[@]} shell scripts checked)"
