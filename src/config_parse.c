/*
 * config_parse.c - reading sluice.yaml: the YAML stream, file:line:column
 * errors, and the walk of the document, table-driven.
 *
 * The file is loaded as a libyaml document, then walked with one table per
 * map: a struct key_def row per key (name, handler, offset, bounds). A
 * handler reports a bad value at its node and returns; the walk carries on,
 * so one run shows every error in the file. A value that fails validation
 * leaves its field as it was; a list is built aside and replaces the old
 * one only when every entry is good.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "config_value.h"

#define MAX_ROWS 32               /* rows of the largest table */
#define SHOW_MAX 60               /* bytes of a bad value quoted back */
#define CTX_MAX 300               /* "destinations.<pattern>" */

struct parse {
	const char *path;
	yaml_document_t *doc;
	struct config_errors *errs;
	size_t n_errors;          /* added by this walk */
	bool oom;
};

struct key_def;

/* Stores node into base; 0, -EINVAL (reported) or -ENOMEM. */
typedef int key_fn(struct parse *p, const struct key_def *k,
                   yaml_node_t *node, void *base);

/* Stores v, the text of node, into slot; as key_fn. */
typedef int value_fn(struct parse *p, const struct key_def *k,
                     yaml_node_t *node, const char *v, void *slot);

struct key_def {
	const char *name;
	key_fn *parse;
	value_fn *value;          /* of a scalar, or of each list entry */
	size_t offset;            /* of the field in base */
	double min, max;          /* bounds of numbers; ms for durations */
	unsigned bit;             /* LIMIT_* of a destination rule */
	const struct key_def *sub;        /* rows of a section */
	const char *const *names;         /* values of an enum, in order */
	/* Lists: the array is at offset, its length at n_offset. */
	size_t n_offset;
	size_t entry_size;
	size_t min_n;             /* entries */
	bool strings;             /* entries are allocated char * */
};

#define FIELD(base, k, type) \
	((type *)(void *)((char *)(base) + (k)->offset))
#define COUNT(base, k) ((size_t *)(void *)((char *)(base) + (k)->n_offset))
#define NODE(p, i) yaml_document_get_node((p)->doc, (i))

/* Errors */

static int errors_vadd(struct config_errors *errs, const char *path,
                       yaml_mark_t mark, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

__attribute__((format(printf, 3, 4)))
static void error_at(struct parse *p, yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = errors_vadd(p->errs, p->path, mark, fmt, ap);
	va_end(ap);
	if (r < 0)
		p->oom = true;
	else
		p->n_errors++;
}

#define AT(node) ((node)->start_mark)

/* s for a message: at most SHOW_MAX bytes, control characters as '?'. */
static const char *show(const char *s, char *buf)
{
	size_t i;

	for (i = 0; s[i] && i < SHOW_MAX; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?'
		                                                    : s[i];
	if (s[i])
		memcpy(buf + i, "...", 4);
	else
		buf[i] = '\0';
	return buf;
}

/* Reports "<fmt>, got '<value of the scalar node>'" at node. */
__attribute__((format(printf, 3, 4)))
static int bad_value(struct parse *p, const yaml_node_t *node,
                     const char *fmt, ...)
{
	char buf[SHOW_MAX + 4], *what;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&what, fmt, ap);
	va_end(ap);
	if (r < 0) {
		p->oom = true;
		return -ENOMEM;
	}
	error_at(p, AT(node), "%s, got '%s'", what,
	         show((const char *)node->data.scalar.value, buf));
	free(what);
	return -EINVAL;
}

static const char *kind(const yaml_node_t *node)
{
	if (node->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (node->type == YAML_MAPPING_NODE)
		return "a map";
	return "a scalar";
}

/* A plain "", "~" or "null": YAML's null. */
static bool is_null(const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	return node->type == YAML_SCALAR_NODE &&
	       node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	        !strcmp(v, "Null") || !strcmp(v, "NULL"));
}

/* " entry" in the messages about a list's entries. */
#define ENTRY(k) ((k)->entry_size ? " entry" : "")

/* The text of a scalar node, or NULL (reported). */
static const char *scalar(struct parse *p, const struct key_def *k,
                          const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	if (node->type != YAML_SCALAR_NODE) {
		error_at(p, AT(node), "'%s'%s must be a scalar, got %s",
		         k->name, ENTRY(k), kind(node));
		return NULL;
	}
	if (strlen(v) != node->data.scalar.length) {
		error_at(p, AT(node), "'%s'%s must not contain NUL bytes",
		         k->name, ENTRY(k));
		return NULL;
	}
	return v;
}

/* The text of a key node, or NULL (reported). */
static const char *key_text(struct parse *p, const char *in,
                            const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE) {
		error_at(p, AT(node), "keys must be scalars%s, got %s", in,
		         kind(node));
		return NULL;
	}
	return (const char *)node->data.scalar.value;
}

