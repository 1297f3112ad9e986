/*
 * check_fuzz.c - deterministic mutation fuzzing of the parsers that read
 * text from outside: sluice.yaml, the learning response fields, request
 * targets and CIDRs, the webhook and retry request fields.
 *
 * There is no libFuzzer or AFL on the build machines, so this is a plain
 * Check suite: each test mutates a corpus of valid inputs (the ones the
 * other suites use) with an xorshift generator. Input i of a test is made
 * from its own seed alone, which a failure prints with the input, so
 *   FUZZ_SEED=0x... CK_RUN_CASE=<case> t/unit/check_fuzz
 * replays exactly that input; FUZZ_ITERS=N runs N inputs per test instead
 * of the default (more for a long soak). ASan and UBSan (the sanitizer
 * build) catch memory errors, leaks and undefined behaviour; a crash
 * prints the seed from a death callback. The assertions check what the
 * headers promise: results in their documented ranges, outputs untouched
 * on failure, and parse -> format -> parse round trips.
 *
 * Inputs are copied to heap blocks of their exact size before each call,
 * so ASan sees a read one byte past the end.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/common_interface_defs.h>
#endif

#include "cidr.h"
#include "classify.h"
#include "config.h"
#include "config_value.h"
#include "learn.h"
#include "retry.h"
#include "webhook.h"
#include "wire.h"
#include "testlib.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Unix ms of 9999-12-31T23:59:59.999Z + 1: where the parsers stop. */
#define YEAR_10000_MS 253402300800000LL
/* Retry-After delta-seconds cap: 2^31 s. */
#define DELTA_MAX_MS 2147483648000LL
/*
 * Latest HTTP-date: an rfc850 two-digit year is read as the one nearest
 * to now, so with now late in 9999 it may land up to 50 years past it.
 */
#define HTTP_DATE_MAX_MS (YEAR_10000_MS + 51 * 366 * 86400000LL)
#define NOW 1700000000000LL

/* ---- generator -------------------------------------------------------- */

struct rng {
	uint64_t s;                  /* xorshift64* state, never 0 */
};

static uint64_t rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dULL;
}

/* Uniform enough in [0, n); 0 when n is 0. */
static size_t rng_below(struct rng *r, size_t n)
{
	return n ? (size_t)(rng_next(r) % n) : 0;
}

static bool rng_pct(struct rng *r, unsigned pct)
{
	return rng_below(r, 100) < pct;
}

