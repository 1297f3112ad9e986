/*
 * config_parse.c - reading sluice.yaml: the YAML stream, file:line:column
 * errors, and the walk of the document, table-driven.
 *
 * The file is loaded as a libyaml document, then walked with one table per
 * map (config_keys.c): a struct key_def row per key (name, handler,
 * offset, bounds). A handler reports a bad value at its node and returns;
 * the walk carries on, so one run shows every error in the file. A value
 * that fails validation leaves its field as it was; a list is built aside
 * and replaces the old one only when every entry is good.
 */
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
#include "config_parse.h"

/* Errors */

static int errors_vadd(struct config_errors *errs, const char *path,
                       yaml_mark_t mark, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

__attribute__((format(printf, 3, 4)))
void parse_error_at(struct parse *p, yaml_mark_t mark, const char *fmt, ...)
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

/* s for a message: at most SHOW_MAX bytes, control characters as '?'. */
const char *parse_show(const char *s, char *buf)
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
int parse_bad_value(struct parse *p, const yaml_node_t *node,
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
	parse_error_at(p, AT(node), "%s, got '%s'", what,
	               parse_show((const char *)node->data.scalar.value, buf));
	free(what);
	return -EINVAL;
}

const char *parse_kind(const yaml_node_t *node)
{
	if (node->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (node->type == YAML_MAPPING_NODE)
		return "a map";
	return "a scalar";
}

/* A plain "", "~" or "null": YAML's null. */
bool parse_is_null(const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	return node->type == YAML_SCALAR_NODE &&
	       node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || !strcmp(v, "~") || !strcmp(v, "null") ||
	        !strcmp(v, "Null") || !strcmp(v, "NULL"));
}

/* The text of a scalar node, or NULL (reported). */
const char *parse_text(struct parse *p, const struct key_def *k,
                       const yaml_node_t *node)
{
	const char *v = (const char *)node->data.scalar.value;

	if (node->type != YAML_SCALAR_NODE) {
		parse_error_at(p, AT(node), "'%s'%s must be a scalar, got %s",
		               k->name, ENTRY(k), parse_kind(node));
		return NULL;
	}
	if (strlen(v) != node->data.scalar.length) {
		parse_error_at(p, AT(node), "'%s'%s must not contain NUL bytes",
		               k->name, ENTRY(k));
		return NULL;
	}
	return v;
}

/* The text of a key node, or NULL (reported). */
const char *parse_key_text(struct parse *p, const char *in,
                           const yaml_node_t *node)
{
	if (node->type != YAML_SCALAR_NODE) {
		parse_error_at(p, AT(node), "keys must be scalars%s, got %s",
		               in, parse_kind(node));
		return NULL;
	}
	return (const char *)node->data.scalar.value;
}

/* Keys */

int parse_scalar(struct parse *p, const struct key_def *k,
                 yaml_node_t *node, void *base)
{
	const char *v = parse_text(p, k, node);

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
int parse_list(struct parse *p, const struct key_def *k,
               yaml_node_t *node, void *base)
{
	yaml_node_item_t *it = NULL;
	size_t n = 0, got = 0;
	char *v = NULL, *old;
	int r = 0, bad = 0;

	if (node->type == YAML_SEQUENCE_NODE) {
		it = node->data.sequence.items.start;
		n = (size_t)(node->data.sequence.items.top - it);
	} else if (!parse_is_null(node)) {
		parse_error_at(p, AT(node), "'%s' must be a list, got %s",
		               k->name, parse_kind(node));
		return -EINVAL;
	}
	if (n < k->min_n) {
		parse_error_at(p, AT(node),
		               "'%s' must have at least %zu entr%s", k->name,
		               k->min_n, k->min_n == 1 ? "y" : "ies");
		return -EINVAL;
	}
	if (n > 0) {
		v = calloc(n, k->entry_size);
		if (!v)
			return -ENOMEM;
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		yaml_node_t *e = NODE(p, it[i]);
		const char *s = parse_text(p, k, e);
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
int parse_map(struct parse *p, yaml_node_t *node, const char *ctx,
              const struct key_def *table, void *base, unsigned *set,
              yaml_node_t **found)
{
	yaml_node_t *seen[MAX_ROWS] = { 0 };
	char buf[SHOW_MAX + 4], in[CTX_MAX + 8] = "";
	yaml_node_pair_t *pair;

	if (ctx)
		snprintf(in, sizeof(in), " in '%s'", ctx);
	if (node->type != YAML_MAPPING_NODE) {
		if (parse_is_null(node))
			return 0;
		if (ctx)
			parse_error_at(p, AT(node),
			               "'%s' must be a map, got %s", ctx,
			               parse_kind(node));
		else
			parse_error_at(p, AT(node), "the top level must be a "
			               "map, got %s", parse_kind(node));
		return 0;
	}
	for (pair = node->data.mapping.pairs.start;
	     pair < node->data.mapping.pairs.top; pair++) {
		yaml_node_t *kn = NODE(p, pair->key);
		yaml_node_t *vn = NODE(p, pair->value);
		const char *name = parse_key_text(p, in, kn);
		size_t i;
		int r;

		if (!name)
			continue;
		for (i = 0; table[i].name && strcmp(table[i].name, name); i++)
			;
		if (!table[i].name) {
			parse_error_at(p, AT(kn), "unknown key '%s'%s",
			               parse_show(name, buf), in);
			continue;
		}
		if (seen[i]) {
			parse_error_at(p, AT(kn), "duplicate key '%s'%s", name,
			               in);
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

int parse_section(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, void *base)
{
	return parse_map(p, node, k->name, k->sub, base, NULL, NULL);
}

/* The scalar value found for key name, if any. */
yaml_node_t *parse_found_scalar(const struct key_def *table,
                                yaml_node_t **found, const char *name)
{
	for (size_t i = 0; table[i].name; i++)
		if (!strcmp(table[i].name, name))
			return found[i] && found[i]->type == YAML_SCALAR_NODE
			       ? found[i] : NULL;
	return NULL;
}

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
	if (root &&
	    parse_map(&p, root, NULL, config_top_keys, cfg, NULL, NULL) < 0)
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
		r = file_error_at(errs, path,
		                  offset_mark(f, parser->problem_offset), "%s",
		                  problem);
	else if (parser->context)
		r = file_error_at(errs, path, parser->problem_mark,
		                  "%s (%s started at line %zu, column %zu)",
		                  problem, parser->context,
		                  parser->context_mark.line + 1,
		                  parser->context_mark.column + 1);
	else
		r = file_error_at(errs, path, parser->problem_mark, "%s",
		                  problem);
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
		if (root && file_error_at(errs, path, root->start_mark,
		                          "only one YAML document is "
		                          "allowed") < 0)
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