/*
 * Values. A value function checks the text v of a scalar node and stores
 * it in slot: the field of a key or an entry of a list.
 */

/* A required, non-empty string. */
static int v_path(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	if (!*v || is_null(node))
		return bad_value(p, node, "'%s' must be a path", k->name);
	return config_replace_str(slot, v);
}

/* An optional string: null or "" unsets it. */
static int v_opt_path(struct parse *p, const struct key_def *k,
                      yaml_node_t *node, const char *v, void *slot)
{
	return config_replace_str(slot, is_null(node) || !*v ? NULL : v);
}

static int v_redis_url(struct parse *p, const struct key_def *k,
                       yaml_node_t *node, const char *v, void *slot)
{
	if (!is_null(node) && *v && strncmp(v, "redis://", 8) != 0 &&
	    strncmp(v, "rediss://", 9) != 0 && strncmp(v, "unix://", 7) != 0)
		return bad_value(p, node, "'%s' must be a redis://, rediss:// "
		                 "or unix:// URL", k->name);
	return v_opt_path(p, k, node, v, slot);
}

static int v_listen(struct parse *p, const struct key_def *k,
                    yaml_node_t *node, const char *v, void *slot)
{
	if (!config_listen_valid(v))
		return bad_value(p, node, "'%s' must be ADDR:PORT or "
		                 "[ADDR]:PORT with a port 0..65535", k->name);
	return config_replace_str(slot, v);
}

static int v_bool(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0)
		return bad_value(p, node, "'%s' must be true or false",
		                 k->name);
	*(bool *)slot = !strcmp(v, "true");
	return 0;
}

/* An integer in k->min..k->max. */
static int v_uint(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	struct decimal d;
	const char *end = config_decimal_parse(v, &d);

	if (!end || *end || d.frac || (double)d.whole < k->min)
		return bad_value(p, node, "'%s' must be an integer >= %.0f",
		                 k->name, k->min);
	if ((double)d.whole > k->max)
		return bad_value(p, node, "'%s' must be at most %.0f",
		                 k->name, k->max);
	*(unsigned *)slot = (unsigned)d.whole;
	return 0;
}

/* A number > 0 and <= k->max, fractions allowed. */
static int v_rate(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	struct decimal d;
	const char *end = config_decimal_parse(v, &d);
	double x = 0;

	if (end)
		x = (double)d.whole + (double)d.frac / (double)d.den;
	if (!end || *end || !(x > 0))
		return bad_value(p, node, "'%s' must be a number > 0",
		                 k->name);
	if (x > k->max)
		return bad_value(p, node, "'%s' must be at most %.0f",
		                 k->name, k->max);
	*(double *)slot = x;
	return 0;
}

/* A duration of at least k->min ms (0 or 1). */
static int v_duration(struct parse *p, const struct key_def *k,
                      yaml_node_t *node, const char *v, void *slot)
{
	int64_t ms;

	if (config_parse_duration(v, &ms) < 0)
		return bad_value(p, node, "'%s'%s must be a duration such as "
		                 "500ms, 30s, 5m or 24h", k->name, ENTRY(k));
	if ((double)ms < k->min)
		return bad_value(p, node, "'%s' must be a duration > 0",
		                 k->name);
	memcpy(slot, &ms, sizeof(ms));
	return 0;
}

/* A size bound as people write it: 0, 4KiB, 1MiB, 1GiB. */
static void size_text(double v, char *buf, size_t len)
{
	static const char *const unit[] = { "", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u < 4 && v >= 1024 && v / 1024 == (double)(uint64_t)(v / 1024)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, "%.0f%s", v, unit[u]);
}

static int v_size(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	char lo[24], hi[24];
	uint64_t n;

	if (config_parse_size(v, &n) < 0)
		return bad_value(p, node, "'%s' must be a size such as 65536, "
		                 "64KiB or 10MiB", k->name);
	/* Bounded sizes have k->max > 0. */
	if (k->max > 0 && ((double)n < k->min || (double)n > k->max)) {
		size_text(k->min, lo, sizeof(lo));
		size_text(k->max, hi, sizeof(hi));
		return bad_value(p, node, "'%s' must be between %s and %s",
		                 k->name, lo, hi);
	}
	*(uint64_t *)slot = n;
	return 0;
}

