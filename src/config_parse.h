/*
 * config_parse.h - the walk of a sluice.yaml document, for its key tables
 * (config_keys.c): one struct key_def row per key, the handlers that walk
 * maps, lists and scalars, and the error reports they share. Private to
 * config_parse.c and config_keys.c; config_load() is in config.h.
 */
#ifndef SLUICE_CONFIG_PARSE_H
#define SLUICE_CONFIG_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config.h"

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
#define AT(node) ((node)->start_mark)
/* " entry" in the messages about a list's entries. */
#define ENTRY(k) ((k)->entry_size ? " entry" : "")

/* The keys of the top level; defined in config_keys.c. */
extern const struct key_def config_top_keys[];

/* Reports "path:line:column: <fmt>" at mark (marks are 0-based). */
__attribute__((format(printf, 3, 4)))
void parse_error_at(struct parse *p, yaml_mark_t mark, const char *fmt, ...);

/*
 * Reports "<fmt>, got '<value of the scalar node>'" at node.
 * -EINVAL, or -ENOMEM.
 */
__attribute__((format(printf, 3, 4)))
int parse_bad_value(struct parse *p, const yaml_node_t *node,
                    const char *fmt, ...);

/* s for a message in buf (SHOW_MAX + 4 bytes): control characters '?'. */
const char *parse_show(const char *s, char *buf);

/* "a list", "a map" or "a scalar". */
const char *parse_kind(const yaml_node_t *node);

/* A plain "", "~" or "null": YAML's null. */
bool parse_is_null(const yaml_node_t *node);

/* The text of a scalar node, or NULL (reported). */
const char *parse_text(struct parse *p, const struct key_def *k,
                       const yaml_node_t *node);

/* The text of a key node, or NULL (reported; in: " in '<map>'"). */
const char *parse_key_text(struct parse *p, const char *in,
                           const yaml_node_t *node);

/* key_fn of a scalar: k->value on its text. */
int parse_scalar(struct parse *p, const struct key_def *k,
                 yaml_node_t *node, void *base);

/* key_fn of a list of k->value entries; replaces the old list whole. */
int parse_list(struct parse *p, const struct key_def *k,
               yaml_node_t *node, void *base);

/*
 * Walks a map (null: empty) with table, storing into base. Sets the rows'
 * bits in *set (if set) for values stored; found[i] (if found, MAX_ROWS)
 * gets the value node of row i. 0 or -ENOMEM; other errors are reported.
 */
int parse_map(struct parse *p, yaml_node_t *node, const char *ctx,
              const struct key_def *table, void *base, unsigned *set,
              yaml_node_t **found);

/* key_fn of a section: parse_map() with k->sub. */
int parse_section(struct parse *p, const struct key_def *k,
                  yaml_node_t *node, void *base);

/* The scalar value node found (parse_map()) for key name, or NULL. */
yaml_node_t *parse_found_scalar(const struct key_def *table,
                                yaml_node_t **found, const char *name);

#endif