/* Input i's seed: splitmix64 of base + i, so inputs are independent. */
static uint64_t seed_for(uint64_t base, uint64_t i)
{
	uint64_t z = base + i * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

/* ---- failure reports -------------------------------------------------- */

/* The input being run, for the failure message and the crash handler. */
static struct {
	const char *test;
	uint64_t seed;
	const char *in;
	size_t len;
	char line[160];              /* preformatted for the signal handler */
} cur;

/* in as a C string literal, octal escapes, at most max input bytes. */
static char *escape(const char *in, size_t len, size_t max)
{
	size_t n = len < max ? len : max, o = 0;
	char *out = malloc(n * 4 + 64);

	if (!out)
		return NULL;
	out[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\\' || c == '"') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			memcpy(out + o, "\\n", 2);
			o += 2;
		} else if (c < 0x20 || c >= 0x7f) {
			o += (size_t)sprintf(out + o, "\\%03o", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	if (n < len)
		o += (size_t)sprintf(out + o, "... (%zu bytes)", len);
	out[o] = '\0';
	return out;
}

__attribute__((format(printf, 3, 4), noreturn))
static void fz_fail(int line, const char *cond, const char *fmt, ...)
{
	char *what = NULL, *in = escape(cur.in, cur.len, 2048);
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&what, fmt, ap) < 0)
		what = NULL;
	va_end(ap);
	ck_abort_msg("line %d: %s: %s\n  seed 0x%016" PRIx64 " (FUZZ_SEED="
	             "0x%016" PRIx64 " CK_RUN_CASE=%s replays it)\n  input %s",
	             line, cond, what ? what : "?", cur.seed, cur.seed,
	             cur.test, in ? in : "?");
	/* ck_abort_msg does not return; these keep the compiler calm. */
	free(what);
	free(in);
	abort();
}

/* Asserts cond about the current input, reporting seed and input. */
#define FZ(cond, ...) do { \
		if (!(cond)) \
			fz_fail(__LINE__, #cond, __VA_ARGS__); \
	} while (0)

/* A crash has no Check message: say which input it was, then die. */
static void crash_report(void)
{
	if (write(STDERR_FILENO, cur.line, strlen(cur.line)) < 0)
		return;
}

#ifdef __SANITIZE_ADDRESS__
static void death_callback(void)
{
	char *in = escape(cur.in, cur.len, 2048);

	crash_report();
	fprintf(stderr, "check_fuzz: input %s\n", in ? in : "?");
	free(in);
}
#endif

static void on_signal(int sig)
{
	crash_report();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_crash_report(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGILL };

#ifdef __SANITIZE_ADDRESS__
	__sanitizer_set_death_callback(death_callback);
#endif
	for (size_t i = 0; i < N(sigs); i++)
		signal(sigs[i], on_signal);
}

/* ---- mutation --------------------------------------------------------- */

/* A growable byte string, never longer than max. */
struct buf {
	char *p;
	size_t len, max;
};

/* What a target mutates and with which tokens. */
struct target_def {
	const char *name;            /* the test, for CK_RUN_CASE */
	const char *const *corpus;
	size_t n_corpus;
	const char *const *dict;     /* tokens worth inserting */
	size_t n_dict;
	size_t max_len;
	unsigned iters;              /* default inputs per run */
	bool nul_ok;                 /* NUL bytes allowed (files) */
};

/* Numbers that sit on the edges of the parsers' ranges. */
static const char *const edge_numbers[] = {
	"0", "1", "-1", "+1", "00", "007", "0.0", "0.5", ".5", "1.", "1e3",
	"1E-3", "0x10", "65535", "65536", "2147483647", "2147483648",
	"4294967295", "4294967296", "9223372036854775807",
	"9223372036854775808", "18446744073709551615", "18446744073709551616",
	"99999999999999999999999999999999999999", "1e308", "1e309", "inf",
	"-inf", "nan", "NaN", "-0", "0.000000000000000000000000001",
	"1.9999999999999999999999", "253402300799", "253402300800",
	"1000000000", "999999999999", "1000000000000",
};

static uint8_t random_byte(struct rng *r, bool nul_ok)
{
	static const char interesting[] = " \t\r\n:,;=\"'[]{}%#@/\\.-+*&!?";
	uint8_t c;

	switch (rng_below(r, 4)) {
	case 0:
		c = (uint8_t)interesting[rng_below(r, sizeof(interesting) - 1)];
		break;
	case 1:
		c = (uint8_t)(0x20 + rng_below(r, 0x5f));
		break;
	default:
		c = (uint8_t)rng_next(r);
		break;
	}
	if (c == 0 && !nul_ok)
		c = 'x';
	return c;
}

/* Inserts s[0..n) at pos, as much as fits. */
static void buf_insert(struct buf *b, size_t pos, const char *s, size_t n)
{
	if (pos > b->len)
		pos = b->len;
	if (n > b->max - b->len)
		n = b->max - b->len;
	memmove(b->p + pos + n, b->p + pos, b->len - pos);
	memcpy(b->p + pos, s, n);
	b->len += n;
}

static void buf_delete(struct buf *b, size_t pos, size_t n)
{
	if (pos >= b->len)
		return;
	if (n > b->len - pos)
		n = b->len - pos;
	memmove(b->p + pos, b->p + pos + n, b->len - pos - n);
	b->len -= n;
}

/* A length that is usually short, sometimes long. */
static size_t rng_len(struct rng *r, size_t max)
{
	size_t n = rng_pct(r, 80) ? 1 + rng_below(r, 8) : 1 + rng_below(r, max);

	return n < max ? n : max;
}

/* Inserts count copies of token at pos (deep nesting, long scalars). */
static void insert_run(struct buf *b, size_t pos, const char *token,
                       size_t count)
{
	size_t tl = strlen(token);

	for (size_t i = 0; i < count && b->len + tl <= b->max; i++)
		buf_insert(b, pos, token, tl);
}

static void mutate_once(struct buf *b, struct rng *r,
                        const struct target_def *t)
{
	size_t pos = rng_below(r, b->len + 1), n;
	const char *s;
	char c;

	switch (rng_below(r, 13)) {
	case 0:                      /* flip a bit */
		if (b->len) {
			pos = rng_below(r, b->len);
			b->p[pos] ^= (char)(1u << rng_below(r, 8));
			if (!b->p[pos] && !t->nul_ok)
				b->p[pos] = '0';
		}
		break;
	case 1:                      /* overwrite a byte */
		if (b->len)
			b->p[rng_below(r, b->len)] =
				(char)random_byte(r, t->nul_ok);
		break;
	case 2:                      /* insert bytes */
		n = rng_len(r, 16);
		for (size_t i = 0; i < n; i++) {
			c = (char)random_byte(r, t->nul_ok);
			buf_insert(b, pos, &c, 1);
		}
		break;
	case 3:                      /* delete a range */
		buf_delete(b, pos, rng_len(r, b->len + 1));
		break;
	case 4: {                    /* duplicate a range */
		size_t from = rng_below(r, b->len + 1);
		char tmp[512];

		n = rng_len(r, sizeof(tmp));
		if (n > b->len - from)
			n = b->len - from;
		memcpy(tmp, b->p + from, n);
		buf_insert(b, pos, tmp, n);
		break;
	}
	case 5: {                    /* splice another input's range in */
		const char *o = t->corpus[rng_below(r, t->n_corpus)];
		size_t ol = strlen(o), from = rng_below(r, ol + 1);

		n = rng_len(r, ol + 1);
		if (n > ol - from)
			n = ol - from;
		if (rng_pct(r, 50))
			buf_delete(b, pos, rng_len(r, b->len + 1));
		buf_insert(b, pos, o + from, n);
		break;
	}
	case 6:                      /* a token */
	case 7:
		s = t->dict[rng_below(r, t->n_dict)];
		buf_insert(b, pos, s, strlen(s));
		break;
	case 8:                      /* an edge number, maybe replacing */
		s = edge_numbers[rng_below(r, N(edge_numbers))];
		if (rng_pct(r, 50))
			buf_delete(b, pos, rng_len(r, 12));
		buf_insert(b, pos, s, strlen(s));
		break;
	case 9:                      /* a long run: long scalars, nesting */
		s = t->dict[rng_below(r, t->n_dict)];
		if (rng_pct(r, 50))
			s = (const char *[]){ "a", "9", " ", "[", "{a: ",
			                      "- ", "%", ",", "\"" }
				[rng_below(r, 9)];
		insert_run(b, pos, s, 1 + rng_below(r, b->max / 4));
		break;
	case 10:                     /* truncate */
		b->len = pos;
		break;
	case 11:                     /* swap the case of a byte */
		if (b->len) {
			pos = rng_below(r, b->len);
			c = b->p[pos];
			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
				b->p[pos] = (char)(c ^ 0x20);
		}
		break;
	default: {                   /* replace a byte by its neighbour */
		if (b->len >= 2) {
			pos = rng_below(r, b->len - 1);
			c = b->p[pos];
			b->p[pos] = b->p[pos + 1];
			b->p[pos + 1] = c;
		}
		break;
	}
	}
}

/*
 * Makes input seed's bytes: a corpus entry, mutated 0..n times. The
 * result, exactly *ret_len bytes and a NUL, is malloc'd.
 */
static char *make_input(const struct target_def *t, struct rng *r,
                        size_t *ret_len)
{
	const char *base = t->corpus[rng_below(r, t->n_corpus)];
	struct buf b = { .max = t->max_len };
	unsigned rounds;
	char *out;

	b.p = malloc(b.max + 1);
	ck_assert_ptr_nonnull(b.p);
	b.len = strlen(base) < b.max ? strlen(base) : b.max;
	memcpy(b.p, base, b.len);
	/* Mostly a few mutations, near valid; now and then a pile. */
	rounds = rng_pct(r, 10) ? 0 : 1 + (unsigned)rng_below(r, 4);
	if (rng_pct(r, 10))
		rounds += (unsigned)rng_below(r, 32);
	for (unsigned i = 0; i < rounds; i++)
		mutate_once(&b, r, t);
	out = malloc(b.len + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, b.p, b.len);
	out[b.len] = '\0';
	free(b.p);
	*ret_len = b.len;
	return out;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

/*
 * Runs one() on t's inputs: FUZZ_ITERS of them (default t->iters), or
 * only the one of FUZZ_SEED. base makes each target's stream distinct.
 */
static void fuzz_run(const struct target_def *t, uint64_t base,
                     void (*one)(const char *in, size_t len, struct rng *r))
{
	uint64_t only = env_u64("FUZZ_SEED", 0);
	uint64_t iters = only ? 1 : env_u64("FUZZ_ITERS", t->iters);

	install_crash_report();
	cur.test = t->name;
	for (uint64_t i = 0; i < iters; i++) {
		struct rng r;
		size_t len;
		char *in;

		cur.seed = only ? only : seed_for(base, i);
		r.s = cur.seed;
		snprintf(cur.line, sizeof(cur.line), "check_fuzz: %s died on "
		         "seed 0x%016" PRIx64 " (FUZZ_SEED=0x%016" PRIx64
		         " replays it)\n", t->name, cur.seed, cur.seed);
		in = make_input(t, &r, &len);
		cur.in = in;
		cur.len = len;
		one(in, len, &r);
		cur.in = NULL;
		cur.len = 0;
		free(in);
	}
}

/* A copy of s[0..len) in a block of exactly len bytes, no NUL. */
static char *exact_copy(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(p);
	memcpy(p, s, len);
	return p;
}

/* ---- 1. sluice.yaml --------------------------------------------------- */

#include "config_full.h"

/* Slot 0 is etc/sluice.yaml, read in the fixture. */
static const char *config_corpus[] = {
	NULL,
	full_file,
	"destinations:\n"
	"  \"*.stripe.com\": {rps: 1}\n"
	"  \"*.api.stripe.com\": {rps: 2}\n"
	"  \"*.stripe.com:8443\": {rps: 3}\n"
	"  \"api.stripe.com\": {rps: 4}\n"
	"  \"api.stripe.com:443\": {rps: 5, concurrency: 9}\n"
	"  \"127.0.0.1:9000\": {rps: 6}\n"
	"  \"[::1]:9000\": {rps: 7}\n"
	"  \"::1\": {rps: 8}\n"
	"  \"[2001:DB8::1]\": {weight: 5}\n",
	"destinations:\n  a.com: {rps: 1}\nkeys: {}\n"
	"webhooks:\n  secret_file:\n  secondary_secret_file: \"\"\n"
	"tls:\n  upstream_ca_file: ~\nredis:\n  url: null\n",
	"allow: [10.1.0.0/16]\n"
	"deny_destinations: []\n"
	"defaults:\n  key_headers: [X-Token, Proxy-Key]\n"
	"retry:\n  on: [503]\n"
	"webhooks:\n  retry_schedule: [5s]\n"
	"tls:\n  tunnel: [a.example]\n",
	"allow:\ntls:\n  tunnel: ~\n",
	"listen: \"[::]:0\"\nadmin_listen: localhost:65535\n",
	"---\nmax_body: 10MB\nmax_header: 1MiB\n...\n",
	"base: &b {rps: 2, burst: 3}\ndefaults: *b\n",
	"keys:\n  - weight: 1\n",
	"--- ~\n",
	"{}\n",
};

static const char *const yaml_dict[] = {
	":", ": ", "-", "- ", "[", "]", "{", "}", ",", ", ", "&a ", "*a",
	"&b ", "*b", "!!int ", "!!str ", "!!float ", "!!map ", "!!seq ",
	"!!binary ", "!!null ", "!<tag:yaml.org,2002:int> ", "!x ", "\"",
	"'", "\t", "\n", "\n  ", "\n    ", "#", " # c\n", "---\n", "...\n",
	"? ", "|\n  ", ">-\n  ", "%YAML 1.1\n", "%YAML 1.3\n",
	"%TAG ! tag:x:\n", "~", "null", "true", "false", "yes", "<<: *a\n",
	"\"\\u0000\"", "\"\\x01\"", "\"\\uD800\"", "\"\\U0010FFFF\"", "\\",
	"\xef\xbb\xbf", "\xc3\xa9", "\xff", "\xc3", "\r\n", "\r", "\xc2\x85",
	"\xe2\x80\xa8", "\x01", "\x7f", "rps: ", "burst: ", "weight: ",
	"concurrency: ", "max_queued: ", "aggregate_rps: ", "destinations:\n",
	"keys:\n", "  \"*.a.com\": {rps: 1}\n", "  \"a.com:80\": {weight: 2}\n",
	"  0123456789ab: {weight: 3}\n", "listen: ", "admin_listen: ",
	"allow: [", "deny_destinations: [", "retry:\n  on: [", "defaults:\n  ",
	"learn:\n  ", "webhooks:\n  retry_schedule: [", "jobs:\n  retain: ",
	"tls:\n  tunnel: [", "redis:\n  url: ", "key_headers: [", "1ms", "7d",
	"0.5s", "10MiB", "1GiB", "4TiB", "3KB", "[::1]:0", "\"[::1]:0\"",
	"::1/128", "0.0.0.0/0", "\"*.\"", "*.x", "[::ffff:1.2.3.4]",
	"localhost:", ":99999", "1e9", ".inf", ".nan", "-.5",
};

static char *yaml_file;                  /* etc/sluice.yaml, corpus[0] */
static char *tmp_path;                   /* the file config_load reads */

/* etc/sluice.yaml: from $T_SRC under make check, else beside this file. */
static char *read_example(void)
{
	const char *t = getenv("T_SRC");
	char *path, *text;
	FILE *f;
	long n;

	if (t)
		ck_assert_int_ge(asprintf(&path, "%s/../etc/sluice.yaml", t),
		                 0);
	else
		ck_assert_int_ge(asprintf(&path, "%.*s../../etc/sluice.yaml",
		                          (int)(strrchr(__FILE__, '/') + 1 -
		                                __FILE__), __FILE__), 0);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s (set T_SRC to the source t/)", path,
	              strerror(errno));
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	ck_assert_int_gt(n, 0);
	rewind(f);
	text = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
	text[n] = '\0';
	fclose(f);
	free(path);
	return text;
}

static void config_setup(void)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	yaml_file = read_example();
	config_corpus[0] = yaml_file;
	ck_assert_int_ge(asprintf(&tmp_path, "%s/check_fuzz.XXXXXX",
	                          dir ? dir : "/tmp"), 0);
	fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

static void config_teardown(void)
{
	unlink(tmp_path);
	free(tmp_path);
	tmp_path = NULL;
	free(yaml_file);
	yaml_file = NULL;
	config_corpus[0] = NULL;
}

static void write_file(const char *path, const char *s, size_t len)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, s, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/*
 * Lines libyaml can count in s: LF, CR not before LF, NEL, LS, PS.
 */
static size_t count_breaks(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n' || (s[i] == '\r' && s[i + 1] != '\n'))
			n++;
		else if (i + 1 < len && !memcmp(s + i, "\xc2\x85", 2))
			n++;
		else if (i + 2 < len && (!memcmp(s + i, "\xe2\x80\xa8", 3) ||
		                         !memcmp(s + i, "\xe2\x80\xa9", 3)))
			n++;
	}
	return n;
}