/*
 * One of k->names, stored as its index. The enums of config.h have no
 * negative values, so GCC and Clang give them unsigned int, which an int
 * lvalue may access.
 */
_Static_assert(sizeof(enum log_level) == sizeof(int) &&
               sizeof(enum queue_by) == sizeof(int) &&
               sizeof(enum learn_scope) == sizeof(int), "enums are ints");

static int v_enum(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	char list[128] = "";
	size_t i;

	for (i = 0; k->names[i]; i++) {
		if (!strcmp(v, k->names[i])) {
			*(int *)slot = (int)i;
			return 0;
		}
	}
	for (i = 0; k->names[i]; i++) {
		strncat(list, k->names[i], sizeof(list) - strlen(list) - 1);
		if (k->names[i + 1])
			strncat(list, k->names[i + 2] ? ", " : " or ",
			        sizeof(list) - strlen(list) - 1);
	}
	return bad_value(p, node, "'%s' must be %s", k->name, list);
}

static int v_cidr(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, const char *v, void *slot)
{
	if (cidr_parse(v, slot) < 0)
		return bad_value(p, node, "'%s' entry must be a network such "
		                 "as 10.0.0.0/8 or ::1/128", k->name);
	return 0;
}

static int v_header(struct parse *p, const struct key_def *k,
                    yaml_node_t *node, const char *v, void *slot)
{
	if (!config_header_valid(v))
		return bad_value(p, node, "'%s' entry must be a header name "
		                 "such as X-Api-Key", k->name);
	return config_replace_str(slot, v);
}

/* A destination pattern, stored lower-cased. */
static int v_pattern(struct parse *p, const struct key_def *k,
                     yaml_node_t *node, const char *v, void *slot)
{
	struct dest_rule rule;
	int r = config_pattern_parse(v, &rule);

	if (r == -EINVAL)
		return bad_value(p, node, "'%s' entry must be a pattern such "
		                 "as api.example.com, *.example.com or "
		                 "host:port", k->name);
	if (r < 0)
		return r;
	free(rule.host);
	memcpy(slot, &rule.pattern, sizeof(rule.pattern));
	return 0;
}

static int v_status(struct parse *p, const struct key_def *k,
                    yaml_node_t *node, const char *v, void *slot)
{
	struct decimal d;
	const char *end = config_decimal_parse(v, &d);

	if (!end || *end || d.frac || d.whole < 100 || d.whole > 599)
		return bad_value(p, node, "'%s' entry must be an HTTP status "
		                 "code 100..599", k->name);
	*(unsigned *)slot = (unsigned)d.whole;
	return 0;
}

/* Keys */

static int parse_scalar(struct parse *p, const struct key_def *k,
                        yaml_node_t *node, void *base)
{
	const char *v = scalar(p, k, node);

	return v ? k->value(p, k, node, v, FIELD(base, k, char)) : -EINVAL;
}

static void list_free(const struct key_def *k, char *v, size_t n)
{
	char *s;

	for (size_t i = 0; k->strings && i < n; i++) {
		memcpy(&s, v + i * k->entry_size, sizeof(s));
		free(s);
	}
	free(v);
}

/* A list of k->value entries, each k->entry_size bytes. */
static int parse_list(struct parse *p, const struct key_def *k,
                      yaml_node_t *node, void *base)
{
	yaml_node_item_t *it = NULL;
	size_t n = 0, got = 0;
	char *v = NULL, *old;
	int r = 0, bad = 0;

	if (node->type == YAML_SEQUENCE_NODE) {
		it = node->data.sequence.items.start;
		n = (size_t)(node->data.sequence.items.top - it);
	} else if (!is_null(node)) {
		error_at(p, AT(node), "'%s' must be a list, got %s", k->name,
		         kind(node));
		return -EINVAL;
	}
	if (n < k->min_n) {
		error_at(p, AT(node), "'%s' must have at least %zu entr%s",
		         k->name, k->min_n, k->min_n == 1 ? "y" : "ies");
		return -EINVAL;
	}
	if (n > 0) {
		v = calloc(n, k->entry_size);
		if (!v)
			return -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		yaml_node_t *e = NODE(p, it[i]);
		const char *s = scalar(p, k, e);
		int e_r = s ? k->value(p, k, e, s, v + got * k->entry_size)
		            : -EINVAL;

		if (e_r == 0)
			got++;
		else if (e_r == -ENOMEM)
			r = e_r;
		else
			bad = e_r;
	}
	if (r < 0 || bad < 0) {
		list_free(k, v, got);
		return r < 0 ? r : bad;
	}
	/* Pointer fields of different types: copied, not type-punned. */
	memcpy(&old, FIELD(base, k, char), sizeof(old));
	list_free(k, old, *COUNT(base, k));
	memcpy(FIELD(base, k, char), &v, sizeof(v));
	*COUNT(base, k) = n;
	return 0;
}

