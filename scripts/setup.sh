#!/usr/bin/env bash
# Chordial setup: installs what the build and the tests need, idempotently, and says what it installs.
#
#   bash scripts/setup.sh [--browsers] [--netns] [--all] [--no-wasm] [--no-npm] [--check] [-q]
#   source scripts/setup.sh && chordial_setup [flags]      # same, from another bash script
#
# Always (unless skipped by a flag):
#   - Rust components rustfmt + clippy          (rustup component add)
#   - the wasm32-unknown-unknown target         (rustup target add)            [--no-wasm skips]
#   - wasm-bindgen-cli at the pinned version    (cargo install), only once node-wasm/ exists [--no-wasm skips]
#   - node_modules                              (npm ci / npm install)         [--no-npm skips]
# Only on request:
#   --browsers   chromium, chromium-driver, firefox-esr           (apt-get)
#   --netns      iproute2 (ip), util-linux (unshare)              (apt-get)
#   --all        both of the above
#   --check      install nothing; report what is missing and return 1 if anything is
#   -q           print nothing when nothing had to be installed
#
# Output: one "setup: installing X (how)" line per thing actually installed, then a single "setup: ok" line.
# Rust (rustup) and Node.js themselves are prerequisites; setup tells you if they are missing.

# The default wasm-bindgen(-cli) version when no exact pin is found in the manifests.
CHORDIAL_WASM_BINDGEN_DEFAULT="0.2.130"

_setup_say() { printf 'setup: %s\n' "$*"; }
_setup_err() { printf 'setup: ERROR: %s\n' "$*" >&2; }

# Puts ~/.cargo/bin on PATH when rustup installed there but the shell profile was not loaded (CI, sudo, cron).
chordial_ensure_cargo_path() {
    local bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    if [ -d "$bin" ]; then
        case ":$PATH:" in
            *":$bin:"*) ;;
            *) PATH="$bin:$PATH"; export PATH ;;
        esac
    fi
}