/* Reads a decimal >= 1 at *p, moving past it; 0 when there is none. */
static size_t read_pos(const char **p)
{
	size_t v = 0;

	if (**p < '1' || **p > '9')
		return 0;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (size_t)(*(*p)++ - '0');
	return v;
}

/* msg is "<path>:<line>:<column>: <message>", one line, positions sane. */
static void check_error(const char *msg, const char *in, size_t len)
{
	size_t pl = strlen(tmp_path), line, col;
	const char *p = msg + pl + 1;

	FZ(!strncmp(msg, tmp_path, pl) && msg[pl] == ':',
	   "error without the path: '%s'", msg);
	line = read_pos(&p);
	FZ(line >= 1 && *p == ':', "no line >= 1: '%s'", msg);
	p++;
	col = read_pos(&p);
	FZ(col >= 1 && p[0] == ':' && p[1] == ' ' && p[2] && p[2] != ' ',
	   "no column >= 1 then ': message': '%s'", msg);
	/* +2: at the end of a last line with no break, libyaml moves on. */
	FZ(line <= count_breaks(in, len) + 2, "line %zu past the end (%zu "
	   "breaks): '%s'", line, count_breaks(in, len), msg);
	FZ(col <= len + 1, "column %zu past the end: '%s'", col, msg);
	for (p = msg; *p; p++)
		FZ((unsigned char)*p >= 0x20 && *p != 0x7f,
		   "control character 0x%02x in '%s'", (unsigned char)*p, msg);
}

static void check_limits(const struct limits *l, unsigned set,
                         const char *what)
{
	if (set & LIMIT_RPS)
		FZ(l->rps > 0 && l->rps <= 1e9, "%s rps %g", what, l->rps);
	if (set & LIMIT_CONCURRENCY)
		FZ(l->concurrency >= 1 && l->concurrency <= 1000000,
		   "%s concurrency %u", what, l->concurrency);
	if (set & LIMIT_BURST)
		FZ(l->burst >= 1 && l->burst <= 1000000, "%s burst %u", what,
		   l->burst);
	if (set & LIMIT_MAX_QUEUED)
		FZ(l->max_queued >= 1 && l->max_queued <= 1000000000,
		   "%s max_queued %u", what, l->max_queued);
	if (set & LIMIT_AGGREGATE_RPS)
		FZ(l->aggregate_rps >= 0 && l->aggregate_rps <= 1e9,
		   "%s aggregate_rps %g", what, l->aggregate_rps);
	if (set & LIMIT_AGGREGATE_CONCURRENCY)
		FZ(l->aggregate_concurrency <= 1000000,
		   "%s aggregate_concurrency %u", what,
		   l->aggregate_concurrency);
	if (set & LIMIT_WEIGHT)
		FZ(l->weight >= 1 && l->weight <= 1000000, "%s weight %u", what,
		   l->weight);
}

/* A loaded config holds only values its validators let through. */
static void check_config(const struct config *c)
{
	FZ(c->listen && c->admin_listen && c->state_dir, "%s", "NULL string");
	check_limits(&c->defaults.limits, ~0u, "defaults");
	FZ(c->max_in_flight >= 1 && c->max_in_flight <= 1000000,
	   "max_in_flight %u", c->max_in_flight);
	FZ(c->max_queued >= 1, "max_queued %u", c->max_queued);
	FZ(c->max_header >= 4096 && c->max_header <= 1 << 20,
	   "max_header %" PRIu64, c->max_header);
	FZ(c->sync_timeout >= 1 && c->client_timeout >= 1 &&
	   c->drain_timeout >= 0, "%s", "timeouts");
	FZ(c->learn.min_rps > 0 && c->learn.max_rps > 0 &&
	   c->learn.max_concurrency >= 1 && c->learn.idle_reset >= 1,
	   "%s", "learn");
	FZ(c->retry.max_retries <= 1000 && c->retry.backoff_base >= 0 &&
	   c->retry.backoff_cap >= 1 && c->retry.max_retry_after >= 0,
	   "%s", "retry");
	for (size_t i = 0; i < c->retry.n_on; i++)
		FZ(c->retry.on[i] >= 100 && c->retry.on[i] <= 599,
		   "retry.on %u", c->retry.on[i]);
	FZ(c->webhooks.timeout >= 1 && c->webhooks.n_retry_schedule >= 1,
	   "%s", "webhooks");
	for (size_t i = 0; i < c->webhooks.n_retry_schedule; i++)
		FZ(c->webhooks.retry_schedule[i] >= 0,
		   "retry_schedule %" PRId64, c->webhooks.retry_schedule[i]);
	for (size_t i = 0; i < c->n_destinations; i++) {
		const struct dest_rule *d = &c->destinations[i];

		FZ(d->pattern && d->host && *d->host && d->port <= 65535,
		   "destination %zu", i);
		for (const char *p = d->pattern; *p; p++)
			FZ(!(*p >= 'A' && *p <= 'Z'), "pattern '%s' not "
			   "lower-case", d->pattern);
		check_limits(&d->limits, d->set, d->pattern);
	}
	for (size_t i = 0; i < c->n_keys; i++) {
		FZ(strlen(c->keys[i].hash) == 12 &&
		   strspn(c->keys[i].hash, "0123456789abcdef") == 12,
		   "key hash '%s'", c->keys[i].hash);
		FZ(c->keys[i].weight >= 1 && c->keys[i].weight <= 1000000,
		   "key weight %u", c->keys[i].weight);
	}
	for (size_t i = 0; i < c->allow.n; i++)
		FZ(c->allow.v[i].prefix <= (c->allow.v[i].family == AF_INET ?
		                            32u : 128u), "allow prefix %u",
		   c->allow.v[i].prefix);
}