/* Maps */

/*
 * Walks a map (null: empty) with table, storing into base. Sets the rows'
 * bits in *set (if set) for values stored; found[i] (if found, MAX_ROWS)
 * gets the value node of row i. 0 or -ENOMEM; other errors are reported.
 */
static int parse_map(struct parse *p, yaml_node_t *node, const char *ctx,
                     const struct key_def *table, void *base, unsigned *set,
                     yaml_node_t **found)
{
	yaml_node_t *seen[MAX_ROWS] = { 0 };
	char buf[SHOW_MAX + 4], in[CTX_MAX + 8] = "";
	yaml_node_pair_t *pair;

	if (ctx)
		snprintf(in, sizeof(in), " in '%s'", ctx);
	if (node->type != YAML_MAPPING_NODE) {
		if (is_null(node))
			return 0;
		if (ctx)
			error_at(p, AT(node), "'%s' must be a map, got %s", ctx,
			         kind(node));
		else
			error_at(p, AT(node), "the top level must be a map, "
			         "got %s", kind(node));
		return 0;
	}
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = NODE(p, pair->key);
		yaml_node_t *vn = NODE(p, pair->value);
		const char *name = key_text(p, in, kn);
		size_t i;
		int r;

		if (!name)
			continue;
		for (i = 0; table[i].name && strcmp(table[i].name, name); i++)
			;
		if (!table[i].name) {
			error_at(p, AT(kn), "unknown key '%s'%s",
			         show(name, buf), in);
			continue;
		}
		if (seen[i]) {
			error_at(p, AT(kn), "duplicate key '%s'%s", name, in);
			continue;
		}
		seen[i] = vn;
		r = table[i].parse(p, &table[i], vn, base);
		if (r == -ENOMEM)
			return r;
		if (r == 0 && set)
			*set |= table[i].bit;
	}
	if (found)
		memcpy(found, seen, sizeof(seen));
	return 0;
}

static int parse_section(struct parse *p, const struct key_def *k,
                         yaml_node_t *node, void *base)
{
	return parse_map(p, node, k->name, k->sub, base, NULL, NULL);
}

/* The scalar value found for key name, if any. */
static yaml_node_t *found_scalar(const struct key_def *table,
                                 yaml_node_t **found, const char *name)
{
	for (size_t i = 0; table[i].name; i++)
		if (!strcmp(table[i].name, name))
			return found[i] && found[i]->type == YAML_SCALAR_NODE
			       ? found[i] : NULL;
	return NULL;
}

/* The learn: section, then min_rps <= max_rps. */
static int parse_learn(struct parse *p, const struct key_def *k,
                       yaml_node_t *node, void *base)
{
	struct config *cfg = base;
	yaml_node_t *found[MAX_ROWS] = { 0 }, *min, *max;
	int r = parse_map(p, node, k->name, k->sub, base, NULL, found);

	if (r < 0 || cfg->learn.min_rps <= cfg->learn.max_rps)
		return r;
	min = found_scalar(k->sub, found, "min_rps");
	max = found_scalar(k->sub, found, "max_rps");
	if (min)
		return bad_value(p, min, "'min_rps' must be <= max_rps (%g)",
		                 cfg->learn.max_rps);
	if (max)
		return bad_value(p, max, "'max_rps' must be >= min_rps (%g)",
		                 cfg->learn.min_rps);
	return 0;
}

/* The pairs of a map value (null: none); -EINVAL (reported). */
static int pairs(struct parse *p, const struct key_def *k, yaml_node_t *node,
                 yaml_node_pair_t **ret, size_t *ret_n)
{
	*ret = NULL;
	*ret_n = 0;
	if (node->type == YAML_MAPPING_NODE) {
		*ret = node->data.mapping.pairs.start;
		*ret_n = (size_t)(node->data.mapping.pairs.top - *ret);
	} else if (!is_null(node)) {
		error_at(p, AT(node), "'%s' must be a map, got %s", k->name,
		         kind(node));
		return -EINVAL;
	}
	return 0;
}

