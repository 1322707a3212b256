# Shared by the java buildpack's scripts: finding the app's runnable jar and its Main-Class.

# main_class JAR — prints the Main-Class of the jar's manifest (continuation lines joined), or
# nothing. Reads the zip with whatever the stack has: python3, unzip, or the JDK's jar tool.
main_class() {
  local jar=$1 manifest=
  if command -v python3 >/dev/null 2>&1; then
    manifest=$(python3 -c '
import sys, zipfile
try:
    with zipfile.ZipFile(sys.argv[1]) as z:
        sys.stdout.write(z.read("META-INF/MANIFEST.MF").decode("utf-8", "replace"))
except Exception:
    pass
' "$jar")
  elif command -v unzip >/dev/null 2>&1; then
    manifest=$(unzip -p "$jar" META-INF/MANIFEST.MF 2>/dev/null || true)
  fi
  manifest_main_class <<<"$manifest"
}

# manifest_main_class < MANIFEST.MF — the Main-Class value of a manifest on stdin.
manifest_main_class() {
  # Manifest lines wrap at 72 bytes with a leading space on the continuation.
  tr -d '\r' | awk '
    /^ / { if (cur != "") cur = cur substr($0, 2); next }
    { if (cur != "") print cur; cur = $0 }
    END { if (cur != "") print cur }
  ' | sed -n 's/^[Mm]ain-[Cc]lass:[[:space:]]*//p' | head -n 1
}

# runnable_jar BUILD_DIR — the first *.jar at the root with a Main-Class, by name.
runnable_jar() {
  local jar
  shopt -s nullglob
  for jar in "$1"/*.jar; do
    if [[ -f "$jar" && -n "$(main_class "$jar")" ]]; then
      basename "$jar"
      return 0
    fi
  done
  return 1
}

# exploded_main_class BUILD_DIR — the Main-Class of an app pushed as an exploded jar.
exploded_main_class() {
  [[ -f "$1/META-INF/MANIFEST.MF" ]] && manifest_main_class <"$1/META-INF/MANIFEST.MF"
}

# memory_mb — MEMORY_LIMIT (256m, 1g, 524288k, or bytes) in MiB; 512 when unset or unreadable.
memory_mb() {
  local mem=${MEMORY_LIMIT:-512m} mb=
  if [[ "$mem" =~ ^([0-9]+)([kKmMgG]?)$ ]]; then
    case "${BASH_REMATCH[2]}" in
      [gG]) mb=$((10#${BASH_REMATCH[1]} * 1024)) ;;
      [mM]) mb=$((10#${BASH_REMATCH[1]})) ;;
      [kK]) mb=$((10#${BASH_REMATCH[1]} / 1024)) ;;
      *) mb=$((10#${BASH_REMATCH[1]} / 1048576)) ;;
    esac
  fi
  [[ -n "$mb" ]] && ((mb > 0)) || mb=512
  echo "$mb"
}