static void config_one(const char *in, size_t len, struct rng *r)
{
	struct config_errors errs = { 0 };
	struct config *c = config_new();
	int ret;

	ck_assert_ptr_nonnull(c);
	write_file(tmp_path, in, len);
	ret = config_load(c, tmp_path, &errs);
	FZ(ret == 0 || ret == -EINVAL, "config_load returned %d", ret);
	FZ((ret == 0) == (errs.n == 0), "returned %d with %zu errors", ret,
	   errs.n);
	for (size_t i = 0; i < errs.n; i++)
		check_error(errs.msgs[i], in, len);
	if (ret == 0)
		check_config(c);
	config_errors_done(&errs);
	config_free(c);
}

static const struct target_def config_target = {
	"config", config_corpus, N(config_corpus), yaml_dict, N(yaml_dict),
	8192, 2000, true,
};

START_TEST(test_fuzz_config)
{
	fuzz_run(&config_target, 0xc0f1600d, config_one);
}
END_TEST

/* ---- 2. learning fields ----------------------------------------------- */

/* "Name: value" lines from check_learn.c; values also fuzz the parsers. */
static const char *const learn_corpus[] = {
	"X-EZTHROTTLE-RPS: 0.5", "X-EZTHROTTLE-RPS: 10",
	"X-EZTHROTTLE-RPS: 0.000000000000000000001",
	"X-EZTHROTTLE-RPS: 123456789012345678901234567890",
	"X-EZTHROTTLE-MAX-CONCURRENT: 3", "x-Ezthrottle-Max-Concurrent: 1",
	"X-EZTHROTTLE-MAX-CONCURRENT: 1000000",
	"Retry-After: 120", "Retry-After: 1.5", "Retry-After: 2147483649",
	"retry-after: Wed, 15 Nov 2023 00:00:00 GMT",
	"RETRY-AFTER: Sun, 06 Nov 1994 08:49:37 GMT",
	"Retry-After: Sunday, 06-Nov-94 08:49:37 GMT",
	"Retry-After: Sun Nov  6 08:49:37 1994",
	"Retry-After: Sat, 31 Dec 2016 23:59:60 GMT",
	"Retry-After: Fri, 31 Dec 9999 23:59:59 GMT",
	"Retry-After: Thu, 29 Feb 2024 12:00:00 GMT",
	"X-RateLimit-Remaining: 0", "X-RateLimit-Reset: 30",
	"X-RateLimit-Reset: 1.5", "X-RateLimit-Reset: 1700000060",
	"X-RateLimit-Reset: 1700000060000", "X-RateLimit-Reset: 253402300799",
	"X-RateLimit-Limit: 60", "x-rate-limit-remaining: 0",
	"x-rate-limit-reset: 1700000009",
	"x-ratelimit-remaining-requests: 0",
	"x-ratelimit-reset-requests: 6m0s",
	"x-ratelimit-remaining-tokens: 0", "x-ratelimit-reset-tokens: 250ms",
	"x-ratelimit-reset-tokens: 1h2m3.5s",
	"RateLimit-Remaining: 0", "RateLimit-Reset: 7",
	"RateLimit: limit=10, remaining=0, reset=5",
	"RateLimit: limit=10,remaining=0,reset=5",
	"RateLimit-Policy: 10;w=60",
	"RateLimit: \"default\";r=0;t=30",
	"RateLimit-Policy: \"default\";q=100;w=60",
	"RateLimit: \"default\"; r=0; t=2", "RateLimit: default;r=0;t=3",
	"RateLimit: \"default\";r=0",
	"RateLimit-Policy: \"burst\";q=10;w=1, \"day\";q=1000;w=86400",
	"RateLimit: \"day\";r=0, \"burst\";r=0;t=1",
	"retry-after-ms: 1500", "retry-after-ms: 0.1",
	"x-ratelimit-limit: 5000", "x-ratelimit-remaining: 4999",
	"x-ratelimit-reset: 1372700873", "x-ratelimit-used: 1",
	"X-RateLimit-Limit: 100, 100;w=60",
	"x-ratelimit-limit-requests: 60", "x-ratelimit-remaining-requests: 59",
	"x-ratelimit-reset-requests: 1s", "x-ratelimit-limit-tokens: 150000",
	"x-ratelimit-reset-requests: 1m30.5s",
	"anthropic-ratelimit-requests-limit: 50",
	"anthropic-ratelimit-requests-remaining: 49",
	"anthropic-ratelimit-requests-reset: 2026-12-06T12:00:00Z",
	"anthropic-ratelimit-tokens-reset: 2026-12-06T13:00:15.5+01:00",
	"anthropic-ratelimit-output-tokens-remaining: 0",
	"anthropic-ratelimit-input-tokens-reset: 2026-12-06t06:30:10-05:30",
	"RateLimit-Limit: 10, 10;w=1, 50;w=60",
	"RateLimit-Policy: 10;w=1", "RateLimit: r=3;t=1",
	"RateLimit: \"default\";r=50;t=30;pk=:cHJvamVjdC0xMjM=:",
	"RateLimit-Policy: \"bytes\";q=65536;w=1;qu=\"content-bytes\", "
	"\"default\";q=100;w=60",
};

static const char *const field_dict[] = {
	", ", ",", ";", "=", "\"", "\\\"", "r=", "t=", "w=", "q=", "pk=:",
	"remaining=", "reset=", "limit=", "?1", "*", ":", "(", ")", " ", "\t",
	"GMT", "Sun, ", "Sunday, ", "Nov", "Feb", "-94", " 1994", "23:59:60",
	"00:00:00", "29 Feb", "ms", "s", "m", "h", "us", "µs", "ns", ".", "-",
	"+", "e", "X-RateLimit-", "RateLimit", "-Requests", "-Tokens",
	"Retry-After", "X-EZTHROTTLE-", "retry-after-ms", "-Limit",
	"anthropic-ratelimit-", "-requests-", "-tokens-", "q=", "qu=", "pk=",
	"T", "t", "Z", "z", "+01:00", "-00:00", "2026-12-06", ":00.5",
	"1970-01-01T00:00:00Z",
};

/* The name and value of line "Name: value" (value malloc'd). */
static void split_field(const char *line, size_t len, char **ret_name,
                        size_t *ret_name_len, char **ret_value)
{
	const char *colon = memchr(line, ':', len);
	size_t nl = colon ? (size_t)(colon - line) : len;
	const char *v = colon ? colon + 1 : line + len;

	while (v < line + len && *v == ' ')
		v++;
	*ret_name = exact_copy(line, nl);
	*ret_name_len = nl;
	*ret_value = strndup(v, (size_t)(line + len - v));
	ck_assert_ptr_nonnull(*ret_value);
}

/* A "now" in Unix ms: mostly today, sometimes the edges of the range. */
static int64_t random_now(struct rng *r)
{
	switch (rng_below(r, 5)) {
	case 0:
		return 0;
	case 1:
		return (int64_t)rng_below(r, (size_t)YEAR_10000_MS);
	case 2:
		return YEAR_10000_MS - 1 - (int64_t)rng_below(r, 1000000000);
	default:
		return NOW;
	}
}

/*
 * s as the header fields' integers are written: optional spaces and tabs,
 * then digits, then spaces and tabs. -1 when it is not one, or is too big
 * to matter here.
 */
static long long plain_int(const char *s)
{
	long long v = 0;

	s += strspn(s, " \t");
	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > 100000000000LL)
			return -1;
		v = v * 10 + (*s - '0');
	}
	s += strspn(s, " \t");
	return *s ? -1 : v;
}