/* True when one of v[0..n) has the host, port and kind of r. */
static bool rule_dup(const struct dest_rule *v, size_t n,
                     const struct dest_rule *r)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].wildcard == r->wildcard && v[i].port == r->port &&
		    !strcmp(v[i].host, r->host))
			return true;
	return false;
}

/* destinations: pattern -> limits. The whole map replaces the rules. */
static int parse_destinations(struct parse *p, const struct key_def *k,
                              yaml_node_t *node, void *base)
{
	struct config *cfg = base;
	struct dest_rule *v;
	yaml_node_pair_t *pr;
	size_t n = 0, n_pairs;
	char buf[SHOW_MAX + 4], ctx[CTX_MAX];

	if (pairs(p, k, node, &pr, &n_pairs) < 0)
		return -EINVAL;
	v = calloc(n_pairs ? n_pairs : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n_pairs; i++) {
		yaml_node_t *kn = NODE(p, pr[i].key);
		const char *s = key_text(p, " in 'destinations'", kn);
		struct dest_rule *r = &v[n];
		int e = s ? config_pattern_parse(s, r) : -EINVAL;
		bool keep = e == 0;

		if (e == -ENOMEM)
			goto oom;
		if (s && e < 0)
			error_at(p, AT(kn), "'%s' is not a destination pattern "
			         "such as api.example.com, *.stripe.com or "
			         "host:port", show(s, buf));
		if (keep && rule_dup(v, n, r)) {
			error_at(p, AT(kn), "duplicate destination '%s'",
			         show(s, buf));
			keep = false;
		}
		snprintf(ctx, sizeof(ctx), "destinations.%s",
		         s ? show(s, buf) : "?");
		/* A bad pattern's limits are checked too, for their errors. */
		e = parse_map(p, NODE(p, pr[i].value), ctx, k->sub, r,
		              &r->set, NULL);
		if (keep) {
			n++;
		} else {
			config_rule_done(r);
			memset(r, 0, sizeof(*r));
		}
		if (e < 0)
			goto oom;
	}
	for (size_t i = 0; i < cfg->n_destinations; i++)
		config_rule_done(&cfg->destinations[i]);
	free(cfg->destinations);
	cfg->destinations = v;
	cfg->n_destinations = n;
	return 0;
oom:
	while (n > 0)
		config_rule_done(&v[--n]);
	free(v);
	return -ENOMEM;
}

/* 12 lower-case hex digits. */
static bool hash_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		      s[i] <= 'f')))
			return false;
	return i == 12;
}

/* keys: key hash -> { weight }. The whole map replaces the rules. */
static int parse_keys(struct parse *p, const struct key_def *k,
                      yaml_node_t *node, void *base)
{
	struct config *cfg = base;
	struct key_rule *v;
	yaml_node_pair_t *pr;
	size_t n = 0, n_pairs;
	char buf[SHOW_MAX + 4], ctx[CTX_MAX];

	if (pairs(p, k, node, &pr, &n_pairs) < 0)
		return -EINVAL;
	v = calloc(n_pairs ? n_pairs : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n_pairs; i++) {
		yaml_node_t *kn = NODE(p, pr[i].key);
		yaml_node_t *vn = NODE(p, pr[i].value);
		const char *s = key_text(p, " in 'keys'", kn);
		yaml_node_t *found[MAX_ROWS] = { 0 };
		bool keep = s && hash_valid(s), dup = false;

		for (size_t j = 0; keep && j < n; j++)
			dup = dup || !strcmp(v[j].hash, s);
		if (s && !keep)
			error_at(p, AT(kn), "'%s' is not a key hash (12 "
			         "lower-case hex digits)", show(s, buf));
		if (dup)
			error_at(p, AT(kn), "duplicate key hash '%s'", s);
		keep = keep && !dup;
		snprintf(ctx, sizeof(ctx), "keys.%s", s ? show(s, buf) : "?");
		v[n].weight = 0;
		if (parse_map(p, vn, ctx, k->sub, &v[n], NULL, found) < 0) {
			free(v);
			return -ENOMEM;
		}
		if (vn->type == YAML_MAPPING_NODE && !found[0])
			error_at(p, AT(vn), "missing key 'weight' in '%s'",
			         ctx);
		if (keep && v[n].weight) {
			memcpy(v[n].hash, s, sizeof(v[n].hash));
			n++;
		}
	}
	free(cfg->keys);
	cfg->keys = v;
	cfg->n_keys = n;
	return 0;
}

