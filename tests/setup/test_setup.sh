#!/usr/bin/env bash
# scripts/setup against stand-in dpkg-query, apt-get and npm: what it would install, and that it
# exits 0, for a fresh machine (nothing installed), a ready one (all installed) and one in
# between; also that a failing apt-get stops it with a message and that `setup bench` adds the
# benchmarks' baseline. The machines CI and developers use already have every package, so
# without this test the fresh-machine path (which once failed before installing anything) would
# never run in CI. `make fresh-check` runs the real thing on a debootstrap'd Debian.
#
# Hermetic: the script is copied with package-lock.json into a scratch tree, and PATH holds only
# the stand-ins and a toolbox of symlinks to the few real tools the script uses, so the host's
# own node, npm and dpkg are out of reach. The stand-ins keep their state in files:
#   installed   one Debian package a line; dpkg-query answers from it, apt-get install adds
#   calls       every dpkg-query, apt-get and npm call, one a line
# Output: one line per case, then "N passed, N failed".
set -uo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
scratch="$(mktemp -d /tmp/sonde-setup-test.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0

check() { # check NAME CONDITION-STATUS [DETAIL]
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "ok - $1"
    else
        failed=$((failed + 1))
        echo "not ok - $1${3:+: $3}"
    fi
}

# A world: a repository copy, stand-ins and a toolbox. $1 = directory.
make_world() {
    local w="$1" t
    mkdir -p "$w/repo/scripts" "$w/stand" "$w/tools"
    cp "$src/scripts/setup" "$w/repo/scripts/setup"
    cp "$src/package-lock.json" "$w/repo/package-lock.json"
    : >"$w/installed"
    : >"$w/calls"
    for t in bash env sed tr cat cut sha256sum mktemp rm dirname id grep mkdir cp chmod; do
        ln -s "$(command -v "$t")" "$w/tools/$t"
    done

    # dpkg-query -W -f=FMT PKG...: like the real one, a line per known package, unknown ones on
    # stderr, exit 1 when any was never installed.
    cat >"$w/stand/dpkg-query" <<EOF
#!$BASH
echo "dpkg-query \$*" >>"$w/calls"
shift 2
rc=0
for p in "\$@"; do
    if grep -qx "\$p" "$w/installed"; then
        echo "\$p=install ok installed"
    else
        echo "dpkg-query: no packages found matching \$p" >&2
        rc=1
    fi
done
exit \$rc
EOF
    # apt-get update | install -y -qq --no-install-recommends PKG...: installing nodejs or npm
    # puts a node or npm on PATH, as the real packages do. FAIL_APT=1 fails the install.
    cat >"$w/stand/apt-get" <<EOF
#!$BASH
echo "apt-get \$*" >>"$w/calls"
[ "\$1" = update ] && exit 0
if [ "\${FAIL_APT:-0}" = 1 ]; then
    echo "E: Unable to locate package frobnicate" >&2
    exit 100
fi
for p in "\$@"; do
    case "\$p" in -*|install) continue ;; esac
    echo "\$p" >>"$w/installed"
    case "\$p" in
    nodejs) printf '#!$BASH\necho v18.19.0\n' >"$w/stand/node"; chmod +x "$w/stand/node" ;;
    npm) cp "$w/stand/npm.real" "$w/stand/npm"; chmod +x "$w/stand/npm" ;;
    esac
done
EOF
    # npm ci: what the real one leaves behind that setup looks at.
    cat >"$w/stand/npm.real" <<EOF
#!$BASH
echo "npm \$*" >>"$w/calls"
mkdir -p node_modules/playwright-core
echo '{"name":"playwright-core"}' >node_modules/playwright-core/package.json
EOF
    chmod +x "$w/stand/dpkg-query" "$w/stand/apt-get" "$w/stand/npm.real"
}

run_setup() { # run_setup WORLD [ARGS...]: exit status in $rc, stderr in $w/err
    local w="$1"
    shift
    (cd "$w/repo" && PATH="$w/stand:$w/tools" bash scripts/setup "$@") >"$w/out" 2>"$w/err"
    rc=$?
}

