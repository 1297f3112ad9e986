#!/usr/bin/env bash
# 05-docs: the man pages name everything the code has (SPEC section 11:
# the names are the contract). Every problem is reported at once, naming
# what is missing and where it should be:
#   - sluiced(8): every flag of 'sluiced --help', and back, and in its
#     SYNOPSIS (by its short name when it has one); every flag of args.c's
#     option table in --help;
#   - sluicectl(1): the same for sluicectl, and every command (its command
#     table, its --help);
#   - sluice.yaml(5): every key of the parser's tables (src/config_keys.c,
#     through the C preprocessor, so its macros are expanded and its
#     comments gone) under its section, and every key documented there
#     accepted by the parser;
#   - sluiced(8): every X-EZTHROTTLE-* header name in a string literal of
#     src/ (any case; comments do not count);
#   - sluiced(8), ADMIN LISTENER: every path the admin listener serves (the
#     string literals of src/admin*.c that start with '/'), and back;
#   - etc/sluice.yaml passes 'sluiced --check-config', and shows every key
#     of the parser ("KEY:", perhaps commented out; not per section).
# Reads the source tree ($T_SRC/..), runs the built binaries; no daemon.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
# shellcheck source=lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

TOP=$(cd "$T_SRC/.." && pwd)
[ -x "$SLUICED" ] || error "SLUICED='$SLUICED' is not an executable"
[ -x "$SLUICECTL" ] || error "SLUICECTL='$SLUICECTL' is not an executable"
for f in src/config_keys.c src/admin.c src/args.c src/ctl/sluicectl.c \
	man/sluiced.8 man/sluicectl.1 man/sluice.yaml.5 etc/sluice.yaml; do
	[ -f "$TOP/$f" ] || error "no $TOP/$f: is T_SRC='$T_SRC' the source t/?"
done

# Problems, one a line, all reported at the end.
: > "$TMP/problems"

say "etc/sluice.yaml is a valid configuration"
mkdir -p "$TMP/state"
RC=0
timeout -k 2 10 "$SLUICED" -t -c "$TOP/etc/sluice.yaml" -l 127.0.0.1:0 \
	-a 127.0.0.1:0 -s "$TMP/state" > "$TMP/check.out" 2> "$TMP/check.err" ||
	RC=$?
[ "$RC" = 0 ] || echo "etc/sluice.yaml is not a valid configuration" \
	"('sluiced --check-config' exited $RC):" \
	"$(head -c 2000 "$TMP/check.err")" >> "$TMP/problems"

say "the help of sluiced and sluicectl"
"$SLUICED" --help > "$TMP/sluiced.help" 2>&1 ||
	fail "'sluiced --help' exited $?: $(cat "$TMP/sluiced.help")"
"$SLUICECTL" --help > "$TMP/sluicectl.help" 2>&1 ||
	fail "'sluicectl --help' exited $?: $(cat "$TMP/sluicectl.help")"

say "the parser's tables, through the C preprocessor"
# The #include lines go: the tables need only the file's own macros.
cpp_ok=
for pp in "${CPP:-cpp}" "${CC:-cc} -E" "gcc -E" "clang -E"; do
	# shellcheck disable=SC2086 # "cc -E" is a command and a flag
	if grep -v '^[[:space:]]*#[[:space:]]*include' \
		"$TOP/src/config_keys.c" |
		$pp -P -x c - > "$TMP/config_keys.i" 2> "$TMP/cpp.err"; then
		cpp_ok=1
		break
	fi
done
[ -n "$cpp_ok" ] || error "no C preprocessor (cpp, cc -E) for" \
	"src/config_keys.c: $(cat "$TMP/cpp.err")"

say "the documentation against the code"
# Exit status 0: none; 3: problems, one a line; else the check broke.
RC=0
"$PYTHON" - "$TOP" "$TMP" >> "$TMP/problems" 2> "$TMP/py.err" <<'EOF' || RC=$?
import os, re, sys

top, tmp = sys.argv[1], sys.argv[2]
problems = []


def problem(msg):
    problems.append(msg)


def read(rel):
    with open(os.path.join(top, rel), encoding="utf-8") as f:
        return f.read()