/* Each value parser: range on success, output untouched on failure. */
static void learn_parsers(const char *v, int64_t now)
{
	double rps = -7;
	unsigned conc = 7;
	int64_t ms = -7, t = -7;
	int ret;

	ret = learn_parse_rps(v, &rps);
	FZ(ret == 0 || ret == -EINVAL || ret == -ERANGE, "rps -> %d", ret);
	FZ(ret ? rps == -7 : isfinite(rps) && rps > 0, "rps %d -> %g", ret,
	   rps);
	/* Within rounding of the C library's reading of the decimal. */
	FZ(ret || fabs(rps - strtod(v, NULL)) <= 1e-12 * rps,
	   "rps -> %.17g, strtod %.17g", rps, strtod(v, NULL));

	ret = learn_parse_concurrency(v, &conc);
	FZ(ret == 0 || ret == -EINVAL || ret == -ERANGE, "conc -> %d", ret);
	FZ(ret ? conc == 7 : conc >= 1 && conc <= LEARN_MAX_CONCURRENCY,
	   "concurrency %d -> %u", ret, conc);
	FZ(ret || plain_int(v) == conc, "concurrency -> %u", conc);

	ret = learn_parse_retry_after(v, now, &ms);
	FZ(ret == 0 || ret == -EINVAL, "retry-after -> %d", ret);
	FZ(ret ? ms == -7 : ms >= 0 && (ms <= DELTA_MAX_MS ||
	                                ms < HTTP_DATE_MAX_MS - now),
	   "retry-after %d -> %" PRId64, ret, ms);

	ret = learn_parse_http_date(v, now, &t);
	FZ(ret == 0 || ret == -EINVAL, "http-date -> %d", ret);
	FZ(ret ? t == -7 : t % 1000 == 0 && t < HTTP_DATE_MAX_MS,
	   "http-date %d -> %" PRId64, ret, t);
	if (ret == 0 && t >= 0 && t < YEAR_10000_MS) {
		/* The IMF-fixdate of t parses back to t. */
		time_t secs = (time_t)(t / 1000);
		struct tm tm;
		char buf[64];
		int64_t t2 = -7;

		FZ(gmtime_r(&secs, &tm) != NULL, "gmtime %" PRId64, t);
		FZ(strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm),
		   "strftime %" PRId64, t);
		FZ(learn_parse_http_date(buf, now, &t2) == 0 && t2 == t,
		   "'%s' -> %" PRId64 ", want %" PRId64, buf, t2, t);
	}

	t = -7;
	ret = learn_parse_rfc3339(v, &t);
	FZ(ret == 0 || ret == -EINVAL, "rfc3339 -> %d", ret);
	FZ(ret ? t == -7 : t > -62167219200000LL - 86400000 &&
	                   t < YEAR_10000_MS + 86400000,
	   "rfc3339 %d -> %" PRId64, ret, t);

	ms = -7;
	ret = learn_parse_reset(v, now, &ms);
	FZ(ret == 0 || ret == -EINVAL || ret == -ERANGE, "reset -> %d", ret);
	FZ(ret ? ms == -7 : ms >= 0 && ms <= YEAR_10000_MS,
	   "reset %d -> %" PRId64, ret, ms);
}

static void learn_one(const char *in, size_t len, struct rng *r)
{
	struct learn_signals ls;
	int64_t now = random_now(r), pause;
	unsigned n_fields = 1;
	double lo, hi, v;

	learn_init(&ls);
	/* The input, then a few plain corpus lines around it. */
	for (unsigned k = (unsigned)rng_below(r, 4); k > 0; k--) {
		const char *line = learn_corpus[rng_below(r, N(learn_corpus))];
		char *name, *value;
		size_t nl;

		split_field(line, strlen(line), &name, &nl, &value);
		learn_field(&ls, name, nl, value, now);
		free(name);
		free(value);
		n_fields++;
	}
	{
		char *name, *value;
		size_t nl;

		split_field(in, len, &name, &nl, &value);
		learn_field(&ls, name, nl, value, now);
		learn_parsers(value, now);
		free(name);
		free(value);
	}
	learn_finish(&ls, now);
	FZ(ls.rps == 0 || (isfinite(ls.rps) && ls.rps > 0), "rps %g", ls.rps);
	FZ(ls.concurrency <= LEARN_MAX_CONCURRENCY, "concurrency %u",
	   ls.concurrency);
	FZ(ls.retry_after_ms >= -1, "retry_after_ms %" PRId64,
	   ls.retry_after_ms);
	FZ(ls.pause_ms >= -1, "pause_ms %" PRId64, ls.pause_ms);
	FZ(ls.bad <= n_fields, "bad %u of %u fields", ls.bad, n_fields);
	FZ(ls.n_want <= LEARN_MAX_POLICIES && ls.n_policy <= LEARN_MAX_POLICIES,
	   "%u wanted, %u policies", ls.n_want, ls.n_policy);
	FZ(ls.n_item <= LEARN_MAX_POLICIES, "%u items", ls.n_item);
	FZ(ls.requests.limit >= -1 && ls.requests.limit <= LEARN_MAX_COUNT &&
	   ls.requests.remaining >= -1 &&
	   ls.requests.remaining <= LEARN_MAX_COUNT &&
	   ls.requests.reset_ms >= -1 &&
	   (ls.requests.window_ms == -1 ||
	    (ls.requests.window_ms >= 1 &&
	     ls.requests.window_ms <= LEARN_MAX_WINDOW_MS)),
	   "requests %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64,
	   ls.requests.limit, ls.requests.remaining, ls.requests.reset_ms,
	   ls.requests.window_ms);
	FZ(ls.tokens.limit >= -1 && ls.tokens.limit <= LEARN_MAX_COUNT &&
	   ls.tokens.remaining >= -1 && ls.tokens.reset_ms >= -1,
	   "tokens %" PRId64 " %" PRId64 " %" PRId64, ls.tokens.limit,
	   ls.tokens.remaining, ls.tokens.reset_ms);
	FZ(isfinite(ls.quota_rps) && ls.quota_rps >= 0 &&
	   isfinite(ls.spread_rps) && ls.spread_rps >= 0 &&
	   (ls.spread_rps > 0) == (ls.spread_ms > 0) &&
	   (ls.spread_ms == -1 || ls.spread_ms == ls.requests.reset_ms),
	   "quota %g spread %g for %" PRId64, ls.quota_rps, ls.spread_rps,
	   ls.spread_ms);
	pause = ls.pause_ms;
	{
		struct learn_quota req = ls.requests;
		double quota = ls.quota_rps, spread = ls.spread_rps;

		learn_finish(&ls, now);
		FZ(ls.pause_ms == pause && ls.quota_rps == quota &&
		   ls.spread_rps == spread &&
		   memcmp(&req, &ls.requests, sizeof(req)) == 0,
		   "learn_finish again: pause %" PRId64 " then %" PRId64,
		   pause, ls.pause_ms);
	}

	/* The engine's clamps keep a learned rps within the configuration. */
	lo = (double)(1 + rng_below(r, 1000)) / 100;
	hi = lo + (double)rng_below(r, 100000) / 100;
	v = learn_clamp_rps(ls.rps, lo, hi);
	FZ(v >= lo && v <= hi, "clamp %g to [%g, %g] -> %g", ls.rps, lo, hi, v);
	{
		unsigned max = (unsigned)rng_below(r, 2000);
		unsigned cv = learn_clamp_concurrency(ls.concurrency, max);

		FZ(cv >= 1 && cv <= (max ? max : 1), "clamp %u to %u -> %u",
		   ls.concurrency, max, cv);
	}
}

static const struct target_def learn_target = {
	"learn", learn_corpus, N(learn_corpus), field_dict, N(field_dict),
	256, 20000, false,
};

START_TEST(test_fuzz_learn)
{
	fuzz_run(&learn_target, 0x1ea51, learn_one);
}
END_TEST

/* ---- 3. request targets and CIDRs ------------------------------------- */

static const char *const target_corpus[] = {
	"http://Host:8080/p?q", "HTTP://a.COM", "http://[::1]:9000/x",
	"https://x.y", "HtTpS://EXAMPLE.org:8443/A/B", "http://a.com:/",
	"http://a.com?x=1", "http://a.com:81?x=1&y", "http://a.com/p#frag",
	"http://a.com/p?q=1#frag?x", "http://[2001:DB8::1]",
	"https://[::FFFF:1.2.3.4]/", "http://[::1]:/", "http://[::1]?q",
	"http://127.0.0.1:65535/", "http://a_b-c.D:1/", "http://a.com:00080/",
	"http://a.com/x@y?u=a@b", "http://a.com/a:b/[c]",
	"http://a.com/a%2Fb/../c//d/./e+f%20g?q=a+b&r=%2F&s=..#x",
	"http://a.com/%zz%%%41", "http://a.com/caf\xc3\xa9",
	"http://[fe80::1%25eth0]/", "http://user@a.com/", "/path?q", "*",
	"a.com:443", "[::1]:443", "[2001:DB8::1]:65535", "10.0.0.1:1",
	"a.com:443 HTTP/1.1",
};