# Prints the wasm-bindgen version the CLI must match:
#   1. an exact pin `wasm-bindgen = "=X"` (or `{ version = "=X", ... }`) in the root Cargo.toml [workspace.dependencies]
#   2. the same in node-wasm/Cargo.toml
#   3. the version Cargo.lock resolved for the wasm-bindgen crate
#   4. CHORDIAL_WASM_BINDGEN_DEFAULT
chordial_wasm_bindgen_version() {
    local root="$1" v="" f
    for f in "$root/Cargo.toml" "$root/node-wasm/Cargo.toml"; do
        [ -f "$f" ] || continue
        v=$(awk '
            /^[[:space:]]*\[/ {
                sec = $0; gsub(/[[:space:]]/, "", sec)
                insec = (sec == "[workspace.dependencies]" || sec == "[dependencies]")
                next
            }
            insec && /^[[:space:]]*wasm-bindgen[[:space:]]*=/ {
                if (match($0, /"=[0-9][^"]*"/)) { print substr($0, RSTART + 2, RLENGTH - 3); exit }
            }' "$f")
        [ -n "$v" ] && { printf '%s\n' "$v"; return 0; }
    done
    if [ -f "$root/Cargo.lock" ]; then
        v=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' \
            "$root/Cargo.lock")
        [ -n "$v" ] && { printf '%s\n' "$v"; return 0; }
    fi
    printf '%s\n' "$CHORDIAL_WASM_BINDGEN_DEFAULT"
}

# Hash of what node_modules is built from: package-lock.json plus the dependency fields of package.json
# (not "scripts", so editing an npm script does not trigger a reinstall).
_npm_deps_hash() {
    {
        cat "$1/package-lock.json" 2>/dev/null
        node -e '
            const p = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
            const k = ["dependencies", "devDependencies", "optionalDependencies", "peerDependencies",
                       "overrides", "workspaces"];
            console.log(JSON.stringify(k.map((f) => p[f] ?? null)));' "$1/package.json" 2>/dev/null ||
            cat "$1/package.json"
    } | sha256sum | awk '{print $1}'
}

# Runs apt-get as root (directly, or through non-interactive sudo).
_setup_apt() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            _setup_err "need root to run apt-get install $*; run: sudo apt-get install -y $*"
            return 1
        fi
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null &&
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" </dev/null
}

chordial_setup() {
    local want_browsers=0 want_netns=0 want_wasm=1 want_npm=1 check_only=0 quiet=0
    local arg
    for arg in "$@"; do
        case "$arg" in
            --browsers) want_browsers=1 ;;
            --netns) want_netns=1 ;;
            --all) want_browsers=1; want_netns=1 ;;
            --no-wasm) want_wasm=0 ;;
            --no-npm) want_npm=0 ;;
            --check) check_only=1 ;;
            -q|--quiet) quiet=1 ;;
            -h|--help)
                sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
                return 0 ;;
            *) _setup_err "unknown flag: $arg (see --help)"; return 2 ;;
        esac
    done

    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
    local installed=() missing=() failed=0

    # What to do with something missing: install it (saying so) or, with --check, just record it.
    # usage: _need "<what> (<how>)" command args...
    _need() {
        local what="$1"; shift
        if [ "$check_only" -eq 1 ]; then
            missing+=("$what"); return 0
        fi
        _setup_say "installing $what"
        if "$@"; then
            installed+=("$what")
        else
            _setup_err "failed to install $what"
            failed=1
        fi
    }

    # --- Rust --------------------------------------------------------------------------------------------
    chordial_ensure_cargo_path
    if ! command -v cargo >/dev/null 2>&1 || ! command -v rustup >/dev/null 2>&1; then
        _setup_err "Rust (rustup + cargo) not found. Install it with rustup (https://rustup.rs), then rerun."
        return 1
    fi
    local comps
    comps=$(rustup component list --installed 2>/dev/null)
    local c
    for c in rustfmt clippy; do
        if ! grep -q "^$c" <<<"$comps"; then
            _need "Rust component $c (rustup)" rustup component add "$c"
        fi
    done

    if [ "$want_wasm" -eq 1 ]; then
        if ! rustup target list --installed 2>/dev/null | grep -qx 'wasm32-unknown-unknown'; then
            _need "wasm32-unknown-unknown target (rustup)" rustup target add wasm32-unknown-unknown
        fi

        if [ -f "$root/node-wasm/Cargo.toml" ]; then
            local wbv have=""
            wbv=$(chordial_wasm_bindgen_version "$root")
            if command -v wasm-bindgen >/dev/null 2>&1; then
                have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')
            fi
            if [ "$have" != "$wbv" ]; then
                # Not --locked: the CLI's own lockfile does not build with this toolchain. ~2.5 min on 2 cores.
                _need "wasm-bindgen-cli $wbv (cargo install, takes a few minutes${have:+; replaces $have})" \
                    cargo install wasm-bindgen-cli --version "$wbv"
            fi
        elif [ "$quiet" -eq 0 ]; then
            _setup_say "wasm-bindgen-cli not needed yet (no node-wasm/ crate)"
        fi
    fi

    # --- npm ---------------------------------------------------------------------------------------------
    if [ "$want_npm" -eq 1 ] && [ -f "$root/package.json" ]; then
        if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
            _setup_err "Node.js + npm not found (Node 20 or newer is needed). Install them, then rerun."
            return 1
        fi
        # node_modules is current when it holds the hash (see _npm_deps_hash) of what it was built from.
        local stamp="$root/node_modules/.chordial-lock-hash" want_hash have_hash=""
        want_hash=$(_npm_deps_hash "$root")
        [ -f "$stamp" ] && have_hash=$(cat "$stamp")
        if [ ! -d "$root/node_modules" ] || [ "$have_hash" != "$want_hash" ]; then
            _npm_install() {
                (
                    cd "$root" || exit 1
                    if [ -f package-lock.json ]; then
                        npm ci --no-audit --no-fund --loglevel=error </dev/null && exit 0
                        # package.json changed without its lock: let npm reconcile them.
                        _setup_say "npm ci failed (package-lock.json out of date?); running npm install"
                    fi
                    npm install --no-audit --no-fund --loglevel=error </dev/null
                ) || return 1
                # npm install may have written package-lock.json: hash what is there now.
                mkdir -p "$root/node_modules" && _npm_deps_hash "$root" >"$stamp"
            }
            local how="npm install"
            [ -f "$root/package-lock.json" ] && how="npm ci"
            _need "npm packages ($how)" _npm_install
        fi
    fi

    # --- system packages (only on request) ----------------------------------------------------------------
    local pkgs=()
    if [ "$want_browsers" -eq 1 ]; then
        [ -x /usr/bin/chromium ] || pkgs+=(chromium)
        [ -x /usr/bin/chromedriver ] || pkgs+=(chromium-driver)
        [ -x /usr/bin/firefox-esr ] || pkgs+=(firefox-esr)
    fi
    if [ "$want_netns" -eq 1 ]; then
        command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || pkgs+=(iproute2)
        command -v unshare >/dev/null 2>&1 || pkgs+=(util-linux)
    fi
    if [ "${#pkgs[@]}" -gt 0 ]; then
        _need "${pkgs[*]} (apt-get)" _setup_apt "${pkgs[@]}"
    fi

    unset -f _need _npm_install 2>/dev/null

    # --- report --------------------------------------------------------------------------------------------
    if [ "$check_only" -eq 1 ]; then
        if [ "${#missing[@]}" -gt 0 ]; then
            local m
            for m in "${missing[@]}"; do _setup_say "missing: $m"; done
            return 1
        fi
        [ "$quiet" -eq 1 ] || _setup_say "ok (nothing missing)"
        return 0
    fi
    if [ "$failed" -ne 0 ]; then
        _setup_err "some installs failed (see above)"
        return 1
    fi
    if [ "${#installed[@]}" -gt 0 ]; then
        _setup_say "ok (installed: $(IFS=,; printf '%s' "${installed[*]}" | sed 's/,/, /g'))"
    elif [ "$quiet" -eq 0 ]; then
        _setup_say "ok (nothing to install)"
    fi
    return 0
}

# Executed (not sourced): run with the command-line flags.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    chordial_setup "$@"
    exit $?
fi
