#!/usr/bin/env bash
# Runs every example of README.md against a live server and checks the HTTP
# status each curl states, so that the README cannot rot.
#
#   bash scripts/readme-curls.sh [path/to/intake]
#
# The server runs as in scripts/schemathesis.sh: the embedded SQLite in a
# temporary folder, a free port, no rate limit. The README's shell blocks run
# in order in one bash session (so a variable one block sets, a token or an
# id, is there for the next), in a temporary working folder where `docs/`
# is the repository's (the examples under docs/examples/ are found).
#
# The rules the README keeps to:
#
# 1. Only fenced blocks opened with ```sh (indented or not) run. Other
#    fences (```toml, the plain ``` of sample output, ```mermaid) never do.
# 2. A ```sh block whose opening fence comes right after the line
#        <!-- readme-curls: skip -->
#    (invisible on GitHub) does not run: starting the server, cargo
#    test/bench, docker, PostgreSQL, regenerating the spec.
# 3. Every curl states the status it answers at the end of the last line of
#    its command (after any `\` continuation), as a comment:
#        curl -s http://127.0.0.1:8080/v1/me -H "…"          # → 200
#    It works the same for a curl inside `$( … )`, piped into jq or grep, or
#    inside a loop (each run is checked). A curl that states none fails the
#    test before anything runs. One curl per command.
# 4. Every other command must exit 0 (a pipeline: its last command), unless
#    it states its exit status the same way:
#        intake upload … --yes   # → exit 3
# 5. A commented-out line (`# curl …`) is a comment to bash too: it never runs.
# 6. `127.0.0.1:8080` is replaced by the test server's address (and
#    INTAKE_URL points there); `cargo run [--release] [-q] -- ARGS` and
#    `intake ARGS` run the binary under test with ARGS, with the server's
#    settings. `cargo` anything else (or `cargo run` without `--`, which
#    would start a second server) fails.
#
# READMECURLS_BODIES=DIR keeps each curl's answer in DIR/<line>, to read
# what the examples answer when writing the prose around them.
#
# A failure names the README line, the command, the expected and the
# received status, and the answer's body; the first failure stops the run.
set -euo pipefail
# The binary as named from where the script was called.
if [ -n "${1:-}" ] && [ -e "$1" ]; then
  BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
fi
cd "$(dirname "$0")/.."
ROOT="$PWD"

BIN="${BIN:-${1:-${CARGO_TARGET_DIR:-target}/debug/intake}}"
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
README="$ROOT/README.md"
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || { echo "readme-curls: $tool is needed" >&2; exit 2; }
done
[ -x "$BIN" ] || { echo "readme-curls: no binary at $BIN (build it, or name it)" >&2; exit 2; }

DATA="$(mktemp -d)"
WORK="$DATA/work"
STATE="$DATA/state"
mkdir -p "$WORK" "$STATE"
trap 'rm -rf "$DATA"' EXIT
ln -s "$ROOT/docs" "$WORK/docs"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# The README's runnable lines, each at its own line number (every other line
# blank), so that bash's $LINENO is the README's line.
python3 - "$README" "$DATA/readme.sh" "$STATE" "127.0.0.1:$PORT" <<'PY'
import re, sys
readme, out, state, ADDR = sys.argv[1:5]
lines = open(readme, encoding="utf-8").read().split("\n")
script = [""] * len(lines)
EXPECT = re.compile(r"\s#\s*→\s*(exit\s+)?(\d+)\s*$")
CURL = re.compile(r"(^\s*|\$\(\s*|[|;&(]\s*|\b(?:do|then)\s+)curl(?=\s)")
problems = []

def scan(line, quote):
    """The line's code (without a trailing comment) and the quote still open
    at its end (None, "'" or '"'): a string may span lines."""
    i = 0
    while i < len(line):
        c = line[i]
        if quote == "'":
            if c == "'":
                quote = None
        elif quote == '"':
            if c == "\\":
                i += 1
            elif c == '"':
                quote = None
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], None
        i += 1
    return line, quote