static const char *const cidr_corpus[] = {
	"10.0.0.0/8", "192.0.2.7", "::1", "10.1.2.3/17",
	"2001:db8:ffff:ffff::1/41", "255.255.255.255/0", "::ffff:10.0.0.0/104",
	"::/0", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128",
	"fd00:ec2::254/128", "1::2:3:4:5:6:7", "127.0.0.0/8", "::1/128",
	"169.254.169.254/32", "0.0.0.0/0", "fe80::/10", "::ffff:1.2.3.4",
};

static const char *const url_dict[] = {
	"http://", "https://", "HTTP://", "//", "/", "?", "#", "@", ":", "[",
	"]", "::", "::ffff:", "%", "%25", "%2C", "%2F", "%00", "%zz", ".",
	"..", "/../", ",", ";", "=", "&", "+", " ", "\t", "\r\n", "\x01",
	"\x7f", "\xc3\xa9", "\xff", ":0", ":80", ":443", ":65535", ":65536",
	":4294967377", "1.2.3.4", "255.255.255.255", "256.0.0.1", "0x7f.1",
	"v1.x", "fe80::1%eth0", "localhost", "a.com", "*.", "/128", "/32",
	"/0", "/129", "/33",
};

static bool same_dest(const struct destination *a,
                      const struct destination *b)
{
	return a->scheme == b->scheme && a->port == b->port &&
	       a->ipv6 == b->ipv6 && !strcmp(a->host, b->host);
}

/* What a parsed destination promises. */
static void check_dest(const struct destination *d)
{
	size_t hl = strnlen(d->host, sizeof(d->host));

	FZ(hl >= 1 && hl <= DEST_HOST_MAX, "host length %zu", hl);
	FZ(d->port >= 1 && d->port <= 65535, "port %u", d->port);
	FZ(d->scheme == SCHEME_HTTP || d->scheme == SCHEME_HTTPS, "scheme %d",
	   (int)d->scheme);
	for (size_t i = 0; i < hl; i++)
		FZ(!(d->host[i] >= 'A' && d->host[i] <= 'Z') &&
		   (unsigned char)d->host[i] > 0x20 && d->host[i] != 0x7f &&
		   !strchr("/?#@[] ", d->host[i]), "host '%s'", d->host);
	if (d->ipv6) {
		struct in6_addr a;

		FZ(inet_pton(AF_INET6, d->host, &a) == 1, "ipv6 host '%s'",
		   d->host);
	}
}

/* format -> parse gives d back, as URL and as CONNECT authority. */
static void dest_round_trip(const struct destination *d)
{
	char buf[DEST_HOST_MAX + 64], *auth, *copy;
	struct target t;
	struct destination d2;
	int n = destination_format(d, buf, sizeof(buf));
	enum target_error e;

	FZ(n > 0 && (size_t)n < sizeof(buf), "destination_format -> %d", n);
	FZ(strlen(buf) == (size_t)n, "length %d of '%s'", n, buf);
	copy = strdup(buf);
	ck_assert_ptr_nonnull(copy);
	e = target_parse(copy, &t);
	FZ(e == TARGET_OK && same_dest(&t.dest, d) && t.path_len == 0,
	   "'%s' -> %s, host '%s' port %u", buf, target_error_str(e),
	   t.dest.host, t.dest.port);
	free(copy);

	auth = strstr(buf, "://") + 3;
	copy = exact_copy(auth, strlen(auth));
	memset(&d2, 0, sizeof(d2));
	e = authority_parse(copy, strlen(auth), &d2);
	FZ(e == TARGET_OK && d2.scheme == SCHEME_HTTPS &&
	   d2.port == d->port && d2.ipv6 == d->ipv6 &&
	   !strcmp(d2.host, d->host), "authority '%s' -> %s", auth,
	   target_error_str(e));
	free(copy);
}

static void target_one(const char *in, size_t len, struct rng *r)
{
	struct target t;
	enum target_error e = target_parse(in, &t);
	struct destination d;
	char *auth;
	size_t alen;

	FZ(e >= TARGET_OK && e <= TARGET_BAD_CHAR, "error %d", (int)e);
	FZ(target_error_str(e) && *target_error_str(e), "no text for %d",
	   (int)e);
	if (e == TARGET_OK) {
		char url[DEST_HOST_MAX + 64 + 4096], want[4096 + 2];
		struct target t2;
		char *copy;
		size_t small;
		int n;

		check_dest(&t.dest);
		FZ(t.path >= in && t.path + t.path_len <= in + len,
		   "%s", "path outside raw");
		for (size_t i = 0; i < t.path_len; i++)
			FZ((unsigned char)t.path[i] > 0x20 &&
			   t.path[i] != 0x7f && t.path[i] != '#',
			   "byte 0x%02x in the path", (unsigned char)t.path[i]);
		FZ(t.path_len == 0 || t.path[0] == '/' || t.path[0] == '?',
		   "path '%.*s'", (int)t.path_len, t.path);
		dest_round_trip(&t.dest);

		/* The upstream URL parses to the same destination and path. */
		n = target_upstream_url(&t, url, sizeof(url));
		FZ(n > 0 && (size_t)n < sizeof(url), "upstream url -> %d", n);
		snprintf(want, sizeof(want), "%s%.*s",
		         t.path_len && t.path[0] == '/' ? "" : "/",
		         (int)t.path_len, t.path);
		copy = strdup(url);
		ck_assert_ptr_nonnull(copy);
		FZ(target_parse(copy, &t2) == TARGET_OK &&
		   same_dest(&t2.dest, &t.dest) &&
		   t2.path_len == strlen(want) &&
		   !memcmp(t2.path, want, t2.path_len),
		   "upstream url '%s' does not parse back", url);
		free(copy);
		/* Too small a buffer is -ENOSPC, never an overflow. */
		small = 1 + rng_below(r, (size_t)n);
		copy = malloc(small);
		ck_assert_ptr_nonnull(copy);
		FZ(target_upstream_url(&t, copy, small) == -ENOSPC,
		   "url in %zu bytes", small);
		free(copy);
		n = destination_format(&t.dest, url, sizeof(url));
		small = 1 + rng_below(r, (size_t)n);
		copy = malloc(small);
		ck_assert_ptr_nonnull(copy);
		FZ(destination_format(&t.dest, copy, small) == -ENOSPC,
		   "destination in %zu bytes", small);
		free(copy);
	}

	/* The same bytes as a CONNECT authority, maybe cut short. */
	alen = rng_pct(r, 80) ? len : rng_below(r, len + 1);
	auth = exact_copy(in, alen);
	memset(&d, 0, sizeof(d));
	e = authority_parse(auth, alen, &d);
	FZ(e >= TARGET_OK && e <= TARGET_BAD_CHAR, "authority error %d",
	   (int)e);
	if (e == TARGET_OK) {
		check_dest(&d);
		FZ(d.scheme == SCHEME_HTTPS, "%s", "authority scheme");
		dest_round_trip(&d);
	}
	free(auth);
}

static const struct target_def target_target = {
	"target", target_corpus, N(target_corpus), url_dict, N(url_dict),
	512, 20000, false,
};

START_TEST(test_fuzz_target)
{
	fuzz_run(&target_target, 0x7a46e7, target_one);
}
END_TEST

static void cidr_one(const char *in, size_t len, struct rng *r)
{
	struct cidr c, c2;
	struct cidr_list l = { 0 };
	char addr[INET6_ADDRSTRLEN], text[INET6_ADDRSTRLEN + 8];
	unsigned max;
	int ret;

	memset(&c, 0x5a, sizeof(c));
	ret = cidr_parse(in, &c);
	FZ(ret == 0 || ret == -EINVAL, "cidr_parse -> %d", ret);
	if (ret)
		return;
	FZ(c.family == AF_INET || c.family == AF_INET6, "family %d",
	   c.family);
	max = c.family == AF_INET ? 32 : 128;
	FZ(c.prefix <= max, "prefix %u", c.prefix);
	for (unsigned bit = c.prefix; bit < max; bit++)
		FZ(!(c.addr[bit / 8] & (0x80 >> (bit % 8))), "host bit %u set",
		   bit);

	/* Its text parses back to the same network. */
	FZ(inet_ntop(c.family, c.addr, addr, sizeof(addr)), "%s", "ntop");
	snprintf(text, sizeof(text), "%s/%u", addr, c.prefix);
	FZ(cidr_parse(text, &c2) == 0 && c2.family == c.family &&
	   c2.prefix == c.prefix && !memcmp(c2.addr, c.addr, max / 8),
	   "'%s' does not parse back", text);

	/* The network's first address is inside it. */
	ck_assert_int_eq(cidr_list_add(&l, &c), 0);
	if (c.family == AF_INET) {
		struct sockaddr_in sin = { .sin_family = AF_INET };

		memcpy(&sin.sin_addr, c.addr, 4);
		FZ(cidr_list_match(&l, (struct sockaddr *)&sin), "%s",
		   "own address outside");
	} else {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

		memcpy(&sin6.sin6_addr, c.addr, 16);
		FZ(cidr_list_match(&l, (struct sockaddr *)&sin6), "%s",
		   "own address outside");
	}
	cidr_list_done(&l);
}