/* Tables */

#define C(f) offsetof(struct config, f)
#define END { .name = NULL }
#define MAP(n, fn, off, rows) { .name = n, .parse = fn, .offset = off, \
                                .sub = rows }
#define VAL(n, fn, off, lo, hi) { .name = n, .parse = parse_scalar, \
	.value = fn, .offset = off, .min = lo, .max = hi }
#define ENUM(n, off, v) { .name = n, .parse = parse_scalar, \
	.value = v_enum, .offset = off, .names = v }
#define LIST(n, f, n_f, fn, type, lo_n, strs) { .name = n, \
	.parse = parse_list, .value = fn, .offset = C(f), .n_offset = C(n_f), \
	.entry_size = sizeof(type), .min_n = lo_n, .strings = strs }
#define LIMIT(n, fn, base, f, lo, hi, b) { .name = n, \
	.parse = parse_scalar, .value = fn, \
	.offset = (base) + offsetof(struct limits, f), \
	.min = lo, .max = hi, .bit = b }
#define LIMIT_ROWS(base) \
	LIMIT("rps", v_rate, base, rps, 0, 1e9, LIMIT_RPS), \
	LIMIT("concurrency", v_uint, base, concurrency, 1, 1e6, \
	      LIMIT_CONCURRENCY), \
	LIMIT("burst", v_uint, base, burst, 1, 1e6, LIMIT_BURST), \
	LIMIT("max_queued", v_uint, base, max_queued, 1, 1e9, \
	      LIMIT_MAX_QUEUED), \
	LIMIT("aggregate_rps", v_rate, base, aggregate_rps, 0, 1e9, \
	      LIMIT_AGGREGATE_RPS), \
	LIMIT("aggregate_concurrency", v_uint, base, \
	      aggregate_concurrency, 1, 1e6, LIMIT_AGGREGATE_CONCURRENCY), \
	LIMIT("weight", v_uint, base, weight, 1, 1e6, LIMIT_WEIGHT)