def block_lines():
    """Yields (start, end) of each ```sh block to run (0-based, exclusive end)."""
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("```"):
            fence_lang = lines[i].lstrip()[3:].strip()
            skip = i > 0 and lines[i - 1].strip() == "<!-- readme-curls: skip -->"
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith("```"):
                j += 1
            if fence_lang == "sh" and not skip:
                yield i + 1, j
            i = j + 1
        else:
            i += 1

blocks = 0
curls = 0
for start, end in block_lines():
    blocks += 1
    i = start
    while i < end:
        # A command: its lines up to one that ends outside quotes, with no
        # trailing `\` or `|`.
        codes = []
        quote = None
        j = i
        while True:
            code, quote = scan(lines[j], quote)
            codes.append(code)
            if j == end - 1 or (quote is None and not re.search(r"(\\|\|)\s*$", code)):
                break
            j += 1
        cmd = list(range(i, j + 1))
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", codes[-1])
        found = [(k, m) for k, c in zip(cmd, codes) for m in CURL.finditer(c)]
        expect = EXPECT.search(lines[j]) if quote is None else None
        text = [lines[k].replace("127.0.0.1:8080", ADDR) for k in cmd]
        if found:
            if len(found) > 1:
                problems.append(f"README.md:{i+1}: one curl per command, found {len(found)}")
            elif not expect or expect.group(1):
                problems.append(f"README.md:{j+1}: a curl without its expected status "
                                f"(end its command with `# → 200`): {lines[j].strip()}")
            else:
                k, m = found[0]
                curls += 1
                status = expect.group(2)
                line = lines[k]
                text[k - i] = (line[: m.end(1)] + f"__curl {i+1} {status}" + line[m.end():]).replace(
                    "127.0.0.1:8080", ADDR)
                # Stop at the first failure (the check may have run in a
                # subshell, `$( … )`, that cannot stop the session itself).
                cut = EXPECT.search(text[-1]).start()
                text[-1] = text[-1][:cut] + "; __stop" + text[-1][cut:]
                with open(f"{state}/cmd.{i+1}", "w", encoding="utf-8") as f:
                    f.write("\n".join(lines[i:j+1]) + "\n")
        elif expect and expect.group(1):
            status = expect.group(2)
            text[0] = "if " + text[0]
            last = text[-1]
            cut = EXPECT.search(last).start()
            text[-1] = (last[:cut] + f"; then __x=0; else __x=$?; fi; __exit_is {j+1} {status} \"$__x\""
                        + last[cut:])
        elif expect:
            problems.append(f"README.md:{j+1}: `# → {expect.group(2)}` on a command that is no curl")
        for k, t in zip(cmd, text):
            script[k] = t
        i = j + 1
        if heredoc:
            # The document's lines as they are, up to its terminator.
            while i < end:
                script[i] = lines[i].replace("127.0.0.1:8080", ADDR)
                i += 1
                if lines[i - 1].strip() == heredoc.group(1):
                    break

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
open(out, "w", encoding="utf-8").write("\n".join(script))
print(f"readme-curls: {blocks} blocks, {curls} curl commands", file=sys.stderr)
PY

export INTAKE_DATA_DIR="$DATA/data" INTAKE_BIND="127.0.0.1:$PORT" INTAKE_LOG=warn
export INTAKE_RATE_LIMIT_PER_SECOND=0
"$BIN" serve >"$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$DATA/server.log"; echo "readme-curls: the server did not start" >&2; exit 1; }