static const struct target_def cidr_target = {
	"cidr", cidr_corpus, N(cidr_corpus), url_dict, N(url_dict),
	128, 20000, false,
};

START_TEST(test_fuzz_cidr)
{
	fuzz_run(&cidr_target, 0xc1d4, cidr_one);
}
END_TEST

/* ---- 4. webhook and retry request fields ------------------------------ */

static const char *const webhook_corpus[] = {
	"http://a.example/hook", "https://a.example",
	"HTTPS://A.Example:8443/p/q?x=1&y=%2C", "http://127.0.0.1:1/",
	"http://[::1]:65535/h", "https://[2001:db8::1]/",
	"http://host_name.local./x;y=z/@at/~t/!$&'()*+=:",
	"http://h:/empty-port", "http://h?only-query",
	"http://a.example/x, https://b.example/y",
	"http://a/1,http://a/2,http://a/3,http://a/4,http://a/5,"
	"http://a/6,http://a/7,http://a/8,http://a/9,http://a/10",
};

/* Metadata objects, and numbers for the quorum. */
static const char *const metadata_corpus[] = {
	"{\"order_id\":\"o-1\",\"n\":3}", "{}", "{\"a\":{\"b\":[1,2.5,null]}}",
	"{\"s\":\"\\u00e9\\ud83d\\ude00\",\"t\":true,\"f\":false}",
	"{\"big\":12345678901234567890,\"neg\":-1e-300}",
	"1", "2", " 3 ", "10", "0", "007",
};

static const char *const number_corpus[] = {
	"1", "2", " 3 ", "10", "0", "007", "1000", "1001", "429,503", "500",
	" 429 , 503 ", "100,599", "30s", "500ms", "1.5", "7d", "24h", "5m",
	"10MiB", "1GiB", "10KB", "4TiB", "65536", "1024",
};

static const char *const field_value_dict[] = {
	"http://", "https://", "[", "]", "::1", ":", "/", "?", "#", "@", "%",
	"%2C", "%zz", ",", ", ", " ", "\t", "\xc3\xa9", "\x01", "{", "}",
	"\"", "\\", "\\u0000", "\\ud800", ":", "[]", "null", "true", "1e999",
	"-0", "\"a\":1", "\"a\":1,\"a\":2", "ms", "s", "m", "h", "d", "KiB",
	"MB", "TiB", ".",
};

/* err_size bytes to hold an error, guarded by ASan on both sides. */
static char *err_buf(struct rng *r, size_t *ret_size)
{
	size_t size = rng_pct(r, 70) ? 256 : 1 + rng_below(r, 80);
	char *err = malloc(size);

	ck_assert_ptr_nonnull(err);
	memset(err, 0x5a, size);
	*ret_size = size;
	return err;
}

static void check_err_text(const char *err, size_t size)
{
	FZ(strnlen(err, size) < size, "error text not terminated in %zu",
	   size);
	FZ(size == 1 || err[0], "empty error text in %zu bytes", size);
}

static void webhook_urls_one(const char *in, size_t len, struct rng *r)
{
	const char *values[3];
	char *parts[3], *err, *joined;
	size_t n = rng_pct(r, 60) ? 1 : 2 + rng_below(r, 2), cut = 0;
	size_t err_size, jl = 0;
	struct webhook_urls u, u2;
	int ret;

	for (size_t i = 0; i < n; i++) {
		size_t end = i + 1 == n ? len
		                        : cut + rng_below(r, len - cut + 1);

		parts[i] = strndup(in + cut, end - cut);
		ck_assert_ptr_nonnull(parts[i]);
		values[i] = parts[i];
		cut = end;
	}
	err = err_buf(r, &err_size);
	memset(&u, 0, sizeof(u));
	ret = webhook_parse_urls(values, n, &u, err, err_size);
	FZ(ret == 0 || ret == -EINVAL, "webhook_parse_urls -> %d", ret);
	if (ret) {
		check_err_text(err, err_size);
		goto out;
	}
	FZ(u.n >= 1 && u.n <= WEBHOOK_MAX_URLS, "%zu urls", u.n);
	for (size_t i = 0; i < u.n; i++) {
		const char *s = u.url[i];
		struct target t;
		enum target_error e;

		FZ(strlen(s) <= WEBHOOK_URL_MAX && !strpbrk(s, ",# \t") &&
		   (!strncasecmp(s, "http://", 7) ||
		    !strncasecmp(s, "https://", 8)), "url '%s'", s);
		for (size_t j = 0; j < i; j++)
			FZ(strcmp(s, u.url[j]), "'%s' twice", s);
		/* A webhook the job accepts, the proxy can send to. */
		e = target_parse(s, &t);
		FZ(e == TARGET_OK, "webhook '%s' is a bad target: %s", s,
		   target_error_str(e));
		jl += strlen(s) + 1;
	}
	/* The list joined back with commas is the same list. */
	joined = calloc(1, jl);
	ck_assert_ptr_nonnull(joined);
	for (size_t i = 0; i < u.n; i++) {
		if (i)
			strcat(joined, ",");
		strcat(joined, u.url[i]);
	}
	values[0] = joined;
	memset(&u2, 0, sizeof(u2));
	FZ(webhook_parse_urls(values, 1, &u2, err, err_size) == 0 &&
	   u2.n == u.n, "'%s' does not parse back", joined);
	for (size_t i = 0; i < u.n; i++)
		FZ(!strcmp(u.url[i], u2.url[i]), "url %zu changed", i);
	webhook_urls_done(&u2);
	webhook_urls_done(&u);
	free(joined);
out:
	free(err);
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
}

static const struct target_def webhook_urls_target = {
	"webhook_urls", webhook_corpus, N(webhook_corpus), field_value_dict,
	N(field_value_dict), 2048, 10000, false,
};

START_TEST(test_fuzz_webhook_urls)
{
	fuzz_run(&webhook_urls_target, 0x3eb400c, webhook_urls_one);
}
END_TEST

static void webhook_fields_one(const char *in, size_t len, struct rng *r)
{
	size_t n_urls = rng_below(r, WEBHOOK_MAX_URLS + 1), err_size;
	unsigned q = 77;
	json_t *j = NULL, *j2;
	char *err, *copy, *text;
	int ret;

	ret = webhook_parse_quorum(in, n_urls, &q);
	FZ(ret == 0 || ret == -EINVAL || ret == -ERANGE, "quorum -> %d", ret);
	FZ(ret ? q == 77 : q >= 1 && q <= n_urls, "quorum %d -> %u of %zu",
	   ret, q, n_urls);
	FZ(ret || plain_int(in) == q, "quorum -> %u", q);

	/* Metadata: the bytes as they come, no NUL after them. */
	copy = exact_copy(in, len);
	err = err_buf(r, &err_size);
	ret = webhook_parse_metadata(copy, len, &j, err, err_size);
	FZ(ret == 0 || ret == -EINVAL || ret == -E2BIG, "metadata -> %d",
	   ret);
	if (ret) {
		FZ(j == NULL, "%s", "metadata output set on failure");
		check_err_text(err, err_size);
	} else {
		FZ(json_is_object(j), "%s", "metadata not an object");
		text = json_dumps(j, JSON_COMPACT);
		ck_assert_ptr_nonnull(text);
		j2 = NULL;
		FZ(webhook_parse_metadata(text, strlen(text), &j2, err,
		                          err_size) == 0 && json_equal(j, j2),
		   "'%s' does not parse back", text);
		json_decref(j2);
		free(text);
		json_decref(j);
	}
	free(err);
	free(copy);
}

static const struct target_def webhook_fields_target = {
	"webhook_fields", metadata_corpus, N(metadata_corpus), field_value_dict,
	N(field_value_dict), 1024, 20000, false,
};