def strip_c(text):
    """C source without comments and character literals; lines kept, so
    positions still give line numbers. String literals stay."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            if q == '"':
                out.append(text[i:j + 1])
            else:
                out.append("' '")
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def literals(rel):
    """(value, line) of every string literal of a C file, #include lines
    and comments left out."""
    code = strip_c(read(rel))
    code = re.sub(r"(?m)^[ \t]*#[ \t]*include[^\n]*", "", code)
    for m in re.finditer(r'"((?:[^"\\\n]|\\.)*)"', code):
        yield m.group(1), code.count("\n", 0, m.start()) + 1


def c_table(rel, name):
    """The string that opens each row of the C array 'name[] = {...};'."""
    code = strip_c(read(rel))
    m = re.search(r"\b%s\s*\[\s*\]\s*=\s*\{(.*?)\n\};" % name, code, re.S)
    if not m:
        problem("%s: no table '%s[]' found (did it move? update "
                "05-docs.sh)" % (rel, name))
        return []
    return re.findall(r'\{\s*"([^"]+)"', m.group(1))


def man_text(rel):
    """A man page with the escapes that hide a name undone."""
    t = read(rel)
    return t.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")


def man_chunks(text, macro):
    """{title: text} of each part of a man page that starts with macro
    (Sh or Ss); a .Sh ends an .Ss part too."""
    parts, title, cur = {}, None, []
    for line in text.split("\n"):
        m = re.match(r"\.(Sh|Ss)\s+(.*)", line)
        if m and m.group(1) in ("Sh", macro):
            if title is not None:
                parts[title] = "\n".join(cur)
            title, cur = m.group(2).strip(), []
        else:
            cur.append(line)
    if title is not None:
        parts[title] = "\n".join(cur)
    return parts


def man_flags(text):
    """The flags of the .It Fl lines of a man page: {'--config', '-c'}."""
    flags = set()
    for line in re.findall(r"(?m)^\.It\s+Fl\b.*$", text):
        for m in re.finditer(r"\bFl\s+(-?)([A-Za-z0-9][\w-]*)", line):
            if m.group(1) == "-":
                flags.add("--" + m.group(2))
            elif len(m.group(2)) == 1:
                flags.add("-" + m.group(2))
    return flags


def synopsis_flags(text):
    """The flags of a SYNOPSIS: "Fl htV", "Fl h | V", "Fl c Ar file",
    "Fl \\-rps Ar n"."""
    syn = man_chunks(text, "Sh").get("SYNOPSIS", "")
    flags = set()
    for m in re.finditer(r"\bFl\s+((?:(?![A-Z][a-z]\b)\S+\s*)+)", syn):
        for tok in m.group(1).split():
            if tok.startswith("-"):
                flags.add("-" + tok)
            elif tok != "|":
                flags.update("-" + c for c in tok)
    return flags


def help_options(path):
    """(short or None, long or None) of each option line of --help: one
    that starts with a flag, indented by at most 8 (deeper lines go on
    the description of the one above)."""
    opts = []
    for line in open(path, encoding="utf-8"):
        m = re.match(r" {1,8}(?:-([A-Za-z0-9])(?:,\s+|\s+|$))?"
                     r"(?:--([a-z0-9][\w-]*))?", line)
        if m and (m.group(1) or m.group(2)):
            opts.append(("-" + m.group(1) if m.group(1) else None,
                         "--" + m.group(2) if m.group(2) else None))
    return opts


def help_flags(path):
    """The flags of a --help output: those of its option lines, and the
    long ones its descriptions name ("also --admin-listen")."""
    text = open(path, encoding="utf-8").read()
    return ({f for o in help_options(path) for f in o if f} |
            set(re.findall(r"(?<![\w-])(--[a-z0-9][\w-]*)", text)))


def check_flags(prog, help_path, man_rel, src_rel):
    man = man_flags(man_text(man_rel))
    hlp = help_flags(help_path)
    if not hlp:
        problem("'%s --help': no option lines found" % prog)
    for f in sorted(hlp - man):
        problem("%s: flag %s, which '%s --help' lists, has no '.It Fl' "
                "line" % (man_rel, f, prog))
    for f in sorted(man - hlp):
        problem("'%s --help' does not list %s, which %s documents"
                % (prog, f, man_rel))
    syn = synopsis_flags(man_text(man_rel))
    for short, long_ in help_options(help_path):
        if (short or long_) not in syn and long_ not in syn:
            problem("%s: the SYNOPSIS lacks %s" % (man_rel, short or long_))
    for name in c_table(src_rel, "long_options"):
        if "--" + name not in hlp:
            problem("'%s --help' does not list --%s, which %s accepts"
                    % (prog, name, src_rel))


# --- flags --------------------------------------------------------------
check_flags("sluiced", os.path.join(tmp, "sluiced.help"), "man/sluiced.8",
            "src/args.c")
check_flags("sluicectl", os.path.join(tmp, "sluicectl.help"),
            "man/sluicectl.1", "src/ctl/sluicectl.c")

# --- sluicectl commands -------------------------------------------------
help_cmds, in_cmds = [], False
for line in open(os.path.join(tmp, "sluicectl.help"), encoding="utf-8"):
    if line.strip() == "commands:":
        in_cmds = True
    elif in_cmds and not line.strip():
        break
    elif in_cmds:
        m = re.match(r"  (\S+(?: \S+)*?)(?:\s{2,}|$)", line.rstrip("\n"))
        if m:
            # "job ID" is the command "job": arguments are in capitals.
            words = [w for w in m.group(1).split() if not w.isupper()]
            help_cmds.append(" ".join(words))
if not help_cmds:
    problem("'sluicectl --help': no 'commands:' list found")
ctl_man = man_text("man/sluicectl.1")
man_cmds = set()
for line in re.findall(r"(?m)^\.It\s+Cm\s+(.*)$", ctl_man):
    man_cmds.add(" ".join(re.split(r"\s+(?:Ar|Op|Fl|Ns)\b", line)[0]
                          .split()))
for cmd in c_table("src/ctl/sluicectl.c", "commands"):
    if not any(h.split()[0] == cmd for h in help_cmds):
        problem("'sluicectl --help' does not list the command '%s' of "
                "src/ctl/sluicectl.c" % cmd)
for cmd in help_cmds:
    if cmd not in man_cmds:
        problem("man/sluicectl.1: the command '%s', which 'sluicectl "
                "--help' lists, has no '.It Cm %s' line" % (cmd, cmd))
for cmd in sorted(man_cmds - set(help_cmds)):
    problem("'sluicectl --help' does not list the command '%s', which "
            "man/sluicectl.1 documents" % cmd)

# --- sluice.yaml keys ---------------------------------------------------
pre = open(os.path.join(tmp, "config_keys.i"), encoding="utf-8").read()
tables = {}
for m in re.finditer(r"\b(\w+)\s*\[\s*\]\s*=\s*\{(.*?)\}\s*;", pre, re.S):
    rows = re.findall(r'\{\s*\.name\s*=\s*"([^"]+)"([^{}]*)\}', m.group(2))
    if rows:
        tables[m.group(1)] = [
            (n, (re.search(r"\.sub\s*=\s*(\w+)", rest) or [None, None])[1])
            for n, rest in rows]
key_line = {}
for v, line in literals("src/config_keys.c"):
    key_line.setdefault(v, line)
if "config_top_keys" not in tables:
    problem("src/config_keys.c: no table config_top_keys[] after the "
            "preprocessor (did it move? update 05-docs.sh)")
# section ("" for the top) -> [(key, table)]; a row with .sub is a section.
sections, todo = {}, [("", "config_top_keys")]
while todo:
    sec, table = todo.pop(0)
    for name, sub in tables.get(table, []):
        path = sec + "." + name if sec else name
        if sub:
            todo.append((path, sub))
            if sub not in tables:
                problem("src/config_keys.c: section '%s' has the table "
                        "'%s', not found" % (path, sub))
        sections.setdefault(sec, []).append((name, table, bool(sub)))

yaml_man = man_text("man/sluice.yaml.5")
chunks = man_chunks(yaml_man, "Ss")
titles = {"": "Global keys"}
for sec, keys in sections.items():
    title = titles.get(sec, sec)
    text = chunks.get(title)
    for name, table, is_section in keys:
        where = "src/config_keys.c:%s, %s[]" % (key_line.get(name, "?"),
                                                 table)
        full = sec + "." + name if sec else name
        if is_section:
            if full not in chunks:
                problem("man/sluice.yaml.5: the section '%s' (%s) has no "
                        "'.Ss %s'" % (full, where, full))
            continue
        if text is None:
            problem("man/sluice.yaml.5: key '%s' (%s): there is no "
                    "'.Ss %s'" % (full, where, title))
        elif not re.search(r"\bIc\s+%s(?![\w])" % re.escape(name), text):
            problem("man/sluice.yaml.5: key '%s' (%s) is not documented: "
                    "no '.It Ic %s' under '.Ss %s'"
                    % (full, where, name, title))
    # Back: a documented key the parser does not take.
    if text is not None:
        known = {n for n, _, _ in keys}
        for name in re.findall(r"(?m)^\.It\s+Ic\s+(\w+)\s*:", text):
            if name not in known:
                problem("man/sluice.yaml.5: '.Ss %s' documents the key "
                        "'%s', which src/config_keys.c does not accept"
                        % (title, name))

# The example file says it shows every key.
etc = read("etc/sluice.yaml")
for sec, keys in sections.items():
    for name, table, _ in keys:
        if not re.search(r"(?m)^[ \t]*#?[ \t]*(?:\S.*[{,][ \t]*)?%s:"
                         % re.escape(name), etc):
            problem("etc/sluice.yaml: key '%s' (src/config_keys.c:%s, "
                    "%s[]) is not shown, not even commented out"
                    % (sec + "." + name if sec else name,
                       key_line.get(name, "?"), table))

# --- X-EZTHROTTLE-* headers ---------------------------------------------
daemon_man = man_text("man/sluiced.8")
headers = {}
for d, _, files in os.walk(os.path.join(top, "src")):
    for f in sorted(files):
        if not f.endswith((".c", ".h")):
            continue
        rel = os.path.relpath(os.path.join(d, f), top)
        for v, line in literals(rel):
            for h in re.findall(r"(?i)\bx-ezthrottle-[a-z0-9]+(?:-[a-z0-9]+)*",
                                v):
                headers.setdefault(h.upper(), "%s:%d" % (rel, line))
if not headers:
    problem("src/: no X-EZTHROTTLE-* header name found in a string "
            "literal (update 05-docs.sh)")
for h, where in sorted(headers.items()):
    if not re.search(r"(?i)(?<![\w-])%s(?![\w-])" % re.escape(h),
                     daemon_man):
        problem("man/sluiced.8: the header %s (%s) is not documented"
                % (h, where))

# --- admin endpoints ----------------------------------------------------
sh = man_chunks(daemon_man, "Sh")
admin = sh.get("ADMIN LISTENER")
served = {}
for f in sorted(os.listdir(os.path.join(top, "src"))):
    if re.fullmatch(r"admin\w*\.c", f):
        for v, line in literals("src/" + f):
            if re.fullmatch(r"/[A-Za-z0-9_][\w./-]*", v):
                served.setdefault(v, "src/%s:%d" % (f, line))
if not served:
    problem("src/admin*.c: no path literal found (update 05-docs.sh)")
if admin is None:
    problem("man/sluiced.8: no '.Sh ADMIN LISTENER'")
else:
    for path, line in sorted(served.items()):
        if not re.search(r"(?<![\w/])%s(?![\w])" % re.escape(path), admin):
            problem("man/sluiced.8: the admin endpoint %s (%s) is not "
                    "documented under '.Sh ADMIN LISTENER'" % (path, line))
    for m in re.finditer(r"(?m)^\.It\s+Li\s+(?:GET|POST|PUT|DELETE|HEAD)"
                         r"\s+(/[\w./-]*)", admin):
        if m.group(1) not in served:
            problem("man/sluiced.8: '.Sh ADMIN LISTENER' documents %s, "
                    "which src/admin*.c does not serve" % m.group(1))

for p in problems:
    print(p)
sys.exit(3 if problems else 0)
EOF
case $RC in
0|3) ;;
*) error "the check itself failed ($RC): $(cat "$TMP/py.err")" ;;
esac
[ ! -s "$TMP/problems" ] ||
	fail "$(wc -l < "$TMP/problems") problem(s):
$(cat "$TMP/problems")"
say "ok"