# The packages setup asks dpkg about, from its own dpkg-query call.
asked() { grep '^dpkg-query ' "$1/calls" | head -1 | cut -d' ' -f4-; }
installs() { grep '^apt-get install ' "$1/calls" | sed 's/^apt-get install -y -qq --no-install-recommends //'; }

# --- nothing installed: a fresh Debian 12 with no node and no npm -------------------------
w="$scratch/fresh"
make_world "$w"
run_setup "$w"
check "fresh: exits 0" $rc "rc=$rc, stderr: $(cat "$w/err")"
all="$(asked "$w")"
n=$(wc -w <<<"$all")
[ "$n" -ge 20 ]
check "fresh: asks dpkg about every package ($n)" $?
[ "$(installs "$w")" = "$all" ]
check "fresh: installs exactly what dpkg lacks, nodejs and npm included" $? \
    "asked [$all] installed [$(installs "$w")]"
[[ " $all " == *" nodejs npm "* && " $all " == *" chromium "* && " $all " == *" libbpf-dev "* ]]
check "fresh: the list holds nodejs, npm, chromium and libbpf-dev" $?
[ "$(grep -c '^apt-get update' "$w/calls")" = 1 ]
check "fresh: one apt-get update" $?
grep -qx 'npm ci --no-audit --no-fund --loglevel=error' "$w/calls"
check "fresh: npm ci once node and npm are there" $?
[ -f "$w/repo/node_modules/.sonde-lock.sha256" ]
check "fresh: leaves the lock stamp" $?
grep -q "setup: installing $n Debian packages" "$w/err"
check "fresh: says what it installs" $? "$(cat "$w/err")"

# --- all installed: the same world again is a no-op ----------------------------------------
: >"$w/calls"
run_setup "$w"
check "ready: exits 0" $rc "$(cat "$w/err")"
[ "$(grep -c -v '^dpkg-query ' "$w/calls")" = 0 ] && [ ! -s "$w/err" ]
check "ready: no apt-get, no npm, nothing said" $? "$(cat "$w/calls" "$w/err")"

# --- some installed: node present, half the packages there ---------------------------------
w="$scratch/some"
make_world "$w"
printf '#!%s\necho v20\n' "$BASH" >"$w/stand/node"
cp "$w/stand/npm.real" "$w/stand/npm"
chmod +x "$w/stand/node" "$w/stand/npm"
i=0
want=()
for p in $all; do
    case "$p" in nodejs | npm) continue ;; esac
    if [ $((i % 2)) = 0 ]; then echo "$p" >>"$w/installed"; else want+=("$p"); fi
    i=$((i + 1))
done
run_setup "$w"
check "some: exits 0" $rc "$(cat "$w/err")"
[ "$(installs "$w")" = "${want[*]}" ]
check "some: installs only the ${#want[@]} missing ones" $? "want [${want[*]}] got [$(installs "$w")]"
[[ " $(asked "$w") " != *" nodejs "* ]]
check "some: leaves node alone when one is on PATH" $?

# --- bench adds the baseline ------------------------------------------------------------------
: >"$w/calls"
run_setup "$w" bench
check "bench: exits 0" $rc "$(cat "$w/err")"
[ "$(installs "$w")" = "bpftrace linux-perf lttng-tools liblttng-ust-dev" ]
check "bench: adds the anchors (bpftrace, perf, LTTng)" $? "got [$(installs "$w")]"

# --- apt-get fails: exit 1 and say so -----------------------------------------------------------
w="$scratch/fail"
make_world "$w"
FAIL_APT=1 run_setup "$w"
[ $rc = 1 ]
check "failing apt-get: exits 1" $? "rc=$rc"
grep -q "setup: 'apt-get install' failed" "$w/err" && grep -q "Unable to locate package" "$w/err"
check "failing apt-get: shows apt's words and its own" $? "$(cat "$w/err")"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