# The session: helpers first, then the README's lines.
cat >"$DATA/session.sh" <<'SESSION'
export INTAKE_URL="http://$INTAKE_BIND"
cargo() {
  if [ "${1:-}" != run ]; then
    echo "readme-curls: only \`cargo run … -- ARGS\` runs here, not: cargo $*" >&2
    return 97
  fi
  while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
  if [ $# -eq 0 ]; then
    echo "readme-curls: \`cargo run\` without \`--\` would start a second server" >&2
    return 97
  fi
  shift
  "$__BIN" "$@"
}
intake() { "$__BIN" "$@"; }

__fail() {
  printf '%s\n' "$@" >>"$__STATE/failed"
  printf '%s\n' "$@" >&3
}

# __curl START EXPECTED ARGS…: the curl, its answer on stdout (or where its
# -o says), its status checked against the README's.
__curl() {
  local start=$1 expected=$2 prev="" outfile="" a got
  shift 2
  for a in "$@"; do
    case "$prev" in -o | --output) outfile=$a ;; esac
    prev=$a
  done
  : >"$__STATE/body"
  command curl --max-time 60 "$@" --write-out '%{stderr}%{http_code}' 2>"$__STATE/stderr" |
    tee "$__STATE/body"
  if [ -n "$outfile" ] && [ -f "$outfile" ]; then cp "$outfile" "$__STATE/body"; fi
  got=$(tail -c 3 "$__STATE/stderr")
  if [ -n "${READMECURLS_BODIES:-}" ]; then cp "$__STATE/body" "$READMECURLS_BODIES/$start"; fi
  echo "$start $expected $got" >>"$__STATE/calls"
  if [ "$got" = "$expected" ]; then
    printf 'ok    README.md:%-5s %s\n' "$start" "$got" >&3
  else
    __fail "FAIL  README.md:$start: expected $expected, got $got" \
      "--- the command:" "$(cat "$__STATE/cmd.$start")" \
      "--- the answer:" "$(head -c 4000 "$__STATE/body")" \
      "$(head -c -3 "$__STATE/stderr")"
  fi
}

__exit_is() {
  if [ "$3" = "$2" ]; then
    printf 'ok    README.md:%-5s exit %s\n' "$1" "$3" >&3
  else
    __fail "FAIL  README.md:$1: expected exit $2, got exit $3" "$(sed -n "$1p" "$__README")"
    exit 1
  fi
}

__err() {
  __fail "FAIL  README.md:$2: a command exited $1" "$(sed -n "$2p" "$__README")"
  exit 1
}
trap '__err $? $LINENO' ERR
__stop() { [ ! -s "$__STATE/failed" ] || exit 1; }
source "$__SCRIPT"
SESSION

set +e
(
  cd "$WORK"
  __BIN="$BIN" __STATE="$STATE" READMECURLS_BODIES="${READMECURLS_BODIES:+$(cd "$READMECURLS_BODIES" && pwd)}" __README="$README" __SCRIPT="$DATA/readme.sh" \
    bash "$DATA/session.sh" 3>&2 </dev/null >"$DATA/session.out" 2>&1
)
status=$?
[ "$status" -eq 0 ] || echo "readme-curls: the session exited $status" >&2
set -e

calls=$(wc -l <"$STATE/calls" 2>/dev/null || echo 0)
if [ "$status" -ne 0 ] || [ -s "$STATE/failed" ]; then
  echo "--- the end of the session's output (answers and messages):" >&2
  tail -c 2000 "$DATA/session.out" >&2
  echo >&2
  echo "readme-curls: FAILED after $calls curl calls" >&2
  exit 1
fi
# Every curl of the README ran (none sat in a branch not taken).
for cmd in "$STATE"/cmd.*; do
  line=${cmd##*.}
  if ! grep -q "^$line " "$STATE/calls"; then
    echo "readme-curls: README.md:$line: this curl never ran" >&2
    exit 1
  fi
done
if grep -q "panicked" "$DATA/server.log"; then
  cat "$DATA/server.log" >&2
  echo "readme-curls: the server panicked" >&2
  exit 1
fi
echo "readme-curls: $calls curl calls, every status as README.md states"
