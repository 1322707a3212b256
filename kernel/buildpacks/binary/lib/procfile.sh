# Shared by the binary buildpack's scripts.

# procfile_web BUILD_DIR — the Procfile's web command; fails when there is none.
procfile_web() {
  [[ -f "$1/Procfile" ]] || return 1
  local web
  web=$(tr -d '\r' <"$1/Procfile" | sed -n 's/^web[[:space:]]*:[[:space:]]*//p' | head -n 1)
  [[ -n "$web" ]] || return 1
  printf '%s\n' "$web"
}

# first_word COMMAND — the program a command runs, without a leading ./ (env assignments aside).
first_word() {
  local word words
  read -ra words <<<"$1"
  for word in "${words[@]}"; do
    [[ "$word" == *=* && "$word" != */* ]] && continue
    printf '%s\n' "${word#./}"
    return 0
  done
}