START_TEST(test_fuzz_webhook_fields)
{
	fuzz_run(&webhook_fields_target, 0xf1e1d5, webhook_fields_one);
}
END_TEST

/* X-EZTHROTTLE-MAX-RETRIES, -RETRY-ON; config durations and sizes. */
static void numbers_one(const char *in, size_t len, struct rng *r)
{
	struct retry_rules rules, before, back;
	unsigned max = 77, codes[3];
	int64_t ms = -7, ms2 = -7;
	uint64_t bytes = 7, bytes2 = 7;
	char text[RETRY_STATUS_LIMIT * 4 + 1];
	size_t tl = 0;
	int ret;

	ret = retry_parse_max(in, &max);
	FZ(ret == 0 || ret == -EINVAL || ret == -ERANGE, "max -> %d", ret);
	FZ(ret ? max == 77 : max <= RETRY_MAX_RETRIES, "max %d -> %u", ret,
	   max);
	FZ(ret || plain_int(in) == max, "max -> %u", max);

	for (size_t i = 0; i < N(codes); i++)
		codes[i] = 100 + (unsigned)rng_below(r, 540);
	retry_rules_init(&rules, 3, codes, N(codes), rng_pct(r, 50));
	before = rules;
	ret = retry_parse_on(in, &rules);
	FZ(ret == 0 || ret == -EINVAL, "retry_parse_on -> %d", ret);
	if (ret) {
		FZ(!memcmp(&rules, &before, sizeof(rules)), "%s",
		   "rules changed on failure");
	} else {
		FZ(rules.max_retries == before.max_retries &&
		   rules.idempotent == before.idempotent, "%s",
		   "retry_parse_on changed more than the set");
		for (unsigned s = 0; s < RETRY_STATUS_LIMIT; s++) {
			if (!retry_rules_has(&rules, s))
				continue;
			FZ(s >= 100 && s <= 599, "status %u in the set", s);
			tl += (size_t)sprintf(text + tl, "%s%u", tl ? "," : "",
			                      s);
		}
		FZ(tl > 0, "%s", "empty set accepted");
		back = before;
		FZ(retry_parse_on(text, &back) == 0 &&
		   !memcmp(back.on, rules.on, sizeof(rules.on)),
		   "'%s' does not parse back", text);
	}

	ret = config_parse_duration(in, &ms);
	FZ(ret == 0 || ret == -EINVAL, "duration -> %d", ret);
	FZ(ret ? ms == -7 : ms >= 0, "duration %d -> %" PRId64, ret, ms);
	if (ret == 0) {
		snprintf(text, sizeof(text), "%" PRId64 "ms", ms);
		FZ(config_parse_duration(text, &ms2) == 0 && ms2 == ms,
		   "'%s' -> %" PRId64, text, ms2);
	}
	ret = config_parse_size(in, &bytes);
	FZ(ret == 0 || ret == -EINVAL, "size -> %d", ret);
	FZ(ret == 0 || bytes == 7, "size %d -> %" PRIu64, ret, bytes);
	if (ret == 0) {
		snprintf(text, sizeof(text), "%" PRIu64, bytes);
		FZ(config_parse_size(text, &bytes2) == 0 && bytes2 == bytes,
		   "'%s' -> %" PRIu64, text, bytes2);
	}
}

static const struct target_def numbers_target = {
	"numbers", number_corpus, N(number_corpus), field_value_dict,
	N(field_value_dict), 256, 20000, false,
};

START_TEST(test_fuzz_numbers)
{
	fuzz_run(&numbers_target, 0x4e4d, numbers_one);
}
END_TEST

/* ---- the generator itself --------------------------------------------- */

/* Same seed, same input: what makes a printed seed worth anything. */
START_TEST(test_inputs_reproduce)
{
	for (uint64_t i = 0; i < 200; i++) {
		struct rng a = { seed_for(1, i) }, b = { seed_for(1, i) };
		size_t la, lb;
		char *x = make_input(&config_target, &a, &la);
		char *y = make_input(&config_target, &b, &lb);

		ck_assert_uint_eq(la, lb);
		ck_assert_mem_eq(x, y, la);
		ck_assert_uint_le(la, config_target.max_len);
		free(x);
		free(y);
	}
}
END_TEST

/* --- the request byte checks (wire.c) --- */

static const char *const wire_corpus[] = {
	"GET http://a.example/x?y=1 HTTP/1.1\r\nHost: a.example\r\n"
	"User-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
	"POST http://a/p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	"Authorization: Bearer k\r\n\r\nhelloGET http://a/ HTTP/1.1\r\n\r\n",
	"POST http://a/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	"5;e=\"v\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n",
	"\r\nGET / HTTP/1.0\nX-A: b\n\n",
	"PUT http://a/ HTTP/1.1\r\nContent-Length: 0\r\nX-L: caf\xe9\r\n\r\n",
};

static const char *const wire_dict[] = {
	"\r\n", "\r", "\n", " ", "\t", ":", ": ", ";", "\r\n\r\n",
	"Content-Length: ", "Transfer-Encoding: chunked", "Content-Length: 3",
	"Transfer-Encoding : chunked", "0\r\n\r\n", "HTTP/1.1", "HTTP/2.0",
	"\r\n ", "5, 5", "ffffffffffffffff", "\x7f", "\x01", "GET ",
};

/* The verdict of in[0..len) fed in random pieces (0 / the error). */
static const struct wire_error *wire_pieces(const char *in, size_t len,
                                            struct rng *r,
                                            enum wire_state *ret_st)
{
	struct wire_parser p;
	struct wire_scan sc;
	size_t off = 0;

	wire_parser_init(&p, 2048);
	while (off < len) {
		size_t n = 1 + rng_below(r, 24);

		if (n > len - off)
			n = len - off;
		if (wire_parse(&p, in + off, n, &sc) < 0) {
			FZ(sc.err_at < n, "err_at %zu of %zu", sc.err_at, n);
			FZ(!sc.err_in_head || sc.head_at == WIRE_HEAD_BEFORE ||
			   sc.head_at <= sc.err_at, "head_at %zu after err_at "
			   "%zu", sc.head_at, sc.err_at);
			*ret_st = W_FAILED;
			return p.err;
		}
		FZ(sc.head_at == WIRE_NO_HEAD ||
		   sc.head_at == WIRE_HEAD_BEFORE || sc.head_at < n,
		   "head_at %zu of %zu", sc.head_at, n);
		off += n;
	}
	*ret_st = p.st;
	return NULL;
}

static void wire_one(const char *in, size_t len, struct rng *r)
{
	enum wire_state st0, st;
	const struct wire_error *e0, *e;

	e0 = wire_pieces(in, len, r, &st0);
	for (int k = 0; k < 4; k++) {
		e = wire_pieces(in, len, r, &st);
		FZ(e == e0 && st == st0, "verdict depends on the cut: %s / %s",
		   e0 ? e0->message : "ok", e ? e->message : "ok");
	}
	if (e0)
		FZ(e0->status >= 400 && e0->status < 600 && e0->code &&
		   e0->message, "bad error %u", e0->status);
}

static const struct target_def wire_target = {
	"wire", wire_corpus, N(wire_corpus), wire_dict, N(wire_dict),
	1024, 20000, true,
};

START_TEST(test_fuzz_wire)
{
	fuzz_run(&wire_target, 0x313e5, wire_one);
}
END_TEST

static Suite *fuzz_suite(void)
{
	Suite *s = suite_create("fuzz");
	TCase *tc;

	/* Names match struct target_def.name: CK_RUN_CASE selects one. */
	tc = tcase_create("config");
	tcase_add_checked_fixture(tc, config_setup, config_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_inputs_reproduce);
	tcase_add_test(tc, test_fuzz_config);
	suite_add_tcase(s, tc);

	tc = tcase_create("learn");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_learn);
	suite_add_tcase(s, tc);

	tc = tcase_create("target");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_target);
	suite_add_tcase(s, tc);

	tc = tcase_create("cidr");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_cidr);
	suite_add_tcase(s, tc);

	tc = tcase_create("webhook_urls");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_webhook_urls);
	suite_add_tcase(s, tc);

	tc = tcase_create("webhook_fields");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_webhook_fields);
	suite_add_tcase(s, tc);

	tc = tcase_create("numbers");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_numbers);
	suite_add_tcase(s, tc);

	tc = tcase_create("wire");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_fuzz_wire);
	suite_add_tcase(s, tc);
	return s;
}

TESTLIB_MAIN(fuzz_suite)