static const char *const log_level_names[] = {
	[LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug", NULL
};
static const char *const queue_by_names[] = {
	[QUEUE_BY_CREDENTIAL] = "credential",
	[QUEUE_BY_DESTINATION] = "destination", NULL
};
static const char *const scope_names[] = {
	[LEARN_SCOPE_QUEUE] = "queue",
	[LEARN_SCOPE_DESTINATION] = "destination", NULL
};

/* A destinations: entry; offsets in struct dest_rule. */
static const struct key_def rule_keys[] = {
	LIMIT_ROWS(offsetof(struct dest_rule, limits)),
	END
};

/* A keys: entry; offsets in struct key_rule. */
static const struct key_def key_rule_keys[] = {
	VAL("weight", v_uint, offsetof(struct key_rule, weight), 1, 1e6),
	END
};

/* The rest: offsets in struct config. */
static const struct key_def defaults_keys[] = {
	LIMIT_ROWS(C(defaults.limits)),
	ENUM("queue_by", C(defaults.queue_by), queue_by_names),
	LIST("key_headers", defaults.key_headers, defaults.n_key_headers,
	     v_header, char *, 0, true),
	END
};

static const struct key_def learn_keys[] = {
	VAL("ezthrottle_headers", v_bool, C(learn.ezthrottle_headers), 0, 0),
	VAL("retry_after", v_bool, C(learn.retry_after), 0, 0),
	VAL("ratelimit_headers", v_bool, C(learn.ratelimit_headers), 0, 0),
	ENUM("scope", C(learn.scope), scope_names),
	VAL("min_rps", v_rate, C(learn.min_rps), 0, 1e9),
	VAL("max_rps", v_rate, C(learn.max_rps), 0, 1e9),
	VAL("max_concurrency", v_uint, C(learn.max_concurrency), 1, 1e6),
	VAL("idle_reset", v_duration, C(learn.idle_reset), 1, 0),
	END
};

static const struct key_def retry_keys[] = {
	VAL("max_retries", v_uint, C(retry.max_retries), 0, 1000),
	LIST("on", retry.on, retry.n_on, v_status, unsigned, 0, false),
	VAL("backoff_base", v_duration, C(retry.backoff_base), 0, 0),
	VAL("backoff_cap", v_duration, C(retry.backoff_cap), 1, 0),
	VAL("max_retry_after", v_duration, C(retry.max_retry_after), 0, 0),
	END
};

static const struct key_def webhooks_keys[] = {
	VAL("secret_file", v_opt_path, C(webhooks.secret_file), 0, 0),
	VAL("secondary_secret_file", v_opt_path,
	    C(webhooks.secondary_secret_file), 0, 0),
	VAL("timeout", v_duration, C(webhooks.timeout), 1, 0),
	LIST("retry_schedule", webhooks.retry_schedule,
	     webhooks.n_retry_schedule, v_duration, int64_t, 1, false),
	VAL("give_up_after", v_duration, C(webhooks.give_up_after), 0, 0),
	END
};

static const struct key_def jobs_keys[] = {
	VAL("retain", v_duration, C(jobs.retain), 0, 0),
	VAL("dedupe_anonymous", v_bool, C(jobs.dedupe_anonymous), 0, 0),
	VAL("max_pending", v_uint, C(jobs.max_pending), 1, 100000000),
	VAL("max_pending_bytes", v_size, C(jobs.max_pending_bytes),
	    64 << 10, 1024.0 * 1024 * 1024 * 1024),
	END
};

static const struct key_def tls_keys[] = {
	VAL("intercept", v_bool, C(tls.intercept), 0, 0),
	LIST("tunnel", tls.tunnel, tls.n_tunnel, v_pattern, char *, 0, true),
	VAL("upstream_ca_file", v_opt_path, C(tls.upstream_ca_file), 0, 0),
	END
};

static const struct key_def redis_keys[] = {
	VAL("url", v_redis_url, C(redis.url), 0, 0),
	END
};

static const struct key_def top_keys[] = {
	VAL("listen", v_listen, C(listen), 0, 0),
	VAL("admin_listen", v_listen, C(admin_listen), 0, 0),
	VAL("state_dir", v_path, C(state_dir), 0, 0),
	LIST("allow", allow.v, allow.n, v_cidr, struct cidr, 0, false),
	LIST("deny_destinations", deny_destinations.v, deny_destinations.n,
	     v_cidr, struct cidr, 0, false),
	LIST("admin_allow", admin_allow.v, admin_allow.n, v_cidr, struct cidr,
	     0, false),
	VAL("admin_token_file", v_opt_path, C(admin_token_file), 0, 0),
	VAL("admin_timeout", v_duration, C(admin_timeout), 1, 0),
	VAL("max_in_flight", v_uint, C(max_in_flight), 1, 1e6),
	VAL("max_queued", v_uint, C(max_queued), 1, 1e9),
	VAL("max_queues", v_uint, C(max_queues), 1, 1e9),
	VAL("max_body", v_size, C(max_body), 0, 0),
	VAL("max_header", v_size, C(max_header), 4096, 1 << 20),
	VAL("sync_timeout", v_duration, C(sync_timeout), 1, 0),
	VAL("drain_timeout", v_duration, C(drain_timeout), 0, 0),
	VAL("client_timeout", v_duration, C(client_timeout), 1, 0),
	VAL("min_body_rate", v_size, C(min_body_rate), 0, 1 << 30),
	ENUM("log_level", C(log_level), log_level_names),
	VAL("access_log", v_bool, C(access_log), 0, 0),
	MAP("defaults", parse_section, 0, defaults_keys),
	MAP("learn", parse_learn, 0, learn_keys),
	MAP("retry", parse_section, 0, retry_keys),
	MAP("destinations", parse_destinations, 0, rule_keys),
	MAP("keys", parse_keys, 0, key_rule_keys),
	MAP("webhooks", parse_section, 0, webhooks_keys),
	MAP("jobs", parse_section, 0, jobs_keys),
	MAP("tls", parse_section, 0, tls_keys),
	MAP("redis", parse_section, 0, redis_keys),
	END
};

/* The document */

/*
 * Stores the keys of doc, a sluice.yaml document read from path, into cfg,
 * appending every error to errs. 0, -EINVAL when there were errors, or
 * -ENOMEM.
 */
static int config_walk(struct config *cfg, const char *path,
                       yaml_document_t *doc, struct config_errors *errs)
{
	struct parse p = { .path = path, .doc = doc, .errs = errs };
	yaml_node_t *root = yaml_document_get_root_node(doc);

	/* No root: an empty stream, all defaults. */
	if (root && parse_map(&p, root, NULL, top_keys, cfg, NULL, NULL) < 0)
		return -ENOMEM;
	if (p.oom)
		return -ENOMEM;
	return p.n_errors ? -EINVAL : 0;
}

/* Loading */

static int open_file(const char *path, FILE **ret)
{
	struct stat st;
	FILE *f;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	f = fdopen(fd, "r");
	if (!f) {
		int e = errno;

		close(fd);
		return -e;
	}
	*ret = f;
	return 0;
}

static int errors_push(struct config_errors *errs, char *msg)
{
	char **v = realloc(errs->msgs, (errs->n + 1) * sizeof(*v));

	if (!v) {
		free(msg);
		return -ENOMEM;
	}
	errs->msgs = v;
	errs->msgs[errs->n++] = msg;
	return 0;
}

static int errors_vadd(struct config_errors *errs, const char *path,
                       yaml_mark_t mark, const char *fmt, va_list ap)
{
	char *msg, *full;
	int r = vasprintf(&msg, fmt, ap);

	if (r < 0)
		return -ENOMEM;
	r = asprintf(&full, "%s:%zu:%zu: %s", path, mark.line + 1,
	             mark.column + 1, msg);
	free(msg);
	if (r < 0)
		return -ENOMEM;
	return errors_push(errs, full);
}

__attribute__((format(printf, 4, 5)))
static int file_error_at(struct config_errors *errs, const char *path,
                    yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = errors_vadd(errs, path, mark, fmt, ap);
	va_end(ap);
	return r;
}

/* The line and column of byte offset of f (reader errors have no mark). */
static yaml_mark_t offset_mark(FILE *f, size_t offset)
{
	yaml_mark_t m = { 0 };

	rewind(f);
	for (; m.index < offset; m.index++) {
		int c = getc(f);

		if (c == EOF)
			break;
		m.column++;
		if (c == '\n') {
			m.line++;
			m.column = 0;
		}
	}
	return m;
}

/* Reports the parser's error. -EINVAL, or -ENOMEM. */
static int syntax_error(const yaml_parser_t *parser, FILE *f,
                        const char *path, struct config_errors *errs)
{
	const char *problem = parser->problem ? parser->problem : "error";
	int r;

	if (parser->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	if (parser->error == YAML_READER_ERROR)
		r = file_error_at(errs, path, offset_mark(f, parser->problem_offset),
		             "%s", problem);
	else if (parser->context)
		r = file_error_at(errs, path, parser->problem_mark, "%s (%s started "
		             "at line %zu, column %zu)", problem, parser->context,
		             parser->context_mark.line + 1,
		             parser->context_mark.column + 1);
	else
		r = file_error_at(errs, path, parser->problem_mark, "%s", problem);
	return r < 0 ? r : -EINVAL;
}

/* Reads f, one YAML document or none, into cfg. As config_load(). */
static int load_stream(struct config *cfg, const char *path, FILE *f,
                       struct config_errors *errs)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	bool empty;
	int r, r2 = 0;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		r = syntax_error(&parser, f, path, errs);
		goto out;
	}
	empty = !yaml_document_get_root_node(&doc);
	r = config_walk(cfg, path, &doc, errs);
	yaml_document_delete(&doc);
	if (empty || r == -ENOMEM)
		goto out;
	/* What follows the document must be the end of the stream. */
	if (!yaml_parser_load(&parser, &doc)) {
		r2 = syntax_error(&parser, f, path, errs);
	} else {
		root = yaml_document_get_root_node(&doc);
		if (root && file_error_at(errs, path, root->start_mark, "only one "
		                     "YAML document is allowed") < 0)
			r2 = -ENOMEM;
		else if (root)
			r2 = -EINVAL;
		yaml_document_delete(&doc);
	}
	if (r == 0 || r2 == -ENOMEM)
		r = r2;
out:
	yaml_parser_delete(&parser);
	return r;
}

int config_load(struct config *cfg, const char *path,
                struct config_errors *errs)
{
	FILE *f = NULL;
	int r = open_file(path, &f);

	if (r < 0) {
		char *msg;

		if (asprintf(&msg, "%s: %s", path, strerror(-r)) < 0 ||
		    errors_push(errs, msg) < 0)
			return -ENOMEM;
		return r;
	}
	r = config_replace_str(&cfg->path, path);
	if (r == 0)
		r = load_stream(cfg, path, f, errs);
	fclose(f);
	return r;
}
